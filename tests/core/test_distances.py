"""cell_distances / two_nearest_cells against the per-cell definition."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_losslens._testing import touching_cells
from napari_losslens.core import cell_distances, two_nearest_cells
from napari_losslens.core._two_nearest_torch import two_nearest_sq as torch_two_nearest

from .reference import ref_distances


def _assert_dist_equal(got, want):
    got = np.asarray(got, dtype=np.float64)
    assert np.array_equal(np.isinf(got), np.isinf(want))
    finite = np.isfinite(want)
    np.testing.assert_allclose(got[finite], want[finite], rtol=1e-6, atol=1e-5)


def test_hand_made_line():
    lab = np.zeros((1, 7), np.int32)
    lab[0, 0], lab[0, 6] = 1, 2
    d1, d2 = cell_distances(lab, device="cpu")
    assert d1.tolist() == [[0, 1, 2, 3, 2, 1, 0]]
    assert d2.tolist() == [[6, 5, 4, 3, 4, 5, 6]]


def test_inside_a_cell_d1_is_zero_and_d2_is_the_other_cell():
    lab = np.zeros((5, 10), np.int32)
    lab[1:4, 1:4] = 3
    lab[1:4, 6:9] = 7
    d1, d2 = cell_distances(lab, device="cpu")
    assert np.all(d1[lab > 0] == 0)
    assert d2[2, 3] == pytest.approx(3.0)  # column 3 to column 6
    assert d2[2, 1] == pytest.approx(5.0)


@pytest.mark.parametrize("seed", range(6))
def test_random_2d_against_definition(seed):
    rng = np.random.default_rng(seed)
    lab = (rng.random((23, 31)) < 0.08) * rng.integers(1, 9, (23, 31))
    _assert_dist_equal(np.stack(cell_distances(lab, device="cpu")), np.stack(ref_distances(lab)))


@pytest.mark.parametrize("spacing", [(1, 1, 1), (2.0, 1.0, 1.0), (0.7, 1.3, 2.9)])
def test_touching_3d_anisotropic_against_definition(spacing):
    lab = touching_cells((12, 24, 20), 14, 6.0, spacing=spacing, seed=3)
    got = cell_distances(lab, spacing=spacing, device="cpu", dtype=torch.float64)
    _assert_dist_equal(np.stack(got), np.stack(ref_distances(lab, spacing)))


def test_touching_2d_non_contiguous_huge_ids():
    lab = touching_cells((64, 64), 25, 9.0, seed=4).astype(np.int64)
    lab[lab > 0] = lab[lab > 0] * 10**15 + 7  # sparse, huge ids
    _assert_dist_equal(np.stack(cell_distances(lab, device="cpu")), np.stack(ref_distances(lab)))


def test_max_distance_reports_inf_beyond_and_exact_within():
    lab = touching_cells((48, 48), 6, 5.0, seed=5)
    r1, r2 = ref_distances(lab)
    d1, d2 = cell_distances(lab, max_distance=7.5, device="cpu")
    for got, want in ((d1, r1), (d2, r2)):
        within = want <= 7.5
        np.testing.assert_allclose(got[within], want[within], rtol=1e-6, atol=1e-5)
        assert np.all(np.isinf(got[~within]))


def test_empty_labels_give_inf_everywhere():
    d1, d2 = cell_distances(np.zeros((8, 9), np.uint8), device="cpu")
    assert np.all(np.isinf(d1)) and np.all(np.isinf(d2))


def test_single_cell_has_no_second_distance():
    lab = np.zeros((9, 9), bool)
    lab[3:5, 3:5] = True
    d1, d2 = cell_distances(lab, device="cpu")
    assert np.isfinite(d1).all() and np.isinf(d2).all()


def test_two_nearest_cells_reports_ids():
    lab = np.zeros((1, 10), np.int32)
    lab[0, 0], lab[0, 3], lab[0, 8] = 5, 9, 2  # odd gaps: no ties for the nearest
    id1, d1, id2, d2 = two_nearest_cells(lab, device="cpu")
    assert id1.tolist() == [[5, 5, 9, 9, 9, 9, 2, 2, 2, 2]]
    assert d2.tolist() == [[3, 2, 2, 3, 4, 3, 3, 4, 5, 6]]
    got = id2[0].tolist()
    assert got[:4] + got[5:] == [9, 9, 5, 5, 2, 9, 9, 9, 9]
    assert got[4] in (5, 2)  # a tie: both are 4 away


def test_torch_backend_equals_numba_backend():
    lab = touching_cells((20, 30, 26), 30, 6.0, seed=6)
    sp = (1.5, 1.0, 0.8)
    want = ref_distances(lab, sp)
    l1, v1, l2, v2 = torch_two_nearest(torch.from_numpy(lab.astype(np.int64)), sp, np.inf)
    _assert_dist_equal(np.sqrt(v1.numpy()), want[0])
    _assert_dist_equal(np.sqrt(v2.numpy()), want[1])


def test_numpy_in_numpy_out_float32_and_float64_on_request():
    lab = touching_cells((16, 16), 4, 4.0, seed=7)
    d1, d2 = cell_distances(lab, device="cpu")
    assert isinstance(d1, np.ndarray) and d1.dtype == np.float32
    d1, _ = cell_distances(lab, device="cpu", dtype=torch.float64)
    assert d1.dtype == np.float64


def test_torch_in_torch_out_on_input_device(device):
    lab = torch.from_numpy(touching_cells((16, 16), 4, 4.0, seed=7)).to(device)
    d1, d2 = cell_distances(lab)
    assert isinstance(d1, torch.Tensor) and d1.device.type == device
    want = ref_distances(lab.cpu().numpy())
    _assert_dist_equal(d2.cpu().numpy(), want[1])


def test_input_not_modified():
    lab = touching_cells((20, 20), 5, 5.0, seed=8)
    before = lab.copy()
    cell_distances(lab, device="cpu")
    assert np.array_equal(lab, before)
    t = torch.from_numpy(lab.copy())
    cell_distances(t)
    assert np.array_equal(t.numpy(), before)


@pytest.mark.parametrize(
    ("labels", "kwargs", "error", "match"),
    [
        (np.zeros(5), {}, ValueError, r"labels must be 2D or 3D .* got 1D"),
        (np.zeros((2, 2, 2, 2)), {}, ValueError, r"got 4D"),
        (-np.ones((3, 3)), {}, ValueError, r"non-negative ids .* minimum of -1"),
        (
            np.full((3, 3), 1.5),
            {},
            ValueError,
            r"integer ids, got non-integer values \(e.g. 1.5\)",
        ),
        (np.array([[np.nan, 1]]), {}, ValueError, r"NaN or inf"),
        (np.array([["a"]]), {}, TypeError, r"integer \(or bool\) array"),
        (np.zeros((3, 3)), {"spacing": (1, 1, 1)}, ValueError, r"one value per axis \(2\), got 3"),
        (np.zeros((3, 3)), {"spacing": (1, 0)}, ValueError, r"finite and positive"),
        (np.zeros((3, 3)), {"max_distance": -1}, ValueError, r"max_distance must be >= 0"),
        (np.zeros((3, 3)), {"device": "tpu"}, ValueError, r"device must be"),
        (np.zeros((0, 3)), {}, ValueError, r"must not be empty"),
    ],
)
def test_bad_input_raises_clear_errors(labels, kwargs, error, match):
    with pytest.raises(error, match=match):
        cell_distances(labels, **{"device": "cpu", **kwargs})


@pytest.mark.skipif(torch.cuda.is_available(), reason="CUDA is present")
def test_unavailable_cuda_device_is_a_clear_error():
    with pytest.raises(ValueError, match=r"'cuda' is not available: torch sees no CUDA device"):
        cell_distances(np.zeros((3, 3)), device="cuda")


@settings(max_examples=60, deadline=None)
@given(
    lab=hnp.arrays(
        np.int64,
        st.tuples(st.integers(1, 12), st.integers(1, 12))
        | st.tuples(st.integers(1, 6), st.integers(1, 6), st.integers(1, 6)),
        elements=st.sampled_from([0, 0, 0, 1, 2, 3, 2**40]),
    ),
    sp=st.floats(0.25, 4.0),
)
def test_hypothesis_against_definition(lab, sp):
    spacing = tuple(sp if i % 2 else 1.0 for i in range(lab.ndim))
    got = cell_distances(lab, spacing=spacing, device="cpu", dtype=torch.float64)
    _assert_dist_equal(np.stack(got), np.stack(ref_distances(lab, spacing)))


@pytest.mark.parametrize("as_torch", [False, True])
def test_two_nearest_cells_ids_are_int64_as_documented(as_torch):
    """The CPU kernels work in int32; the ids come back int64, as from the torch path."""
    lab = np.zeros((6, 9), np.uint16)
    lab[1:3, 1:3] = 7
    lab[3:5, 5:8] = 3
    big = lab.astype(np.int64)
    big[big == 3] = 2**40  # beyond int32: kept exactly
    for labels, ids in ((lab, (7, 3)), (big, (7, 2**40))):
        x = torch.from_numpy(labels) if as_torch else labels
        id1, _, id2, _ = two_nearest_cells(x, device="cpu")
        for got in (id1, id2):
            assert got.dtype == (torch.int64 if as_torch else np.int64)
        got_ids = set(np.asarray(id1).ravel()) | set(np.asarray(id2).ravel())
        assert got_ids == {ids[0], ids[1]}
