"""Multi-class input: softmax cross-entropy and per-class losses with macro/micro/None."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from napari_losslens.core import (
    CrossEntropyLoss,
    FocalLoss,
    JaccardLoss,
    TverskyLoss,
    available_losses,
    class_losses,
    gradient_map,
    loss_map,
    loss_value,
    multiclass_losses,
)

C = 3
PER_CLASS = ("dice", "jaccard", "tversky", "focal")


@pytest.fixture
def case():
    rng = np.random.default_rng(7)
    target = np.zeros((10, 11), np.int64)
    target[1:6, 2:8] = 1
    target[6:9, 5:10] = 2
    logits = rng.normal(0, 1.5, size=(C, *target.shape))
    logits[target, np.arange(10)[:, None], np.arange(11)] += 1.0  # a mostly right prediction
    return logits, target


def _softmax(x):
    e = np.exp(x - x.max(0))
    return e / e.sum(0)


def _onehot(t, n=C):
    return np.stack([(t == c).astype(float) for c in range(n)])


# --------------------------------------------------------------------------------------
# float64 references
# --------------------------------------------------------------------------------------


def ref_binary(name, p, y, **kw):
    """The binary loss of one class (p, y flat or not), float64."""
    s = kw.get("smooth", 1e-6)
    tp, fp, fn = (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()
    if name == "dice":
        g = kw.get("gamma", 2.0)
        return 1 - (2 * tp + s) / ((p**g).sum() + (y**g).sum() + s)
    if name == "jaccard":
        return 1 - (tp + s) / (tp + fp + fn + s)
    if name == "tversky":
        a, b = kw.get("alpha", 0.5), kw.get("beta", 0.5)
        return 1 - (tp + s) / (tp + a * fp + b * fn + s)
    if name == "focal":
        return ref_focal_map(p, y, **kw).mean()
    raise KeyError(name)


def ref_focal_map(p, y, alpha=0.25, gamma=2.0):
    return -alpha * (1 - p) ** gamma * y * np.log(p) - (1 - alpha) * p**gamma * (1 - y) * np.log(
        1 - p
    )


def ref_micro(name, p, t, **kw):
    """TP, FP, FN (or the Dice sums) pooled over all classes."""
    return ref_binary(name, p, _onehot(t, p.shape[0]), **kw)


# --------------------------------------------------------------------------------------
# Cross-entropy
# --------------------------------------------------------------------------------------


def test_registry_marks_multiclass_losses():
    info = available_losses()
    native = {"ce", "lovasz_softmax", "generalized_dice", "topk_ce"}
    assert set(multiclass_losses()) == {*native, *PER_CLASS}
    for name in ("ce", "jaccard", "tversky", "focal"):
        assert info[name].multiclass


def test_ce_matches_torch_cross_entropy(case):
    x, t = case
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    want = F.cross_entropy(xt[None], tt[None], reduction="none")[0]
    np.testing.assert_allclose(loss_map(x, t, "ce", from_logits=True), want.numpy(), rtol=1e-12)
    assert loss_value(x, t, "ce", from_logits=True) == pytest.approx(float(want.mean()))
    # probabilities give the same as logits
    np.testing.assert_allclose(loss_map(_softmax(x), t, "ce"), want.numpy(), rtol=1e-10)


def test_ce_class_weights_match_torch(case):
    x, t = case
    w = [0.2, 1.0, 3.0]
    xt, tt = torch.from_numpy(x)[None], torch.from_numpy(t)[None]
    wt = torch.tensor(w, dtype=torch.float64)
    want = F.cross_entropy(xt, tt, weight=wt, reduction="none")[0].numpy()
    got = loss_map(x, t, "ce", from_logits=True, class_weights=w)
    np.testing.assert_allclose(got, want, rtol=1e-12)
    # the scalar is the mean over pixels (torch's weighted "mean" divides by Σw instead)
    total = float(F.cross_entropy(xt, tt, weight=wt, reduction="sum"))
    value = loss_value(x, t, "ce", from_logits=True, class_weights=w)
    assert value == pytest.approx(total / t.size)


def test_ce_balanced_weights(case):
    x, t = case
    counts = np.bincount(t.ravel(), minlength=C)
    w = t.size / (C * counts)
    want = w[t] * loss_map(x, t, "ce", from_logits=True)
    got = loss_map(x, t, "ce", from_logits=True, class_weights="balanced")
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_ce_binary_is_bce():
    rng = np.random.default_rng(0)
    p = rng.uniform(0.05, 0.95, (6, 7))
    y = rng.integers(0, 2, (6, 7))
    np.testing.assert_allclose(loss_map(p, y, "ce"), loss_map(p, y, "bce"), rtol=1e-12)
    got = loss_map(p, y, "ce", class_weights=(0.5, 2.0))
    np.testing.assert_allclose(got, np.where(y > 0, 2.0, 0.5) * loss_map(p, y, "bce"))


@pytest.mark.parametrize(
    ("weights", "error", "match"),
    [
        ([1.0, 2.0], ValueError, "one weight per class"),
        ([1.0, -2.0, 1.0], ValueError, "finite and >= 0"),
        ("inverse", ValueError, "balanced"),
        ([1.0, "a", 2.0], TypeError, "sequence of numbers"),
    ],
)
def test_ce_bad_class_weights(case, weights, error, match):
    x, t = case
    with pytest.raises(error, match=match):
        loss_value(x, t, "ce", from_logits=True, class_weights=weights)


# --------------------------------------------------------------------------------------
# Per-class losses
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize("name", PER_CLASS)
@pytest.mark.parametrize("from_logits", [True, False])
def test_per_class_macro_micro_none_match_reference(case, name, from_logits):
    x, t = case
    p = _softmax(x)
    inp = x if from_logits else p
    per_class = np.array([ref_binary(name, p[c], (t == c).astype(float)) for c in range(C)])
    np.testing.assert_allclose(
        class_losses(inp, t, name, from_logits=from_logits), per_class, rtol=1e-9
    )
    macro = loss_value(inp, t, name, from_logits=from_logits)
    assert macro == pytest.approx(per_class.mean(), rel=1e-9)
    none = loss_value(inp, t, name, from_logits=from_logits, average=None)
    assert none == pytest.approx(per_class.sum(), rel=1e-9)
    micro = loss_value(inp, t, name, from_logits=from_logits, average="micro")
    want = per_class.mean() if name == "focal" else ref_micro(name, p, t)
    assert micro == pytest.approx(want, rel=1e-9)


def test_focal_maps(case):
    x, t = case
    p = _softmax(x)
    stack = np.stack([ref_focal_map(p[c], (t == c).astype(float)) for c in range(C)])
    got = loss_map(x, t, "focal", from_logits=True, average=None)
    assert got.shape == (C, *t.shape)
    np.testing.assert_allclose(got, stack, rtol=1e-9)
    np.testing.assert_allclose(loss_map(x, t, "focal", from_logits=True), stack.mean(0), rtol=1e-9)


def test_per_class_focal_matches_kornia_on_class_logits(case):
    kornia = pytest.importorskip("kornia")
    x, t = case
    p = _softmax(x)
    got = loss_map(x, t, "focal", from_logits=True, average=None)
    for c in range(C):
        logit = torch.from_numpy(np.log(p[c]) - np.log1p(-p[c]))
        want = kornia.losses.binary_focal_loss_with_logits(
            logit, torch.from_numpy((t == c).astype(np.float64)), reduction="none"
        )
        np.testing.assert_allclose(got[c], want.numpy(), rtol=1e-8)


def _monai(x, t):
    # a float64 one-hot target (MONAI's to_onehot_y makes a float32 one, ~1e-8 off)
    return torch.from_numpy(x)[None], torch.from_numpy(_onehot(t))[None]


def test_dice_and_tversky_match_monai(case):
    losses = pytest.importorskip("monai.losses")
    x, t = case
    xi, ti = _monai(x, t)
    s = 1e-5
    dice = losses.DiceLoss(softmax=True, squared_pred=True, smooth_nr=s, smooth_dr=s)
    assert loss_value(x, t, "dice", from_logits=True, smooth=s) == pytest.approx(
        float(dice(xi, ti)), rel=1e-10
    )
    for a, b in [(0.5, 0.5), (0.3, 0.7)]:
        tv = losses.TverskyLoss(softmax=True, alpha=a, beta=b, smooth_nr=s, smooth_dr=s)
        got = loss_value(x, t, "tversky", from_logits=True, alpha=a, beta=b, smooth=s)
        assert got == pytest.approx(float(tv(xi, ti)), rel=1e-10)
        per_class = losses.TverskyLoss(
            softmax=True,
            alpha=a,
            beta=b,
            smooth_nr=s,
            smooth_dr=s,
            reduction="none",
        )(xi, ti).flatten()
        np.testing.assert_allclose(
            class_losses(x, t, "tversky", from_logits=True, alpha=a, beta=b, smooth=s),
            per_class.numpy(),
            rtol=1e-10,
        )


def test_jaccard_matches_monai(case):
    losses = pytest.importorskip("monai.losses")
    x, t = case
    s = 1e-4
    want = losses.DiceLoss(softmax=True, jaccard=True, smooth_nr=s, smooth_dr=s)(*_monai(x, t))
    got = loss_value(x, t, "jaccard", from_logits=True, smooth=s / 2)
    assert got == pytest.approx(float(want), rel=1e-10)


# --------------------------------------------------------------------------------------
# Gradients and maps
# --------------------------------------------------------------------------------------

GRAD_CASES = [("ce", {})] + [
    (n, {"average": a}) for n in PER_CLASS for a in ("macro", "micro", None)
]


@pytest.mark.parametrize(("name", "kw"), GRAD_CASES)
@pytest.mark.parametrize("from_logits", [True, False])
def test_gradcheck_and_gradient_map(case, name, kw, from_logits):
    x, t = case
    x, t = x[:, 4:8, 4:8], t[4:8, 4:8]  # small, with all three classes
    assert set(np.unique(t)) == {0, 1, 2}
    inp = x if from_logits else _softmax(x)
    xt = torch.from_numpy(inp.copy()).requires_grad_(True)
    tt = torch.from_numpy(t)

    def f(v):
        return loss_value(v, tt, name, from_logits=from_logits, **kw)

    if from_logits:  # one gradcheck per loss is enough; both inputs are compared below
        assert torch.autograd.gradcheck(f, (xt,), eps=1e-6, atol=1e-6)
    (want,) = torch.autograd.grad(f(xt), xt)
    got = gradient_map(inp, t, name, from_logits=from_logits, **kw)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-13)


@pytest.mark.parametrize("name", ["dice", "jaccard", "tversky"])
@pytest.mark.parametrize("average", ["macro", "micro", None])
def test_region_loss_map_is_gradient_wrt_probabilities(case, name, average):
    x, t = case
    p = torch.from_numpy(_softmax(x)).requires_grad_(True)
    (want,) = torch.autograd.grad(loss_value(p, torch.from_numpy(t), name, average=average), p)
    got = loss_map(x, t, name, from_logits=True, average=average)
    assert got.shape == x.shape
    np.testing.assert_allclose(got, want.numpy(), rtol=1e-9, atol=1e-14)


def test_none_map_stack_is_per_class_gradient(case):
    x, t = case
    p = _softmax(x)
    got = loss_map(p, t, "jaccard", average=None)
    for c in range(C):
        np.testing.assert_allclose(got[c], loss_map(p[c], t == c, "jaccard"), rtol=1e-10)


def test_torch_in_torch_out_with_autograd(case):
    x, t = case
    xt = torch.from_numpy(x).requires_grad_(True)
    v = loss_value(xt, torch.from_numpy(t), "dice", from_logits=True)
    assert v.ndim == 0 and v.requires_grad
    v.backward()
    assert xt.grad is not None and torch.isfinite(xt.grad).all()


# --------------------------------------------------------------------------------------
# Masks
# --------------------------------------------------------------------------------------


@pytest.mark.parametrize(("name", "kw"), GRAD_CASES)
def test_mask_equals_loss_on_counted_pixels(case, name, kw):
    x, t = case
    m = np.ones(t.shape, bool)
    m[:, :4] = False
    t_ignored = np.where(m, t, 255)  # ignored pixels may hold any id
    got = loss_value(x, t_ignored, name, from_logits=True, mask=m, **kw)
    want = loss_value(x[:, m], t[m], name, from_logits=True, **kw)
    assert got == pytest.approx(want, rel=1e-10)
    out = loss_map(x, t_ignored, name, from_logits=True, mask=m, **kw)
    assert (out[..., ~m] == 0).all()
    g = gradient_map(x, t_ignored, name, from_logits=True, mask=m, **kw)
    assert (g[:, ~m] == 0).all() and np.isfinite(g).all()


def test_all_masked_is_an_error(case):
    x, t = case
    with pytest.raises(ValueError, match="mask excludes every pixel"):
        loss_value(x, t, "ce", from_logits=True, mask=np.zeros(t.shape, bool))


# --------------------------------------------------------------------------------------
# Edge cases: never NaN or inf
# --------------------------------------------------------------------------------------


def _edges():
    t = np.zeros((5, 6), np.int64)
    t[1:3, 1:4] = 1
    onehot = _onehot(t)
    yield pytest.param(onehot, t, False, id="probs-exact")
    yield pytest.param(1.0 - onehot, t, False, id="probs-wrong")
    yield pytest.param(np.full((C, 5, 6), 1 / C), t, False, id="probs-uniform")
    yield pytest.param(100.0 * onehot, t, True, id="logits-confident")
    yield pytest.param(-100.0 * onehot, t, True, id="logits-confident-wrong")
    yield pytest.param(np.zeros((C, 5, 6)), np.zeros((5, 6), np.int64), True, id="one-class")


@pytest.mark.parametrize(("inp", "t", "from_logits"), list(_edges()))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_edge_cases_finite(inp, t, from_logits, dtype):
    inp = inp.astype(dtype)
    for name, kw in GRAD_CASES:
        v = loss_value(inp, t, name, from_logits=from_logits, **kw)
        m = loss_map(inp, t, name, from_logits=from_logits, **kw)
        g = gradient_map(inp, t, name, from_logits=from_logits, **kw)
        assert math.isfinite(v) and v >= -1e-6, (name, kw)
        assert np.isfinite(m).all() and np.isfinite(g).all(), (name, kw)
        assert m.dtype == dtype


# --------------------------------------------------------------------------------------
# Errors
# --------------------------------------------------------------------------------------


def test_class_id_out_of_range(case):
    x, t = case
    with pytest.raises(ValueError, match=r"class id 3 but the prediction has 3 classes"):
        loss_value(x, np.where(t == 2, 3, t), "ce", from_logits=True)


def test_shape_errors(case):
    x, t = case
    with pytest.raises(ValueError, match="shape after its class axis"):
        loss_value(x[:, :, :-1], t, "dice", from_logits=True)
    with pytest.raises(ValueError, match="same shape"):
        loss_value(x[None], t, "dice", from_logits=True)
    with pytest.raises(ValueError, match="at least 2 classes"):
        loss_value(x[:1], np.zeros_like(t), "dice", from_logits=True)


def test_loss_without_class_axis_support(case):
    x, t = case
    with pytest.raises(ValueError, match="does not accept a class axis"):
        loss_value(x, t, "boundary", from_logits=True)


def test_bad_average(case):
    x, t = case
    with pytest.raises(ValueError, match="average must be"):
        loss_value(x, t, "dice", from_logits=True, average="weighted")
    with pytest.raises(TypeError, match="unknown parameter"):
        loss_value(x, t, "ce", from_logits=True, average="macro")
    with pytest.raises(TypeError, match="unknown parameter"):
        loss_value(x[0], t > 0, "dice", from_logits=True, average="macro")
    with pytest.raises(ValueError, match="class axis"):
        class_losses(x[0], t > 0, "dice", from_logits=True)
    with pytest.raises(ValueError, match="per-class losses"):
        class_losses(x, t, "ce", from_logits=True)


# --------------------------------------------------------------------------------------
# Modules
# --------------------------------------------------------------------------------------


def test_modules_with_average(case):
    x, t = case
    xt, tt = torch.from_numpy(x), torch.from_numpy(t)
    for cls, name in [(FocalLoss, "focal"), (JaccardLoss, "jaccard"), (TverskyLoss, "tversky")]:
        for average in ("macro", "micro", None):
            got = cls(from_logits=True, average=average)(xt, tt)
            want = loss_value(xt, tt, name, from_logits=True, average=average)
            torch.testing.assert_close(got, want)
        # a binary prediction ignores ``average``
        got = cls(from_logits=True, average=None)(xt[1], tt == 1)
        torch.testing.assert_close(got, loss_value(xt[1], tt == 1, name, from_logits=True))
    with pytest.raises(ValueError, match="average must be"):
        JaccardLoss(average="samples")
    crit = CrossEntropyLoss(from_logits=True, class_weights=[1.0, 2.0, 0.5])
    want = loss_value(xt, tt, "ce", from_logits=True, class_weights=[1.0, 2.0, 0.5])
    torch.testing.assert_close(crit(xt, tt), want)
