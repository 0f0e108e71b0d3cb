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
