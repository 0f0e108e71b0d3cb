"""CPU kernels of the two-nearest-cells distance transform (numba, parallel over lines).

The transform is separable (see :mod:`napari_losslens.core.distances` for the proof sketch):
for every pixel it keeps the two nearest *distinct* cells as (label, squared distance) pairs,
and each pass along one axis combines the pairs of the pixels on that line.

Arrays handed to these kernels are C-contiguous 2D views ``(n_lines, n)`` of the data with
the processed axis last. Squared distances are float64; label 0 means "no cell" and goes with
an infinite squared distance.
"""

from __future__ import annotations

import numpy as np
from numba import njit, prange

INF = np.inf


@njit(inline="always", cache=True)
def _insert(l1, v1, l2, v2, lab, val):
    """Insert candidate (lab, val) into the sorted distinct pair (l1, v1) <= (l2, v2)."""
    if lab == 0 or val >= v2:
        return l1, v1, l2, v2
    if lab == l1:
        if val < v1:
            v1 = val
        return l1, v1, l2, v2
    if lab == l2:
        # val < v2: improve the second, then keep the pair sorted
        if val < v1:
            return l2, val, l1, v1
        return l1, v1, l2, val
    if val < v1:
        return lab, val, l1, v1
    return l1, v1, lab, val


@njit(inline="always", cache=True)
def _store(o_l1, o_v1, o_l2, o_v2, r, i, l1, v1, l2, v2, maxsq):
    """Write a pair to row r, position i, dropping cells beyond ``maxsq``."""
    if v1 > maxsq:
        l1 = 0
        v1 = INF
    if v2 > maxsq:
        l2 = 0
        v2 = INF
    o_l1[r, i] = l1
    o_v1[r, i] = v1
    o_l2[r, i] = l2
    o_v2[r, i] = v2


@njit(parallel=True, cache=True)
def first_pass(lab, step2, maxsq, o_l1, o_v1, o_l2, o_v2):  # pragma: no cover - numba
    """1D two-nearest-distinct transform of binary-by-label lines, in O(n) per line.

    For each position the candidates are: the nearest labelled pixel on the left (a), the
    nearest one on the left whose label differs from a's (b), and the same two on the right.
    The two nearest distinct labels of the whole line are always among these four.
    """
    n_lines, n = lab.shape
    for r in prange(n_lines):
        la_pos = np.empty(n, np.int64)
        la_lab = np.empty(n, np.int64)
        lb_pos = np.empty(n, np.int64)
        lb_lab = np.empty(n, np.int64)
        a_pos = -1
        a_lab = 0
        b_pos = -1
        b_lab = 0
        for i in range(n):
            L = lab[r, i]
            if L > 0:
                if L != a_lab:
                    b_pos = a_pos
                    b_lab = a_lab
                a_pos = i
                a_lab = L
            la_pos[i] = a_pos
            la_lab[i] = a_lab
            lb_pos[i] = b_pos
            lb_lab[i] = b_lab
        a_pos = -1
        a_lab = 0
        b_pos = -1
        b_lab = 0
        for i in range(n - 1, -1, -1):
            L = lab[r, i]
            if L > 0:
                if L != a_lab:
                    b_pos = a_pos
                    b_lab = a_lab
                a_pos = i
                a_lab = L
            l1 = 0
            v1 = INF
            l2 = 0
            v2 = INF
            if a_lab > 0:
                d = (a_pos - i) * 1.0
                l1, v1, l2, v2 = _insert(l1, v1, l2, v2, a_lab, d * d * step2)
            if b_lab > 0:
                d = (b_pos - i) * 1.0
                l1, v1, l2, v2 = _insert(l1, v1, l2, v2, b_lab, d * d * step2)
            if la_lab[i] > 0:
                d = (i - la_pos[i]) * 1.0
                l1, v1, l2, v2 = _insert(l1, v1, l2, v2, la_lab[i], d * d * step2)
            if lb_lab[i] > 0:
                d = (i - lb_pos[i]) * 1.0
                l1, v1, l2, v2 = _insert(l1, v1, l2, v2, lb_lab[i], d * d * step2)
            _store(o_l1, o_v1, o_l2, o_v2, r, i, l1, v1, l2, v2, maxsq)


@njit(parallel=True, cache=True)
def next_pass(i_l1, i_v1, i_l2, i_v2, step2, maxsq, o_l1, o_v1, o_l2, o_v2):  # pragma: no cover
    """Combine the pairs along a line: out(x) = 2 smallest distinct over x' of
    in(x') + ((x - x')·step)².

    The scan moves outward from x and stops as soon as the offset term alone reaches the
    current second-smallest value (nothing further can enter) or exceeds ``maxsq``.
    """
    n_lines, n = i_l1.shape
    for r in prange(n_lines):
        for x in range(n):
            l1 = 0
            v1 = INF
            l2 = 0
            v2 = INF
            l1, v1, l2, v2 = _insert(l1, v1, l2, v2, i_l1[r, x], i_v1[r, x])
            l1, v1, l2, v2 = _insert(l1, v1, l2, v2, i_l2[r, x], i_v2[r, x])
            k = 1
            while True:
                off = k * k * step2
                if off >= v2 or off > maxsq:
                    break
                lo = x - k
                hi = x + k
                if lo < 0 and hi >= n:
                    break
                if lo >= 0:
                    l1, v1, l2, v2 = _insert(l1, v1, l2, v2, i_l1[r, lo], i_v1[r, lo] + off)
                    l1, v1, l2, v2 = _insert(l1, v1, l2, v2, i_l2[r, lo], i_v2[r, lo] + off)
                if hi < n:
                    l1, v1, l2, v2 = _insert(l1, v1, l2, v2, i_l1[r, hi], i_v1[r, hi] + off)
                    l1, v1, l2, v2 = _insert(l1, v1, l2, v2, i_l2[r, hi], i_v2[r, hi] + off)
                k += 1
            _store(o_l1, o_v1, o_l2, o_v2, r, x, l1, v1, l2, v2, maxsq)


def two_nearest_sq(labels: np.ndarray, spacing, maxsq: float):
    """Labels and squared distances of the two nearest distinct cells of every pixel.

    Args:
        labels: int64 array (any number of axes), 0 = background.
        spacing: one float per axis.
        maxsq: squared distance beyond which a cell is not reported (``inf`` for none).

    Returns:
        ``(l1, v1, l2, v2)``: int64 labels (0 = none) and float64 squared distances
        (``inf`` = none), each of ``labels.shape``.
    """
    ndim = labels.ndim
    order = list(range(ndim - 1, -1, -1))  # last axis first: it is contiguous
    state = None
    for j, ax in enumerate(order):
        step2 = float(spacing[ax]) ** 2
        if j == 0:
            lab2 = np.ascontiguousarray(labels.reshape(-1, labels.shape[-1]))
            out = [
                np.empty(lab2.shape, np.int64),
                np.empty(lab2.shape, np.float64),
                np.empty(lab2.shape, np.int64),
                np.empty(lab2.shape, np.float64),
            ]
            first_pass(lab2, step2, maxsq, *out)
            state = [a.reshape(labels.shape) for a in out]
            continue
        moved = [np.ascontiguousarray(np.moveaxis(a, ax, -1)) for a in state]
        mshape = moved[0].shape
        flat = [a.reshape(-1, mshape[-1]) for a in moved]
        out = [np.empty_like(a) for a in flat]
        next_pass(*flat, step2, maxsq, *out)
        state = [np.moveaxis(a.reshape(mshape), -1, ax) for a in out]
    return tuple(np.ascontiguousarray(a) for a in state)
