"""Every input form the docs accept is accepted everywhere (issue 10, point 5).

Nested lists and tuples, big-endian arrays for every array argument, dask masks validated
like masks in memory, dask arrays of unknown chunk sizes, an unavailable device on dask.
Each form is checked against the same call with native numpy arrays.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_losslens.core import (
    border_term,
    cell_distances,
    class_losses,
    class_weight_map,
    gradient_map,
    loss_map,
    loss_value,
    separate_touching_cells,
    two_nearest_cells,
    unet_weight_map,
    weight_map_from_distances,
)

da = pytest.importorskip("dask.array")

FUNCS = [loss_value, loss_map, gradient_map]


@pytest.fixture
def data():
    rng = np.random.default_rng(0)
    lab = np.zeros((10, 12), np.int32)
    lab[1:4, 1:5] = 1
    lab[1:4, 6:11] = 2
    lab[6:9, 2:9] = 3
    p = rng.uniform(0.05, 0.95, lab.shape)
    mask = rng.uniform(size=lab.shape) > 0.3
    return lab, p, mask


def _same(a, b):
    """Equal up to float32 rounding (nested lists of Python floats compute in float64)."""
    if isinstance(a, float):
        assert a == pytest.approx(b, rel=1e-6)
    else:
        np.testing.assert_allclose(np.asarray(a), np.asarray(b), rtol=1e-6, atol=1e-7)


# ---------------------------------------------------------------- nested lists and tuples


@pytest.mark.parametrize("fn", FUNCS)
def test_nested_lists_for_prediction_target_and_mask(fn, data):
    lab, p, mask = data
    want = fn(p, lab, mask=mask)
    _same(fn(p.tolist(), lab.tolist(), mask=mask.tolist()), want)
    as_tuples = tuple(tuple(r) for r in p.tolist())
    _same(fn(as_tuples, tuple(tuple(r) for r in lab.tolist())), fn(p, lab))


def test_the_example_of_the_issue():
    assert loss_value([[0.5]], [[1]]) == pytest.approx(np.log(2))
    np.testing.assert_allclose(loss_map([[0.5]], [[1]]), [[np.log(2)]], rtol=1e-12)


def test_nested_lists_with_a_class_axis():
    p = [[[0.9, 0.2]], [[0.1, 0.8]]]  # (C=2, 1, 2)
    y = [[0, 1]]
    _same(loss_value(p, y, "ce"), loss_value(np.array(p), np.array(y), "ce"))
    _same(class_losses(p, y, "dice"), class_losses(np.array(p), np.array(y), "dice"))


def test_nested_lists_for_the_weight_map_functions(data):
    lab, _, _ = data
    _same(unet_weight_map(lab.tolist()), unet_weight_map(lab))
    d1, d2 = cell_distances(lab)
    _same(weight_map_from_distances(lab.tolist(), d1.tolist(), d2.tolist()), unet_weight_map(lab))
    _same(border_term(d1.tolist(), d2.tolist()), border_term(d1, d2))
    _same(cell_distances(lab.tolist())[1], d2)


def test_zero_d_arrays_and_tensors_are_accepted_as_a_spacing(data):
    lab, _, _ = data
    want = unet_weight_map(lab, spacing=2.0)
    _same(unet_weight_map(lab, spacing=np.array(2.0)), want)
    _same(unet_weight_map(lab, spacing=torch.tensor(2.0)), want)
    _same(unet_weight_map(lab, spacing=np.array([2.0, 2.0])), want)


# ---------------------------------------------------------------- big-endian, every argument


def _be(a):
    return a.astype(a.dtype.newbyteorder(">"))


@pytest.mark.parametrize("fn", FUNCS)
def test_big_endian_prediction_target_and_mask(fn, data):
    lab, p, mask = data
    want = fn(p, lab, mask=mask.astype(np.int16))
    _same(fn(_be(p), _be(lab), mask=_be(mask.astype(np.int16))), want)


def test_big_endian_weight_map(data):
    lab, p, _ = data
    w = unet_weight_map(lab, dtype=torch.float64)
    want = loss_value(p, lab, "unet_ce", weight_map=w)
    _same(loss_value(p, lab, "unet_ce", weight_map=_be(w)), want)
    _same(
        loss_map(p, lab, "unet_ce", weight_map=_be(w.astype(np.float32))),
        loss_map(p, lab, "unet_ce", weight_map=w.astype(np.float32)),
    )


def test_big_endian_labels_and_distances_everywhere(data):
    lab, _, _ = data
    be = _be(lab)
    _same(unet_weight_map(be), unet_weight_map(lab))
    _same(
        unet_weight_map(be, class_weights="balanced"),
        unet_weight_map(lab, class_weights="balanced"),
    )
    _same(class_weight_map(be, "balanced"), class_weight_map(lab, "balanced"))
    _same(separate_touching_cells(be), separate_touching_cells(lab))
    for got, want in zip(two_nearest_cells(be), two_nearest_cells(lab), strict=True):
        _same(got, want)
    d1, d2 = cell_distances(lab)
    _same(weight_map_from_distances(be, _be(d1), _be(d2)), weight_map_from_distances(lab, d1, d2))
    _same(border_term(_be(d1), _be(d2)), border_term(d1, d2))


def test_big_endian_class_weights_and_spacing(data):
    lab, p, _ = data
    cw = np.array([0.5, 2.0])
    _same(unet_weight_map(lab, class_weights=_be(cw)), unet_weight_map(lab, class_weights=cw))
    _same(
        loss_value(p, lab, "ce", class_weights=_be(cw)), loss_value(p, lab, "ce", class_weights=cw)
    )
    sp = np.array([1.5, 0.5])
    _same(unet_weight_map(lab, spacing=_be(sp)), unet_weight_map(lab, spacing=sp))


# ---------------------------------------------------------------- masks, in memory and on dask


@pytest.mark.parametrize("bad", [2, 0.5, -1, np.nan])
def test_a_mask_holding_other_values_than_0_and_1_is_refused(data, bad):
    lab, p, mask = data
    m = mask.astype(np.float64)
    m[0, 0] = bad
    with pytest.raises(ValueError, match="mask must be boolean or hold only 0 and 1"):
        loss_value(p, lab, mask=m)
    with pytest.raises(ValueError, match="mask must be boolean or hold only 0 and 1"):
        loss_value(da.from_array(p, chunks=5), lab, mask=da.from_array(m, chunks=5))


def test_a_float_mask_of_0_and_1_counts_like_a_bool_mask(data):
    lab, p, mask = data
    want = loss_value(p, lab, mask=mask)
    _same(loss_value(p, lab, mask=mask.astype(np.float32)), want)
    got = loss_value(da.from_array(p, chunks=5), lab, mask=da.from_array(mask * 1.0, chunks=5))
    assert got == pytest.approx(want, rel=1e-6)


def test_a_dask_mask_of_the_wrong_shape_names_mask(data):
    lab, p, mask = data
    with pytest.raises(ValueError, match=r"mask and target must have the same shape"):
        loss_map(da.from_array(p, chunks=5), lab, mask=da.from_array(mask[:, :-1], chunks=5))
    with pytest.raises(ValueError, match=r"mask and target must have the same shape"):
        loss_map(p, lab, mask=mask[:, :-1])


def test_a_dask_mask_of_strings_is_a_type_error(data):
    lab, p, _ = data
    m = da.from_array(np.full(lab.shape, "x"), chunks=5)
    with pytest.raises(TypeError, match="mask must be boolean"):
        loss_value(da.from_array(p, chunks=5), lab, mask=m)


def test_a_dask_weight_map_of_the_wrong_shape_names_weight_map(data):
    lab, p, _ = data
    w = da.ones((3, 3), chunks=2)
    with pytest.raises(ValueError, match="weight_map and target must have the same shape"):
        loss_value(da.from_array(p, chunks=5), lab, "unet_ce", weight_map=w)


# ---------------------------------------------------------------- dask: chunks and devices


def _unknown_chunks(a):
    d = da.from_array(a, chunks=5)
    return d[d[:, 0] >= d[:, 0].min()]  # boolean indexing: row chunk sizes unknown (NaN)


def test_dask_arrays_of_unknown_chunk_sizes_are_refused_by_name(data):
    lab, p, mask = data
    with pytest.raises(ValueError, match=r"prediction is a dask array of unknown chunk sizes"):
        loss_value(_unknown_chunks(p), lab)
    with pytest.raises(ValueError, match=r"target is a dask array of unknown chunk sizes"):
        loss_map(p, _unknown_chunks(lab))
    with pytest.raises(ValueError, match=r"mask is a dask array of unknown chunk sizes"):
        loss_map(p, lab, mask=_unknown_chunks(mask))
    with pytest.raises(ValueError, match=r"labels is a dask array of unknown chunk sizes"):
        unet_weight_map(_unknown_chunks(lab))
    with pytest.raises(ValueError, match=r"compute_chunk_sizes\(\)"):
        gradient_map(_unknown_chunks(p), lab)


def test_an_unavailable_device_is_refused_at_call_time_on_dask(data):
    if torch.cuda.device_count() >= 8:
        pytest.skip("cuda:7 exists here")
    lab, p, _ = data
    pd, ld = da.from_array(p, chunks=5), da.from_array(lab, chunks=5)
    with pytest.raises(ValueError, match=r"device 'cuda:7' is not available"):
        loss_map(pd, ld, device="cuda:7")  # lazy result: still refused now
    with pytest.raises(ValueError, match=r"device 'cuda:7' is not available"):
        loss_value(pd, ld, device="cuda:7")
    with pytest.raises(ValueError, match=r"device 'cuda:7' is not available"):
        unet_weight_map(ld, device="cuda:7")
    with pytest.raises(ValueError, match=r"device 'cuda:7' is not available"):
        loss_value(p, lab, device="cuda:7")  # as in memory


def test_nested_lists_next_to_a_dask_mask(data):
    lab, p, mask = data
    got = loss_value(p.tolist(), lab.tolist(), mask=da.from_array(mask, chunks=5))
    assert got == pytest.approx(loss_value(p, lab, mask=mask), rel=1e-6)


def test_big_endian_float64_keeps_float64_results(data):
    lab, p, _ = data
    out = loss_map(_be(p), lab)
    assert out.dtype == np.float64
    np.testing.assert_array_equal(out, loss_map(p, lab))
    assert loss_map(da.from_array(_be(p), chunks=5), lab).dtype == np.float64
