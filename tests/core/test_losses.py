"""bce, weighted_bce, dice and unet_ce: maps, values and gradients against references."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_losslens._testing import touching_cells
from napari_losslens.core import (
    gradient_map,
    loss_map,
    loss_value,
    unet_weight_map,
)


@pytest.fixture
def case():
    rng = np.random.default_rng(0)
    target = touching_cells((24, 28), 6, 6.0, seed=3)
    prob = np.clip(0.7 * (target > 0) + 0.3 * rng.random(target.shape), 0.01, 0.99)
    return prob.astype(np.float32), target


def _np_dice(p, y, smooth, gamma):
    p, y = p.astype(np.float64), (y > 0).astype(np.float64)
    return 1 - (2 * (p * y).sum() + smooth) / ((p**gamma).sum() + (y**gamma).sum() + smooth)


# ---------------------------------------------------------------- references: bce family
def test_bce_map_equals_torch(case):
    p, y = case
    want = F.binary_cross_entropy(
        torch.from_numpy(p), torch.from_numpy((y > 0).astype(np.float32)), reduction="none"
    ).numpy()
    np.testing.assert_allclose(loss_map(p, y, "bce", device="cpu"), want, rtol=1e-5, atol=1e-6)
    assert loss_value(p, y, "bce", device="cpu") == pytest.approx(float(want.mean()), rel=1e-5)


def test_bce_from_logits_equals_torch_with_logits_even_at_extremes():
    logits = np.array([-1e4, -30.0, -2.0, 0.0, 3.0, 40.0, 1e4], np.float32)
    y = np.array([1, 0, 1, 1, 0, 0, 0])
    want = F.binary_cross_entropy_with_logits(
        torch.from_numpy(logits), torch.from_numpy(y.astype(np.float32)), reduction="none"
    ).numpy()
    got = loss_map(logits, y, "bce", from_logits=True, device="cpu")
    np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-12)  # ours keeps 9e-14 at -30
    assert np.isfinite(got).all()


def test_weighted_bce_with_beta_one_is_bce(case):
    p, y = case
    np.testing.assert_allclose(
        loss_map(p, y, "weighted_bce", beta=1.0, device="cpu"), loss_map(p, y, "bce", device="cpu")
    )


def test_weighted_bce_equals_torch_pos_weight():
    rng = np.random.default_rng(1)
    logits = rng.normal(0, 3, (10, 12)).astype(np.float64)
    y = rng.random((10, 12)) < 0.3
    want = F.binary_cross_entropy_with_logits(
        torch.from_numpy(logits),
        torch.from_numpy(y.astype(np.float64)),
        pos_weight=torch.tensor(3.5, dtype=torch.float64),
        reduction="none",
    ).numpy()
    got = loss_map(logits, y, "weighted_bce", beta=3.5, from_logits=True, device="cpu")
    assert got.dtype == np.float64
    np.testing.assert_allclose(got, want, rtol=1e-10, atol=1e-14)


def test_probabilities_and_logits_agree(case):
    p, y = case
    p = p.astype(np.float64)
    logit = np.log(p / (1 - p))
    for loss in ("bce", "weighted_bce", "dice", "unet_ce"):
        a = loss_value(p, y, loss, device="cpu")
        b = loss_value(logit, y, loss, from_logits=True, device="cpu")
        assert a == pytest.approx(b, rel=1e-9), loss


def test_confident_predictions_are_finite():
    p = np.array([0.0, 1.0, 0.0, 1.0], np.float32)
    y = np.array([0, 1, 1, 0])
    for loss in ("bce", "weighted_bce", "dice", "unet_ce"):
        m = loss_map(p.reshape(2, 2), y.reshape(2, 2), loss, device="cpu")
        g = gradient_map(p.reshape(2, 2), y.reshape(2, 2), loss, device="cpu")
        assert np.isfinite(m).all() and np.isfinite(g).all(), loss
    m = loss_map(p, y, "bce", device="cpu")
    assert m[0] == pytest.approx(0, abs=1e-6) and m[1] == pytest.approx(0, abs=1e-6)
    assert m[2] > 15 and m[3] > 15  # wrong and confident: -log(eps)
    g = gradient_map(p, y, "bce", device="cpu")
    assert g[2] < 0 < g[3]  # pulled up where the target is 1, down where it is 0


# ---------------------------------------------------------------- dice
@pytest.mark.parametrize(("smooth", "gamma"), [(1e-6, 2.0), (1.0, 1.0), (0.5, 1.5)])
def test_dice_value_equals_numpy_reference(case, smooth, gamma):
    p, y = case
    got = loss_value(p.astype(np.float64), y, "dice", smooth=smooth, gamma=gamma, device="cpu")
    assert got == pytest.approx(_np_dice(p, y, smooth, gamma), rel=1e-12)


def test_dice_map_is_the_gradient_of_the_loss(case):
    p, y = case
    p64 = torch.from_numpy(p.astype(np.float64)).requires_grad_(True)
    yy = torch.from_numpy((y > 0).astype(np.float64))
    ref = 1 - (2 * (p64 * yy).sum() + 1e-6) / ((p64**2).sum() + yy.sum() + 1e-6)
    (g,) = torch.autograd.grad(ref, p64)
    got = loss_map(p.astype(np.float64), y, "dice", device="cpu")
    np.testing.assert_allclose(got, g.numpy(), rtol=1e-10)
    # signed: where the target is 1 the loss pulls the prediction up (negative)
    assert (got[y > 0] < 0).all()


def test_dice_empty_prediction_and_target_is_finite():
    z = np.zeros((5, 5))
    assert loss_value(z, z.astype(int), "dice", device="cpu") == pytest.approx(0.0)
    assert loss_value(z, z.astype(int), "dice", smooth=0.0, device="cpu") == 0.0
    assert np.isfinite(loss_map(z, z.astype(int), "dice", smooth=0.0, device="cpu")).all()


# ---------------------------------------------------------------- unet_ce
def test_unet_ce_is_weight_map_times_bce(case):
    p, y = case
    w = unet_weight_map(y, w0=8, sigma=3, class_weights="balanced", device="cpu")
    bce = loss_map(p, y, "bce", device="cpu")
    got = loss_map(p, y, "unet_ce", w0=8, sigma=3, class_weights="balanced", device="cpu")
    np.testing.assert_allclose(got, w * bce, rtol=1e-6)
    assert loss_value(
        p, y, "unet_ce", w0=8, sigma=3, class_weights="balanced", device="cpu"
    ) == pytest.approx(float((w * bce).mean()), rel=1e-5)


def test_unet_ce_accepts_a_precomputed_weight_map(case):
    p, y = case
    w = np.full(y.shape, 2.0, np.float32)
    np.testing.assert_allclose(
        loss_map(p, y, "unet_ce", weight_map=w, device="cpu"),
        2 * loss_map(p, y, "bce", device="cpu"),
        rtol=1e-6,
    )
    with pytest.raises(ValueError, match="weight_map and target must have the same shape"):
        loss_map(p, y, "unet_ce", weight_map=w[:3], device="cpu")


# ---------------------------------------------------------------- gradients
@pytest.mark.parametrize("loss", ["bce", "weighted_bce", "dice", "unet_ce"])
@pytest.mark.parametrize("from_logits", [False, True])
def test_gradient_map_matches_gradcheck(loss, from_logits):
    rng = np.random.default_rng(5)
    target = touching_cells((7, 8), 3, 3.0, seed=6)
    x = rng.uniform(0.05, 0.95, target.shape)
    if from_logits:
        x = np.log(x / (1 - x))
    xt = torch.from_numpy(x).requires_grad_(True)
    tt = torch.from_numpy(target)

    def f(inp):
        return loss_value(inp, tt, loss, from_logits=from_logits)

    assert torch.autograd.gradcheck(f, (xt,), eps=1e-6, atol=1e-6)
    (g,) = torch.autograd.grad(f(xt), xt)
    np.testing.assert_allclose(
        gradient_map(x, target, loss, from_logits=from_logits, device="cpu"),
        g.numpy(),
        rtol=1e-9,
        atol=1e-12,
    )


def test_pixel_gradient_is_map_derivative_over_count(case):
    p, y = case
    p = p.astype(np.float64)
    yy = (y > 0).astype(np.float64)
    want = (-(yy / p) + (1 - yy) / (1 - p)) / p.size
    np.testing.assert_allclose(gradient_map(p, y, "bce", device="cpu"), want, rtol=1e-10)


# ---------------------------------------------------------------- mask
def test_mask_zeroes_outside_and_excludes_from_means_and_sums(case):
    p, y = case
    mask = np.zeros(y.shape, bool)
    mask[:, : y.shape[1] // 2] = True
    m = loss_map(p, y, "bce", mask=mask, device="cpu")
    assert np.all(m[~mask] == 0)
    full = loss_map(p, y, "bce", device="cpu")
    assert loss_value(p, y, "bce", mask=mask, device="cpu") == pytest.approx(
        float(full[mask].mean()), rel=1e-6
    )
    half = (slice(None), slice(0, y.shape[1] // 2))
    assert loss_value(p.astype(np.float64), y, "dice", mask=mask, device="cpu") == pytest.approx(
        _np_dice(p[half], y[half], 1e-6, 2.0), rel=1e-10
    )
    g = loss_map(p, y, "dice", mask=mask, device="cpu")
    assert np.all(g[~mask] == 0) and np.any(g[mask] != 0)


def test_all_masked_is_an_error(case):
    p, y = case
    with pytest.raises(ValueError, match="mask excludes every pixel"):
        loss_value(p, y, "bce", mask=np.zeros(y.shape, bool), device="cpu")


# ---------------------------------------------------------------- kinds, dtypes, autograd
def test_numpy_in_numpy_out_float32_torch_in_torch_out(case, device):
    p, y = case
    out = loss_map(p, y, device="cpu")
    assert isinstance(out, np.ndarray) and out.dtype == np.float32
    assert isinstance(loss_value(p, y, device="cpu"), float)
    pt = torch.from_numpy(p).to(device).requires_grad_(True)
    val = loss_value(pt, torch.from_numpy(y).to(device), "dice")
    assert isinstance(val, torch.Tensor) and val.ndim == 0 and val.device.type == device
    val.backward()
    assert pt.grad is not None and torch.isfinite(pt.grad).all()
    mp = loss_map(pt, torch.from_numpy(y).to(device), "bce")
    assert mp.requires_grad  # autograd intact through the map


def test_region_map_keeps_autograd_for_torch_input(case):
    p, y = case
    pt = torch.from_numpy(p.astype(np.float64)).requires_grad_(True)
    g = loss_map(pt, torch.from_numpy(y), "dice")
    assert g.requires_grad
    g.sum().backward()  # second derivative exists
    assert torch.isfinite(pt.grad).all()


def test_inputs_not_modified(case):
    p, y = case
    p0, y0 = p.copy(), y.copy()
    mask = np.ones(y.shape, bool)
    for loss in ("bce", "weighted_bce", "dice", "unet_ce"):
        loss_map(p, y, loss, mask=mask, device="cpu")
        gradient_map(p, y, loss, device="cpu")
        loss_value(p, y, loss, device="cpu")
    assert np.array_equal(p, p0) and np.array_equal(y, y0) and mask.all()
    pt = torch.from_numpy(p.copy())
    loss_map(pt, torch.from_numpy(y), "dice")
    assert torch.equal(pt, torch.from_numpy(p0))


def test_bool_and_integer_predictions_are_accepted():
    y = np.array([[0, 1], [1, 0]])
    got = loss_map(y.astype(bool), y, "bce", device="cpu")
    assert np.allclose(got, 0, atol=1e-6)


# ---------------------------------------------------------------- errors
@pytest.mark.parametrize(
    ("pred", "target", "kwargs", "error", "match"),
    [
        (
            np.zeros((3, 3)),
            np.zeros((3, 4)),
            {},
            ValueError,
            r"prediction and target must have the same shape, got \(3, 3\) and \(3, 4\)",
        ),
        (np.full((2, 2), np.nan), np.zeros((2, 2)), {}, ValueError, r"must be finite, got 4 NaN"),
        (
            np.full((2, 2), 2.0),
            np.zeros((2, 2)),
            {},
            ValueError,
            r"probabilities in \[0, 1\], got values in \[2, 2\]; pass from_logits=True",
        ),
        (np.zeros((2, 2)), -np.ones((2, 2)), {}, ValueError, r"target must hold non-negative"),
        (np.zeros((2, 2)), np.full((2, 2), 0.5), {}, ValueError, r"target must hold integer"),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            {"loss": "hinge"},
            ValueError,
            r"unknown loss 'hinge'; available: bce, weighted_bce, dice, unet_ce",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            {"loss": "dice", "alpha": 1},
            TypeError,
            r"unknown parameter\(s\) 'alpha' for loss 'dice'; it takes: smooth, gamma",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            {"loss": "dice", "gamma": 0},
            ValueError,
            r"parameter 'gamma' of loss 'dice' must be > 0.0, got 0",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            {"loss": "weighted_bce", "beta": "x"},
            TypeError,
            r"parameter 'beta' of loss 'weighted_bce' must be a number",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            {"mask": np.ones((2, 3), bool)},
            ValueError,
            r"mask and target must have the same shape",
        ),
        (
            np.zeros((2, 2)),
            np.zeros((2, 2)),
            {"loss": "unet_ce", "sigma": -1},
            ValueError,
            r"parameter 'sigma' of loss 'unet_ce' must be > 0.0",
        ),
    ],
)
def test_bad_input_raises_clear_errors(pred, target, kwargs, error, match):
    kwargs = {"device": "cpu", **kwargs}
    for fn in (loss_map, loss_value, gradient_map):
        with pytest.raises(error, match=match):
            fn(pred, target, **kwargs)
