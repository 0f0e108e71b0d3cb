"""The two-nearest-cells distance transform in elementwise torch ops (any device).

The same separable algorithm as :mod:`._two_nearest_numba`, written as shifts of whole
arrays so that it runs on a GPU: each pass along an axis merges, for every offset
``k = 1, 2, ...``, the (label, squared distance) pairs found ``k`` pixels away, and stops once
``k²·step²`` exceeds every pixel's current second distance (or ``maxsq``).
"""

from __future__ import annotations

import math

import torch


def _insert(l1, v1, l2, v2, lab, val):
    """Vectorised insert of candidates (lab, val) into sorted distinct pairs."""
    valid = (lab != 0) & (val < v2)
    same1 = valid & (lab == l1)
    same2 = valid & (lab == l2) & ~same1
    new = valid & ~same1 & ~same2
    v1 = torch.where(same1, torch.minimum(v1, val), v1)
    s2swap = same2 & (val < v1)
    s2keep = same2 & ~s2swap
    nfirst = new & (val < v1)
    nsecond = new & ~nfirst
    promote = s2swap | nfirst
    nl1 = torch.where(s2swap, l2, torch.where(nfirst, lab, l1))
    nv1 = torch.where(promote, val, v1)
    nl2 = torch.where(promote, l1, torch.where(nsecond, lab, l2))
    nv2 = torch.where(promote, v1, torch.where(s2keep | nsecond, val, v2))
    return nl1, nv1, nl2, nv2


def _pass(state, axis: int, step2: float, maxsq: float):
    l1, v1, l2, v2 = (s.clone() for s in state)
    n = l1.shape[axis]
    k = 1
    while k < n:
        off = k * k * step2
        if off > maxsq or off >= float(v2.max()):
            break
        for src_start, dst_start in ((0, k), (k, 0)):
            length = n - k
            src = [s.narrow(axis, src_start, length) for s in state]
            dst = [d.narrow(axis, dst_start, length) for d in (l1, v1, l2, v2)]
            merged = _insert(*dst, src[0], src[1] + off)
            merged = _insert(*merged, src[2], src[3] + off)
            for d, m in zip(dst, merged, strict=True):
                d.copy_(m)
        k += 1
    inf = torch.tensor(math.inf, dtype=v1.dtype, device=v1.device)
    far1 = v1 > maxsq
    far2 = v2 > maxsq
    l1 = torch.where(far1, torch.zeros_like(l1), l1)
    v1 = torch.where(far1, inf, v1)
    l2 = torch.where(far2, torch.zeros_like(l2), l2)
    v2 = torch.where(far2, inf, v2)
    return l1, v1, l2, v2


def two_nearest_sq(labels: torch.Tensor, spacing, maxsq: float, dtype=torch.float64):
    """Labels and squared distances of the two nearest distinct cells (torch, any device).

    Same contract as :func:`._two_nearest_numba.two_nearest_sq`, with tensors.
    """
    l1 = labels.clone()
    inf = torch.tensor(math.inf, dtype=dtype, device=labels.device)
    v1 = torch.where(l1 > 0, torch.zeros((), dtype=dtype, device=labels.device), inf)
    l2 = torch.zeros_like(l1)
    v2 = torch.full(l1.shape, math.inf, dtype=dtype, device=labels.device)
    state = (l1, v1, l2, v2)
    for ax in range(labels.ndim - 1, -1, -1):
        state = _pass(state, ax, float(spacing[ax]) ** 2, maxsq)
    return state
