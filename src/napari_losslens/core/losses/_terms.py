"""Terms shared by several loss families: cross-entropy and overlap terms, safe powers.

Notation (as in :mod:`~napari_losslens.core.losses._context`): p is the predicted foreground
probability, y = [target > 0]; sums run over the counted pixels (those in ``mask``);
TP = Σpy, FP = Σp(1 − y), FN = Σ(1 − p)y; s is the smoothing term.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import torch

from ..registry import LossParam
from ._context import LossContext

__all__ = [
    "Total",
    "bce_terms",
    "binary_logits",
    "check_spatial",
    "class_probabilities",
    "dice_loss",
    "dice_score",
    "lovasz_grad",
    "masked_sum",
    "nonzero",
    "one_minus_ratio",
    "overlap_terms",
    "p_pow",
    "ratio_or_one",
    "safe_pow",
    "smooth_param",
    "total_or_masked",
    "y_pow_sum",
]


def smooth_param(default: float = 1e-6) -> LossParam:
    """The ``smooth`` parameter of the ratio losses (added to numerator and denominator)."""
    return LossParam(
        "smooth",
        default,
        description="added to numerator and denominator",
        minimum=0.0,
        maximum=1e3,
    )


def bce_terms(ctx: LossContext, beta: float = 1.0) -> torch.Tensor:
    """Per-pixel −β·y·log p − (1 − y)·log(1 − p).

    y is 0 or 1, so this is −β·log p on the foreground and −log(1 − p) elsewhere: one
    ``where`` (same values and gradients as the products, both logs being finite) instead
    of four products and sums over the whole map.
    """
    log_p = ctx.log_p if beta == 1.0 else beta * ctx.log_p
    return torch.where(ctx.fg, log_p, ctx.log_1mp).neg_()


def safe_pow(x: torch.Tensor, gamma: float, floor: float) -> torch.Tensor:
    """x**gamma for x >= 0 with a finite gradient at 0.

    The value is exact (``max(x, 0) ** gamma``); the gradient is that of ``t ** gamma`` at
    ``t = max(x, floor)``, which for gamma < 1 stays finite where the true slope is infinite.
    """
    xc = x + (x.clamp_min(floor) - x).detach()  # value max(x, floor), gradient 1
    out = xc**gamma
    return out + (x.clamp_min(0.0) ** gamma - out).detach()


def p_pow(ctx: LossContext, gamma: float) -> torch.Tensor:
    """p^γ with a finite gradient everywhere.

    For γ < 1 the slope γ·p^(γ−1) is infinite at p = 0 (and NaN from logits where the
    sigmoid underflows to 0): :func:`safe_pow` takes it at p = ε instead. For γ ≥ 1 the
    plain power is exact and finite.
    """
    if gamma == 2.0:  # the default: the same values and gradient as p**2, one product
        return ctx.p * ctx.p
    return ctx.p**gamma if gamma >= 1.0 else safe_pow(ctx.p, gamma, ctx.eps)


def y_pow_sum(ctx: LossContext, gamma: float) -> torch.Tensor:
    """Σy^γ over the counted pixels (float64, 0-d): for γ > 0, as y is 0 or 1, the number
    of counted foreground pixels, counted on the bool target (no float map, no power)."""
    return ctx.sum(ctx.fg) if gamma > 0.0 else ctx.sum(ctx.y**gamma)


def dice_score(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    """(2Σpy + s) / (Σp^γ + Σy^γ + s) over the counted pixels.

    Σpy is taken as the sum of p over the foreground (``ctx.sum(p, where=fg)``): the same
    value and gradient as Σp·y (y is 0 or 1, p finite), without a map of p·y or of y.
    """
    num = 2.0 * ctx.sum(ctx.p, where=ctx.fg) + smooth
    den = ctx.sum(p_pow(ctx, gamma)) + y_pow_sum(ctx, gamma) + smooth
    return num / den


def dice_loss(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    """1 − Dice as the registered ``dice`` loss computes it (0 for 0/0 with smooth=0)."""
    if smooth == 0.0:
        # 0/0 when both prediction and target are empty: define the loss as 0 there
        den = ctx.sum(p_pow(ctx, gamma)) + y_pow_sum(ctx, gamma)
        if float(den.detach()) == 0.0:
            return den * 0.0
    return 1.0 - dice_score(ctx, smooth, gamma)


def one_minus_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """1 − num/den, and 0 when den is 0 (only possible with smooth=0: 0/0 is a perfect score)."""
    if float(den.detach()) == 0.0:
        return den * 0.0
    return 1.0 - num / den


def nonzero(den: torch.Tensor) -> torch.Tensor:
    """den where it is not 0, else 1 (for sums whose numerator is then 0 as well)."""
    return torch.where(den != 0, den, torch.ones_like(den))


def ratio_or_one(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """num/den, and 1 (gradient 0) where den is 0.

    For smoothed ratios (a + s)/(b + s) of sums with 0 <= a <= b: den is 0 only when
    b = 0 (so a = 0) and s is 0 in the tensor's dtype (a tiny s underflows in float32);
    for every s > 0 the ratio is then s/s = 1, which is the value kept. The division is
    by :func:`nonzero` (den), so no 0/0 reaches autograd either.

    Where 0 < |den| < 2^10 / (the dtype's largest value) (a smoothing term near the
    smallest float, e.g. s = 5e-324 with empty sums), the ratio's own gradient, 1/den
    and num/den², does not fit the dtype: there the value num/den is kept and its
    gradient is 0 (autograd would otherwise multiply an infinite 1/den by the zero
    gradient of an empty sum and give NaN).
    """
    tiny = 1024.0 / torch.finfo(den.dtype).max
    differentiable = den.abs() >= tiny
    ratio = num / torch.where(differentiable, den, torch.ones_like(den))
    held = num.detach() / nonzero(den.detach())
    return torch.where(differentiable, ratio, torch.where(den != 0, held, torch.ones_like(num)))


def overlap_terms(ctx: LossContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TP = Σpy, FP = Σp(1 − y), FN = Σ(1 − p)y over the counted pixels (float64, 0-d).

    From :meth:`LossContext.overlap_sums`: one read of p, no map of p·y, p(1 − y) or
    (1 − p)y, one map in the backward; the same values (up to float64 rounding, and the
    float32 rounding of 1 − p that the map would have had) and gradients.
    """
    tp, fp, fn, _ = ctx.overlap_sums()
    return tp, fp, fn


#: A sum over the counted pixels (``LossContext.sum``, which the chunked path replaces by
#: the sum over the whole image).
Total = Callable[[torch.Tensor], torch.Tensor]


def masked_sum(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of ``x`` over the pixels of ``mask`` (all pixels when None)."""
    if mask is None:
        return x.sum()
    return torch.where(mask, x, torch.zeros_like(x)).sum()


def total_or_masked(mask: torch.Tensor | None, total: Total | None) -> Total:
    """``total`` when given, else the sum over ``mask`` (all pixels when None)."""
    return total if total is not None else partial(masked_sum, mask=mask)


def check_spatial(x: torch.Tensor, loss: str) -> None:
    """Raise ``ValueError`` unless ``x`` is 2D or 3D (the morphological losses need it)."""
    if x.ndim not in (2, 3):
        raise ValueError(
            f"loss {loss!r} needs a 2D or 3D image (all axes spatial), got {x.ndim}D with "
            f"shape {tuple(x.shape)}"
        )


def binary_logits(ctx: LossContext) -> torch.Tensor:
    """The logit x = log p − log(1 − p): exact from logits, from clamped p otherwise."""
    return ctx.log_p - ctx.log_1mp


def class_probabilities(ctx: LossContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, *spatial) probabilities and class ids; a binary prediction is (1 − p, p)."""
    if ctx.multiclass:
        return ctx.p, ctx.labels
    return torch.stack([1.0 - ctx.p, ctx.p]), (ctx.labels > 0).long()


def lovasz_grad(gt_sorted: torch.Tensor) -> torch.Tensor:
    r"""Gradient of the Lovász extension of the Jaccard loss at sorted errors.

    .. math::

        g_i = J_i - J_{i-1},\qquad J_i = 1 - \frac{G - \sum_{j \le i} y_j}
        {G + \sum_{j \le i} (1 - y_j)},\qquad G = \sum_j y_j

    (Berman et al. 2018, Algorithm 1). The union is never 0 (it is at least 1 once a
    negative has been seen, and at least G > 0 otherwise).

    Args:
        gt_sorted: 1-D 0/1 float tensor, the labels in the order of decreasing error.

    Returns:
        A tensor of the same shape (no gradient flows through it).
    """
    gts = gt_sorted.sum()
    intersection = gts - gt_sorted.cumsum(0)
    union = gts + (1.0 - gt_sorted).cumsum(0)
    jaccard = 1.0 - intersection / union
    return torch.cat([jaccard[:1], jaccard[1:] - jaccard[:-1]])
