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
import torch.nn.functional as F

from ..registry import LossParam, register_loss
from ._context import LossContext
from ._terms import (
    Total,
    bce_terms,
    binary_logits,
    check_spatial,
    dice_loss,
    dice_score,
    lovasz_grad,
    masked_sum,
    nonzero,
    one_minus_ratio,
    overlap_terms,
    ratio_or_one,
    safe_pow,
    smooth_param,
    total_or_masked,
)

__all__ = [
    "dice_cldice_loss",
    "lovasz_hinge_loss",
    "mcc_loss",
    "soft_cldice_loss",
    "soft_skeleton",
    "tversky_index",
    "unified_focal_loss",
]


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
    err = (ctx.y - ctx.p) ** 2
    # sums over the foreground and the background (``where=``) and counts of their pixels:
    # the same values and gradients as the products by y and 1 − y, without those maps
    sens = ctx.sum(err, where=ctx.fg) / nonzero(ctx.sum(ctx.fg) + smooth)
    spec = ctx.sum(err, where=ctx.bg) / nonzero(ctx.sum(ctx.bg) + smooth)
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
    # −β·log p on the foreground, −(1 − β)·log(1 − p) elsewhere: one ``where`` (y is 0 or
    # 1, both logs finite: the same values and gradients as the products)
    ce = torch.where(ctx.fg, beta * ctx.log_p, (1.0 - beta) * ctx.log_1mp).neg_()
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
    n_fg = float(ctx.sum(ctx.fg))
    n_bg = n - n_fg
    w_fg = math.sqrt(n / n_fg) if n_fg else 0.0
    w_bg = math.sqrt(n / n_bg) if n_bg else 0.0
    # the weighted mean as w_fg·Σ_fg + w_bg·Σ_bg (sums over each region, ``where=``): the
    # same value and gradient as the mean of the weights map times the terms, without it
    terms = safe_pow(bce_terms(ctx), gamma_ce, ctx.eps)
    weighted = w_fg * ctx.sum(terms, where=ctx.fg) + w_bg * ctx.sum(terms, where=ctx.bg)
    l_ce = weighted / ctx.count
    return w_dice * l_dice + w_ce * l_ce


# --------------------------------------------------------------------------------------
# Lovász hinge (Berman et al. 2018)
# --------------------------------------------------------------------------------------


def lovasz_hinge_loss(
    logits: torch.Tensor, target: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""Binary Lovász hinge loss: the Lovász extension of 1 − IoU at the hinge errors.

    .. math::

        L = \sum_i \max(0, e_{\pi(i)})\, g_i(y_\pi),\qquad e = 1 - x\,(2y - 1)

    with π the order of decreasing error e and g :func:`lovasz_grad`. Logits of ±1 that
    are positive on a predicted region give 2(1 − IoU) of it; correct logits of magnitude
    ≥ 1 give 0. Berman et al. 2018; kornia ``lovasz_hinge_loss`` and
    segmentation_models_pytorch ``LovaszLoss(mode="binary")`` compute the same for one
    image.

    Args:
        logits: float tensor of logits x, any shape.
        target: 0/1 tensor of the same shape.
        mask: optional bool tensor of the counted pixels.

    Returns:
        A 0-d tensor.

    Example:
        >>> import torch
        >>> float(lovasz_hinge_loss(torch.tensor([2.0, -2.0]), torch.tensor([1.0, 0.0])))
        0.0
    """
    if mask is not None:
        logits, target = logits[mask], target[mask]
    x, y = logits.reshape(-1), target.reshape(-1).to(logits.dtype)
    errors = 1.0 - x * (2.0 * y - 1.0)
    errors_sorted, perm = torch.sort(errors, descending=True)
    return torch.dot(F.relu(errors_sorted), lovasz_grad(y[perm]))


@register_loss(
    "lovasz_hinge",
    blockwise=False,
    title="Lovász hinge loss",
    kind="region",
    formula=(
        r"L = \sum_i \max(0, e_{\pi(i)})\, g_i,\quad e = 1 - x(2y - 1),"
        r"\quad g = \nabla \overline{\Delta_J}"
    ),
    reference="Berman et al. 2018 (CVPR); kornia lovasz_hinge_loss; smp LovaszLoss",
)
def _lovasz_hinge(ctx: LossContext) -> torch.Tensor:
    """Binary Lovász hinge loss of the logits (from probabilities: logit of clamped p)."""
    return lovasz_hinge_loss(binary_logits(ctx), ctx.y, ctx.mask)


# --------------------------------------------------------------------------------------
# clDice (Shit et al. 2021)
# --------------------------------------------------------------------------------------


def _soft_erode(x: torch.Tensor) -> torch.Tensor:
    """Min over the face neighbours (a minimum of 1-D min-pools along each axis)."""
    if x.ndim == 4:
        a = -F.max_pool2d(-x, (3, 1), 1, (1, 0))
        b = -F.max_pool2d(-x, (1, 3), 1, (0, 1))
        return torch.min(a, b)
    a = -F.max_pool3d(-x, (3, 1, 1), 1, (1, 0, 0))
    b = -F.max_pool3d(-x, (1, 3, 1), 1, (0, 1, 0))
    c = -F.max_pool3d(-x, (1, 1, 3), 1, (0, 0, 1))
    return torch.min(torch.min(a, b), c)


def _soft_dilate(x: torch.Tensor) -> torch.Tensor:
    """Max over the 3×3 (×3) neighbourhood."""
    if x.ndim == 4:
        return F.max_pool2d(x, 3, 1, 1)
    return F.max_pool3d(x, 3, 1, 1)


def soft_skeleton(x: torch.Tensor, iterations: int = 3) -> torch.Tensor:
    r"""Soft skeleton of a 2D or 3D map in [0, 1] by iterated min/max pooling.

    .. math::

        S_0 = \mathrm{relu}(x - \mathrm{open}(x)),\quad
        S_{k+1} = S_k + \mathrm{relu}(\delta_k - S_k \delta_k),\quad
        \delta_k = \mathrm{relu}(x_k - \mathrm{open}(x_k)),\ x_k = \mathrm{erode}^k(x)

    erode: minimum over the face neighbours, open: a 3×3 (×3) max-pool of the erosion
    (Shit et al. 2021, Algorithm 1; MONAI ``soft_skel``).

    Args:
        x: (H, W) or (D, H, W) float tensor.
        iterations: number of erosions (≥ 0); about the largest radius to thin.

    Returns:
        A tensor of ``x``'s shape.
    """
    img = x[None, None]
    img1 = _soft_dilate(_soft_erode(img))
    skel = F.relu(img - img1)
    for _ in range(iterations):
        img = _soft_erode(img)
        img1 = _soft_dilate(_soft_erode(img))
        delta = F.relu(img - img1)
        skel = skel + F.relu(delta - skel * delta)
    return skel[0, 0]


#: added to the denominator of clDice's harmonic mean (MONAI's ``smooth`` default)
CLDICE_HARMONIC_EPS = 1e-4


def soft_cldice_loss(
    p: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    iterations: int = 3,
    smooth: float = 1.0,
) -> torch.Tensor:
    r"""Soft clDice loss: one minus the harmonic mean of topology precision and sensitivity.

    .. math::

        T_{prec} = \frac{\sum S_p\, y + s}{\sum S_p + s},\quad
        T_{sens} = \frac{\sum S_y\, p + s}{\sum S_y + s},\quad
        L = 1 - \frac{2\, T_{prec} T_{sens}}{T_{prec} + T_{sens} + 10^{-4}}

    with S_p, S_y the :func:`soft_skeleton` of p and y. Shit et al. 2021; MONAI
    ``SoftclDiceLoss`` (its ``smooth_nr = smooth_dr = smooth``, and its 1e-4 in the
    harmonic mean).

    Args:
        p: (H, W) or (D, H, W) probabilities.
        y: the binary target, same shape.
        mask: optional bool tensor of the counted pixels (the skeletons are taken of the
            whole images).
        iterations: skeleton iterations (≥ 0).
        smooth: added to numerators and denominators (> 0).

    Returns:
        A 0-d tensor.
    """
    skel_p = soft_skeleton(p, iterations)
    skel_y = soft_skeleton(y, iterations)
    # an empty skeleton with s underflowing the dtype (float32) is s/s = 1, not 0/0
    tprec = ratio_or_one(masked_sum(skel_p * y, mask) + smooth, masked_sum(skel_p, mask) + smooth)
    tsens = ratio_or_one(masked_sum(skel_y * p, mask) + smooth, masked_sum(skel_y, mask) + smooth)
    return 1.0 - 2.0 * tprec * tsens / (tprec + tsens + CLDICE_HARMONIC_EPS)


def dice_cldice_loss(
    p: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    iterations: int = 3,
    smooth: float = 1.0,
    alpha: float = 0.5,
) -> torch.Tensor:
    r"""(1 − α)·Dice loss + α·clDice loss.

    .. math::

        L = (1 - \alpha)\left(1 - \frac{2\sum py + s}{\sum p + \sum y + s}\right)
        + \alpha\, L_{clDice}

    Shit et al. 2021; MONAI ``SoftDiceclDiceLoss`` (smooth_nr = smooth_dr = smooth).

    Args: as :func:`soft_cldice_loss`, and ``alpha`` in [0, 1], the weight of clDice.

    Returns:
        A 0-d tensor.
    """
    dice = 1.0 - ratio_or_one(
        2.0 * masked_sum(p * y, mask) + smooth, masked_sum(p, mask) + masked_sum(y, mask) + smooth
    )
    cl = soft_cldice_loss(p, y, mask, iterations, smooth)
    return (1.0 - alpha) * dice + alpha * cl


_ITERATIONS = LossParam(
    "iterations",
    3,
    kind="int",
    description="soft-skeleton iterations (about the largest radius thinned)",
    minimum=0,
    maximum=50,
)
_CL_SMOOTH = LossParam(
    "smooth",
    1.0,
    description="added to numerators and denominators",
    minimum=0.0,
    maximum=1e3,
    exclusive_minimum=True,
)


@register_loss(
    "soft_cldice",
    blockwise=False,
    title="Soft clDice loss",
    kind="region",
    params=(_ITERATIONS, _CL_SMOOTH),
    formula=(
        r"L = 1 - \frac{2 T_{prec} T_{sens}}{T_{prec} + T_{sens}},\quad"
        r" T_{prec} = \frac{\sum S_p y + s}{\sum S_p + s},"
        r" T_{sens} = \frac{\sum S_y p + s}{\sum S_y + s}"
    ),
    reference="Shit et al. 2021 (CVPR); MONAI SoftclDiceLoss",
)
def _soft_cldice(ctx: LossContext, iterations: int, smooth: float) -> torch.Tensor:
    """Soft clDice of the foreground probability (2D or 3D)."""
    check_spatial(ctx.p, "soft_cldice")
    return soft_cldice_loss(ctx.p, ctx.y, ctx.mask, iterations, smooth)


@register_loss(
    "dice_cldice",
    blockwise=False,
    title="Dice + clDice loss",
    kind="region",
    params=(
        _ITERATIONS,
        _CL_SMOOTH,
        LossParam(
            "alpha",
            0.5,
            description="weight of clDice (1 − α: Dice)",
            minimum=0.0,
            maximum=1.0,
        ),
    ),
    formula=r"L = (1 - \alpha)\, L_{Dice} + \alpha\, L_{clDice}",
    reference="Shit et al. 2021 (CVPR); MONAI SoftDiceclDiceLoss",
)
def _dice_cldice(ctx: LossContext, iterations: int, smooth: float, alpha: float) -> torch.Tensor:
    """(1 − α)·Dice + α·clDice of the foreground probability (2D or 3D)."""
    check_spatial(ctx.p, "dice_cldice")
    return dice_cldice_loss(ctx.p, ctx.y, ctx.mask, iterations, smooth, alpha)


# --------------------------------------------------------------------------------------
# Asymmetric unified focal loss (Yeung et al. 2022)
# --------------------------------------------------------------------------------------


def unified_focal_loss(
    p: torch.Tensor,
    y: torch.Tensor,
    log_p: torch.Tensor,
    log_1mp: torch.Tensor,
    mask: torch.Tensor | None = None,
    weight: float = 0.5,
    delta: float = 0.7,
    gamma: float = 0.5,
    smooth: float = 1e-7,
    *,
    total: Total | None = None,
    count: int | None = None,
) -> torch.Tensor:
    r"""Asymmetric unified focal loss: λ·(asymmetric focal) + (1 − λ)·(asymmetric focal Tversky).

    .. math::

        L_{aF} = \frac{1}{2N}\sum_x \left[-\delta\, y \log p
        - (1 - \delta)\, p^{\gamma} (1 - y) \log(1 - p)\right]

    .. math::

        L_{aFT} = \tfrac12\left[(1 - TI_0) + (1 - TI_1)^{1 - \gamma}\right],\quad
        TI_c = \frac{TP_c + s}{TP_c + \delta FN_c + (1 - \delta) FP_c + s}

    .. math::

        L = \lambda L_{aF} + (1 - \lambda) L_{aFT}

    Class 1 is the foreground (p, y), class 0 the background (1 − p, 1 − y). The focal
    factor p^γ suppresses only the background; the foreground's Tversky term is enhanced
    by the exponent 1 − γ. Yeung et al. 2022 sum the two classes; MONAI's
    ``AsymmetricUnifiedFocalLoss`` (the reference here, with its defaults) averages them,
    hence the ½. Powers with exponents below 1 take their gradient at max(x, ε) (finite).

    Args:
        p, y: probabilities and binary target.
        log_p, log_1mp: log p and log(1 − p) (stable, from the caller).
        mask: optional bool tensor of the counted pixels.
        weight: λ in [0, 1].
        delta: δ in [0, 1], the weight of false negatives (and of the foreground).
        gamma: γ in [0, 1].
        smooth: s > 0.
        total, count: the sum over and the number of the counted pixels (default: over
            ``mask``).

    Returns:
        A 0-d tensor.
    """
    sum_ = total_or_masked(mask, total)
    if count is None:
        count = p.numel() if mask is None else int(mask.sum())
    eps = float(torch.finfo(p.dtype).eps)
    back = (1.0 - delta) * safe_pow(p, gamma, eps) * (-(1.0 - y) * log_1mp)
    fore = delta * (-y * log_p)
    focal = sum_(back + fore) / (2.0 * count)
    q, z = 1.0 - p, 1.0 - y
    tp, fn, fp = sum_(p * y), sum_((1.0 - p) * y), sum_(p * (1.0 - y))
    tn = sum_(q * z)
    tversky = _asymmetric_focal_tversky(tp, fp, fn, tn, delta, gamma, smooth, eps)
    return weight * focal + (1.0 - weight) * tversky


def _asymmetric_focal_tversky(tp, fp, fn, tn, delta, gamma, smooth, eps) -> torch.Tensor:
    """½[(1 − TI_0) + (1 − TI_1)^(1 − γ)] from the four overlap sums of the foreground:
    class 0 (1 − p, 1 − y) has TP_0 = TN, FN_0 = FP and FP_0 = FN."""
    tis = []
    for tp_c, fn_c, fp_c in ((tn, fp, fn), (tp, fn, fp)):
        tis.append((tp_c + smooth) / (tp_c + delta * fn_c + (1.0 - delta) * fp_c + smooth))
    return 0.5 * ((1.0 - tis[0]) + safe_pow(1.0 - tis[1], 1.0 - gamma, eps))


@register_loss(
    "unified_focal",
    title="Asymmetric unified focal loss",
    kind="region",
    params=(
        LossParam(
            "weight",
            0.5,
            description="λ: weight of the focal term (1 − λ: focal Tversky term)",
            minimum=0.0,
            maximum=1.0,
        ),
        LossParam(
            "delta",
            0.7,
            description="δ: weight of false negatives / of the foreground",
            minimum=0.0,
            maximum=1.0,
        ),
        LossParam(
            "gamma",
            0.5,
            description="γ: background suppression and foreground enhancement",
            minimum=0.0,
            maximum=1.0,
        ),
        LossParam(
            "smooth",
            1e-7,
            description="added to the Tversky numerator and denominator",
            minimum=0.0,
            maximum=1e3,
            exclusive_minimum=True,
        ),
    ),
    formula=r"L = \lambda L_{aF} + (1 - \lambda) L_{aFT}",
    reference="Yeung et al. 2022 (Comput. Med. Imaging Graph.); MONAI AsymmetricUnifiedFocalLoss",
)
def _unified_focal(
    ctx: LossContext, weight: float, delta: float, gamma: float, smooth: float
) -> torch.Tensor:
    """Asymmetric unified focal loss of a binary prediction.

    As :func:`unified_focal_loss`, with the Tversky terms from the four overlap sums
    (:meth:`LossContext.overlap_sums`: no map of p·y, (1 − p)(1 − y), ...) and the focal
    term as one ``where`` over the foreground (y is 0 or 1: the same values and gradients
    as the products).
    """
    eps = ctx.eps
    back = (1.0 - delta) * safe_pow(ctx.p, gamma, eps) * ctx.log_1mp
    fore = ctx.log_p if delta == 1.0 else delta * ctx.log_p
    focal = ctx.sum(torch.where(ctx.fg, fore, back).neg_()) / (2.0 * ctx.count)
    tp, fp, fn, tn = ctx.overlap_sums()
    tversky = _asymmetric_focal_tversky(tp, fp, fn, tn, delta, gamma, smooth, eps)
    return weight * focal + (1.0 - weight) * tversky


# --------------------------------------------------------------------------------------
# Matthews correlation coefficient (Abhishek & Hamarneh 2021)
# --------------------------------------------------------------------------------------


#: the smallest ``smooth_dr`` of the registered ``mcc`` loss: where a marginal count is 0
#: (e.g. p = 1 everywhere, TN + FN = 0) the gradient is about N/√s_dr for N counted
#: pixels, so s_dr ≥ 1e-12 keeps it below N·10⁶, finite in float32 for any image
MCC_MIN_SMOOTH_DR = 1e-12


def mcc_loss(
    p: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    smooth_nr: float = 0.0,
    smooth_dr: float = 1e-5,
    *,
    total: Total | None = None,
) -> torch.Tensor:
    r"""1 − the soft Matthews correlation coefficient.

    .. math::

        L = 1 - \frac{TP\cdot TN - FP\cdot FN + s_{nr}}
        {\sqrt{(TP + FP)(TP + FN)(TN + FP)(TN + FN) + s_{dr}}}

    with the soft counts TP = Σpy, TN = Σ(1 − p)(1 − y), FP = Σp(1 − y), FN = Σ(1 − p)y;
    0 for a perfect prediction (FP = FN = 0). The ratio is formed in float64 (the
    product of four counts overflows float32 beyond about 10⁹ pixels). MONAI ``MCCLoss``
    (its defaults); segmentation_models_pytorch's ``MCCLoss`` instead adds 1e-5 to each
    count. Abhishek & Hamarneh 2021.

    Args:
        p, y: probabilities and binary target.
        mask: optional bool tensor of the counted pixels.
        smooth_nr, smooth_dr: added to the numerator and under the root (s_dr > 0: the
            gradient is about N/√s_dr where a marginal count is 0; the registered loss
            takes s_dr ≥ ``MCC_MIN_SMOOTH_DR`` = 1e-12).
        total: the sum over the counted pixels (default: over ``mask``).

    Returns:
        A 0-d tensor of ``p``'s dtype.
    """
    sum_ = total_or_masked(mask, total)
    tp = sum_(p * y).double()
    tn = sum_((1.0 - p) * (1.0 - y)).double()
    fp = sum_(p * (1.0 - y)).double()
    fn = sum_((1.0 - p) * y).double()
    return _mcc_from_sums(tp, fp, fn, tn, smooth_nr, smooth_dr).to(p.dtype)


def _mcc_from_sums(tp, fp, fn, tn, smooth_nr: float, smooth_dr: float) -> torch.Tensor:
    """1 − MCC from the four float64 overlap sums (0 when FP = FN = 0)."""
    num = tp * tn - fp * fn + smooth_nr
    den = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + smooth_dr)
    score = 1.0 - num / den
    perfect = bool((fp.detach() == 0) & (fn.detach() == 0))
    return score * 0.0 if perfect else score


@register_loss(
    "mcc",
    title="Matthews correlation coefficient loss",
    kind="region",
    params=(
        LossParam(
            "smooth_nr", 0.0, description="added to the numerator", minimum=0.0, maximum=1e3
        ),
        LossParam(
            "smooth_dr",
            1e-5,
            description="added under the square root of the denominator",
            minimum=MCC_MIN_SMOOTH_DR,
            maximum=1e3,
        ),
    ),
    formula=(
        r"L = 1 - \frac{TP\,TN - FP\,FN + s_{nr}}"
        r"{\sqrt{(TP + FP)(TP + FN)(TN + FP)(TN + FN) + s_{dr}}}"
    ),
    reference="Abhishek & Hamarneh 2021 (ISBI); MONAI MCCLoss; smp MCCLoss",
)
def _mcc(ctx: LossContext, smooth_nr: float, smooth_dr: float) -> torch.Tensor:
    """1 − soft MCC of a binary prediction, from the four overlap sums
    (:meth:`LossContext.overlap_sums`, in float64, without maps of the products)."""
    tp, fp, fn, tn = ctx.overlap_sums()
    return _mcc_from_sums(tp, fp, fn, tn, smooth_nr, smooth_dr).to(ctx.dtype)
