"""Distances to the nearest and second-nearest cell: the d1 and d2 of the U-Net weight map.

How it is computed (exact, not an approximation)
------------------------------------------------
For a pixel x let ``f_L(x)`` be the squared Euclidean distance from x to cell L. We want the
two smallest values of ``f_L(x)`` over distinct L. Squared Euclidean distance is separable:

.. math::

    f_L(x, y) = \\min_{x'} \\big( (x - x')^2 s_0^2 + g_L(x', y) \\big),

where ``g_L`` is the 1D distance along the other axis. So a pass along each axis in turn
computes the transform, as in the classic separable EDT. The one change: every pixel keeps
its **two nearest distinct labels** instead of one. Keeping two is enough at every stage: if a
label B were the third-best at some x' and still among the final two best at x, then the two
labels that beat it at x' would beat it at x too (same offset added), a contradiction.

The first pass (along axis 0) is an O(n) scan per line: a position's two nearest distinct
labels are among the nearest labelled pixel on each side and the nearest one on each side
with a different label. Each later pass takes, per line, the lower envelope of the parabolas
``f_i + s²(x - i)²`` of the positions' first entries (Felzenszwalb & Huttenlocher), which
gives the nearest cell and d1; then, over each run of positions that share their nearest
cell L, one lower envelope of the entries whose label is not L gives d2. With a finite
``max_distance`` the d2 envelopes only look that far, and values beyond it are dropped, so
the U-Net weight map, which needs distances only up to the cutoff radius of its border term,
pays for no more. The proofs are in ``docs/math.md``.

On the CPU the passes are numba kernels (:mod:`._two_nearest_numba`, parallel over lines,
in place, 16 bytes per voxel: int32 ids and float32 squared distances); on other devices
they are a few torch operations per pass (:mod:`._two_nearest_torch`). Both give the same
cells, and distances equal to float32 rounding.
"""

from __future__ import annotations

import math

import torch

from . import _two_nearest_torch
from ._arrays import (
    ArrayLike,
    resolve_device,
    spacing_in_units,
    to_caller,
    validate_labels,
    validate_spacing,
)

__all__ = ["cell_distances", "two_nearest_cells"]


def _check_max_distance(max_distance: float | None) -> float:
    if max_distance is None:
        return math.inf
    try:
        md = float(max_distance)
    except (TypeError, ValueError) as err:
        raise TypeError(f"max_distance must be a number or None, got {max_distance!r}") from err
    if math.isnan(md) or md < 0:
        raise ValueError(f"max_distance must be >= 0 or None, got {max_distance!r}")
    return md


def check_extent(shape: tuple[int, ...], spacing: tuple[float, ...], dtype: torch.dtype) -> None:
    """Raise ``ValueError`` when distances across the image could exceed ``dtype``'s range.

    The largest finite distance in an image is at most its diagonal,
    sqrt(Σ((n_i − 1)·s_i)²); it must be a finite ``dtype`` value.
    """
    unit, sp = spacing_in_units(spacing)
    diag = unit * math.sqrt(sum(((n - 1) * s) ** 2 for n, s in zip(shape, sp, strict=True)))
    top = float(torch.finfo(dtype).max)
    if diag > top:
        raise ValueError(
            f"spacing {spacing} is too large for a {tuple(shape)} image in "
            f"{str(dtype).replace('torch.', '')}: distances reach {diag:.4g}, above the largest "
            f"value {top:.4g}; spacing times the image diagonal (in pixels) must stay below it: "
            "use a larger length unit or dtype=torch.float64"
        )


def _two_nearest(lab: torch.Tensor, spacing: tuple[float, ...], maxsq: float):
    """Dispatch to the numba kernels on the CPU and to torch ops elsewhere."""
    if lab.device.type == "cpu":
        # numba is imported (and its cached kernels loaded) only when the CPU path runs:
        # that costs about half a second, which a GPU-only or lossless caller never pays.
        # Not a cycle: _two_nearest_numba imports nothing from the package.
        from ._two_nearest_numba import two_nearest_sq

        out = two_nearest_sq(lab.numpy(), spacing, maxsq)
        return tuple(torch.from_numpy(a) for a in out)
    return _two_nearest_torch.two_nearest_sq(lab, spacing, maxsq)


def two_nearest_cells(
    labels: ArrayLike,
    *,
    spacing=None,
    max_distance: float | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
):
    """Ids and distances of the nearest and second-nearest distinct cell of every pixel.

    Like :func:`cell_distances`, and also returns which cells those are.

    Returns:
        ``(id1, d1, id2, d2)``: int64 ids on every device (0 where there is no such cell
        within ``max_distance``; the CPU kernels work in int32 and the ids are widened on
        return) and distances of ``dtype`` (``inf`` there), in the caller's array kind.
    """
    dev = resolve_device(device, labels)
    # the CPU kernels take int32 and int64 labels as they are (no int64 copy)
    lab = validate_labels(labels, dev, int32_ok=dev.type == "cpu")
    sp = validate_spacing(spacing, lab.ndim)
    md = _check_max_distance(max_distance)
    check_extent(tuple(lab.shape), sp, dtype)
    # in units of the largest spacing (no square overflows or underflows), scaled back after
    unit, sp_units = spacing_in_units(sp)
    md_units = md / unit
    maxsq = md_units * md_units if math.isfinite(md_units) else math.inf
    l1, v1, l2, v2 = _two_nearest(lab, sp_units, maxsq)
    l1, l2 = l1.to(torch.int64), l2.to(torch.int64)  # int32 from the CPU kernels
    # the CPU kernels hold float32: scale in float64 (a huge or tiny unit would overflow or
    # underflow in float32) unless nothing needs it
    wide = v1.dtype if unit == 1.0 and dtype != torch.float64 else torch.float64
    d1 = (torch.sqrt(v1.to(wide)) * unit).to(dtype)
    d2 = (torch.sqrt(v2.to(wide)) * unit).to(dtype)
    return (
        to_caller(l1, labels),
        to_caller(d1, labels),
        to_caller(l2, labels),
        to_caller(d2, labels),
    )


def cell_distances(
    labels: ArrayLike,
    *,
    spacing=None,
    max_distance: float | None = None,
    device=None,
    dtype: torch.dtype = torch.float32,
):
    """Distance of every pixel to the nearest cell (d1) and to the second-nearest cell (d2).

    .. math::

        d_1(x) = \\min_{c} \\operatorname{dist}(x, c), \\qquad
        d_2(x) = \\min_{c \\neq c_1(x)} \\operatorname{dist}(x, c),

    where c runs over the cells (the positive label ids), ``dist`` is the Euclidean distance
    to the nearest pixel of the cell measured with ``spacing``, and ``c_1(x)`` is the nearest
    cell. A pixel inside cell c has d1 = 0, and d2 is its distance to the nearest *other*
    cell. These are the d1 and d2 of the U-Net weight map (Ronneberger et al. 2015).

    Args:
        labels: 2D or 3D array of non-negative integer ids (numpy or torch; bool and floats
            holding integers are accepted). 0 is background; ids need not be contiguous.
        spacing: the pixel size along each axis (a number, or one per axis); default 1.
            Distances are in these units. Any positive float64 works (values within a
            factor 1e150 of each other), as long as spacing times the image diagonal in
            pixels fits ``dtype``.
        max_distance: report distances up to this value; beyond it (and where there is no
            first or second cell at all) the result is ``inf``. ``None`` means no limit.
            A finite limit makes the computation O(pixels · max_distance).
        device: ``None`` (the tensor's device for torch input, otherwise CUDA when
            available, else CPU), ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: floating dtype of the result (float32 by default). On the CPU the squared
            distances are held in float32 (envelope arithmetic in float64), elsewhere in
            float64; the square root is taken once, so distances are exact to float32
            rounding (relative error below 1e-7) whatever ``dtype``.

    Returns:
        ``(d1, d2)``, each of ``labels.shape``: numpy arrays for numpy input, tensors on the
        compute device for torch input.

    Raises:
        ValueError: labels not 2D/3D, negative or non-integer ids; bad spacing, or one whose
            distances would not fit ``dtype``; negative max_distance; unavailable device.
        TypeError: non-numeric labels.

    Example:
        >>> import numpy as np
        >>> lab = np.zeros((1, 7), int); lab[0, 0] = 1; lab[0, 6] = 2
        >>> d1, d2 = cell_distances(lab, device="cpu")
        >>> d1.tolist(), d2.tolist()
        ([[0.0, 1.0, 2.0, 3.0, 2.0, 1.0, 0.0]], [[6.0, 5.0, 4.0, 3.0, 4.0, 5.0, 6.0]])
    """
    _, d1, _, d2 = two_nearest_cells(
        labels, spacing=spacing, max_distance=max_distance, device=device, dtype=dtype
    )
    return d1, d2
