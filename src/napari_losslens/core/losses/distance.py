"""Distance-based losses: weighted by distances measured on the target (or prediction).

The U-Net weight map's cross-entropy (Ronneberger et al. 2015) and the survey's
distance-map losses: distance-penalised cross-entropy, boundary loss and the Hausdorff
distance-transform loss. Each takes ``spacing`` (the pixel size per axis, so distances are
in physical units) and is registered with
:func:`~napari_losslens.core.registry.register_loss`.

Conventions:

- Boundary loss and Hausdorff DT loss are means over the counted pixels (as in the
  authors' code), so they are pixel losses whose map is the per-pixel term.
- Distance maps are computed from the whole target (ignoring ``mask``, which only decides
  which pixels count) with ``scipy.ndimage.distance_transform_edt`` in ``spacing`` units;
  a map that needs a boundary is 0 when the target (or thresholded prediction) has no
  boundary, i.e. is empty or all foreground. They need the whole image at once, so only
  ``unet_ce`` (whose weight map is computed blockwise with a halo) runs on dask arrays.

References: O. Ronneberger et al., "U-Net", MICCAI 2015; S. Jadon, "A survey of loss
functions for semantic segmentation", IEEE CIBCB 2020, and the papers cited on each loss.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from .._arrays import as_tensor, check_same_shape, spacing_in_units, validate_spacing
from ..distances import check_extent
from ..registry import LossParam, register_loss
from ..weights import unet_weight_map
from ._context import LossContext
from ._terms import bce_terms, check_spatial, masked_sum

__all__ = [
    "UNET_WEIGHT_PARAMS",
    "boundary_signed_distance",
    "contour",
    "distance_penalty_map",
    "hausdorff_er_map",
    "log_hausdorff_dt_loss",
    "mean_contour_distance",
    "two_sided_distance",
]


def _edt(inside: np.ndarray, sampling: tuple[float, ...]) -> np.ndarray:
    """Distance from each True pixel to the nearest False pixel (0 on False pixels).

    All zeros when there is no False pixel (scipy's result is undefined there).
    """
    if inside.all():
        return np.zeros(inside.shape)
    return ndimage.distance_transform_edt(inside, sampling=sampling)


def _foreground(ctx: LossContext) -> np.ndarray:
    return (ctx.labels > 0).cpu().numpy()


def _in_context(values: np.ndarray, ctx: LossContext, loss: str, params: str) -> torch.Tensor:
    """A float64 distance term as a tensor of the context's dtype, refused if it overflows."""
    t = torch.as_tensor(values, dtype=ctx.dtype, device=ctx.device)
    if not bool(torch.isfinite(t).all()):
        top = float(torch.finfo(ctx.dtype).max)
        raise ValueError(
            f"loss {loss!r}: with {params} the distance term reaches {float(np.max(values)):.4g}, "
            f"above the largest {str(ctx.dtype).replace('torch.', '')} value {top:.4g}; use a "
            "larger length unit (smaller spacing values) or float64 input"
        )
    return t


def _two_sided_in_units(foreground: np.ndarray, spacing) -> tuple[np.ndarray, float]:
    """:func:`two_sided_distance` divided by ``unit``, and ``unit`` (the largest spacing value).

    The one place where the two-sided distances are computed: the EDT runs with
    ``spacing / unit`` (every value in (0, 1], so no square overflows or underflows), and
    each caller scales back by ``unit`` in the form it needs: :func:`two_sided_distance`
    by a product, the Hausdorff losses by ``unit^α`` in the log domain. No check of the
    range: a caller that scales back checks it (:func:`two_sided_distance`) or names the
    loss and its parameters when its result does not fit (``hausdorff_dt``).
    """
    fg = np.asarray(foreground, dtype=bool)
    unit, sp_units = spacing_in_units(validate_spacing(spacing, fg.ndim))
    if not fg.any() or fg.all():
        return np.zeros(fg.shape), unit
    return _edt(fg, sp_units) + _edt(~fg, sp_units), unit


def two_sided_distance(foreground: np.ndarray, spacing=None) -> np.ndarray:
    """Distance from every pixel to the nearest pixel of the other class.

    Foreground pixels get the distance to the nearest background pixel and background
    pixels the distance to the nearest foreground pixel (the distance map d of Karimi &
    Salcudean 2019), in ``spacing`` units. All zeros when one class is absent (no boundary).

    Args:
        foreground: bool array.
        spacing: pixel size per axis (default 1); distances are computed in units of its
            largest value and scaled back, so any positive spacing whose distances fit
            float64 works.

    Returns:
        float64 array of ``foreground.shape``.

    Raises:
        ValueError: bad spacing, or spacing times the image diagonal above the float64 range.
    """
    fg = np.asarray(foreground, dtype=bool)
    check_extent(fg.shape, validate_spacing(spacing, fg.ndim), torch.float64)
    d, unit = _two_sided_in_units(fg, spacing)
    return d * unit


def boundary_signed_distance(foreground: np.ndarray, spacing=None) -> np.ndarray:
    """The signed distance map φ of the boundary loss: positive outside, ≤ 0 inside.

    Outside the target, the distance to the nearest foreground pixel; inside, minus the
    distance to the nearest background pixel plus the smallest pixel size, so that inner
    boundary pixels get 0 (Kervadec et al.'s ``one_hot2dist``, which subtracts 1 pixel).
    All zeros when the target is empty or all foreground (no boundary).

    Returns:
        float64 array of ``foreground.shape``.

    Raises:
        ValueError: bad spacing, or spacing times the image diagonal above the float64 range.
    """
    fg = np.asarray(foreground, dtype=bool)
    sampling = validate_spacing(spacing, fg.ndim)
    check_extent(fg.shape, sampling, torch.float64)
    unit, sp_units = spacing_in_units(sampling)
    if not fg.any() or fg.all():
        return np.zeros(fg.shape)
    outside = _edt(~fg, sp_units)
    inside = _edt(fg, sp_units)
    return np.where(fg, -(inside - min(sp_units)), outside) * unit


def distance_penalty_map(foreground: np.ndarray, spacing=None) -> np.ndarray:
    """The penalty φ of the distance-penalised cross-entropy, in [0, 1): high at boundaries.

    On each side of the boundary, φ = (d_max − d)/d_max, with d the distance to the nearest
    pixel of the other class and d_max its largest value on that side: pixels next to the
    boundary get nearly 1, the innermost pixels 0 (the inverted, normalised distance map of
    Caliva et al. 2019 as implemented in Ma et al. 2020). All zeros when one class is absent.
    φ does not change when the spacing is scaled, so any valid spacing works.

    Returns:
        float64 array of ``foreground.shape``.
    """
    fg = np.asarray(foreground, dtype=bool)
    _, sp_units = spacing_in_units(validate_spacing(spacing, fg.ndim))
    phi = np.zeros(fg.shape)
    if not fg.any() or fg.all():
        return phi
    for side in (fg, ~fg):
        d = _edt(side, sp_units)
        d_max = d[side].max()
        phi[side] = (d_max - d[side]) / d_max
    return phi


_SPACING = LossParam("spacing", None, kind="spacing", description="pixel size per axis", gui=False)

#: The parameters of ``unet_ce`` that are :func:`~napari_losslens.core.unet_weight_map`'s:
#: what a caller that computes the weight map itself (the chunked path, the training
#: recorder) passes on.
UNET_WEIGHT_PARAMS = (
    "w0",
    "sigma",
    "class_weights",
    "spacing",
    "background_only",
    "separate_touching",
)


@register_loss(
    "unet_ce",
    title="U-Net weighted cross-entropy (shape-aware)",
    kind="pixel",
    params=(
        LossParam("w0", 10.0, description="weight of the border term", minimum=0.0, maximum=1e4),
        LossParam(
            "sigma",
            5.0,
            description="width of the border term (spacing units)",
            minimum=0.0,
            maximum=1e4,
            exclusive_minimum=True,
        ),
        LossParam(
            "class_weights",
            None,
            kind="class_weights",
            description="None, 'balanced' or (w_background, w_foreground)",
        ),
        LossParam(
            "background_only",
            True,
            kind="bool",
            description="add the border term on background pixels only",
        ),
        LossParam(
            "separate_touching",
            False,
            kind="bool",
            description="open a one-pixel gap between touching cells first",
        ),
        LossParam("spacing", None, kind="spacing", description="pixel size per axis", gui=False),
        LossParam(
            "weight_map",
            None,
            kind="array",
            description="a precomputed weight map to use instead",
            gui=False,
        ),
    ),
    formula=r"L(x) = -w(x)\,[\,y \log p + (1 - y)\log(1 - p)\,]",
    reference="Ronneberger et al. 2015, eq. (1)-(2); Jadon 2020 (shape-aware loss)",
)
def _unet_ce(
    ctx: LossContext,
    w0: float,
    sigma: float,
    class_weights,
    background_only: bool,
    separate_touching: bool,
    spacing,
    weight_map,
) -> torch.Tensor:
    """BCE weighted by the U-Net weight map of the target's instance labels."""
    if weight_map is None:
        w = unet_weight_map(
            ctx.labels,
            w0=w0,
            sigma=sigma,
            class_weights=class_weights,
            spacing=spacing,
            background_only=background_only,
            separate_touching=separate_touching,
            device=ctx.device,
            dtype=ctx.dtype,
        )
    else:
        check_same_shape(weight_map, ctx.labels, "weight_map", "target")
        w = as_tensor(weight_map).to(device=ctx.device)
        if w.dtype.is_complex or w.dtype == torch.bool:
            raise TypeError(f"weight_map must be a real numeric array, got dtype {w.dtype}")
        # one pass for all three checks: min and max propagate NaN, so both are finite iff
        # every value is; then min >= 0, and max fits the context's dtype
        lo, hi = (float(v) for v in torch.aminmax(w.detach())) if w.numel() else (0.0, 0.0)
        if not (math.isfinite(lo) and math.isfinite(hi)) or lo < 0:
            raise ValueError("weight_map must be finite and >= 0")
        top = float(torch.finfo(ctx.dtype).max)
        if hi > top:
            raise ValueError(
                f"weight_map values must fit {str(ctx.dtype).replace('torch.', '')} (at most "
                f"{top:.4g}), got a maximum of {hi:.4g}; pass float64 input"
            )
        w = w.to(ctx.dtype)
    return w * bce_terms(ctx)


@register_loss(
    "distance_penalized_ce",
    title="Distance map penalised cross-entropy",
    kind="pixel",
    params=(_SPACING,),
    formula=r"L(x) = -(1 + \phi(x))\,[\,y \log p + (1 - y)\log(1 - p)\,]",
    reference="Caliva et al. 2019 (MIDL); Jadon 2020; φ as in Ma et al. 2020",
)
def _distance_penalized_ce(ctx: LossContext, spacing) -> torch.Tensor:
    r"""BCE weighted by 1 + φ, φ an inverted distance map that is highest at boundaries.

    .. math::

        L(x) = -(1 + \phi(x))\,[\,y \log p + (1 - y)\log(1 - p)\,],\qquad
        \phi(x) = \frac{d_{\max} - d(x)}{d_{\max}}

    with d(x) the distance (in ``spacing`` units) to the nearest pixel of the other class
    and d_max its maximum on x's side of the boundary (:func:`distance_penalty_map`).
    φ = 0 for an empty or all-foreground target. Caliva et al. 2019.
    """
    phi = distance_penalty_map(_foreground(ctx), spacing)
    return (1.0 + torch.as_tensor(phi, dtype=ctx.dtype, device=ctx.device)) * bce_terms(ctx)


@register_loss(
    "boundary",
    title="Boundary loss",
    kind="pixel",
    params=(_SPACING,),
    formula=r"L(x) = p(x)\,\phi(x)",
    reference="Kervadec et al. 2019 (MIDL; Med. Image Anal. 2021); Jadon 2020",
)
def _boundary(ctx: LossContext, spacing) -> torch.Tensor:
    r"""Boundary loss p·φ with φ the signed distance map of the target (negative inside).

    .. math::

        L = \frac{1}{N}\sum_x p(x)\,\phi(x)

    φ (:func:`boundary_signed_distance`, in ``spacing`` units) is the distance to the
    target outside it and minus (distance to the background − smallest pixel size) inside,
    as Kervadec et al.'s code. The paper writes a sum over pixels; their code, and this
    loss, take the mean, so the scalar does not grow with the image size and the per-pixel
    map is p·φ. It is negative (a reward) where the prediction covers the target; combine
    it with a region loss (Kervadec et al. use Dice). φ = 0 for an empty or all-foreground
    target.
    """
    fg = _foreground(ctx)
    check_extent(fg.shape, validate_spacing(spacing, fg.ndim), ctx.dtype)
    phi = boundary_signed_distance(fg, spacing)
    return ctx.p * _in_context(phi, ctx, "boundary", f"spacing={spacing}")


def _hausdorff_distances(ctx: LossContext, spacing) -> tuple[np.ndarray, np.ndarray, float]:
    """d_p and d_y in units of the largest spacing value, and that unit.

    d_y is the two-sided distance map of the target, d_p that of [p > 0.5] (constants, no
    gradient). The physical distances are d·unit, and the Hausdorff terms
    (d_p^α + d_y^α)·unit^α: the callers apply unit^α = exp(α·ln(unit)) in the form that
    cannot overflow on the way (``hausdorff_dt`` per pixel, ``log_hausdorff_dt`` in the
    log domain).
    """
    d_y, unit = _two_sided_in_units(_foreground(ctx), spacing)
    d_p, _ = _two_sided_in_units((ctx.p.detach() > 0.5).cpu().numpy(), spacing)
    return d_p, d_y, unit


@register_loss(
    "hausdorff_dt",
    title="Hausdorff distance loss (distance transform)",
    kind="pixel",
    params=(
        LossParam("alpha", 2.0, description="exponent of the distances", minimum=0.0, maximum=4.0),
        _SPACING,
    ),
    formula=r"L(x) = (p(x) - y(x))^2\,\left(d_p(x)^\alpha + d_y(x)^\alpha\right)",
    reference="Karimi & Salcudean 2019 (IEEE TMI); Jadon 2020",
)
def _hausdorff_dt(ctx: LossContext, alpha: float, spacing) -> torch.Tensor:
    r"""Hausdorff distance loss from distance transforms (Karimi & Salcudean 2019).

    .. math::

        L = \frac{1}{N}\sum_x (p(x) - y(x))^2 \left(d_p(x)^\alpha + d_y(x)^\alpha\right)

    d_y is the distance map of the target and d_p that of the thresholded prediction
    [p > 0.5]: for each pixel, the distance to the nearest pixel of the other class
    (:func:`two_sided_distance`, in ``spacing`` units; 0 where a mask has no boundary).
    The distance maps are constants (no gradient), as in the paper.
    """
    d_p, d_y, unit = _hausdorff_distances(ctx, spacing)
    dist = d_p**alpha + d_y**alpha
    log_scale = alpha * math.log(unit)
    with np.errstate(over="ignore", divide="ignore"):
        if log_scale < 709.0:
            dist = dist * math.exp(log_scale)
        else:  # unit^α alone overflows float64, the product may not: in the log domain
            dist = np.where(dist > 0, np.exp(np.log(dist) + log_scale), 0.0)
    return (ctx.p - ctx.y) ** 2 * _in_context(
        dist, ctx, "hausdorff_dt", f"spacing={spacing} and alpha={alpha}"
    )


# --------------------------------------------------------------------------------------
# Hausdorff losses (Karimi & Salcudean 2019)
# --------------------------------------------------------------------------------------


def _erosion_kernel(ndim: int, dtype: torch.dtype, device) -> torch.Tensor:
    """The cross-shaped kernel of the erosion: 0.2 × cross (2D), 1/7 × 6-neighbourhood (3D)."""
    cross = torch.tensor([[0.0, 1.0, 0.0], [1.0, 1.0, 1.0], [0.0, 1.0, 0.0]])
    if ndim == 2:
        kernel = cross * 0.2
    else:
        centre = torch.zeros(3, 3)
        centre[1, 1] = 1.0
        kernel = torch.stack([centre, cross, centre]) / 7.0
    return kernel[None, None].to(device=device, dtype=dtype)


def hausdorff_er_map(
    p: torch.Tensor, y: torch.Tensor, alpha: float = 2.0, k: int = 10
) -> torch.Tensor:
    r"""Per-pixel term of the erosion-based Hausdorff loss; its mean is the loss.

    .. math::

        E_0 = (p - y)^2,\quad
        E_{i+1} = \mathrm{norm}\big(\mathrm{relu}(E_i * B - 0.5)\big),\quad
        L(x) = \sum_{i=1}^{k} E_i(x)\, i^{\alpha}

    B is a cross of weight 0.2 (2D) or the 6-neighbourhood of weight 1/7 (3D); norm maps
    the image to [0, 1] by its minimum and maximum (left as is when they agree).
    Karimi & Salcudean 2019; kornia ``HausdorffERLoss`` and ``HausdorffERLoss3D`` (whose
    mean over a two-channel (1 − p, p) input is the mean of this map).

    Args:
        p: (H, W) or (D, H, W) probabilities.
        y: the binary target, same shape.
        alpha: exponent of the erosion weights i^α.
        k: number of erosions.

    Returns:
        A tensor of ``p``'s shape.
    """
    conv = F.conv2d if p.ndim == 2 else F.conv3d
    kernel = _erosion_kernel(p.ndim, p.dtype, p.device)
    bound = ((p - y) ** 2)[None, None]
    eroded = torch.zeros_like(bound)
    dims = tuple(range(2, bound.ndim))
    for i in range(k):
        dilation = conv(bound, kernel, padding=1)
        erosion = (dilation - 0.5).masked_fill(dilation < 0.5, 0.0)
        e_max = erosion.amax(dim=dims, keepdim=True)
        e_min = erosion.amin(dim=dims, keepdim=True)
        rng = e_max - e_min
        scaled = (erosion - e_min) / torch.where(rng != 0, rng, torch.ones_like(rng))
        erosion = torch.where(rng != 0, scaled, erosion)
        eroded = eroded + erosion * float(i + 1) ** alpha
        bound = erosion
    return eroded[0, 0]


def _log1p_scaled(x: torch.Tensor, log_scale: float) -> torch.Tensor:
    """log(1 + x·e^s) for a 0-d float64 x ≥ 0, s = ``log_scale``, without overflow.

    e^s alone may overflow (or underflow) float64 where the result does not: where x·e^s
    exceeds e^36 (above which log1p(z) and log(z) agree to double precision) the result
    is log(x) + s; below it, log1p(x·e^s) with e^s a float where it is one and through
    exp(log(x) + s) otherwise. x = 0 gives 0 (with gradient 0: x is then a sum of
    squares that are all 0, whose gradients are 0 as well).
    """
    v = float(x.detach())
    if log_scale == 0.0 or v == 0.0:
        return torch.log1p(x)
    if math.log(v) + log_scale > 36.0:
        return torch.log(x) + log_scale
    if abs(log_scale) < 700.0:
        return torch.log1p(x * math.exp(log_scale))
    return torch.log1p(torch.exp(torch.log(x) + log_scale))


def log_hausdorff_dt_loss(
    p: torch.Tensor,
    y: torch.Tensor,
    d_p: torch.Tensor,
    d_y: torch.Tensor,
    mask: torch.Tensor | None = None,
    alpha: float = 2.0,
    unit: float = 1.0,
) -> torch.Tensor:
    r"""log(1 + Hausdorff distance-transform loss).

    .. math::

        L = \log\left(1 + \frac{u^\alpha}{N}\sum_x (p - y)^2 (d_p^\alpha + d_y^\alpha)\right)

    d_p and d_y are the two-sided distance maps of [p > 0.5] and of the target
    (:func:`two_sided_distance`), constants, in units of ``unit`` (u = 1: physical
    units). The sum is accumulated in float64 and u^α is applied in the log domain, so
    a unit of 1e300 (where u^α overflows float64) still gives a finite loss.
    MONAI ``LogHausdorffDTLoss``; Karimi & Salcudean 2019.

    Args:
        p, y: probabilities and binary target.
        d_p, d_y: the distance maps (same shape).
        mask: optional bool tensor of the counted pixels (N is their number).
        alpha: exponent of the distances.
        unit: the length of one distance unit (> 0, finite), e.g. the largest spacing value
            when the maps were computed in units of it.

    Returns:
        A 0-d tensor of ``p``'s dtype.

    Raises:
        ValueError: ``unit`` not finite and positive.

    Example:
        >>> y = torch.tensor([[0.0, 1.0, 1.0]])
        >>> d = torch.tensor([[1.0, 1.0, 2.0]])
        >>> p = torch.tensor([[0.5, 1.0, 1.0]])
        >>> round(float(log_hausdorff_dt_loss(p, y, d, d)), 4)  # log(1 + 0.25·2/3)
        0.1542
    """
    if not (math.isfinite(unit) and unit > 0):
        raise ValueError(f"unit must be finite and positive, got {unit!r}")
    n = p.numel() if mask is None else int(mask.sum())
    dist = d_p.double() ** alpha + d_y.double() ** alpha
    term = (p.double() - y.double()) ** 2 * dist
    return _log1p_scaled(masked_sum(term, mask) / n, alpha * math.log(unit)).to(p.dtype)


_HD_ALPHA = LossParam(
    "alpha", 2.0, description="exponent of the distances", minimum=0.0, maximum=4.0
)


@register_loss(
    "hausdorff_er",
    blockwise=False,
    title="Hausdorff loss (erosion)",
    kind="pixel",
    params=(
        LossParam(
            "alpha",
            2.0,
            description="exponent of the erosion weights i^α",
            minimum=0.0,
            maximum=4.0,
        ),
        LossParam("k", 10, kind="int", description="number of erosions", minimum=1, maximum=100),
    ),
    formula=(
        r"L(x) = \sum_{i=1}^{k} E_i(x)\, i^\alpha,\quad E_0 = (p - y)^2,"
        r"\ E_{i+1} = \mathrm{norm}(\mathrm{relu}(E_i * B - 0.5))"
    ),
    reference="Karimi & Salcudean 2019 (IEEE TMI); kornia HausdorffERLoss / HausdorffERLoss3D",
)
def _hausdorff_er(ctx: LossContext, alpha: float, k: int) -> torch.Tensor:
    """Erosion-based Hausdorff loss, per pixel (2D or 3D)."""
    check_spatial(ctx.p, "hausdorff_er")
    return hausdorff_er_map(ctx.p, ctx.y, alpha, k)


@register_loss(
    "log_hausdorff_dt",
    title="Log Hausdorff distance-transform loss",
    kind="region",
    params=(_HD_ALPHA, _SPACING),
    formula=r"L = \log\left(1 + \frac{1}{N}\sum (p - y)^2 (d_p^\alpha + d_y^\alpha)\right)",
    reference="MONAI LogHausdorffDTLoss; Karimi & Salcudean 2019 (IEEE TMI)",
)
def _log_hausdorff_dt(ctx: LossContext, alpha: float, spacing) -> torch.Tensor:
    """log(1 + the ``hausdorff_dt`` loss)."""
    d_p, d_y, unit = _hausdorff_distances(ctx, spacing)
    as_t = lambda a: torch.as_tensor(a, device=ctx.device)  # noqa: E731
    return log_hausdorff_dt_loss(ctx.p, ctx.y, as_t(d_p), as_t(d_y), ctx.mask, alpha, unit)


# --------------------------------------------------------------------------------------
# Shape-aware loss (Hayder et al. 2017; Jadon 2020)
# --------------------------------------------------------------------------------------


def contour(mask: np.ndarray) -> np.ndarray:
    """Pixels of ``mask`` with a face neighbour outside it (the image edge is not a contour).

    Args:
        mask: bool array, any dimension.

    Returns:
        bool array of ``mask.shape``.
    """
    m = np.asarray(mask, dtype=bool)
    structure = ndimage.generate_binary_structure(m.ndim, 1)
    return m & ~ndimage.binary_erosion(m, structure=structure, border_value=1)


def mean_contour_distance(pred: np.ndarray, target: np.ndarray, spacing=None) -> float:
    r"""Mean distance from the predicted contour to the target contour.

    .. math::

        E = \frac{1}{|\hat C|}\sum_{x \in \hat C} \min_{z \in C} \lVert x - z \rVert

    with Ĉ and C the :func:`contour` of ``pred`` and ``target``, in ``spacing`` units.
    0 when either contour is empty (no boundary to compare).

    The distances are computed in units of the largest spacing value and scaled back, so
    no square of a huge or tiny spacing overflows or underflows on the way.

    Args:
        pred, target: bool arrays of the same shape.
        spacing: pixel size per axis (default 1).

    Returns:
        A float.

    Raises:
        ValueError: bad spacing, or spacing times the image diagonal above the float64 range.
    """
    c_pred, c_true = contour(pred), contour(target)
    sampling = validate_spacing(spacing, c_true.ndim)
    check_extent(c_true.shape, sampling, torch.float64)
    if not c_pred.any() or not c_true.any():
        return 0.0
    unit, sp_units = spacing_in_units(sampling)
    d = ndimage.distance_transform_edt(~c_true, sampling=sp_units)
    return float(d[c_pred].mean()) * unit


@register_loss(
    "shape_aware",
    title="Shape-aware loss",
    kind="pixel",
    params=(_SPACING,),
    formula=r"L(x) = (1 + E)\,\mathrm{CE}(x),\quad E = \mathrm{mean}_{x \in \hat C} d(x, C)",
    reference="Hayder et al. 2017 (CVPR); Jadon 2020 (shape-aware loss)",
)
def _shape_aware(ctx: LossContext, spacing) -> torch.Tensor:
    r"""Cross-entropy weighted by 1 + the mean predicted-to-target contour distance.

    .. math::

        L(x) = (1 + E)\,[-y \log p - (1 - y)\log(1 - p)],\qquad
        E = \frac{1}{|\hat C|}\sum_{z \in \hat C} d(z, C)

    Ĉ is the contour of [p > 0.5], C that of the target (:func:`mean_contour_distance`,
    in ``spacing`` units; a constant, no gradient). Jadon 2020 writes
    L = −ΣCE − ΣE·CE with E = D(Ĉ, C_GT), "the average point to curve Euclidean
    distance among points around the curve of the predicted segmentation to the ground
    truth" (after Hayder et al. 2017); E = 0 when either contour is empty.
    """
    e = mean_contour_distance(
        (ctx.p.detach() > 0.5).cpu().numpy(), (ctx.labels > 0).cpu().numpy(), spacing
    )
    return (1.0 + e) * bce_terms(ctx)
