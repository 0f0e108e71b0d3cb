"""The two-nearest-cells kernels (numba and torch) against one full-frame EDT per cell.

Many small seeded random cases: 1-pixel cells, cells on the borders, thin and flat images,
spacings 0.3-3, cutoffs 1-24 and none; ids are checked as well as distances (the cell
reported must be at the reported distance, and the second one must differ from the first).
"""

from __future__ import annotations

import math

import numba
import numpy as np
import pytest
import torch
from scipy import ndimage as ndi
from torch.utils._python_dispatch import TorchDispatchMode

from napari_losslens._testing import touching_cells
from napari_losslens.core import _two_nearest_numba as numba_kernel
from napari_losslens.core import weights
from napari_losslens.core._two_nearest_numba import two_nearest_sq as numba_two_nearest
from napari_losslens.core._two_nearest_torch import two_nearest_sq as torch_two_nearest

from .reference import ref_weight_map

CUTOFFS = [None, 1.0, 1.5, 3.0, 7.5, 24.0]


def per_cell_distances(labels, spacing):
    """{id: full-frame Euclidean distance to cell id} (the definition, one EDT per cell)."""
    ids = [int(i) for i in np.unique(labels) if i > 0]
    return {i: ndi.distance_transform_edt(labels != i, sampling=spacing) for i in ids}


def check_against_definition(labels, spacing, cutoff, out):
    """Distances and ids of ``out = (l1, v1, l2, v2)`` against the per-cell definition."""
    l1, v1, l2, v2 = (np.asarray(a) for a in out)
    cells = per_cell_distances(labels, spacing)
    inf = np.full((2, *labels.shape), np.inf)
    stack = np.sort(np.concatenate([np.stack(list(cells.values()) or [inf[0]]), inf]), axis=0)
    for lab, sq, exact in ((l1, v1, stack[0]), (l2, v2, stack[1])):
        want = exact if cutoff is None else np.where(exact <= cutoff, exact, np.inf)
        # a cell within float32 rounding of the cutoff may land on either side of it
        edge = np.zeros(labels.shape, bool) if cutoff is None else np.abs(exact - cutoff) < 1e-4
        got = np.sqrt(sq.astype(np.float64))
        assert np.array_equal(np.isinf(got)[~edge], np.isinf(want)[~edge])
        ok = np.isfinite(want) & ~edge
        np.testing.assert_allclose(got[ok], want[ok], rtol=1e-6, atol=1e-5)
        assert np.all(lab[np.isinf(got)] == 0)
        for idx in zip(*np.nonzero(np.isfinite(got)), strict=True):
            # the reported cell is at the reported distance
            assert abs(cells[int(lab[idx])][idx] - got[idx]) <= 1e-5 + 1e-6 * got[idx]
    both = np.isfinite(v2)
    assert np.all(l1[both] != l2[both])


def random_case(rng):
    """A small random label image with its spacing and cutoff."""
    kind = rng.integers(6)
    ndim = 2 if rng.random() < 0.5 else 3
    if kind == 0:  # thin: one or two pixels along an axis
        shape = [
            int(rng.integers(1, 3)) if a == rng.integers(ndim) else int(rng.integers(2, 14))
            for a in range(ndim)
        ]
    else:
        hi = 20 if ndim == 2 else 9
        shape = [int(rng.integers(1, hi)) for _ in range(ndim)]
    shape = tuple(shape)
    if kind == 1:  # touching Voronoi cells
        labels = touching_cells(
            tuple(max(s, 2) for s in shape),
            int(rng.integers(1, 9)),
            5.0,
            seed=int(rng.integers(1000)),
        )
        labels = labels[tuple(slice(0, s) for s in shape)]
    else:  # sparse pixels and blobs, on the borders too; 1-pixel cells are common
        density = rng.choice([0.02, 0.08, 0.3, 0.7])
        labels = (rng.random(shape) < density) * rng.integers(1, int(rng.integers(2, 9)), shape)
    spacing = tuple(float(s) for s in rng.uniform(0.3, 3.0, ndim))
    if rng.random() < 0.3:
        spacing = (1.0,) * ndim
    cutoff = CUTOFFS[int(rng.integers(len(CUTOFFS)))]
    return np.ascontiguousarray(labels.astype(np.int64)), spacing, cutoff


def _maxsq(cutoff):
    return math.inf if cutoff is None else cutoff * cutoff


@pytest.mark.parametrize("block", range(6))
def test_numba_kernel_random_cases_against_definition(block):
    rng = np.random.default_rng(1000 + block)
    for _ in range(40):
        labels, spacing, cutoff = random_case(rng)
        before = labels.copy()
        out = numba_two_nearest(labels, spacing, _maxsq(cutoff))
        assert np.array_equal(labels, before)
        check_against_definition(labels, spacing, cutoff, out)


@pytest.mark.parametrize("block", range(3))
def test_torch_kernel_random_cases_against_definition(block):
    rng = np.random.default_rng(2000 + block)
    for _ in range(15):
        labels, spacing, cutoff = random_case(rng)
        t = torch.from_numpy(labels)
        out = torch_two_nearest(t, spacing, _maxsq(cutoff))
        assert np.array_equal(t.numpy(), labels)
        check_against_definition(labels, spacing, cutoff, [o.numpy() for o in out])


@pytest.mark.parametrize(
    ("shape", "spacing", "cutoff"),
    [
        ((5, 300), (1.0, 0.7), None),  # wider than one chunk of the first pass
        ((3, 9, 70), (2.0, 1.0, 1.0), 24.0),  # wider than one block of the middle pass
        ((70, 4, 3), (0.5, 1.5, 1.0), 6.0),
    ],
)
def test_lines_across_chunks_and_blocks(shape, spacing, cutoff):
    rng = np.random.default_rng(7)
    labels = (rng.random(shape) < 0.01) * rng.integers(1, 5, shape)
    assert max(shape) > numba_kernel.BLOCK
    out = numba_two_nearest(labels.astype(np.int64), spacing, _maxsq(cutoff))
    check_against_definition(labels, spacing, cutoff, out)


def test_middle_pass_carries_the_second_cell():
    # Only position (1, 0, 0) of the line x = (1, :, 0) offers cell 7, as its second entry
    # (its first is cell 3): the middle pass must pass the second id on.
    labels = np.zeros((4, 3, 1), np.int64)
    labels[0, 0, 0] = 3
    labels[3, 0, 0] = 7
    l1, v1, l2, v2 = numba_two_nearest(labels, (1.0, 1.0, 1.0), math.inf)
    assert (l1[1, 2, 0], v1[1, 2, 0], l2[1, 2, 0], v2[1, 2, 0]) == (3, 5.0, 7, 8.0)
    l1, v1, l2, v2 = torch_two_nearest(torch.from_numpy(labels), (1.0, 1.0, 1.0), math.inf)
    assert (int(l1[1, 2, 0]), float(v1[1, 2, 0]), int(l2[1, 2, 0]), float(v2[1, 2, 0])) == (
        3,
        5.0,
        7,
        8.0,
    )


def test_touching_cells_3d_anisotropic_ids_and_distances():
    labels = touching_cells((10, 24, 22), 12, 6.0, spacing=(2.0, 1.0, 1.0), seed=3)
    out = numba_two_nearest(labels.astype(np.int64), (2.0, 1.0, 1.0), 24.0**2)
    check_against_definition(labels, (2.0, 1.0, 1.0), 24.0, out)


def test_numba_kernel_dtypes_int32_labels_float32_distances():
    labels = touching_cells((16, 16), 4, 4.0, seed=7).astype(np.int64)
    l1, v1, l2, v2 = numba_two_nearest(labels, (1.0, 1.0), math.inf)
    assert (l1.dtype, v1.dtype, l2.dtype, v2.dtype) == (np.int32, np.float32, np.int32, np.float32)


def test_ids_beyond_int32_are_mapped_back():
    labels = touching_cells((20, 24), 6, 5.0, seed=4).astype(np.int64)
    big = np.where(labels > 0, labels * 10**12 + 5, 0)
    l1, v1, l2, v2 = numba_two_nearest(big, (1.0, 1.0), math.inf)
    s1, w1, s2, w2 = numba_two_nearest(labels, (1.0, 1.0), math.inf)
    assert l1.dtype == np.int64
    np.testing.assert_array_equal(v1, w1)
    np.testing.assert_array_equal(v2, w2)
    np.testing.assert_array_equal(l1, np.where(s1 > 0, s1.astype(np.int64) * 10**12 + 5, 0))
    np.testing.assert_array_equal(l2, np.where(s2 > 0, s2.astype(np.int64) * 10**12 + 5, 0))


def test_torch_kernel_equals_numba_kernel_on_touching_cells():
    labels = touching_cells((20, 30, 26), 30, 6.0, seed=6).astype(np.int64)
    sp = (1.5, 1.0, 0.8)
    for cutoff in (None, 5.0):
        a = numba_two_nearest(labels, sp, _maxsq(cutoff))
        b = [t.numpy() for t in torch_two_nearest(torch.from_numpy(labels), sp, _maxsq(cutoff))]
        for x, y in ((a[1], b[1]), (a[3], b[3])):
            # float32 (numba) and float64 (torch) may round a cell at the cutoff apart
            edge = np.abs(np.where(np.isinf(y), x, y) - _maxsq(cutoff)) < 1e-3
            assert np.array_equal(np.isinf(x)[~edge], np.isinf(y)[~edge])
            both = np.isfinite(x) & np.isfinite(y)
            np.testing.assert_allclose(x[both], y[both], rtol=1e-6)
        nearest_unique = a[1] < a[3]  # no tie for the nearest cell: the same id
        np.testing.assert_array_equal(a[0][nearest_unique], b[0][nearest_unique])


def test_torch_kernel_chunks_give_the_same_result(monkeypatch):
    from napari_losslens.core import _two_nearest_torch

    labels = torch.from_numpy(touching_cells((12, 14), 4, 4.0, seed=9).astype(np.int64))
    whole = torch_two_nearest(labels, (1.0, 1.0), 49.0)
    monkeypatch.setattr(_two_nearest_torch, "CHUNK_BYTES", 1)  # one line per chunk
    chunked = torch_two_nearest(labels, (1.0, 1.0), 49.0)
    for x, y in zip(whole, chunked, strict=True):
        assert torch.equal(x, y)


class _CountOps(TorchDispatchMode):
    """Records every tensor operation dispatched while active (views included)."""

    def __init__(self):
        super().__init__()
        self.ops = []

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.ops.append(func)
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize(
    ("shape", "spacing", "cutoff"),
    [
        ((64, 72), (1.0, 1.0), 24.0),
        ((9, 40, 36), (2.0, 1.0, 0.7), None),
        ((1, 30), (1.0, 1.0), 3.0),
    ],
)
def test_torch_kernel_never_waits_on_the_device(shape, spacing, cutoff):
    # on a GPU a read-back per step (float(x.max()), .item(), nonzero) stalls the launch
    # queue; on the meta device (shapes, no data) any such read raises
    labels = torch.empty(shape, dtype=torch.int64, device="meta")
    out = torch_two_nearest(labels, spacing, _maxsq(cutoff))
    assert [(t.device.type, tuple(t.shape)) for t in out] == [("meta", shape)] * 4
    assert [t.dtype for t in out] == [torch.int64, torch.float64] * 2
    # and the weight map's formula on the result, as the GPU tiles compute it
    _, v1, _, v2 = out
    w = weights._weight_map(labels > 0, v1.sqrt(), v2.sqrt(), 10.0, 5.0, (1.0, 1.0), True)
    assert (w.device.type, tuple(w.shape)) == ("meta", shape)


def test_torch_kernel_operations_do_not_grow_with_the_image_or_the_cutoff():
    # a fixed number of device operations per pass (one chunk here), whatever the image
    # size and the reach; the former path launched a chain of operations per offset
    counts = []
    for shape, cutoff in (((16, 20), 1.0), ((160, 200), 24.0), ((300, 90), 60.0)):
        labels = torch.from_numpy(touching_cells(shape, 12, 5.0, seed=2).astype(np.int64))
        with _CountOps() as c:
            torch_two_nearest(labels, (1.0, 1.0), _maxsq(cutoff))
        counts.append(len(c.ops))
    assert counts[0] == counts[1] == counts[2]
    assert counts[0] <= 2 * 60  # two passes, views and copies included (114 now)
    # and more chunks only add operations per chunk, never per offset
    labels = torch.from_numpy(touching_cells((40, 50), 12, 5.0, seed=2).astype(np.int64))
    with _CountOps() as c:
        torch_two_nearest(labels, (1.0, 1.0), math.inf)
    assert len(c.ops) <= 2 * 60


@pytest.mark.cuda
@pytest.mark.parametrize(
    ("shape", "spacing"), [((64, 72), (1.0, 1.0)), ((16, 40, 36), (2.0, 1.0, 0.7))]
)
def test_torch_kernel_on_cuda_equals_numba_kernel(shape, spacing):
    labels = touching_cells(shape, 20, 6.0, spacing=spacing, seed=11).astype(np.int64)
    for cutoff in (None, 24.0):
        a = numba_two_nearest(labels, spacing, _maxsq(cutoff))
        b = torch_two_nearest(torch.from_numpy(labels).cuda(), spacing, _maxsq(cutoff))
        for x, y in ((a[1], b[1].cpu().numpy()), (a[3], b[3].cpu().numpy())):
            assert np.array_equal(np.isinf(x), np.isinf(y))
            fin = np.isfinite(x)
            np.testing.assert_allclose(x[fin], y[fin], rtol=1e-6, atol=1e-6)


@pytest.mark.parametrize("background_only", [True, False])
@pytest.mark.parametrize(("w_bg", "w_fg"), [(1.0, 1.0), (0.6, 2.5)])
def test_fused_weight_map_equals_the_definition(background_only, w_bg, w_fg):
    labels = touching_cells((40, 52), 12, 6.0, seed=12).astype(np.int64)
    labels[:, :3] = 0  # a border band with no cell
    before = labels.copy()
    w0, sigma = 8.0, 4.0
    _, v1, _, v2 = numba_two_nearest(labels, (1.0, 1.0), math.inf)
    got = numba_kernel.weight_map_sq(labels, v1, v2, w0, sigma, w_bg, w_fg, background_only)
    want = ref_weight_map(
        labels, w0=w0, sigma=sigma, class_weights=(w_bg, w_fg), background_only=background_only
    )
    assert got.dtype == np.float32
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * w0)
    assert np.array_equal(labels, before)


def test_fused_weight_map_has_no_border_term_without_a_second_cell():
    labels = np.zeros((9, 9), np.int64)
    labels[3:5, 3:5] = 4
    _, v1, _, v2 = numba_two_nearest(labels, (1.0, 1.0), math.inf)
    got = numba_kernel.weight_map_sq(labels, v1, v2, 10.0, 5.0, 0.5, 2.0)
    np.testing.assert_array_equal(got, np.where(labels > 0, 2.0, 0.5))


# --------------------------------------------------------------------------------------
# The weight map with the formula fused into the last pass (unet_weight_map_sq)
# --------------------------------------------------------------------------------------


def definition_weight_map(labels, spacing, cutoff, w0, sigma, w_bg, w_fg, background_only):
    """(map, pixels where d2 is within float32 rounding of the cutoff) by the definition:
    one full-frame EDT per cell, the border term where the second cell is within the cutoff."""
    cells = per_cell_distances(labels, spacing)
    inf = np.full((2, *labels.shape), np.inf)
    stack = np.sort(np.concatenate([np.stack(list(cells.values()) or [inf[0]]), inf]), axis=0)
    d1, d2 = stack[0], stack[1]
    within = np.isfinite(d2) if cutoff is None else d2 <= cutoff
    fg = labels > 0
    with np.errstate(over="ignore"):
        term = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    border = np.where(within & ~(fg & background_only), term, 0.0)
    edge = np.zeros(labels.shape, bool) if cutoff is None else np.abs(d2 - cutoff) < 1e-4
    return np.where(fg, w_fg, w_bg) + border, edge


def check_fused(labels, spacing, cutoff, w0, sigma, w_bg, w_fg, background_only, dtype=np.float32):
    before = labels.copy()
    got = numba_kernel.unet_weight_map_sq(
        labels, spacing, _maxsq(cutoff), w0, sigma, w_bg, w_fg, background_only, dtype
    )
    assert got.dtype == dtype and got.shape == labels.shape
    assert np.array_equal(labels, before)
    # the same bits as the transform followed by the separate formula
    _, v1, _, v2 = numba_two_nearest(labels, spacing, _maxsq(cutoff))
    sep = numba_kernel.weight_map_sq(labels, v1, v2, w0, sigma, w_bg, w_fg, background_only, dtype)
    np.testing.assert_array_equal(got, sep)
    want, edge = definition_weight_map(
        labels, spacing, cutoff, w0, sigma, w_bg, w_fg, background_only
    )
    np.testing.assert_allclose(got[~edge], want[~edge], rtol=1e-5, atol=1e-5 * max(w0, 1.0))
    return got


@pytest.mark.parametrize("block", range(6))
def test_fused_kernel_random_cases_against_definition(block):
    """1-pixel cells, borders, thin and flat images (1-line ones too), spacings 0.3-3,
    cutoffs 1-24 and none, d2 everywhere or on the background only, class weights."""
    rng = np.random.default_rng(3000 + block)
    for _ in range(40):
        labels, spacing, cutoff = random_case(rng)
        w0 = float(rng.choice([0.0, 1.0, 10.0]))
        sigma = float(rng.uniform(0.5, 8.0))
        w_bg, w_fg = (1.0, 1.0) if rng.random() < 0.5 else (0.4, 2.5)
        check_fused(labels, spacing, cutoff, w0, sigma, w_bg, w_fg, bool(rng.random() < 0.7))


@pytest.mark.parametrize(
    "shape", [(1, 1), (1, 9), (9, 1), (1, 40), (2, 33), (40, 1), (1, 1, 30), (1, 30, 1)]
)
@pytest.mark.parametrize("background_only", [True, False])
def test_fused_kernel_one_line_images(shape, background_only):
    rng = np.random.default_rng(sum(shape))
    for density in (0.05, 0.3, 0.8):
        labels = (rng.random(shape) < density) * rng.integers(1, 4, shape)
        labels.flat[0] = 1  # cells on both ends
        labels.flat[-1] = 2
        for cutoff in (None, 1.5, 24.0):
            check_fused(
                labels.astype(np.int64),
                (0.7,) * len(shape),
                cutoff,
                10.0,
                5.0,
                1,
                1,
                background_only,
            )


@pytest.mark.parametrize("dtype", [np.int32, np.int64, np.uint16, np.uint8, bool, np.uint32])
def test_fused_kernel_label_dtypes(dtype):
    labels = touching_cells((30, 36), 10, 6.0, seed=8)
    want = numba_kernel.unet_weight_map_sq(
        labels.astype(np.int64), (1.0, 1.0), 24.0**2, 10.0, 5.0, 1.0, 1.0
    )
    cast = labels.astype(dtype)
    if dtype is bool:  # one cell: the border term needs two
        want = numba_kernel.unet_weight_map_sq(
            cast.astype(np.int64), (1.0, 1.0), 24.0**2, 10.0, 5.0, 1.0, 1.0
        )
    got = numba_kernel.unet_weight_map_sq(cast, (1.0, 1.0), 24.0**2, 10.0, 5.0, 1.0, 1.0)
    np.testing.assert_array_equal(got, want)


def test_fused_kernel_ids_beyond_int32():
    labels = touching_cells((20, 24), 6, 5.0, seed=4).astype(np.int64)
    big = np.where(labels > 0, labels * 10**12 + 5, 0)
    np.testing.assert_array_equal(
        numba_kernel.unet_weight_map_sq(big, (1.0, 1.0), math.inf, 8.0, 3.0, 0.5, 2.0, False),
        numba_kernel.unet_weight_map_sq(labels, (1.0, 1.0), math.inf, 8.0, 3.0, 0.5, 2.0, False),
    )


@pytest.mark.parametrize("background_only", [True, False])
def test_fused_kernel_float64_and_3d(background_only):
    labels = touching_cells((9, 20, 18), 10, 5.0, spacing=(2.0, 1.0, 1.0), seed=9)
    check_fused(
        labels.astype(np.int64),
        (2.0, 1.0, 1.0),
        12.0,
        10.0,
        4.0,
        0.5,
        2.0,
        background_only,
        np.float64,
    )


def test_results_do_not_depend_on_threads_or_task_sizes(monkeypatch):
    """One thread or two, and tasks of one line, one block column or one chunk column: the
    same bits (each line is computed on its own, whichever task holds it)."""
    labels = touching_cells((70, 66), 30, 7.0, seed=10).astype(np.int32)
    labels3 = touching_cells((5, 70, 66), 30, 7.0, seed=11).astype(np.int32)

    def run():
        return (
            numba_kernel.unet_weight_map_sq(labels, (1.0, 0.8), 20.0**2, 10.0, 5.0, 1.0, 1.0),
            numba_kernel.unet_weight_map_sq(labels3, (2.0, 1.0, 0.8), 20.0**2, 10.0, 5.0, 1, 1),
            *numba_two_nearest(labels3, (2.0, 1.0, 0.8), 20.0**2),
        )

    want = run()
    threads = numba.get_num_threads()
    try:
        numba.set_num_threads(1)
        for a, b in zip(run(), want, strict=True):
            np.testing.assert_array_equal(a, b)
    finally:
        numba.set_num_threads(threads)
    for name, value in (("LINES", 1), ("CHUNK", 1), ("BLOCK", 1), ("LINES", 7), ("CHUNK", 5)):
        with monkeypatch.context() as m:
            m.setattr(numba_kernel, name, value)
            for a, b in zip(run(), want, strict=True):
                np.testing.assert_array_equal(a, b)
