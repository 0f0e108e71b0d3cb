"""Region losses: functions of sums over the image (Dice, Jaccard, Tversky and relatives).

A region loss has no per-pixel value; its map (:func:`~napari_losslens.core.maps.loss_map`)
is the signed gradient ∂L/∂p. Each loss here is registered with
:func:`~napari_losslens.core.registry.register_loss`; ``docs/losses.md`` gives each formula
with its parameters, defaults, conventions and references.

Notation: p is the predicted foreground probability, y = [target > 0]; sums run over the
counted pixels (those in ``mask``); TP = Σpy, FP = Σp(1 − y), FN = Σ(1 − p)y; s is the
smoothing term.

Conventions where the literature varies (each is repeated in the loss's docstring):

- Combo cross-entropy weights positives by β and negatives by 1 − β (Taghanaki et al.
  2019).
- Tversky: α weighs FP and β weighs FN (Salehi et al. 2017; MONAI's ``TverskyLoss``).
- Focal Tversky: the exponent γ is applied as written, (1 − TI)^γ; Abraham & Khan 2019
  write (1 − TI)^{1/γ} with γ = 4/3, so the default γ = 0.75 is their recommended setting.
- A power x^γ with γ < 1 has an infinite slope at x = 0 (e.g. a perfect prediction in the
  focal Tversky loss); the value is exact but the gradient is taken at max(x, ε), with ε
  the dtype's machine epsilon, so gradients stay finite.
- With ``smooth=0`` a ratio that is 0/0 (empty target and empty prediction) counts as a
  perfect score.

References: S. Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB
2020, and the original papers cited on each loss.

Example:
    >>> import numpy as np
    >>> from napari_losslens.core import loss_value
    >>> p, y = np.array([0.9, 0.2]), np.array([1, 0])
    >>> round(loss_value(p, y, "jaccard"), 4), round(loss_value(p, y, "tversky", beta=0.9), 4)
    (0.25, 0.1743)
"""

from __future__ import annotations

import math

import torch

from ..registry import LossParam, register_loss
from ._context import LossContext
from ._terms import (
    dice_loss,
    dice_score,
    nonzero,
    one_minus_ratio,
    overlap_terms,
    safe_pow,
    smooth_param,
)

__all__ = ["tversky_index"]


_DICE_PARAMS = (
    smooth_param(),
    LossParam(
        "gamma",
        2.0,
        description="exponent of p and y in the denominator",
        minimum=0.0,
        maximum=10.0,
        exclusive_minimum=True,
    ),
)


@register_loss(
    "dice",
    title="Dice loss",
    kind="region",
    multiclass=True,
    params=_DICE_PARAMS,
    formula=r"L = 1 - \frac{2\sum p y + s}{\sum p^\gamma + \sum y^\gamma + s}",
    reference="Jadon 2020, eq. (6); defaults as the seed article's code",
)
def _dice(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    """Dice loss 1 − (2Σpy + s)/(Σp^γ + Σy^γ + s)."""
    return dice_loss(ctx, smooth, gamma)


@register_loss(
    "jaccard",
    title="Jaccard (IoU) loss",
    kind="region",
    multiclass=True,
    params=(smooth_param(),),
    formula=r"L = 1 - \frac{TP + s}{TP + FP + FN + s}",
    reference="Jadon 2020 (IoU / Jaccard loss); Rahman & Wang 2016",
)
def _jaccard(ctx: LossContext, smooth: float) -> torch.Tensor:
    r"""Soft Jaccard loss 1 − (TP + s)/(TP + FP + FN + s).

    .. math::

        L = 1 - \frac{TP + s}{TP + FP + FN + s} = 1 - \frac{\sum py + s}{\sum p + \sum y -
        \sum py + s}
    """
    tp, fp, fn = overlap_terms(ctx)
    return one_minus_ratio(tp + smooth, tp + fp + fn + smooth)


_TVERSKY_PARAMS = (
    LossParam("alpha", 0.5, description="weight of false positives", minimum=0.0, maximum=10.0),
    LossParam("beta", 0.5, description="weight of false negatives", minimum=0.0, maximum=10.0),
    smooth_param(),
)


def tversky_index(ctx: LossContext, alpha: float, beta: float, smooth: float) -> torch.Tensor:
    """(TP + s)/(TP + α·FP + β·FN + s); 1 for 0/0 (smooth=0, empty target and prediction)."""
    tp, fp, fn = overlap_terms(ctx)
    return 1.0 - one_minus_ratio(tp + smooth, tp + alpha * fp + beta * fn + smooth)


@register_loss(
    "tversky",
    title="Tversky loss",
    kind="region",
    multiclass=True,
    params=_TVERSKY_PARAMS,
    formula=r"L = 1 - \frac{TP + s}{TP + \alpha\, FP + \beta\, FN + s}",
    reference="Salehi et al. 2017; Jadon 2020",
)
def _tversky(ctx: LossContext, alpha: float, beta: float, smooth: float) -> torch.Tensor:
    r"""Tversky loss 1 − TI, TI = (TP + s)/(TP + α·FP + β·FN + s).

    .. math::

        L = 1 - \frac{TP + s}{TP + \alpha\, FP + \beta\, FN + s}

    α weighs false positives and β false negatives (Salehi et al. 2017, MONAI); α = β = 0.5
    is the Dice loss with γ = 1, α = β = 1 the Jaccard loss.
    """
    return 1.0 - tversky_index(ctx, alpha, beta, smooth)


@register_loss(
    "focal_tversky",
    title="Focal Tversky loss",
    kind="region",
    params=(
        *_TVERSKY_PARAMS,
        LossParam(
            "gamma",
            0.75,
            description="exponent of 1 − TI (< 1 focuses on hard, low-TI cases)",
            minimum=0.0,
            maximum=5.0,
            exclusive_minimum=True,
        ),
    ),
    formula=r"L = \left(1 - \frac{TP + s}{TP + \alpha\, FP + \beta\, FN + s}\right)^{\gamma}",
    reference="Abraham & Khan 2019 (their 1/γ with γ = 4/3); Jadon 2020",
)
def _focal_tversky(
    ctx: LossContext, alpha: float, beta: float, smooth: float, gamma: float
) -> torch.Tensor:
    r"""Focal Tversky loss (1 − TI)^γ.

    .. math::

        L = (1 - TI)^{\gamma}, \qquad TI = \frac{TP + s}{TP + \alpha\, FP + \beta\, FN + s}

    Abraham & Khan 2019 write the exponent as 1/γ and recommend γ = 4/3; here γ is the
    exponent itself, so the default 0.75 is their setting. The gradient at TI = 1 (where
    the slope of x^0.75 is infinite) is taken at 1 − TI = ε, so it stays finite.
    """
    base = 1.0 - tversky_index(ctx, alpha, beta, smooth)
    return safe_pow(base, gamma, ctx.eps)


@register_loss(
    "log_cosh_dice",
    title="Log-cosh Dice loss",
    kind="region",
    params=_DICE_PARAMS,
    formula=(
        r"L = \log\cosh\left(1 - \frac{2\sum p y + s}{\sum p^\gamma + \sum y^\gamma + s}\right)"
    ),
    reference="Jadon 2020 (proposed there)",
)
def _log_cosh_dice(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    r"""log(cosh(Dice loss)), with the Dice loss exactly as the ``dice`` loss computes it.

    .. math::

        L = \log\cosh(DL), \qquad DL = 1 - \frac{2\sum py + s}{\sum p^\gamma + \sum y^\gamma
        + s}

    Jadon 2020 (the survey's own proposal). DL ∈ [0, 1], so cosh never overflows.
    """
    return torch.log(torch.cosh(dice_loss(ctx, smooth, gamma)))


@register_loss(
    "sensitivity_specificity",
    title="Sensitivity-specificity loss",
    kind="region",
    params=(
        LossParam(
            "w",
            0.5,
            description="weight of the sensitivity term (1 − w: specificity term)",
            minimum=0.0,
            maximum=1.0,
        ),
        smooth_param(),
    ),
    formula=(
        r"L = w\,\frac{\sum (y - p)^2\, y}{\sum y + s}"
        r" + (1 - w)\,\frac{\sum (y - p)^2 (1 - y)}{\sum (1 - y) + s}"
    ),
    reference="Brosch et al. 2015; Jadon 2020",
)
def _sensitivity_specificity(ctx: LossContext, w: float, smooth: float) -> torch.Tensor:
    r"""Weighted sum of the squared errors on foreground and on background pixels.

    .. math::

        L = w\,\frac{\sum (y - p)^2 y}{\sum y + s} + (1 - w)\,\frac{\sum (y - p)^2 (1 - y)}
        {\sum (1 - y) + s}

    A term whose class is absent is 0 (its numerator is 0 as well). Brosch et al. 2015.
    """
    y = ctx.y
    err = (y - ctx.p) ** 2
    sens = ctx.sum(err * y) / nonzero(ctx.sum(y) + smooth)
    spec = ctx.sum(err * (1.0 - y)) / nonzero(ctx.sum(1.0 - y) + smooth)
    return w * sens + (1.0 - w) * spec


@register_loss(
    "combo",
    title="Combo loss",
    kind="region",
    params=(
        LossParam(
            "alpha",
            0.5,
            description="weight of the cross-entropy term (1 − α: Dice term)",
            minimum=0.0,
            maximum=1.0,
        ),
        LossParam(
            "beta",
            0.5,
            description="weight of positives in the cross-entropy (1 − β: negatives)",
            minimum=0.0,
            maximum=1.0,
        ),
        smooth_param(),
        LossParam(
            "gamma",
            1.0,
            description="exponent of p and y in the Dice denominator",
            minimum=0.0,
            maximum=10.0,
            exclusive_minimum=True,
        ),
    ),
    formula=(
        r"L = \alpha\,\frac{1}{N}\sum -[\beta\, y \log p + (1 - \beta)(1 - y)\log(1 - p)]"
        r" + (1 - \alpha)\left(1 - \frac{2\sum py + s}{\sum p^\gamma + \sum y^\gamma + s}\right)"
    ),
    reference="Taghanaki et al. 2019 (Combo loss); Jadon 2020",
)
def _combo(
    ctx: LossContext, alpha: float, beta: float, smooth: float, gamma: float
) -> torch.Tensor:
    r"""α·(β-balanced cross-entropy) + (1 − α)·(Dice loss).

    .. math::

        L = \alpha\,\frac{1}{N}\sum -[\beta y \log p + (1 - \beta)(1 - y)\log(1 - p)]
        + (1 - \alpha)\,DL

    As Taghanaki et al. 2019: the cross-entropy weighs positives by β and negatives by
    1 − β, and the Dice term uses Σp + Σy (γ = 1). They subtract the Dice coefficient;
    here the Dice *loss* 1 − Dice is added (a constant offset: same gradient, L ≥ 0).
    """
    ce = -(beta * ctx.y * ctx.log_p + (1.0 - beta) * (1.0 - ctx.y) * ctx.log_1mp)
    return alpha * ctx.mean(ce) + (1.0 - alpha) * dice_loss(ctx, smooth, gamma)


@register_loss(
    "exp_log",
    title="Exponential logarithmic loss",
    kind="region",
    params=(
        LossParam(
            "gamma_dice",
            0.3,
            description="exponent of −ln Dice",
            minimum=0.0,
            maximum=5.0,
            exclusive_minimum=True,
        ),
        LossParam(
            "gamma_ce",
            0.3,
            description="exponent of −ln p_y",
            minimum=0.0,
            maximum=5.0,
            exclusive_minimum=True,
        ),
        LossParam("w_dice", 0.8, description="weight of the Dice term", minimum=0.0, maximum=10.0),
        LossParam(
            "w_ce", 0.2, description="weight of the cross-entropy term", minimum=0.0, maximum=10.0
        ),
        smooth_param(1.0),
    ),
    formula=(
        r"L = w_{dice} \left(-\ln \frac{2\sum py + s}{\sum p + \sum y + s}\right)^{\gamma_{dice}}"
        r" + w_{ce}\,\frac{1}{N}\sum w_{y}\left(-\ln p_{y}\right)^{\gamma_{ce}},"
        r"\quad w_l = \sqrt{N / N_l}"
    ),
    reference="Wong et al. 2018 (MICCAI); Jadon 2020",
)
def _exp_log(
    ctx: LossContext,
    gamma_dice: float,
    gamma_ce: float,
    w_dice: float,
    w_ce: float,
    smooth: float,
) -> torch.Tensor:
    r"""Exponential logarithmic loss of Wong et al. 2018.

    .. math::

        L = w_{dice}(-\ln D)^{\gamma_{dice}} + w_{ce}\,\frac{1}{N}\sum_x w_{y(x)}
        (-\ln p_{y(x)}(x))^{\gamma_{ce}}

    D = (2Σpy + s)/(Σp + Σy + s) is the soft Dice of the foreground (the binary case has
    one Dice label, as the ``dice`` loss); p_1 = p and p_0 = 1 − p; w_l = (N/N_l)^{1/2} is
    Wong et al.'s label-frequency weight over the counted pixels (0 for an absent label).
    s defaults to 1, Wong et al.'s pseudocount. D is clamped to [ε, 1] before the log (with
    smooth=0 and an empty target) so the loss stays finite; 0/0 counts as D = 1.
    """
    if smooth == 0.0 and float((ctx.sum(ctx.p) + ctx.sum(ctx.y)).detach()) == 0.0:
        dice = torch.ones((), dtype=ctx.dtype, device=ctx.device) + 0.0 * ctx.sum(ctx.p)
    else:
        dice = dice_score(ctx, smooth, 1.0)
    dice = dice + (dice.clamp(ctx.eps, 1.0) - dice).detach()
    l_dice = safe_pow(-torch.log(dice), gamma_dice, ctx.eps)

    n = float(ctx.count)
    n_fg = float(ctx.sum(ctx.y).detach())
    n_bg = n - n_fg
    w_fg = math.sqrt(n / n_fg) if n_fg else 0.0
    w_bg = math.sqrt(n / n_bg) if n_bg else 0.0
    nll = -(ctx.y * ctx.log_p + (1.0 - ctx.y) * ctx.log_1mp)
    weights = w_fg * ctx.y + w_bg * (1.0 - ctx.y)
    l_ce = ctx.mean(weights * safe_pow(nll, gamma_ce, ctx.eps))
    return w_dice * l_dice + w_ce * l_ce
