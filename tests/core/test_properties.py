"""Property-based tests over the whole public core API (hypothesis).

Random shapes (1 to 64 per axis, 2D and 3D), label dtypes from bool to int64 and floats that
hold integers, sparse and huge ids, spacings and parameters at their limits. The only
failures allowed are the documented errors; outputs are never NaN (nor inf, except the
documented ``inf`` distances); inputs are byte-for-byte unchanged.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from napari_losslens.core import (
    available_losses,
    cell_distances,
    class_weight_map,
    gradient_map,
    loss_map,
    loss_value,
    separate_touching_cells,
    unet_weight_map,
)

SETTINGS = settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.too_slow])
LABEL_DTYPES = [
    np.bool_,
    np.uint8,
    np.uint16,
    np.uint32,
    np.uint64,
    np.int8,
    np.int16,
    np.int32,
    np.int64,
    np.float32,
    np.float64,
]


@st.composite
def shapes(draw):
    if draw(st.booleans()):
        return tuple(draw(st.integers(1, 64)) for _ in range(2))
    # 3D: keep the volume moderate so that the suite stays fast
    dims = [draw(st.integers(1, 64))]
    dims += [draw(st.integers(1, 16)) for _ in range(2)]
    return tuple(draw(st.permutations(dims)))


@st.composite
def label_images(draw):
    shape = draw(shapes())
    dtype = np.dtype(draw(st.sampled_from(LABEL_DTYPES)))
    if dtype == np.bool_:
        ids = [0, 1]
    else:
        top = 2**24 if dtype.kind == "f" else np.iinfo(dtype).max
        top = min(int(top), 2**62)
        ids = [0, 1, 2, 3, int(draw(st.integers(4, max(4, top))))]
    density = draw(st.sampled_from([0.0, 0.05, 0.3, 0.9, 1.0]))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    lab = np.where(rng.random(shape) < density, rng.choice(ids, shape), 0).astype(dtype)
    return lab


def _spacing(draw_val, ndim):
    return tuple(draw_val for _ in range(ndim))


@SETTINGS
@given(
    lab=label_images(),
    sp=st.sampled_from([None, 0.1, 1.0, 3.7]),
    md=st.sampled_from([None, 0.0, 2.5, 1e9]),
)
def test_cell_distances_properties(lab, sp, md):
    before = lab.copy()
    spacing = None if sp is None else _spacing(sp, lab.ndim)
    d1, d2 = cell_distances(lab, spacing=spacing, max_distance=md, device="cpu")
    assert np.array_equal(lab, before) and lab.dtype == before.dtype
    assert not np.isnan(d1).any() and not np.isnan(d2).any()
    assert (d1 >= 0).all() and (d2 >= d1).all()
    assert (d1[lab > 0] == 0).all()
    if md is None and (lab > 0).any():
        assert np.isfinite(d1).all()
    if len(np.unique(lab[lab > 0])) < 2:
        assert np.isinf(d2).all()


@SETTINGS
@given(
    lab=label_images(),
    w0=st.sampled_from([0.0, 1e-300, 1.0, 10.0, 1e4]),
    sigma=st.sampled_from([1e-3, 1.0, 5.0, 1e3]),
    cw=st.sampled_from([None, "balanced", (0.0, 0.0), (1e6, 1e-6)]),
    bg=st.booleans(),
    sep=st.booleans(),
    sp=st.sampled_from([None, 0.5, 2.0]),
)
def test_weight_map_properties(lab, w0, sigma, cw, bg, sep, sp):
    before = lab.copy()
    spacing = None if sp is None else _spacing(sp, lab.ndim)
    w = unet_weight_map(
        lab,
        w0=w0,
        sigma=sigma,
        class_weights=cw,
        background_only=bg,
        separate_touching=sep,
        spacing=spacing,
        device="cpu",
    )
    assert np.array_equal(lab, before)
    assert w.shape == lab.shape and w.dtype == np.float32
    assert np.isfinite(w).all() and (w >= 0).all()
    fg = (separate_touching_cells(lab) if sep else lab) > 0
    if cw is None:
        assert (w >= 1.0).all()
        if bg:
            assert (w[fg] == 1.0).all()
    wc = class_weight_map(fg, cw)
    assert (w >= wc * (1 - 1e-6)).all()  # the border term is never negative
    assert (w <= wc + w0 * (1 + 1e-6)).all()  # ... and never above w0


@st.composite
def loss_cases(draw):
    shape = draw(shapes())
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    kind = draw(st.sampled_from(["prob", "extreme_prob", "logit", "huge_logit", "float16"]))
    if kind == "prob":
        pred = rng.random(shape)
    elif kind == "extreme_prob":
        pred = rng.choice([0.0, 1.0, 1e-30, 1 - 1e-16], shape)
    elif kind == "logit":
        pred = rng.normal(0, 5, shape)
    elif kind == "huge_logit":
        pred = rng.choice([-1e4, 1e4, 0.0], shape)
    else:
        pred = rng.random(shape).astype(np.float16)
    target = np.where(
        rng.random(shape) < draw(st.sampled_from([0.0, 0.3, 1.0])), rng.integers(1, 5, shape), 0
    )
    mask = None
    if draw(st.booleans()):
        mask = rng.random(shape) < 0.7
        assume(mask.any())
    return pred, target, mask, kind in ("logit", "huge_logit")


BINARY_LOSSES = [n for n, i in available_losses().items() if n != "ce"]


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(case=loss_cases(), loss=st.sampled_from(BINARY_LOSSES))
def test_loss_functions_properties(case, loss):
    pred, target, mask, from_logits = case
    saved = (pred.copy(), target.copy(), None if mask is None else mask.copy())
    m = loss_map(pred, target, loss, from_logits=from_logits, mask=mask, device="cpu")
    g = gradient_map(pred, target, loss, from_logits=from_logits, mask=mask, device="cpu")
    v = loss_value(pred, target, loss, from_logits=from_logits, mask=mask, device="cpu")
    assert np.isfinite(m).all() and np.isfinite(g).all() and np.isfinite(v), loss
    assert m.shape == target.shape and g.shape == target.shape
    if mask is not None:
        assert (m[~mask] == 0).all() and (g[~mask] == 0).all()
    assert np.array_equal(pred, saved[0]) and pred.dtype == saved[0].dtype
    assert np.array_equal(target, saved[1])
    if mask is not None:
        assert np.array_equal(mask, saved[2])


@pytest.mark.parametrize(
    ("labels", "match"),
    [
        (np.array([[0.5, 1.0]]), "integer ids"),
        (np.array([[2.0**60, 0.0]]), "below 2\\*\\*53"),
        (np.array([[-3, 1]], np.int8), "non-negative"),
    ],
)
def test_documented_label_errors(labels, match):
    with pytest.raises(ValueError, match=match):
        unet_weight_map(labels, device="cpu")


# --------------------------------------------------------------------------------------
# Issue 10: input forms, byte orders, extreme numbers, dask masks
# --------------------------------------------------------------------------------------

FAST = settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.too_slow])
MAX = float(np.finfo(np.float64).max)


@st.composite
def small_loss_cases(draw):
    shape = (draw(st.integers(1, 12)), draw(st.integers(1, 12)))
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    pred = rng.choice([0.0, 1.0, 0.3, 0.999], shape) if draw(st.booleans()) else rng.random(shape)
    target = np.where(rng.random(shape) < 0.4, rng.integers(1, 4, shape), 0)
    mask = rng.random(shape) < 0.7 if draw(st.booleans()) else None
    assume(mask is None or mask.any())
    return pred, target, mask


def _forms(a):
    """The same array as nested lists, as a big-endian array, and as itself."""
    if a is None:
        return [None, None, None]
    big = a.astype(a.dtype.newbyteorder(">"))
    return [a.tolist(), big, a]


@FAST
@given(case=small_loss_cases(), loss=st.sampled_from(BINARY_LOSSES), form=st.integers(0, 2))
def test_every_input_form_gives_the_numpy_result(case, loss, form):
    pred, target, mask = case
    want = loss_value(pred, target, loss, mask=mask, device="cpu")
    p, t, m = (_forms(x)[form] for x in (pred, target, mask))
    saved = [None if x is None else np.array(x, copy=True) for x in (p, t, m)]
    got = loss_value(p, t, loss, mask=m, device="cpu")
    assert got == pytest.approx(want, rel=1e-6, abs=1e-12)
    got_map = loss_map(p, t, loss, mask=m, device="cpu")
    np.testing.assert_allclose(
        got_map, loss_map(pred, target, loss, mask=mask, device="cpu"), rtol=1e-6, atol=1e-9
    )
    for x, before in zip((p, t, m), saved, strict=True):  # inputs are not modified
        if x is not None:
            assert np.array_equal(np.asarray(x), before)


def _wide(lo_exp=-300, hi_exp=300):
    """Positive floats from the smallest subnormal to the largest float, log-uniformly."""
    return st.one_of(
        st.sampled_from([5e-324, 1e-310, MAX, 1e308]),
        st.floats(lo_exp, hi_exp).map(lambda e: 10.0**e),
    )


@FAST
@given(
    lab=label_images(),
    spacing=_wide(),
    sigma=_wide(),
    w0=st.one_of(st.just(0.0), _wide()),
    cw=st.one_of(st.none(), st.tuples(_wide(), _wide())),
)
def test_extreme_weight_map_numbers_give_a_finite_map_or_a_named_error(
    lab, spacing, sigma, w0, cw
):
    import torch

    assume(lab.ndim == 2 or lab.size <= 4096)
    try:
        w = unet_weight_map(
            lab, spacing=spacing, sigma=sigma, w0=w0, class_weights=cw, dtype=torch.float64
        )
    except ValueError as err:  # only the documented range errors
        assert "too large" in str(err) and ("w0" in str(err) or "class_weights" in str(err))
        top = max(cw) if cw is not None else 1.0
        assert w0 + top > MAX / 2
        return
    assert np.isfinite(w).all() and (w >= 0).all()
    wc = class_weight_map(lab, cw, dtype=torch.float64)
    assert (w >= wc).all() and (w <= wc + w0 * (1 + 1e-12)).all()


@FAST
@given(lab=label_images(), spacing=_wide())
def test_extreme_spacings_scale_the_distances_or_name_the_spacing(lab, spacing):
    import torch

    assume(lab.ndim == 2 or lab.size <= 4096)
    d1, d2 = cell_distances(lab, device="cpu", dtype=torch.float64)
    try:
        e1, e2 = cell_distances(lab, spacing=spacing, device="cpu", dtype=torch.float64)
    except ValueError as err:
        assert "spacing" in str(err) and "too large" in str(err)
        return
    finite = np.isfinite(d2)
    assert np.array_equal(np.isfinite(e2), finite)
    if spacing >= 1e-290:  # normal floats: a relative error of rounding only
        np.testing.assert_allclose(e2[finite], d2[finite] * spacing, rtol=1e-12)
        np.testing.assert_allclose(e1[np.isfinite(d1)], d1[np.isfinite(d1)] * spacing, rtol=1e-12)


@st.composite
def param_values(draw, loss):
    out = {}
    for p in available_losses()[loss].params:
        if p.kind not in ("float", "int") or p.minimum is None or p.maximum is None:
            continue
        lo = 5e-324 if p.exclusive_minimum and p.minimum == 0 else p.minimum
        out[p.name] = draw(st.one_of(st.sampled_from([lo, p.maximum]), st.floats(lo, p.maximum)))
    return out


@FAST
@given(data=st.data(), loss=st.sampled_from(BINARY_LOSSES))
def test_parameters_anywhere_in_range_give_finite_values_and_gradients(data, loss):
    import torch

    params = data.draw(param_values(loss))
    case = data.draw(small_loss_cases())
    pred, target, mask = case
    logits = data.draw(st.booleans())
    x = torch.tensor((pred - 0.5) * 2e4 if logits else pred, requires_grad=True)
    value = loss_value(x, torch.from_numpy(target), loss, from_logits=logits, mask=mask, **params)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all(), (loss, params)


@settings(max_examples=10, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    case=small_loss_cases(),
    loss=st.sampled_from(["bce", "dice", "focal", "jaccard", "unet_ce", "exp_log"]),
    chunk=st.integers(1, 6),
    bad=st.sampled_from([None, 2, 0.5, -1]),
)
def test_dask_masks_are_validated_and_counted_like_masks_in_memory(case, loss, chunk, bad):
    da = pytest.importorskip("dask.array")
    pred, target, mask = case
    if mask is None:
        mask = np.ones(target.shape, bool)
    m = mask.astype(np.float64)
    if bad is not None:
        m.flat[0] = bad
    lazy = (da.from_array(pred, chunks=chunk), da.from_array(target, chunks=chunk))
    try:
        want = loss_value(pred, target, loss, mask=m, device="cpu")
    except ValueError as err:
        with pytest.raises(ValueError, match=str(err).split(",")[0]):
            loss_value(*lazy, loss, mask=da.from_array(m, chunks=chunk), device="cpu")
        return
    assert bad is None
    got = loss_value(*lazy, loss, mask=da.from_array(m, chunks=chunk), device="cpu")
    assert got == pytest.approx(want, rel=1e-5, abs=1e-9)
