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
from scipy import ndimage

from .._arrays import as_tensor, check_same_shape, spacing_in_units, validate_spacing
from ..distances import check_extent
from ..registry import LossParam, register_loss
from ..weights import unet_weight_map
from ._context import LossContext
from ._terms import bce_terms

__all__ = ["boundary_signed_distance", "distance_penalty_map", "two_sided_distance"]


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


def _two_sided_units(fg: np.ndarray, sp_units: tuple[float, ...]) -> np.ndarray:
    if not fg.any() or fg.all():
        return np.zeros(fg.shape)
    return _edt(fg, sp_units) + _edt(~fg, sp_units)


def _spacing_units(fg: np.ndarray, spacing, dtype=torch.float64):
    """Validated spacing as (unit, spacing / unit), refused if distances overflow ``dtype``."""
    sampling = validate_spacing(spacing, fg.ndim)
    check_extent(fg.shape, sampling, dtype)
    return spacing_in_units(sampling)


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
    unit, sp_units = _spacing_units(fg, spacing)
    return _two_sided_units(fg, sp_units) * unit


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
    unit, sp_units = _spacing_units(fg, spacing)
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
    fg = _foreground(ctx)
    unit, sp_units = _spacing_units(fg, spacing)
    d_y = _two_sided_units(fg, sp_units)
    d_p = _two_sided_units((ctx.p.detach() > 0.5).cpu().numpy(), sp_units)
    # (d·unit)^α = d^α · unit^α, with unit^α computed without overflowing on the way
    log_scale = alpha * math.log(unit)
    dist = d_p**alpha + d_y**alpha
    with np.errstate(over="ignore", divide="ignore"):
        if log_scale < 709.0:
            dist = dist * math.exp(log_scale)
        else:  # unit^α alone overflows float64, the product may not: in the log domain
            dist = np.where(dist > 0, np.exp(np.log(dist) + log_scale), 0.0)
    return (ctx.p - ctx.y) ** 2 * _in_context(
        dist, ctx, "hausdorff_dt", f"spacing={spacing} and alpha={alpha}"
    )
