"""The two-nearest-cells distance transform in a few tensor operations per pass (any device).

The same separable transform as :mod:`._two_nearest_numba` (proofs in ``docs/math.md``),
written for a GPU: a pass along an axis gives every position the two nearest distinct cells
among the ``(label, squared distance)`` entries of the positions within reach on its line,

.. math::

    \\text{out}(x) = \\text{two smallest distinct-label values of }
    \\{\\, e + s^2 (x - x')^2 \\;:\\; e \\text{ an entry of } x',\\ |x - x'| \\le K \\,\\}

with ``K = floor(sqrt(maxsq) / s)`` (the whole line without a cutoff). The ``2K + 1``
positions within reach are a strided view (``unfold``) of the padded entries. The nearest
cell is the ``min`` over their first entries (a position's second entry is never nearer than
its first); for the second cell each position offers one candidate, its first entry or,
where that is the nearest cell itself, its second (the two differ), and a second ``min``
over those gives it.
Lines are processed in chunks of bounded memory; chunk sizes depend on shapes only, so a
pass is a fixed number of kernel launches per chunk and no host synchronisation.
"""

from __future__ import annotations

import math

import torch

#: Upper bound on the bytes of the windows (values and mask) materialised at once by one
#: chunk of a pass (this path runs on GPUs: large chunks mean few launches).
CHUNK_BYTES = 2**30


def _reach(n: int, step2: float, maxsq: float) -> int:
    """The largest offset k along a line of n positions with k²·step2 <= maxsq."""
    if not math.isfinite(maxsq):
        return n - 1
    k = int(math.sqrt(maxsq / step2))
    while (k + 1) ** 2 * step2 <= maxsq:  # guard the float square root
        k += 1
    return min(n - 1, k)


def _pass_lines(l1, v1, l2, v2, step2: float, maxsq: float):
    """One pass along the last axis of 2D ``(lines, n)`` entries; returns the new entries."""
    n_lines, n = l1.shape
    k = _reach(n, step2, maxsq)
    width = 2 * k + 1
    dev, vdt = v1.device, v1.dtype
    off = (torch.arange(-k, k + 1, device=dev, dtype=vdt) ** 2) * step2
    # bytes per line of the windows materialised at once: three of values, one mask
    per_line = n * width * (3 * v1.element_size() + 1)
    chunk = max(1, min(n_lines, CHUNK_BYTES // max(per_line, 1)))
    # the entries padded with "none" once per pass; windows are views of these
    pad = torch.nn.functional.pad
    p_l1, p_l2 = (pad(t, (k, k), value=0) for t in (l1, l2))
    p_v1, p_v2 = (pad(t, (k, k), value=math.inf) for t in (v1, v2))
    outs = ([], [], [], [])
    for start in range(0, n_lines, chunk):
        sl = slice(start, start + chunk)
        # windows (chunk, n, width): strided views, except the values plus the offsets' squares
        w_l1 = p_l1[sl].unfold(-1, width, 1)
        w_l2 = p_l2[sl].unfold(-1, width, 1)
        w_v1 = p_v1[sl].unfold(-1, width, 1) + off
        # the nearest cell is among the first entries (a second entry is never nearer)
        n1, i1 = w_v1.min(dim=-1, keepdim=True)
        m1 = w_l1.gather(-1, i1)
        # each position offers one candidate for the second cell: its first entry, or its
        # second one where the first is the nearest cell itself
        own = w_l1 == m1
        w_v2 = p_v2[sl].unfold(-1, width, 1) + off
        n2, i2 = torch.where(own, w_v2, w_v1).min(dim=-1, keepdim=True)
        m2 = torch.where(own.gather(-1, i2), w_l2.gather(-1, i2), w_l1.gather(-1, i2))
        for out, t in zip(outs, (m1, n1, m2, n2), strict=True):
            out.append(t.squeeze(-1))
    l1, v1, l2, v2 = (o[0] if len(o) == 1 else torch.cat(o, dim=0) for o in outs)
    if math.isinf(maxsq):
        # nothing is beyond reach: only a label picked among "none" values (inf) goes
        return l1.masked_fill(torch.isinf(v1), 0), v1, l2.masked_fill(torch.isinf(v2), 0), v2
    far1, far2 = v1 > maxsq, v2 > maxsq  # inf included
    return (
        l1.masked_fill(far1, 0),
        v1.masked_fill(far1, math.inf),
        l2.masked_fill(far2, 0),
        v2.masked_fill(far2, math.inf),
    )


def two_nearest_sq(labels: torch.Tensor, spacing, maxsq: float, dtype=torch.float64):
    """Labels and squared distances of the two nearest distinct cells (torch, any device).

    Same contract as :func:`._two_nearest_numba.two_nearest_sq`, with tensors: int64 labels
    (0 = none) and squared distances of ``dtype`` (``inf`` = none).
    """
    dev = labels.device
    lab = labels.to(torch.int64)
    inf = torch.tensor(math.inf, dtype=dtype, device=dev)
    state = (
        lab,
        torch.where(lab > 0, torch.zeros((), dtype=dtype, device=dev), inf),
        torch.zeros_like(lab),
        torch.full(lab.shape, math.inf, dtype=dtype, device=dev),
    )
    for ax in range(labels.ndim - 1, -1, -1):
        moved = [t.movedim(ax, -1) for t in state]
        mshape = moved[0].shape
        flat = [t.reshape(-1, mshape[-1]) for t in moved]
        out = _pass_lines(*flat, float(spacing[ax]) ** 2, float(maxsq))
        state = tuple(t.reshape(mshape).movedim(-1, ax) for t in out)
    return tuple(t.contiguous() for t in state)
