"""The U-Net weight map of Ronneberger et al. 2015, in cheap parts over cached distances.

.. math::

    w(x) = w_c(x) + w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

The distances d1, d2 (:func:`~napari_losslens.core.distances.cell_distances`) are the
expensive part; :func:`border_term`, :func:`class_weight_map` and
:func:`weight_map_from_distances` are elementwise and cheap, so that a caller that keeps the
distances can re-evaluate the map as w0, σ or the class weights move.

Reference: O. Ronneberger, P. Fischer, T. Brox, "U-Net: Convolutional Networks for
Biomedical Image Segmentation", MICCAI 2015, eq. (2).
"""

from __future__ import annotations

import itertools
import math
import warnings

import numpy as np
import torch

from ._arrays import (
    ArrayLike,
    as_tensor,
    check_dask_chunks,
    check_fits,
    check_label_array,
    check_same_shape,
    is_dask,
    is_torch,
    resolve_device,
    spacing_in_units,
    to_caller,
    validate_labels,
    validate_spacing,
)
from .distances import _two_nearest

__all__ = [
    "BORDER_EPS",
    "border_term",
    "class_weight_map",
    "cutoff_radius",
    "separate_touching_cells",
    "unet_weight_map",
    "unet_weight_map_dask",
    "weight_map_from_distances",
]

#: Relative size of the border term below which it is dropped: the map is exact to
#: ``BORDER_EPS * w0`` absolute, ten times inside the documented 1e-4·w0.
BORDER_EPS = 1e-5


def _check_w0_sigma(w0: float, sigma: float) -> tuple[float, float]:
    try:
        w0, sigma = float(w0), float(sigma)
    except (TypeError, ValueError) as err:
        raise TypeError(f"w0 and sigma must be numbers, got {w0!r} and {sigma!r}") from err
    if not math.isfinite(w0) or w0 < 0:
        raise ValueError(f"w0 must be a finite number >= 0, got {w0}")
    if not math.isfinite(sigma) or sigma <= 0:
        raise ValueError(f"sigma must be a finite number > 0, got {sigma}")
    return w0, sigma


def cutoff_radius(w0: float, sigma: float, eps: float | None = None) -> float:
    """Distance beyond which the border term is below ``eps`` (default ``BORDER_EPS·w0``).

    .. math::

        R = \\sigma \\sqrt{2 \\ln(w_0 / \\varepsilon)}

    Since d1 + d2 >= d2, a pixel whose second-nearest cell lies beyond R gets a border term
    below ε, so distances need only be known up to R. Returns 0 when ``w0 <= eps``.

    Example:
        >>> round(cutoff_radius(10.0, 5.0), 3)
        23.993
    """
    w0, sigma = _check_w0_sigma(w0, sigma)
    if w0 == 0:
        return 0.0
    if eps is None:
        eps = BORDER_EPS * w0
        if eps == 0.0:  # w0 so small (subnormal) that its 1e-5 underflows: no border
            return 0.0
    if eps <= 0:
        raise ValueError(f"eps must be > 0, got {eps}")
    if w0 <= eps:
        return 0.0
    return sigma * math.sqrt(2.0 * math.log(w0 / eps))


def border_term(d1: ArrayLike, d2: ArrayLike, *, w0: float = 10.0, sigma: float = 5.0):
    """The separation-border term of the U-Net weight map.

    .. math::

        b(x) = w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

    0 where d2 is ``inf`` (no second cell). Returns the caller's array kind.
    """
    w0, sigma = _check_w0_sigma(w0, sigma)
    check_same_shape(d1, d2, "d1", "d2")
    t1 = d1 if is_torch(d1) else as_tensor(d1)
    t2 = (d2 if is_torch(d2) else as_tensor(d2)).to(t1.device)
    t1, t2 = _float_distances(t1, t2)
    check_fits({"w0": w0}, t1.dtype, "border term")
    return to_caller(_border(t1, t2, w0, sigma), d1)


def _float_distances(t1: torch.Tensor, t2: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Distances as floating tensors of one dtype (float32 unless one is float64)."""
    dt = torch.float64 if torch.float64 in (t1.dtype, t2.dtype) else torch.float32
    return t1.to(dt), t2.to(dt)


def _border(t1: torch.Tensor, t2: torch.Tensor, w0: float, sigma: float) -> torch.Tensor:
    """w0·exp(−((d1 + d2)/σ)²/2), exact for any σ in [0, inf] and any distances.

    Computed as r = d1/σ + d2/σ, so that neither (d1 + d2)² nor σ² can overflow; in float64
    when σ is outside the normal range of the distances' dtype. r = inf (no second cell, or
    σ negligible) gives 0; σ = inf gives w0 wherever d2 is finite.
    """
    dtype = t1.dtype
    if sigma == 0.0:  # σ below every distance (it underflowed in the caller's units)
        r = torch.where(t1 + t2 > 0, math.inf, 0.0).to(dtype)
    elif math.isinf(sigma):
        r = torch.where(torch.isinf(t2) | torch.isinf(t1), math.inf, 0.0).to(dtype)
    else:
        fi = torch.finfo(dtype)
        if fi.tiny <= sigma <= math.sqrt(fi.max):
            # the common case, in place (one temporary): if d1 + d2 overflows here, then
            # (d1 + d2)/σ > sqrt(max) and the border term is 0 either way
            r = (t1 + t2) / sigma
            if not r.requires_grad:  # in place: one temporary for the whole term
                return r.mul_(r).mul_(-0.5).exp_().mul_(w0)
        else:
            a, b = (t1, t2) if fi.tiny <= sigma <= fi.max else (t1.double(), t2.double())
            r = a / sigma + b / sigma
    return (w0 * torch.exp(-0.5 * r * r)).to(dtype)


def _parse_class_weights(class_weights) -> tuple[float, float] | str | None:
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        if class_weights.lower() == "balanced":
            return "balanced"
        raise ValueError(
            f"class_weights must be None, 'balanced' or a pair (w_background, "
            f"w_foreground), got {class_weights!r}"
        )
    try:
        pair = tuple(float(v) for v in class_weights)
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"class_weights must be None, 'balanced' or a pair of numbers, got {class_weights!r}"
        ) from err
    if len(pair) != 2:
        raise ValueError(
            f"class_weights must be a pair (w_background, w_foreground), got {len(pair)} values"
        )
    if not all(math.isfinite(v) and v >= 0 for v in pair):
        raise ValueError(f"class weights must be finite and >= 0, got {pair}")
    return pair


def _class_weights_pair(foreground: torch.Tensor, class_weights) -> tuple[float, float]:
    cw = _parse_class_weights(class_weights)
    if cw is None:
        return 1.0, 1.0
    if cw == "balanced":
        return balanced_class_weights(foreground.numel(), int(foreground.sum()))
    return cw


def balanced_class_weights(n: int, n_foreground: int) -> tuple[float, float]:
    """``(w_background, w_foreground)`` with each class weighted ``n / (2 · n_class)``.

    Both classes then carry the same total weight n/2; an absent class gets 0.
    """
    n_bg = n - n_foreground
    return (n / (2.0 * n_bg) if n_bg else 0.0, n / (2.0 * n_foreground) if n_foreground else 0.0)


def halo_pixels(radius: float, spacing, extra: int = 1) -> tuple[int, ...]:
    """Pixels per axis that hold every point within ``radius`` (in spacing units), plus
    ``extra`` (1 for rounding, 2 when touching cells are separated inside the tile)."""
    out = []
    for s in spacing:
        q = radius / s if radius > 0 else 0.0  # inf when radius is huge or s tiny
        out.append((math.ceil(q) if q < _MAX_HALO else _MAX_HALO) + extra)
    return tuple(out)


_MAX_HALO = 2**40  # more pixels than any axis has: the whole axis is the halo


def class_weight_map(labels: ArrayLike, class_weights=None, *, dtype=torch.float32):
    """The class-balancing term wc(x) of the U-Net weight map.

    - ``None``: wc = 1 everywhere.
    - ``(w_background, w_foreground)``: those two values.
    - ``"balanced"``: each class gets ``n_pixels / (2 · n_pixels_of_that_class)``, so that
      both classes carry the same total weight; a class that is absent gets 0.

    Args:
        labels: label image or binary mask (foreground = ``labels > 0``).
    """
    dev = labels.device if is_torch(labels) else torch.device("cpu")
    lab = validate_labels(labels, dev, ndims=None)
    w_bg, w_fg = _class_weights_pair(lab > 0, class_weights)
    check_fits({"class_weights": max(w_bg, w_fg)}, dtype, "class weight map")
    wc = torch.where(
        lab > 0,
        torch.tensor(w_fg, dtype=dtype, device=dev),
        torch.tensor(w_bg, dtype=dtype, device=dev),
    )
    return to_caller(wc, labels)


def _separate_touching(lab: torch.Tensor) -> torch.Tensor:
    """Tensor version of :func:`separate_touching_cells` (any device)."""
    big = torch.iinfo(lab.dtype).max  # a sentinel no neighbour id is smaller than
    fg = lab > 0
    padded = _pad(torch.where(fg, lab, torch.full_like(lab, big)), big)
    neighbour_min = torch.full_like(lab, big)
    for offset in itertools.product((-1, 0, 1), repeat=lab.ndim):
        if not any(offset):
            continue
        sl = tuple(slice(1 + o, 1 + o + n) for o, n in zip(offset, lab.shape, strict=True))
        neighbour_min = torch.minimum(neighbour_min, padded[sl])
    remove = fg & (neighbour_min < lab)
    return torch.where(remove, torch.zeros_like(lab), lab)


def _pad(t: torch.Tensor, value: int) -> torch.Tensor:
    out = torch.full(tuple(n + 2 for n in t.shape), value, dtype=t.dtype, device=t.device)
    out[tuple(slice(1, -1) for _ in t.shape)] = t
    return out


def separate_touching_cells(labels: ArrayLike):
    """Open a one-pixel gap wherever two different cells touch.

    A pixel of cell ``b`` becomes background (0) when one of its full-connectivity neighbours
    (8 in 2D, 26 in 3D, diagonals included) belongs to a cell with a *smaller* positive id.
    So only the higher-id side of each contact loses pixels, and afterwards no two different
    cells are neighbours in that connectivity. The cell with the smallest id of a contact
    keeps all its pixels; a cell only one pixel thick along a contact can lose that part, and
    a cell entirely made of such pixels disappears. Background pixels and cells that touch
    nothing are unchanged.

    This is the morphological separation border of the U-Net paper: touching cells become
    cells separated by background, which then gets the large border weight.

    Returns a new array of the caller's kind and dtype; the input is not modified.
    """
    dev = labels.device if is_torch(labels) else torch.device("cpu")
    lab = validate_labels(labels, dev, ndims=None)
    out = _separate_touching(lab)
    if is_torch(labels):
        return out.to(labels.dtype)

    return out.numpy().astype(np.asarray(labels).dtype, copy=False)


def _foreground_mask(foreground, dev: torch.device) -> torch.Tensor:
    """``foreground > 0`` as a bool tensor on ``dev``, for any label or mask dtype."""
    if not is_torch(foreground):
        return torch.from_numpy(np.ascontiguousarray(np.asarray(foreground) > 0)).to(dev)
    if foreground.dtype == torch.bool:
        return foreground.to(dev)
    wide = torch.float64 if foreground.dtype.is_floating_point else torch.int64
    return foreground.to(dev).to(wide) > 0  # uint16/uint32 have no comparison kernels


def weight_map_from_distances(
    foreground: ArrayLike,
    d1: ArrayLike,
    d2: ArrayLike,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights=None,
    background_only: bool = True,
):
    """The U-Net weight map from precomputed distances (the cheap part, for live updates).

    .. math::

        w(x) = w_c(x) + [\\,x \\in \\text{background}\\,] \\cdot
               w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

    (the bracket is 1 everywhere when ``background_only=False``).

    Args:
        foreground: the labels (foreground = ``> 0``) the distances were computed from,
            after :func:`separate_touching_cells` if that was used.
        d1, d2: from :func:`~napari_losslens.core.distances.cell_distances`, known at least up
            to :func:`cutoff_radius` ``(w0, sigma)``.
    """
    w0, sigma = _check_w0_sigma(w0, sigma)
    check_same_shape(foreground, d1, "labels", "d1")
    check_same_shape(d1, d2, "d1", "d2")
    t1 = d1 if is_torch(d1) else as_tensor(d1)
    dev = t1.device
    t2 = (d2 if is_torch(d2) else as_tensor(d2)).to(dev)
    t1, t2 = _float_distances(t1, t2)
    fg = _foreground_mask(foreground, dev)
    pair = _class_weights_pair(fg, class_weights)
    return to_caller(_weight_map(fg, t1, t2, w0, sigma, pair, background_only), d1)


def _weight_map(fg, t1, t2, w0, sigma, pair, background_only) -> torch.Tensor:
    """wc + border from distances (σ in the distances' units, possibly 0 or inf)."""
    w_bg, w_fg = pair
    check_fits({"w0": w0, "class_weights": max(w_bg, w_fg)}, t1.dtype, "weight map")
    border = _border(t1, t2, w0, sigma)
    if background_only:
        border = torch.where(fg, torch.zeros_like(border), border)
    wc = torch.where(
        fg,
        torch.tensor(w_fg, dtype=border.dtype, device=border.device),
        torch.tensor(w_bg, dtype=border.dtype, device=border.device),
    )
    return border + wc


def unet_weight_map(
    labels: ArrayLike,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights=None,
    spacing=None,
    background_only: bool = True,
    separate_touching: bool = False,
    device=None,
    dtype: torch.dtype = torch.float32,
    tile_voxels: int | None = None,
):
    """The U-Net weight map of Ronneberger et al. 2015 for an instance label image.

    .. math::

        w(x) = w_c(x) + w_0 \\exp\\left(-\\frac{(d_1(x) + d_2(x))^2}{2\\sigma^2}\\right)

    d1 and d2 are the distances to the nearest and the second-nearest cell (in ``spacing``
    units, see :func:`~napari_losslens.core.distances.cell_distances`); wc is the class
    weight (:func:`class_weight_map`). The border term is 0 where there is no second cell,
    and with ``background_only=True`` (the paper's intent: it weights the gaps between
    cells) it is added on background pixels only.

    Exactness: distances are computed exactly up to the cutoff
    R = σ·√(2·ln(w0/ε)) with ε = 1e-5·w0; beyond R the border term is below ε and is
    dropped, so the map equals the definition within 1e-5·w0 everywhere.

    Reference: Ronneberger, Fischer, Brox, "U-Net: Convolutional Networks for Biomedical
    Image Segmentation", MICCAI 2015, eq. (2).

    Args:
        labels: 2D or 3D instance labels (non-negative integer ids, 0 = background).
        w0: weight of the border term (>= 0).
        sigma: width of the border term in ``spacing`` units (> 0).
        class_weights: ``None`` (wc = 1), ``(w_background, w_foreground)`` or
            ``"balanced"``.
        spacing: pixel size per axis (default 1).
        background_only: add the border term on background pixels only (default) or
            everywhere.
        separate_touching: first open a one-pixel gap between touching cells
            (:func:`separate_touching_cells`); class weights and distances then use the
            separated labels.
        device: ``None``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        dtype: result dtype, float32 by default.
        tile_voxels: the most voxels (halo included) computed in one piece; a larger array
            is computed tile by tile, each tile with a halo of the cutoff radius: the same
            result in bounded working memory. Default: :func:`default_tile_voxels` (one
            piece up to 2**22 voxels). On a GPU that runs out of memory the work is
            retried in smaller tiles, then on the CPU, each time with a
            ``ResourceWarning`` that says so.

    Returns:
        The weight map, of ``labels.shape``: numpy for numpy input, a tensor on the compute
        device for torch input, and a lazy dask array for a dask array (computed blockwise
        with a halo of the cutoff radius, equal to the in-memory result; see
        :func:`unet_weight_map_dask`).

    Raises:
        ValueError: bad labels, spacing, ``w0 < 0``, ``sigma <= 0``, class weights, device.

    Example:
        >>> import numpy as np
        >>> lab = np.zeros((5, 9), np.uint16); lab[:, :4] = 1; lab[:, 5:] = 2
        >>> w = unet_weight_map(lab, w0=10, sigma=5, device="cpu")
        >>> round(float(w[2, 4]), 4)  # the gap pixel: 1 + 10·exp(-(1+1)²/50)
        10.2312
    """
    if is_dask(labels):
        return unet_weight_map_dask(
            labels,
            w0=w0,
            sigma=sigma,
            class_weights=class_weights,
            spacing=spacing,
            background_only=background_only,
            separate_touching=separate_touching,
            device=device,
            dtype=dtype,
        )
    w0, sigma = _check_w0_sigma(w0, sigma)
    cw = _parse_class_weights(class_weights)
    dev = resolve_device(device, labels)
    if not is_torch(labels) and not hasattr(labels, "shape"):
        labels = np.asarray(labels)  # nested lists; arrays (and zarr) are sliced per tile
    shape = check_label_array(labels)
    sp = validate_spacing(spacing, len(shape))
    radius = cutoff_radius(w0, sigma)
    halo = halo_pixels(radius, sp, extra=2 if separate_touching else 1)
    # balanced class weights are at most n/2
    if cw is None:
        top_cw = 1.0
    elif cw == "balanced":
        top_cw = math.prod(shape) / 2  # n / (2·n_class) is at most n/2
    else:
        top_cw = max(cw)
    check_fits({"w0": w0, "class_weights": top_cw}, dtype, "weight map")
    budget = default_tile_voxels(math.prod(shape)) if tile_voxels is None else int(tile_voxels)
    if budget < 1:
        raise ValueError(f"tile_voxels must be a positive number of voxels, got {tile_voxels}")

    def run(device_, budget_):
        pair = _class_weights_pair_tiled(labels, cw, separate_touching, device_, budget_)
        return _weight_map_tiled(
            labels,
            device_,
            budget_,
            halo,
            sp,
            radius,
            pair,
            w0,
            sigma,
            background_only,
            separate_touching,
            dtype,
        )

    try:
        out = run(dev, budget)
    except torch.cuda.OutOfMemoryError:
        if dev.type != "cuda":
            raise
        torch.cuda.empty_cache()
        small = max(MIN_TILE_VOXELS, min(budget, math.prod(shape)) // 16)
        try:
            out = run(dev, small)
            warnings.warn(
                f"unet_weight_map ran out of GPU memory on {dev}; it finished in tiles of "
                f"at most {small} voxels (pass tile_voxels= to choose the size)",
                ResourceWarning,
                stacklevel=2,
            )
        except torch.cuda.OutOfMemoryError:
            torch.cuda.empty_cache()
            warnings.warn(
                f"unet_weight_map ran out of GPU memory on {dev} even in tiles of {small} "
                "voxels; it computed the map on the CPU instead",
                ResourceWarning,
                stacklevel=2,
            )
            out = run(torch.device("cpu"), budget)
            if is_torch(labels):  # tensors go back to the caller's device if they fit
                try:
                    out = out.to(dev)
                except torch.cuda.OutOfMemoryError:
                    pass  # left on the CPU: the warning above says where it ran
    return to_caller(out, labels)


#: Arrays up to this many voxels are computed in one piece; larger ones tile by tile with a
#: halo of the cutoff radius (same result, bounded working memory).
ONE_PIECE_VOXELS = 2**22
MIN_TILE_VOXELS = 2**10


def default_tile_voxels(n_voxels: int) -> int:
    """The tile size (voxels, halo included) used when ``tile_voxels`` is not given.

    Up to 2**22 voxels the array is one tile. Beyond, tiles hold a sixteenth of the array,
    between 2**20 and 2**23 voxels, so that the working memory (about 130 bytes per voxel
    of a tile) stays below 16 bytes per voxel of the array while halos stay a small share.
    """
    if n_voxels <= ONE_PIECE_VOXELS:
        return n_voxels
    return int(min(max(n_voxels // 16, 2**20), 2**23))


def _tiles(shape, halo, budget):
    """(extended slices, interior slices within the extension, output slices) per tile.

    Tiles are as large as the budget allows, counting their halo: the largest tile edge is
    halved until ``prod(edge + 2·halo) <= budget`` or no edge can shrink further.
    """
    edges = list(shape)

    def voxels(e):
        return math.prod(min(n, t + 2 * h) for n, t, h in zip(shape, e, halo, strict=True))

    while voxels(edges) > budget:
        ext = [min(n, t + 2 * h) for n, t, h in zip(shape, edges, halo, strict=True)]
        i = max(range(len(edges)), key=lambda k: (ext[k], edges[k]))
        if edges[i] <= 1:
            break
        edges[i] = (edges[i] + 1) // 2
    ranges = [range(0, n, t) for n, t in zip(shape, edges, strict=True)]
    for starts in itertools.product(*ranges):
        ext_sl, inner_sl, out_sl = [], [], []
        for st, t, n, h in zip(starts, edges, shape, halo, strict=True):
            stop = min(st + t, n)
            lo, hi = max(0, st - h), min(n, stop + h)
            ext_sl.append(slice(lo, hi))
            inner_sl.append(slice(st - lo, st - lo + (stop - st)))
            out_sl.append(slice(st, stop))
        yield tuple(ext_sl), tuple(inner_sl), tuple(out_sl)


def _class_weights_pair_tiled(labels, cw, separate, dev, budget):
    """The (background, foreground) class weights, counting over tiles when needed."""
    if cw is None:
        return 1.0, 1.0
    if cw != "balanced":
        return cw
    n = math.prod(labels.shape)
    n_fg = 0
    for ext, inner, _ in _tiles(tuple(labels.shape), (1,) * len(labels.shape), budget):
        lab = validate_labels(labels[ext], dev, int32_ok=dev.type == "cpu")
        if separate:
            lab = _separate_touching(lab)
        n_fg += int((lab[inner] > 0).sum())
    return balanced_class_weights(n, n_fg)


def _fused_applies(lab: torch.Tensor, sigma: float, dtype: torch.dtype) -> bool:
    """Whether the CPU kernels' fused formula computes this tile: CPU tensors, float32 or
    float64 out, and 1/σ finite and > 0 (σ = 0 or inf go through :func:`_border`)."""
    return (
        lab.device.type == "cpu"
        and dtype in (torch.float32, torch.float64)
        and 0.0 < sigma < math.inf
        and 0.0 < 1.0 / sigma < math.inf
    )


def _fused_weight_map(lab, v1, v2, w0, sigma, pair, background_only, dtype) -> torch.Tensor:
    """wc + border from squared distances in one parallel numba pass (CPU tensors).

    Same values as :func:`_weight_map` on ``sqrt(v1), sqrt(v2)`` (computed in float64 and
    rounded once), without the int64 mask, sqrt, exp and where temporaries.
    """
    # numba is imported only when the CPU path runs, as in distances._two_nearest (about
    # half a second that a GPU-only caller never pays); not a cycle: the kernels module
    # imports nothing from the package.
    from ._two_nearest_numba import weight_map_sq

    w_bg, w_fg = pair
    check_fits({"w0": w0, "class_weights": max(w_bg, w_fg)}, dtype, "weight map")
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    w = weight_map_sq(
        lab.numpy(), v1.numpy(), v2.numpy(), w0, sigma, w_bg, w_fg, background_only, np_dtype
    )
    return torch.from_numpy(w)


def _fused_from_labels(lab, sp_units, maxsq, w0, sigma, pair, background_only, dtype):
    """The whole map of a CPU tile from its labels: the kernels' transform with the formula
    fused into its last pass (:func:`._two_nearest_numba.unet_weight_map_sq`), which writes
    the map instead of the distances and computes d2 only where the border term is added.
    Same values as :func:`_fused_weight_map` on the transform's squared distances."""
    # numba is imported only when the CPU path runs (see _fused_weight_map)
    from ._two_nearest_numba import unet_weight_map_sq

    w_bg, w_fg = pair
    check_fits({"w0": w0, "class_weights": max(w_bg, w_fg)}, dtype, "weight map")
    np_dtype = np.float64 if dtype == torch.float64 else np.float32
    w = unet_weight_map_sq(
        lab.numpy(), sp_units, maxsq, w0, sigma, w_bg, w_fg, background_only, np_dtype
    )
    return torch.from_numpy(w)


def _weight_map_tiled(
    labels, dev, budget, halo, sp, radius, pair, w0, sigma, background_only, separate, dtype
):
    tiles = list(_tiles(tuple(labels.shape), halo, budget))
    # one tile: its map is the result (no copy into an output array)
    out = None if len(tiles) == 1 else torch.empty(tuple(labels.shape), dtype=dtype, device=dev)
    # distances and σ in units of the largest spacing: no square overflows/underflows
    unit, sp_units = spacing_in_units(sp)
    r_units = radius / unit
    maxsq = r_units * r_units if math.isfinite(r_units) else math.inf
    for ext, inner, out_sl in tiles:
        # the CPU kernels take int32 and int64 labels as they are (no int64 copy)
        lab = validate_labels(labels[ext], dev, int32_ok=dev.type == "cpu")
        if separate:
            lab = _separate_touching(lab)
        if radius > 0 and dev.type == "cpu" and _fused_applies(lab, sigma / unit, dtype):
            w = _fused_from_labels(
                lab, sp_units, maxsq, w0, sigma / unit, pair, background_only, dtype
            )[inner]
        elif radius > 0:
            _, v1, _, v2 = _two_nearest(lab, sp_units, maxsq)
            if _fused_applies(lab, sigma / unit, dtype):
                w = _fused_weight_map(
                    lab[inner],
                    v1[inner],
                    v2[inner],
                    w0,
                    sigma / unit,
                    pair,
                    background_only,
                    dtype,
                )
            else:
                d1 = torch.sqrt(v1[inner]).to(dtype)
                d2 = torch.sqrt(v2[inner]).to(dtype)
                del v1, v2
                w = _weight_map(lab[inner] > 0, d1, d2, w0, sigma / unit, pair, background_only)
        else:
            d1 = d2 = torch.full(lab[inner].shape, math.inf, dtype=dtype, device=dev)
            w = _weight_map(lab[inner] > 0, d1, d2, w0, sigma / unit, pair, background_only)
        if out is None:
            return w
        out[out_sl] = w
    return out


# --------------------------------------------------------------------------------------
# Blockwise on dask arrays
# --------------------------------------------------------------------------------------


def unet_weight_map_dask(
    labels,
    *,
    w0: float = 10.0,
    sigma: float = 5.0,
    class_weights=None,
    spacing=None,
    background_only: bool = True,
    separate_touching: bool = False,
    device=None,
    dtype: torch.dtype = torch.float32,
):
    """:func:`unet_weight_map` of a dask array, blockwise.

    The border term vanishes (below ε = 1e-5·w0) beyond the cutoff R = σ·√(2·ln(w0/ε))
    (:func:`cutoff_radius`). Every cell point within R of a pixel lies within
    ``ceil(R / spacing_i)`` pixels of it along each axis, so a block grown by that halo
    (``dask.array.map_overlap``) holds every cell that can matter for its interior, at its
    true distance: the block's weight map is exactly the whole image's there.

    Returns a lazy dask array of float32 (float64 with ``dtype=torch.float64``) with the
    labels' chunks, equal to the in-memory computation. ``class_weights="balanced"``
    triggers one eager pass that counts foreground pixels. Only the dask array's own
    methods are used, so this module never imports dask.
    """
    w0, sigma = _check_w0_sigma(w0, sigma)
    cw = _parse_class_weights(class_weights)
    check_dask_chunks(labels, "labels")
    resolve_device(device if device is not None else "cpu")  # refused now, not in a block
    if labels.ndim not in (2, 3):
        raise ValueError(
            f"labels must be 2D or 3D (all axes spatial), got {labels.ndim}D with shape "
            f"{labels.shape}"
        )
    sp = validate_spacing(spacing, labels.ndim)
    lab = labels
    if separate_touching:
        lab = lab.map_overlap(
            separate_touching_cells, depth=1, boundary="none", dtype=lab.dtype, trim=True
        )
    if cw == "balanced":
        cw = balanced_class_weights(int(np.prod(lab.shape)), int((lab > 0).sum().compute()))
    check_fits({"w0": w0, "class_weights": 1.0 if cw is None else max(cw)}, dtype, "weight map")
    depth = halo_pixels(cutoff_radius(w0, sigma), sp)
    np_dtype = np.float64 if dtype == torch.float64 else np.float32

    def block(b):
        return unet_weight_map(
            np.asarray(b),
            w0=w0,
            sigma=sigma,
            class_weights=cw,
            spacing=sp,
            background_only=background_only,
            separate_touching=False,
            device=device if device is not None else "cpu",
            dtype=dtype,
        ).astype(np_dtype, copy=False)

    depth = {i: min(d, s) for i, (d, s) in enumerate(zip(depth, lab.shape, strict=True))}
    return lab.map_overlap(block, depth=depth, boundary="none", dtype=np_dtype, trim=True)
