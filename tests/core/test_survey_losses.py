"""The survey losses: values and maps against float64 references, libraries, gradients."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_losslens.core import (
    SegmentationLoss,
    available_losses,
    gradient_map,
    loss_map,
    loss_value,
)
from napari_losslens.core import modules as sm

from .reference import ref_penalty, ref_signed, ref_two_sided

SURVEY = (
    "focal",
    "balanced_bce",
    "distance_penalized_ce",
    "jaccard",
    "tversky",
    "focal_tversky",
    "log_cosh_dice",
    "sensitivity_specificity",
    "combo",
    "exp_log",
    "boundary",
    "hausdorff_dt",
    "ce",
)
DISTANCE_LOSSES = ("distance_penalized_ce", "boundary", "hausdorff_dt")
MODULES = {
    "focal": sm.FocalLoss,
    "balanced_bce": sm.BalancedBCELoss,
    "distance_penalized_ce": sm.DistancePenalizedCELoss,
    "jaccard": sm.JaccardLoss,
    "tversky": sm.TverskyLoss,
    "focal_tversky": sm.FocalTverskyLoss,
    "log_cosh_dice": sm.LogCoshDiceLoss,
    "sensitivity_specificity": sm.SensitivitySpecificityLoss,
    "combo": sm.ComboLoss,
    "exp_log": sm.ExpLogLoss,
    "boundary": sm.BoundaryLoss,
    "hausdorff_dt": sm.HausdorffDTLoss,
    "ce": sm.CrossEntropyLoss,
}


def _target(shape=(12, 14)):
    y = np.zeros(shape, dtype=np.int64)
    y[2:7, 3:9] = 1
    y[8:11, 10:13] = 2  # a second instance: foreground is target > 0
    return y


@pytest.fixture
def case():
    rng = np.random.default_rng(1)
    y = _target()
    p = np.clip(0.6 * (y > 0) + 0.4 * rng.random(y.shape), 0.02, 0.98)
    # keep p away from the 0.5 threshold of hausdorff_dt (a finite difference must not flip it)
    p = np.where(np.abs(p - 0.5) < 0.05, p + 0.1, p)
    return p.astype(np.float64), y


# --------------------------------------------------------------------------------------
# float64 references, written from the formulas
# --------------------------------------------------------------------------------------


def _bce(p, y):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def ref_map(name, p, target, spacing=(1.0, 1.0), **kw):
    """Per-pixel loss of a pixel loss."""
    y = (target > 0).astype(float)
    if name == "focal":
        a, g = kw.get("alpha", 0.25), kw.get("gamma", 2.0)
        pos = -((1 - p) ** g) * y * np.log(p)
        neg = -(p**g) * (1 - y) * np.log(1 - p)
        return pos + neg if a is None else a * pos + (1 - a) * neg
    if name == "balanced_bce":
        beta = (y == 0).mean()
        return -(beta * y * np.log(p) + (1 - beta) * (1 - y) * np.log(1 - p))
    if name == "distance_penalized_ce":
        return (1 + ref_penalty(y > 0, spacing)) * _bce(p, y)
    if name == "boundary":
        return p * ref_signed(y > 0, spacing)
    if name == "hausdorff_dt":
        a = kw.get("alpha", 2.0)
        d_y = ref_two_sided(y > 0, spacing)
        d_p = ref_two_sided(p > 0.5, spacing)
        return (p - y) ** 2 * (d_p**a + d_y**a)
    if name == "ce":
        return _bce(p, y)
    raise KeyError(name)


def ref_value(name, p, target, spacing=(1.0, 1.0), **kw):
    """The scalar loss."""
    y = (target > 0).astype(float)
    s = kw.get("smooth", 1e-6)
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    if name == "jaccard":
        return 1 - (tp + s) / (tp + fp + fn + s)
    if name in ("tversky", "focal_tversky"):
        a, b = kw.get("alpha", 0.5), kw.get("beta", 0.5)
        tl = 1 - (tp + s) / (tp + a * fp + b * fn + s)
        return tl if name == "tversky" else tl ** kw.get("gamma", 0.75)
    if name == "log_cosh_dice":
        g = kw.get("gamma", 2.0)
        dl = 1 - (2 * tp + s) / ((p**g).sum() + (y**g).sum() + s)
        return math.log(math.cosh(dl))
    if name == "sensitivity_specificity":
        w = kw.get("w", 0.5)
        e = (y - p) ** 2
        return w * (e * y).sum() / (y.sum() + s) + (1 - w) * (e * (1 - y)).sum() / (
            (1 - y).sum() + s
        )
    if name == "combo":
        a, b, g = kw.get("alpha", 0.5), kw.get("beta", 0.5), kw.get("gamma", 1.0)
        ce = -(b * y * np.log(p) + (1 - b) * (1 - y) * np.log(1 - p)).mean()
        dl = 1 - (2 * tp + s) / ((p**g).sum() + (y**g).sum() + s)
        return a * ce + (1 - a) * dl
    if name == "exp_log":
        s = kw.get("smooth", 1.0)
        gd, gc = kw.get("gamma_dice", 0.3), kw.get("gamma_ce", 0.3)
        wd, wc = kw.get("w_dice", 0.8), kw.get("w_ce", 0.2)
        dice = (2 * tp + s) / (p.sum() + y.sum() + s)
        n, n1 = y.size, y.sum()
        wl = np.where(y > 0, np.sqrt(n / n1), np.sqrt(n / (n - n1)))
        p_y = np.where(y > 0, p, 1 - p)
        return wd * (-math.log(dice)) ** gd + wc * (wl * (-np.log(p_y)) ** gc).mean()
    return ref_map(name, p, target, spacing, **kw).mean()


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SURVEY)
def test_registered_with_formula_reference_and_ranges(name):
    info = available_losses()[name]
    assert info.kind in ("pixel", "region")
    assert info.formula and info.reference and info.description
    for param in info.params:
        if param.kind in ("float", "int", "optional_float"):
            assert param.minimum is not None and param.maximum is not None, param.name
            assert param.minimum <= param.default <= param.maximum
        param.validate(param.default, name)


def test_kinds():
    info = available_losses()
    region = {n for n in SURVEY if info[n].kind == "region"}
    assert region == {
        "jaccard",
        "tversky",
        "focal_tversky",
        "log_cosh_dice",
        "sensitivity_specificity",
        "combo",
        "exp_log",
    }


# --------------------------------------------------------------------------------------
# Reference values
# --------------------------------------------------------------------------------------

PIXEL_CASES = [
    ("focal", {}),
    ("focal", {"alpha": None, "gamma": 0.5}),
    ("focal", {"alpha": 0.8, "gamma": 0.0}),
    ("balanced_bce", {}),
    ("distance_penalized_ce", {}),
    ("boundary", {}),
    ("hausdorff_dt", {}),
    ("hausdorff_dt", {"alpha": 1.0}),
    ("ce", {}),
]
REGION_CASES = [
    ("jaccard", {}),
    ("jaccard", {"smooth": 1.0}),
    ("tversky", {}),
    ("tversky", {"alpha": 0.3, "beta": 0.7, "smooth": 1.0}),
    ("focal_tversky", {}),
    ("focal_tversky", {"alpha": 0.7, "beta": 0.3, "gamma": 2.0}),
    ("log_cosh_dice", {}),
    ("log_cosh_dice", {"gamma": 1.0, "smooth": 1.0}),
    ("sensitivity_specificity", {}),
    ("sensitivity_specificity", {"w": 0.9}),
    ("combo", {}),
    ("combo", {"alpha": 0.3, "beta": 0.8, "gamma": 2.0}),
    ("exp_log", {}),
    ("exp_log", {"gamma_dice": 1.0, "gamma_ce": 2.0, "w_dice": 0.5, "w_ce": 0.5}),
]


@pytest.mark.parametrize(("name", "kw"), PIXEL_CASES)
def test_pixel_loss_map_and_value_match_reference(case, name, kw):
    p, y = case
    np.testing.assert_allclose(loss_map(p, y, name, **kw), ref_map(name, p, y, **kw), rtol=1e-10)
    assert loss_value(p, y, name, **kw) == pytest.approx(ref_value(name, p, y, **kw), rel=1e-10)


@pytest.mark.parametrize(("name", "kw"), REGION_CASES)
def test_region_loss_value_matches_reference(case, name, kw):
    p, y = case
    assert loss_value(p, y, name, **kw) == pytest.approx(ref_value(name, p, y, **kw), rel=1e-10)


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_anisotropic_spacing_matches_reference(case, name):
    p, y = case
    sp = (2.0, 0.5)
    want = ref_map(name, p, y, spacing=sp)
    np.testing.assert_allclose(loss_map(p, y, name, spacing=sp), want, rtol=1e-10)


def test_float32_in_float32_out(case):
    p, y = case
    for name in SURVEY:
        out = loss_map(p.astype(np.float32), y, name)
        assert out.dtype == np.float32, name


# --------------------------------------------------------------------------------------
# Equivalences and independent libraries
# --------------------------------------------------------------------------------------


def test_focal_gamma0_no_alpha_is_bce(case):
    p, y = case
    np.testing.assert_allclose(
        loss_map(p, y, "focal", alpha=None, gamma=0.0), loss_map(p, y, "bce"), rtol=1e-12
    )


def test_tversky_special_cases(case):
    p, y = case
    s = 1e-3
    dice = loss_value(p, y, "dice", smooth=2 * s, gamma=1.0)
    assert loss_value(p, y, "tversky", alpha=0.5, beta=0.5, smooth=s) == pytest.approx(dice)
    jac = loss_value(p, y, "jaccard", smooth=s)
    assert loss_value(p, y, "tversky", alpha=1.0, beta=1.0, smooth=s) == pytest.approx(jac)
    tv = loss_value(p, y, "tversky", alpha=0.2, beta=0.8)
    assert loss_value(p, y, "focal_tversky", alpha=0.2, beta=0.8, gamma=1.0) == pytest.approx(tv)


def test_combo_alpha1_is_half_bce(case):
    p, y = case
    assert loss_value(p, y, "combo", alpha=1.0) == pytest.approx(0.5 * loss_value(p, y, "bce"))


def test_focal_matches_kornia(case):
    kornia = pytest.importorskip("kornia")
    rng = np.random.default_rng(2)
    x = torch.from_numpy(rng.normal(0, 3, size=case[1].shape))
    y = torch.from_numpy((case[1] > 0).astype(np.float64))
    for alpha, gamma in [(0.25, 2.0), (None, 1.5), (0.6, 0.0)]:
        want = kornia.losses.binary_focal_loss_with_logits(
            x, y, alpha=alpha, gamma=gamma, reduction="none"
        )
        got = loss_map(x, y, "focal", from_logits=True, alpha=alpha, gamma=gamma)
        torch.testing.assert_close(got, want, rtol=1e-9, atol=1e-12)


def _monai_input(p):
    return torch.from_numpy(p)[None, None]


def test_tversky_matches_monai(case):
    losses = pytest.importorskip("monai.losses")
    p, y = case
    for a, b, s in [(0.5, 0.5, 1e-5), (0.3, 0.7, 1.0), (0.9, 0.1, 1e-6)]:
        want = losses.TverskyLoss(alpha=a, beta=b, smooth_nr=s, smooth_dr=s)(
            _monai_input(p), _monai_input((y > 0).astype(np.float64))
        )
        got = loss_value(p, y, "tversky", alpha=a, beta=b, smooth=s)
        assert got == pytest.approx(float(want), rel=1e-10)


def test_jaccard_and_log_cosh_dice_match_monai_dice(case):
    losses = pytest.importorskip("monai.losses")
    p, y = case
    yt = _monai_input((y > 0).astype(np.float64))
    s = 1e-4
    # MONAI's jaccard: 1 - (2I + s)/(2(Σp + Σy - I) + s): ours with smoothing s/2
    want = losses.DiceLoss(jaccard=True, smooth_nr=s, smooth_dr=s)(_monai_input(p), yt)
    assert loss_value(p, y, "jaccard", smooth=s / 2) == pytest.approx(float(want), rel=1e-10)
    dice = losses.DiceLoss(squared_pred=True, smooth_nr=s, smooth_dr=s)(_monai_input(p), yt)
    want = math.log(math.cosh(float(dice)))
    assert loss_value(p, y, "log_cosh_dice", smooth=s) == pytest.approx(want, rel=1e-10)


# --------------------------------------------------------------------------------------
# Gradients
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", SURVEY)
@pytest.mark.parametrize("from_logits", [False, True])
def test_gradcheck_and_gradient_map(case, name, from_logits):
    p, y = case
    p, y = p[:7, :8], y[:7, :8]  # small: gradcheck is one evaluation per pixel
    x = np.log(p / (1 - p)) if from_logits else p
    xt = torch.from_numpy(x.copy()).requires_grad_(True)
    yt = torch.from_numpy(y)

    def f(inp):
        return loss_value(inp, yt, name, from_logits=from_logits)

    assert torch.autograd.gradcheck(f, (xt,), eps=1e-6, atol=1e-6)
    (want,) = torch.autograd.grad(f(xt), xt)
    np.testing.assert_allclose(
        gradient_map(x, y, name, from_logits=from_logits), want.numpy(), rtol=1e-9, atol=1e-12
    )


@pytest.mark.parametrize("name", [n for n in SURVEY if available_losses()[n].kind == "region"])
def test_region_loss_map_is_gradient_wrt_probability(case, name):
    p, y = case
    pt = torch.from_numpy(p.copy()).requires_grad_(True)
    (want,) = torch.autograd.grad(loss_value(pt, torch.from_numpy(y), name), pt)
    np.testing.assert_allclose(loss_map(p, y, name), want.numpy(), rtol=1e-9, atol=1e-14)


def test_torch_input_keeps_autograd(case):
    p, y = case
    pt = torch.from_numpy(p).requires_grad_(True)
    for name in SURVEY:
        out = loss_map(pt, torch.from_numpy(y), name)
        assert isinstance(out, torch.Tensor) and out.requires_grad, name


# --------------------------------------------------------------------------------------
# Edge cases: never NaN or inf
# --------------------------------------------------------------------------------------


def _edge_inputs():
    shape = (6, 7)
    y_some = np.zeros(shape, np.int64)
    y_some[1:4, 2:5] = 1
    targets = {
        "empty": np.zeros(shape, np.int64),
        "full": np.ones(shape, np.int64),
        "some": y_some,
    }
    preds = {
        "p=0": (np.zeros(shape), False),
        "p=1": (np.ones(shape), False),
        "exact": (None, False),  # p = y
        "wrong": ("wrong", False),  # p = 1 - y
        "logits+-100": ("logits", True),
        "logits0": (np.zeros(shape), True),
    }
    for tname, y in targets.items():
        for pname, (p, logits) in preds.items():
            if p is None:
                p = (y > 0).astype(float)
            elif isinstance(p, str) and p == "wrong":
                p = 1.0 - (y > 0)
            elif isinstance(p, str):
                p = np.where(np.arange(y.size).reshape(shape) % 2 == 0, 100.0, -100.0)
            yield pytest.param(p, y, logits, id=f"{tname}-{pname}")


@pytest.mark.parametrize(("p", "y", "from_logits"), list(_edge_inputs()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_cases_finite(p, y, from_logits, dtype):
    p = p.astype(dtype)
    for name in SURVEY:
        kw = {"from_logits": from_logits}
        v = loss_value(p, y, name, **kw)
        m = loss_map(p, y, name, **kw)
        g = gradient_map(p, y, name, **kw)
        assert math.isfinite(v), name
        assert np.isfinite(m).all() and np.isfinite(g).all(), name
        assert v >= -1e-6 or name == "boundary", (name, v)


@pytest.mark.parametrize(
    ("name", "kw"),
    [("jaccard", {}), ("tversky", {}), ("sensitivity_specificity", {}), ("exp_log", {})],
)
def test_smooth_zero_empty_is_finite(name, kw):
    y = np.zeros((5, 5), np.int64)
    for p in (np.zeros((5, 5)), np.full((5, 5), 0.3)):
        v = loss_value(p, y, name, smooth=0.0, **kw)
        g = gradient_map(p, y, name, smooth=0.0, **kw)
        assert math.isfinite(v) and np.isfinite(g).all()
    # exp_log: (−log(1 − ε))^0.3 of the probability clamp is ~4e-6, not exactly 0
    assert loss_value(np.zeros((5, 5)), y, name, smooth=0.0) == pytest.approx(0.0, abs=1e-5)


def test_perfect_prediction_is_zero_with_finite_gradient():
    y = _target()
    p = (y > 0).astype(np.float64)
    for name in ("jaccard", "tversky", "focal_tversky", "log_cosh_dice", "hausdorff_dt"):
        assert loss_value(p, y, name) == pytest.approx(0.0, abs=1e-6), name
        assert np.isfinite(gradient_map(p, y, name)).all(), name


def test_balanced_bce_degenerate_targets_give_zero():
    p = np.full((4, 4), 0.3)
    assert loss_value(p, np.zeros((4, 4), int), "balanced_bce") == 0.0
    assert loss_value(p, np.ones((4, 4), int), "balanced_bce") == 0.0


# --------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------


def _mask(shape):
    m = np.ones(shape, bool)
    m[:, :3] = False
    m[9:, :] = False
    return m


NON_DISTANCE = [n for n in SURVEY if n not in DISTANCE_LOSSES]


@pytest.mark.parametrize("name", NON_DISTANCE)
def test_mask_equals_loss_on_counted_pixels(case, name):
    p, y = case
    m = _mask(y.shape)
    assert loss_value(p, y, name, mask=m) == pytest.approx(loss_value(p[m], y[m], name))
    out = loss_map(p, y, name, mask=m)
    assert (out[~m] == 0).all()
    np.testing.assert_allclose(out[m], loss_map(p[m], y[m], name), rtol=1e-10, atol=1e-15)


@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_mask_with_distance_maps_of_whole_target(case, name):
    p, y = case
    m = _mask(y.shape)
    want = ref_map(name, p, y)
    assert loss_value(p, y, name, mask=m) == pytest.approx(want[m].mean(), rel=1e-10)
    out = loss_map(p, y, name, mask=m)
    np.testing.assert_allclose(out, np.where(m, want, 0.0), rtol=1e-10)
    assert (gradient_map(p, y, name, mask=m)[~m] == 0).all()


def test_balanced_bce_beta_over_counted_pixels(case):
    p, y = case
    m = _mask(y.shape)
    want = ref_map("balanced_bce", p[m], y[m])
    np.testing.assert_allclose(loss_map(p, y, "balanced_bce", mask=m)[m], want, rtol=1e-10)


@pytest.mark.parametrize("name", SURVEY)
def test_all_masked_is_an_error(case, name):
    p, y = case
    with pytest.raises(ValueError, match="mask excludes every pixel"):
        loss_value(p, y, name, mask=np.zeros(y.shape, bool))


# --------------------------------------------------------------------------------------
# Errors, modules, inputs
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("focal", {"alpha": 1.5}, "alpha"),
        ("focal", {"gamma": -1.0}, "gamma"),
        ("tversky", {"beta": -0.1}, "beta"),
        ("focal_tversky", {"gamma": 0.0}, "gamma"),
        ("sensitivity_specificity", {"w": 2.0}, "w"),
        ("combo", {"alpha": -1.0}, "alpha"),
        ("hausdorff_dt", {"alpha": 10.0}, "alpha"),
    ],
)
def test_out_of_range_parameters(case, name, kw, match):
    p, y = case
    with pytest.raises(ValueError, match=match):
        loss_value(p, y, name, **kw)


def test_bad_spacing_and_unknown_parameter(case):
    p, y = case
    with pytest.raises(ValueError, match="spacing"):
        loss_value(p, y, "boundary", spacing=(1.0, 2.0, 3.0))
    with pytest.raises(TypeError, match="unknown parameter"):
        loss_value(p, y, "jaccard", alpha=0.3)
    with pytest.raises(ValueError, match="same shape"):
        loss_value(p, y[:, :-1], "jaccard")


@pytest.mark.parametrize("name", SURVEY)
def test_module_agrees_with_function(case, name):
    p, y = case
    pt, yt = torch.from_numpy(p), torch.from_numpy(y)
    crit = MODULES[name]()
    assert isinstance(crit, SegmentationLoss) and crit.loss_name == name
    torch.testing.assert_close(crit(pt, yt), loss_value(pt, yt, name))


def test_module_parameters_and_logits(case):
    p, y = case
    x = torch.from_numpy(np.log(p / (1 - p)))
    crit = sm.TverskyLoss(alpha=0.2, beta=0.8, from_logits=True)
    want = loss_value(p, y, "tversky", alpha=0.2, beta=0.8)
    assert float(crit(x, torch.from_numpy(y))) == pytest.approx(want)
    with pytest.raises(ValueError, match="alpha"):
        sm.FocalLoss(alpha=2.0)


def test_inputs_not_mutated(case):
    p, y = case
    p0, y0 = p.copy(), y.copy()
    for name in SURVEY:
        loss_map(p, y, name)
        gradient_map(p, y, name)
    np.testing.assert_array_equal(p, p0)
    np.testing.assert_array_equal(y, y0)


def test_3d_input(case):
    rng = np.random.default_rng(3)
    y = np.zeros((4, 6, 5), np.int64)
    y[1:3, 2:5, 1:4] = 1
    p = np.clip(0.5 * y + 0.5 * rng.random(y.shape), 0.01, 0.99)
    for name in DISTANCE_LOSSES:
        got = loss_map(p, y, name, spacing=(2.0, 1.0, 1.0))
        want = ref_map(name, p, y, spacing=(2.0, 1.0, 1.0))
        np.testing.assert_allclose(got, want, rtol=1e-10)


@pytest.mark.cuda
@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
@pytest.mark.parametrize("name", SURVEY)
def test_cuda_matches_cpu(case, name):
    p, y = case
    want = loss_map(p, y, name, device="cpu")
    got = loss_map(torch.from_numpy(p).cuda(), torch.from_numpy(y).cuda(), name)
    assert got.device.type == "cuda"
    np.testing.assert_allclose(got.cpu().numpy(), want, rtol=1e-9, atol=1e-12)


def test_functional_bce_equivalence_for_ce(case):
    p, y = case
    want = F.binary_cross_entropy(
        torch.from_numpy(p), torch.from_numpy((y > 0).astype(np.float64)), reduction="none"
    )
    np.testing.assert_allclose(loss_map(p, y, "ce"), want.numpy(), rtol=1e-10)
