"""The library losses: values and gradients against MONAI, kornia, smp or float64 formulas.

Conventions used to line the references up (each is stated on the loss too):

- kornia ``lovasz_hinge_loss`` and smp ``LovaszLoss("binary")`` take logits of one image:
  our loss from logits, or from the probabilities whose logits they are.
- Lovász-softmax: smp averages over the classes present (``present_only=True``, the
  default), kornia over all classes (``present_only=False``); both take logits and apply
  the softmax.
- MONAI's generalised Dice: our binary case is MONAI's with the two channels (1 − p, p);
  MONAI forms its class weights in float32, so values agree to about 1e-7 relative.
- smp's Lovász losses compute their Jaccard weights in float32: compared in float32.
- MONAI's clDice, log-Hausdorff, MCC and unified focal losses take one channel (1, 1, ...).
- kornia's Hausdorff-erosion losses take per-class channels: (1 − p, p) gives two equal
  maps, so their mean is the mean of ours.
- smp's MCC adds 1e-5 to each count; MONAI's (ours) adds 1e-5 under the root: close, not
  equal.
"""

from __future__ import annotations

import importlib.util
import math
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_losslens.core import available_losses, gradient_map, loss_map, loss_value
from napari_losslens.core.losses.distance import contour, mean_contour_distance

from .reference import ref_contour, ref_mean_contour_distance

NEW = (
    "lovasz_hinge",
    "lovasz_softmax",
    "generalized_dice",
    "soft_cldice",
    "dice_cldice",
    "hausdorff_er",
    "log_hausdorff_dt",
    "unified_focal",
    "mcc",
    "topk_ce",
    "shape_aware",
    "ssl",
)
SPATIAL_ONLY = ("soft_cldice", "dice_cldice", "hausdorff_er")


def _target(shape=(12, 14)):
    y = np.zeros(shape, dtype=np.int64)
    y[2:7, 3:9] = 1
    y[8:11, 10:13] = 2
    return y


@pytest.fixture
def case():
    rng = np.random.default_rng(3)
    y = _target()
    p = np.clip(0.6 * (y > 0) + 0.4 * rng.random(y.shape), 0.02, 0.98)
    p = np.where(np.abs(p - 0.5) < 0.05, p + 0.1, p)  # no pixel near the 0.5 threshold
    return p, y


@pytest.fixture
def shifted():
    """A prediction that misses part of the object and adds a blob: large errors."""
    y = _target()
    p = np.full(y.shape, 0.05)
    p[3:8, 5:11] = 0.95
    p[0:2, 0:3] = 0.9
    return p, y


def _t(a):
    return torch.as_tensor(np.asarray(a, dtype=np.float64))


def _grad(fn, x):
    """Value and gradient of ``fn`` at ``x`` by autograd (float64)."""
    x = _t(x).requires_grad_(True)
    value = fn(x)
    (g,) = torch.autograd.grad(value, x)
    return float(value.detach()), g.numpy()


def _smp_losses():
    """segmentation_models_pytorch.losses alone (its package __init__ needs timm)."""
    spec = importlib.util.find_spec("segmentation_models_pytorch")
    if spec is None or spec.origin is None:
        pytest.skip("segmentation_models_pytorch is not installed")
    folder = Path(spec.origin).parent / "losses"
    name = "_smp_losses_for_tests"
    if name not in sys.modules:
        sub = importlib.util.spec_from_file_location(
            name, folder / "__init__.py", submodule_search_locations=[str(folder)]
        )
        module = importlib.util.module_from_spec(sub)
        sys.modules[name] = module
        sub.loader.exec_module(module)
    return sys.modules[name]


# --------------------------------------------------------------------------------------
# Registry
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", NEW)
def test_registered_with_formula_reference_and_ranges(name):
    info = available_losses()[name]
    assert info.formula and info.reference and info.description
    for param in info.params:
        if param.kind in ("float", "int", "optional_float"):
            assert param.minimum is not None and param.maximum is not None, param.name
            assert param.minimum <= param.default <= param.maximum
        param.validate(param.default, name)


def test_kinds_and_class_axis():
    info = available_losses()
    assert {n for n in NEW if info[n].kind == "pixel"} == {
        "hausdorff_er",
        "topk_ce",
        "shape_aware",
        "ssl",
    }
    assert {n for n in NEW if info[n].multiclass} == {
        "lovasz_softmax",
        "generalized_dice",
        "topk_ce",
    }


# --------------------------------------------------------------------------------------
# Lovász
# --------------------------------------------------------------------------------------


def test_lovasz_hinge_matches_kornia_and_smp(case):
    kornia = pytest.importorskip("kornia")
    smp = _smp_losses()
    rng = np.random.default_rng(4)
    y = case[1]
    x = rng.normal(0, 2, size=y.shape)
    yt = torch.from_numpy((y > 0).astype(np.int64))

    want_k, grad_k = _grad(lambda v: kornia.losses.lovasz_hinge_loss(v[None, None], yt[None]), x)
    assert loss_value(x, y, "lovasz_hinge", from_logits=True) == pytest.approx(want_k, rel=1e-12)
    np.testing.assert_allclose(
        gradient_map(x, y, "lovasz_hinge", from_logits=True), grad_k, atol=1e-14
    )
    # smp computes its Jaccard weights in float32 (``.float()``): compare in float32
    x32 = x.astype(np.float32)
    crit = smp.LovaszLoss("binary", per_image=False, from_logits=True)
    v = torch.from_numpy(x32).requires_grad_(True)
    want_s = crit(v[None, None], yt[None, None].float())
    want_s.backward()
    assert loss_value(x32, y, "lovasz_hinge", from_logits=True) == pytest.approx(
        float(want_s.detach()), rel=1e-5
    )
    got = gradient_map(x32, y, "lovasz_hinge", from_logits=True)
    np.testing.assert_allclose(got, v.grad.numpy(), rtol=1e-4, atol=1e-7)
    # probabilities: the loss of their logits
    p = 1 / (1 + np.exp(-x))
    assert loss_value(p, y, "lovasz_hinge") == pytest.approx(want_k, rel=1e-9)


def test_lovasz_hinge_map_is_the_gradient_wrt_p(case):
    kornia = pytest.importorskip("kornia")
    p, y = case
    yt = torch.from_numpy((y > 0).astype(np.int64))

    def of_p(v):
        return kornia.losses.lovasz_hinge_loss(torch.logit(v)[None, None], yt[None])

    _, want = _grad(of_p, p)
    np.testing.assert_allclose(loss_map(p, y, "lovasz_hinge"), want, rtol=1e-9, atol=1e-14)


def _multiclass_case(n_classes=4, absent=3):
    rng = np.random.default_rng(5)
    t = rng.integers(0, n_classes, size=(10, 11))
    t[t == absent] = 0  # one class absent from the target
    x = rng.normal(0, 2, size=(n_classes, *t.shape))
    return x, t


def test_lovasz_softmax_matches_smp_present_classes():
    smp = _smp_losses()
    x, t = _multiclass_case()
    tt = torch.from_numpy(t)
    crit = smp.LovaszLoss("multiclass", per_image=False, from_logits=True)
    x32 = x.astype(np.float32)  # smp's Jaccard weights are float32
    v = torch.from_numpy(x32).requires_grad_(True)
    want = crit(v[None], tt[None])
    want.backward()
    got = loss_value(x32, t, "lovasz_softmax", from_logits=True)
    assert got == pytest.approx(float(want.detach()), rel=1e-5)
    got = gradient_map(x32, t, "lovasz_softmax", from_logits=True)
    np.testing.assert_allclose(got, v.grad.numpy(), rtol=1e-4, atol=1e-7)


def test_lovasz_softmax_matches_kornia_all_classes():
    kornia = pytest.importorskip("kornia")
    x, t = _multiclass_case()
    tt = torch.from_numpy(t)
    want, grad = _grad(lambda v: kornia.losses.lovasz_softmax_loss(v[None], tt[None]), x)
    kw = {"from_logits": True, "present_only": False}
    assert loss_value(x, t, "lovasz_softmax", **kw) == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(gradient_map(x, t, "lovasz_softmax", **kw), grad, atol=1e-14)
    # with an absent class the two conventions differ
    assert loss_value(x, t, "lovasz_softmax", from_logits=True) != pytest.approx(want)


def test_lovasz_softmax_binary_is_two_classes(case):
    smp = _smp_losses()
    p, y = case
    yt = torch.from_numpy((y > 0).astype(np.int64))

    p32 = p.astype(np.float32)
    v = torch.from_numpy(p32).requires_grad_(True)
    want = smp.lovasz._lovasz_softmax(torch.stack([1 - v, v])[None], yt[None], per_image=False)
    want.backward()
    assert loss_value(p32, y, "lovasz_softmax") == pytest.approx(float(want.detach()), rel=1e-5)
    got = loss_map(p32, y, "lovasz_softmax")
    np.testing.assert_allclose(got, v.grad.numpy(), rtol=1e-4, atol=1e-7)


# --------------------------------------------------------------------------------------
# Generalised Dice
# --------------------------------------------------------------------------------------


def test_generalized_dice_matches_monai_multiclass():
    losses = pytest.importorskip("monai.losses")
    x, t = _multiclass_case()
    crit = losses.GeneralizedDiceLoss(softmax=True, to_onehot_y=True)
    tt = torch.from_numpy(t)[None, None]
    want, grad = _grad(lambda v: crit(v[None], tt), x)
    # MONAI forms its class weights in float32 (``ground_o.float()``)
    got = loss_value(x, t, "generalized_dice", from_logits=True)
    assert got == pytest.approx(want, rel=1e-6)
    got = gradient_map(x, t, "generalized_dice", from_logits=True)
    np.testing.assert_allclose(got, grad, rtol=1e-5, atol=1e-12)


def test_generalized_dice_binary_matches_monai_two_channels(case):
    losses = pytest.importorskip("monai.losses")
    p, y = case
    yb = _t(y > 0)
    target = torch.stack([1 - yb, yb])[None]
    crit = losses.GeneralizedDiceLoss(smooth_nr=1e-3, smooth_dr=1e-3)
    want, grad = _grad(lambda v: crit(torch.stack([1 - v, v])[None], target), p)
    kw = {"smooth_nr": 1e-3, "smooth_dr": 1e-3}
    assert loss_value(p, y, "generalized_dice", **kw) == pytest.approx(want, rel=1e-6)
    np.testing.assert_allclose(loss_map(p, y, "generalized_dice", **kw), grad, rtol=1e-5)


# --------------------------------------------------------------------------------------
# clDice
# --------------------------------------------------------------------------------------


def _tubes(shape):
    y = np.zeros(shape, dtype=np.int64)
    y[..., 3:5, 1:-1] = 1  # a horizontal tube
    y[..., 1:-1, 8:10] = 1  # a vertical one
    return y


@pytest.mark.parametrize("shape", [(14, 16), (5, 14, 16)])
@pytest.mark.parametrize(
    ("name", "kw"),
    [
        ("soft_cldice", {}),
        ("soft_cldice", {"iterations": 5, "smooth": 0.5}),
        ("dice_cldice", {}),
        ("dice_cldice", {"iterations": 2, "alpha": 0.8}),
    ],
)
def test_cldice_matches_monai(name, kw, shape):
    losses = pytest.importorskip("monai.losses")
    y = _tubes(shape)
    rng = np.random.default_rng(6)
    p = np.clip(0.7 * y + 0.3 * rng.random(shape), 0.0, 1.0)
    args = {"iter_": kw.get("iterations", 3), "smooth_nr": kw.get("smooth", 1.0)}
    args["smooth_dr"] = args["smooth_nr"]
    if name == "soft_cldice":
        crit = losses.SoftclDiceLoss(**args)
    else:
        crit = losses.SoftDiceclDiceLoss(alpha=kw.get("alpha", 0.5), **args)
    target = _t(y)[None, None]
    want, grad = _grad(lambda v: crit(v[None, None], target), p)
    assert loss_value(p, y, name, **kw) == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(loss_map(p, y, name, **kw), grad, rtol=1e-8, atol=1e-15)


def test_cldice_of_the_target_itself_is_zero_up_to_the_harmonic_eps():
    y = _tubes((14, 16))
    assert loss_value(y.astype(float), y, "soft_cldice") == pytest.approx(0.0, abs=1e-4)


@pytest.mark.parametrize("name", ["soft_cldice", "dice_cldice"])
def test_cldice_empty_skeleton_with_smooth_below_float32_is_s_over_s_not_nan(name):
    """p = 1 everywhere has an empty soft skeleton: T_prec = (0 + s)/(0 + s) = 1 for every
    s > 0, also when s underflows to 0 in float32 (0/0 before the fix)."""
    y = _tubes((14, 16))
    smooth = 1e-300  # 0 in float32, kept in float64
    want = loss_value(np.ones(y.shape), y, name, smooth=smooth)  # float64: s/s = 1 exactly
    x = torch.ones(y.shape, dtype=torch.float32, requires_grad=True)
    got = loss_value(x, torch.from_numpy(y), name, smooth=smooth)
    got.backward()
    assert math.isfinite(want)
    assert float(got.detach()) == pytest.approx(want, abs=1e-6)  # float32 of 1 − ratio
    assert torch.isfinite(x.grad).all()
    if name == "soft_cldice":  # T_prec = T_sens = 1: only the harmonic mean's 1e-4 is left
        assert want == pytest.approx(1.0 - 2.0 / (2.0 + 1e-4), rel=1e-12)


# --------------------------------------------------------------------------------------
# Hausdorff losses
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("kw", [{}, {"alpha": 1.0, "k": 4}])
def test_hausdorff_er_matches_kornia_2d(shifted, kw):
    kornia = pytest.importorskip("kornia")
    p, y = shifted
    crit = kornia.losses.HausdorffERLoss(alpha=kw.get("alpha", 2.0), k=kw.get("k", 10))
    tt = torch.from_numpy((y > 0).astype(np.int64))[None, None]
    want, grad = _grad(lambda v: crit(torch.stack([1 - v, v])[None], tt), p)
    assert want > 0
    assert loss_value(p, y, "hausdorff_er", **kw) == pytest.approx(want, rel=1e-10)
    # the map is per pixel: its mean is the loss
    assert loss_map(p, y, "hausdorff_er", **kw).mean() == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(
        gradient_map(p, y, "hausdorff_er", **kw), grad, rtol=1e-8, atol=1e-14
    )


def test_hausdorff_er_matches_kornia_3d():
    kornia = pytest.importorskip("kornia")
    y = np.zeros((6, 9, 10), dtype=np.int64)
    y[1:5, 2:7, 2:8] = 1
    p = np.full(y.shape, 0.1)
    p[2:6, 3:9, 1:6] = 0.9
    crit = kornia.losses.HausdorffERLoss3D()
    tt = torch.from_numpy(y)[None, None]
    want, grad = _grad(lambda v: crit(torch.stack([1 - v, v])[None], tt), p)
    assert want > 0
    assert loss_value(p, y, "hausdorff_er") == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(gradient_map(p, y, "hausdorff_er"), grad, rtol=1e-8, atol=1e-14)


@pytest.mark.parametrize("alpha", [2.0, 1.0])
def test_log_hausdorff_dt_matches_monai(shifted, alpha):
    losses = pytest.importorskip("monai.losses")
    p, y = shifted
    crit = losses.LogHausdorffDTLoss(alpha=alpha, include_background=True)
    target = _t(y > 0)[None, None]
    want, grad = _grad(lambda v: crit(v[None, None], target), p)
    assert loss_value(p, y, "log_hausdorff_dt", alpha=alpha) == pytest.approx(want, rel=1e-6)
    # MONAI casts its distance maps to float32: gradients agree to float32 precision
    got = loss_map(p, y, "log_hausdorff_dt", alpha=alpha)
    np.testing.assert_allclose(got, grad, rtol=1e-6, atol=1e-12)
    # and it is log(1 + hausdorff_dt)
    want64 = math.log1p(loss_value(p, y, "hausdorff_dt", alpha=alpha))
    assert loss_value(p, y, "log_hausdorff_dt", alpha=alpha) == pytest.approx(want64, rel=1e-12)


# --------------------------------------------------------------------------------------
# Unified focal, MCC
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "kw", [{}, {"weight": 0.3, "delta": 0.6, "gamma": 0.2}, {"weight": 1.0, "gamma": 0.0}]
)
def test_unified_focal_matches_monai(case, kw):
    losses = pytest.importorskip("monai.losses")
    p, y = case
    args = {k: kw.get(k, d) for k, d in (("weight", 0.5), ("delta", 0.7), ("gamma", 0.5))}
    crit = losses.AsymmetricUnifiedFocalLoss(**args)
    target = _t(y > 0)[None, None]
    want, grad = _grad(lambda v: crit(v[None, None], target), p)
    assert loss_value(p, y, "unified_focal", **kw) == pytest.approx(want, rel=1e-10)
    np.testing.assert_allclose(loss_map(p, y, "unified_focal", **kw), grad, rtol=1e-8)


def test_mcc_matches_monai_and_is_close_to_smp(case):
    losses = pytest.importorskip("monai.losses")
    smp = _smp_losses()
    p, y = case
    target = _t(y > 0)[None, None]
    want, grad = _grad(lambda v: losses.MCCLoss()(v[None, None], target), p)
    assert loss_value(p, y, "mcc") == pytest.approx(want, rel=1e-12)
    np.testing.assert_allclose(loss_map(p, y, "mcc"), grad, rtol=1e-9)
    # smp adds 1e-5 to each of TP, TN, FP, FN: the same loss to about 1e-6
    want_smp = float(smp.MCCLoss()(_t(p)[None, None], target))
    assert loss_value(p, y, "mcc") == pytest.approx(want_smp, abs=1e-6)


def test_mcc_is_zero_for_a_perfect_prediction():
    y = _target()
    assert loss_value((y > 0).astype(float), y, "mcc") == 0.0


# --------------------------------------------------------------------------------------
# Top-k cross-entropy, shape-aware, SSL: float64 formulas
# --------------------------------------------------------------------------------------


def _bce(p, y):
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


@pytest.mark.parametrize("k", [10.0, 33.3, 100.0, 0.1])
def test_topk_ce_matches_formula(case, k):
    p, y = case
    ce = _bce(p, (y > 0).astype(float))
    n = ce.size
    kk = max(1, math.floor(n * k / 100))
    want = np.sort(ce.ravel())[::-1][:kk].mean()
    assert loss_value(p, y, "topk_ce", k=k) == pytest.approx(want, rel=1e-12)
    m = loss_map(p, y, "topk_ce", k=k)
    kept = m > 0
    assert kept.sum() == kk
    np.testing.assert_allclose(m[kept], ce[kept] * n / kk, rtol=1e-12)
    assert ce[kept].min() >= ce[~kept].max(initial=-1.0)  # the hardest are kept
    assert m.mean() == pytest.approx(want, rel=1e-12)


def test_topk_ce_multiclass_matches_torch_cross_entropy():
    x, t = _multiclass_case()
    ce = F.cross_entropy(_t(x)[None], torch.from_numpy(t)[None], reduction="none")[0]
    kk = math.floor(ce.numel() * 20 / 100)
    want = torch.topk(ce.reshape(-1), kk).values.mean()
    assert loss_value(x, t, "topk_ce", from_logits=True, k=20) == pytest.approx(float(want))


def test_topk_ce_with_mask_counts_masked_pixels_only(case):
    p, y = case
    mask = np.zeros(y.shape, bool)
    mask[:, :7] = True
    ce = _bce(p, (y > 0).astype(float))[mask]
    kk = math.floor(ce.size * 25 / 100)
    want = np.sort(ce)[::-1][:kk].mean()
    assert loss_value(p, y, "topk_ce", k=25, mask=mask) == pytest.approx(want, rel=1e-12)
    assert not loss_map(p, y, "topk_ce", k=25, mask=mask)[~mask].any()


@pytest.mark.parametrize("spacing", [(1.0, 1.0), (2.0, 0.5)])
def test_shape_aware_matches_formula(shifted, spacing):
    p, y = shifted
    e = ref_mean_contour_distance(p > 0.5, y > 0, spacing)
    assert e > 1.0
    assert mean_contour_distance(p > 0.5, y > 0, spacing) == pytest.approx(e, rel=1e-12)
    want = (1 + e) * _bce(p, (y > 0).astype(float))
    np.testing.assert_allclose(loss_map(p, y, "shape_aware", spacing=spacing), want, rtol=1e-12)
    assert loss_value(p, y, "shape_aware", spacing=spacing) == pytest.approx(want.mean())


def test_contour_is_the_inner_boundary_and_not_the_image_edge():
    m = np.zeros((6, 7), bool)
    m[1:5, 0:4] = True
    np.testing.assert_array_equal(contour(m), ref_contour(m))
    assert not contour(np.ones((4, 4), bool)).any()


def _ref_local_standardized(x, sigma, c):
    r = max(1, math.ceil(3 * sigma))
    out = np.zeros_like(x)
    for i, j in np.ndindex(x.shape):
        w_sum = m1 = m2 = 0.0
        for di in range(-r, r + 1):
            for dj in range(-r, r + 1):
                a, b = i + di, j + dj
                if 0 <= a < x.shape[0] and 0 <= b < x.shape[1]:
                    w = math.exp(-(di * di + dj * dj) / (2 * sigma**2))
                    w_sum += w
                    m1 += w * x[a, b]
                    m2 += w * x[a, b] ** 2
        mu = m1 / w_sum
        sd = math.sqrt(max(0.0, m2 / w_sum - mu * mu))
        out[i, j] = (x[i, j] - mu + c) / (sd + c)
    return out


@pytest.mark.parametrize("kw", [{}, {"beta": 0.5, "sigma": 1.0, "c": 0.1}])
def test_ssl_matches_formula(case, kw):
    p, y = case
    beta, sigma, c = kw.get("beta", 0.1), kw.get("sigma", 1.5), kw.get("c", 0.01)
    yf = (y > 0).astype(float)
    e = np.abs(_ref_local_standardized(yf, sigma, c) - _ref_local_standardized(p, sigma, c))
    f = e > beta * e.max()
    want = (e * f * _bce(p, yf)).sum() / f.sum()
    assert loss_value(p, y, "ssl", **kw) == pytest.approx(want, rel=1e-10)
    m = loss_map(p, y, "ssl", **kw)
    np.testing.assert_allclose(m, e * f * _bce(p, yf) * y.size / f.sum(), rtol=1e-9, atol=1e-15)
    # the weights are constants: the gradient is that of the weighted cross-entropy
    w = e * f * y.size / f.sum()
    grad = w * (p - yf) / (p * (1 - p)) / y.size
    np.testing.assert_allclose(gradient_map(p, y, "ssl", **kw), grad, rtol=1e-9, atol=1e-15)


# --------------------------------------------------------------------------------------
# Edges: p in {0, 1}, extreme logits, empty and full targets; errors; inputs kept
# --------------------------------------------------------------------------------------


def _edge_inputs():
    y = _target()
    hard = np.zeros(y.shape)
    hard[4:10, 5:12] = 1.0  # p exactly 0 and 1, partly wrong
    logits = np.where(hard > 0, 1e4, -1e4)
    return y, hard, logits


@pytest.mark.parametrize("name", NEW)
def test_finite_values_and_gradients_at_the_edges(name):
    y, hard, logits = _edge_inputs()
    empty, full = np.zeros_like(y), np.ones_like(y)
    for target in (y, empty, full):
        for pred, from_logits in ((hard, False), (logits, True), (1.0 - hard, False)):
            v = loss_value(pred, target, name, from_logits=from_logits)
            assert math.isfinite(v), (name, from_logits)
            for out in (
                loss_map(pred, target, name, from_logits=from_logits),
                gradient_map(pred, target, name, from_logits=from_logits),
            ):
                assert np.isfinite(out).all(), (name, from_logits)


@pytest.mark.parametrize("name", NEW)
def test_float32_in_float32_out_and_inputs_not_mutated(case, name):
    p, y = case
    p32 = p.astype(np.float32)
    p_copy, y_copy = p32.copy(), y.copy()
    out = loss_map(p32, y, name)
    assert out.dtype == np.float32 and out.shape == y.shape
    np.testing.assert_array_equal(p32, p_copy)
    np.testing.assert_array_equal(y, y_copy)
    assert loss_value(p32, y, name) == pytest.approx(loss_value(p, y, name), rel=1e-4, abs=1e-6)


@pytest.mark.parametrize("name", NEW)
def test_torch_autograd_reaches_the_logits(case, name):
    p, y = case
    x = torch.logit(_t(p)).requires_grad_(True)
    value = loss_value(x, torch.from_numpy(y), name, from_logits=True)
    value.backward()
    assert x.grad is not None and torch.isfinite(x.grad).all()
    if name != "hausdorff_er":  # 0 where every error is below kornia's 0.5 threshold
        assert x.grad.abs().sum() > 0


@pytest.mark.parametrize("name", SPATIAL_ONLY)
def test_spatial_losses_refuse_1d(name):
    with pytest.raises(ValueError, match=rf"loss '{name}' needs a 2D or 3D image.*got 1D"):
        loss_value(np.array([0.2, 0.8, 0.4]), np.array([0, 1, 1]), name)


@pytest.mark.parametrize(
    ("name", "kw", "match"),
    [
        ("topk_ce", {"k": 0.0}, r"parameter 'k' of loss 'topk_ce' must be > 0.0"),
        ("topk_ce", {"k": 101}, r"must be <= 100.0"),
        ("soft_cldice", {"iterations": -1}, r"'iterations' of loss 'soft_cldice' must be >= 0"),
        ("ssl", {"sigma": 0}, r"'sigma' of loss 'ssl' must be > 0.0"),
        ("unified_focal", {"delta": 1.5}, r"'delta' of loss 'unified_focal' must be <= 1.0"),
        ("mcc", {"smooth_dr": 1e-13}, r"'smooth_dr' of loss 'mcc' must be >= 1e-12, got 1e-13"),
    ],
)
def test_parameters_out_of_range(case, name, kw, match):
    p, y = case
    with pytest.raises(ValueError, match=match):
        loss_value(p, y, name, **kw)


def test_binary_only_losses_refuse_a_class_axis():
    x, t = _multiclass_case()
    with pytest.raises(ValueError, match=r"loss 'mcc' does not accept a class axis"):
        loss_value(x, t, "mcc", from_logits=True)
