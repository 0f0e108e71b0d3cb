"""Per-object statistics, hot-spots and error maps against slow, obvious references."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_losslens.core import (
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    TRUE_POSITIVE,
    error_map,
    hot_spots,
    object_overlap,
    object_stats,
)


def _reference_stats(lab, loss, pred, threshold):
    """One object at a time, with plain boolean masks."""
    fg = pred > threshold
    comp, _ = ndi.label(fg, structure=np.ones((3,) * lab.ndim))
    rows = {}
    for i in np.unique(lab[lab > 0]):
        o = lab == i
        touching = np.unique(comp[o & fg])
        p_o = np.isin(comp, touching[touching > 0])
        inter = (o & p_o).sum()
        rows[int(i)] = (
            o.sum(),
            loss[o].mean(),
            loss[o].sum(),
            2 * inter / (o.sum() + p_o.sum()),
            inter / (o | p_o).sum(),
        )
    return rows


def test_object_stats_match_reference():
    rng = np.random.default_rng(0)
    lab = np.zeros((40, 50), np.uint16)
    lab[2:10, 2:10] = 3
    lab[10:18, 2:10] = 7  # touches 3
    lab[25:35, 30:45] = 11
    lab[30:33, 5:8] = 20  # missed below
    pred = rng.uniform(0, 0.3, lab.shape)
    pred[3:17, 3:9] = 0.9  # one blob merging 3 and 7
    pred[26:34, 31:40] = 0.8
    pred[30:33, 5:8] = 0.1
    pred[0:2, 45:50] = 0.95  # a false positive
    loss = rng.uniform(0, 2, lab.shape)
    got = object_stats(lab, loss, pred, threshold=0.5)
    ref = _reference_stats(lab, loss, pred, 0.5)
    assert got["index"].tolist() == sorted(ref)
    for row, i in enumerate(got["index"]):
        area, mean, total, dice, iou = ref[int(i)]
        assert got["area"][row] == area
        assert got["mean_loss"][row] == pytest.approx(mean)
        assert got["total_loss"][row] == pytest.approx(total)
        assert got["dice"][row] == pytest.approx(dice)
        assert got["iou"][row] == pytest.approx(iou)
    missed = got["index"].tolist().index(20)
    assert got["dice"][missed] == 0.0


def _overlap_case():
    rng = np.random.default_rng(1)
    lab = np.zeros((40, 50), np.int32)
    lab[2:10, 2:10], lab[10:18, 2:10], lab[25:35, 30:45], lab[30:33, 5:8] = 3, 7, 11, 20
    pred = rng.uniform(0, 0.3, lab.shape).astype(np.float32)
    pred[3:17, 3:9] = 0.9  # one blob merging 3 and 7
    pred[26:34, 31:40] = 0.8
    pred[0:2, 45:50] = 0.95  # a false positive; 20 is missed
    return lab, pred


@pytest.mark.parametrize("threshold", [0.5, 0.2])
def test_object_overlap_matches_reference_and_object_stats(threshold):
    lab, pred = _overlap_case()
    kept = lab.copy(), pred.copy()
    got = object_overlap(lab, pred, threshold=threshold)
    assert list(got) == ["index", "dice", "iou"]
    ref = _reference_stats(lab, np.zeros(lab.shape), pred, threshold)
    assert got["index"].tolist() == sorted(ref)
    for row, i in enumerate(got["index"]):
        *_, dice, iou = ref[int(i)]
        assert got["dice"][row] == pytest.approx(dice)
        assert got["iou"][row] == pytest.approx(iou)
    full = object_stats(lab, prediction=pred, threshold=threshold)
    for key in got:  # the very columns of object_stats
        np.testing.assert_array_equal(got[key], full[key])
    np.testing.assert_array_equal(lab, kept[0])  # the inputs are not changed
    np.testing.assert_array_equal(pred, kept[1])


def test_object_overlap_frames_and_masks():
    lab = np.zeros((2, 5, 5), int)
    lab[0, 1:3, 1:3] = 1
    lab[1, 1:3, 1:3] = 2
    mask = np.zeros(lab.shape, np.uint8)
    mask[:, 1:4, 1:4] = 1
    frames = object_overlap(lab, mask, frame_axes=1)
    joint = object_overlap(lab, mask.astype(bool))
    assert frames["dice"].tolist() == pytest.approx([2 * 4 / (4 + 9)] * 2)
    assert joint["dice"].tolist() == pytest.approx([2 * 4 / (4 + 18)] * 2)
    assert frames["iou"].tolist() == pytest.approx([4 / 9] * 2)


def test_object_overlap_sparse_huge_ids_keep_the_rows_of_object_stats():
    lab = np.array([[0, 5, 5, 0, 10**9, 10**9]], np.int64)  # ids compressed internally
    pred = np.array([[0.9, 0.9, 0.1, 0.1, 0.8, 0.8]])
    got = object_overlap(lab, pred)
    assert got["index"].tolist() == [5, 10**9]
    assert got["dice"].tolist() == pytest.approx([2 * 1 / (2 + 2), 1.0])


def test_object_overlap_refuses_bad_inputs():
    lab = np.array([[1, 1, 0, 2]])
    with pytest.raises(ValueError, match="same shape"):
        object_overlap(lab, np.zeros((1, 3)))
    with pytest.raises(ValueError, match="non-negative"):
        object_overlap(np.array([[1, -1]]), np.zeros((1, 2)))
    with pytest.raises(TypeError, match="prediction must be a numeric array, got dtype"):
        object_overlap(lab, np.array([["a", "b", "c", "d"]]))
    with pytest.raises(ValueError, match=r"frame_axes must be in \[0, 1\], got 2"):
        object_overlap(lab, np.zeros(lab.shape), frame_axes=2)


def test_object_stats_frames_do_not_connect():
    lab = np.zeros((2, 5, 5), int)
    lab[0, 1:3, 1:3] = 1
    lab[1, 1:3, 1:3] = 2
    pred = np.zeros(lab.shape)
    pred[:, 1:4, 1:4] = 1.0
    joint = object_stats(lab, prediction=pred, frame_axes=0)
    frames = object_stats(lab, prediction=pred, frame_axes=1)
    assert frames["dice"][0] == pytest.approx(2 * 4 / (4 + 9))
    assert joint["dice"][0] == pytest.approx(2 * 4 / (4 + 18))


def test_object_stats_mean_intensity_and_no_mutation():
    lab = np.array([[1, 1, 0, 2]])
    img = np.array([[2.0, 4.0, 9.0, 1.0]])
    before = lab.copy()
    s = object_stats(lab, image=img)
    assert s["mean_intensity"].tolist() == [3.0, 1.0]
    assert set(s) == {"index", "area", "mean_intensity"}
    np.testing.assert_array_equal(lab, before)


def test_object_stats_refuses_negative_ids():
    with pytest.raises(ValueError, match="non-negative"):
        object_stats(np.array([[1, -1]]))


def test_error_map_codes():
    lab = np.array([[5, 5, 0, 0]])
    pred = np.array([[0.9, 0.2, 0.7, 0.1]])
    assert error_map(lab, pred).tolist() == [[TRUE_POSITIVE, FALSE_NEGATIVE, FALSE_POSITIVE, 0]]
    assert error_map(lab, np.array([[1, 0, 1, 0]], np.uint8)).tolist() == [[1, 3, 2, 0]]


def test_error_map_shape_mismatch():
    with pytest.raises(ValueError, match="same shape"):
        error_map(np.zeros((3, 3), int), np.zeros((3, 4)))


def test_hot_spots_are_the_true_maxima_worst_first():
    m = np.zeros((64, 64), np.float32)
    centres = {(10, 12): 1.0, (40, 50): 4.0, (50, 10): 2.0, (30, 30): 3.0}
    for (r, c), h in centres.items():
        m[r - 1 : r + 2, c - 1 : c + 2] = h
    spots = hot_spots(m, k=3, sigma=1.0)
    assert [s.peak_position for s in spots] == [(40, 50), (30, 30), (50, 10)]
    assert [s.rank for s in spots] == [1, 2, 3]
    assert spots[0].peak > spots[1].peak > spots[2].peak
    for s in spots:
        assert s.centroid == pytest.approx(s.peak_position, abs=0.01)
        (r0, c0), (r1, c1) = s.bbox
        assert r0 <= s.peak_position[0] < r1 and c0 <= s.peak_position[1] < c1
    top = spots[0]
    (r0, c0), (r1, c1) = top.bbox
    region_raw = m[r0:r1, c0:c1]
    assert top.total == pytest.approx(region_raw.sum())  # the 3x3 plateau and nothing else
    assert top.mean == pytest.approx(top.total / top.area)


def test_hot_spots_signed_map_uses_magnitude():
    m = np.zeros((30, 30))
    m[5, 5] = -5.0
    m[20, 20] = 1.0
    spots = hot_spots(m, k=2, sigma=1.0)
    assert spots[0].peak_position == (5, 5)


def test_hot_spots_zero_map_and_bad_k():
    assert hot_spots(np.zeros((8, 8)), k=3) == []
    with pytest.raises(ValueError, match="k must be"):
        hot_spots(np.ones((8, 8)), k=0)


def test_hot_spots_3d_and_frames():
    m = np.zeros((3, 20, 20))
    m[0, 5, 5] = 2.0
    m[2, 15, 15] = 1.0
    spots = hot_spots(m, k=5, sigma=1.0, frame_axes=1)
    assert [s.peak_position for s in spots] == [(0, 5, 5), (2, 15, 15)]
    assert all(s.bbox[1][0] - s.bbox[0][0] == 1 for s in spots)


def _hot_spot_reference(m: np.ndarray, k: int, sigma: float) -> list[tuple]:
    """The regions of hot_spots' docstring, the slow obvious way: one region at a time,
    over the whole map (rank, peak position, peak, area, total of |m|)."""
    s = ndi.gaussian_filter(np.abs(m.astype(np.float64)), sigma, mode="nearest")
    comp, n = ndi.label(s > s.mean() + 2.0 * s.std(), structure=np.ones((3,) * m.ndim))
    rows = []
    for i in range(1, n + 1):
        inside = comp == i
        masked = np.where(inside, s, -np.inf)
        pos = np.unravel_index(int(np.argmax(masked)), m.shape)
        rows.append((float(masked.max()), pos, int(inside.sum()), float(np.abs(m)[inside].sum())))
    rows.sort(key=lambda r: -r[0])
    return [(rank, *r) for rank, r in enumerate(rows[:k], start=1)]


@pytest.mark.parametrize("shape", [(96, 80), (12, 20, 18)])
def test_hot_spots_match_a_region_by_region_reference(shape):
    rng = np.random.default_rng(5)
    m = rng.standard_normal(shape) * (rng.random(shape) < 0.05)  # many separate regions
    kept = m.copy()
    spots = hot_spots(m, k=25, sigma=1.0)
    expected = _hot_spot_reference(m, 25, 1.0)
    assert len(expected) > 10
    got = [(h.rank, h.peak, tuple(h.peak_position), h.area, h.total) for h in spots]
    assert [g[:2] for g in got] == [e[:2] for e in expected]  # ranks and exact peaks
    for g, e in zip(got, expected, strict=True):
        assert g[2] == tuple(int(i) for i in e[2])
        assert g[3] == e[3]
        assert g[4] == pytest.approx(e[4], rel=1e-12)
    np.testing.assert_array_equal(m, kept)  # the input is not changed
