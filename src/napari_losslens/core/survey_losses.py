"""The rest of the loss catalogue of Jadon's survey, registered like the built-in losses.

Every loss here is registered with :func:`~napari_losslens.core.registry.register_loss`, so
it works through :func:`~napari_losslens.core.losses.loss_map`, ``gradient_map``,
``loss_value`` and :func:`~napari_losslens.core.registry.available_losses`, and has an
``nn.Module`` in :mod:`~napari_losslens.core.survey_modules`. ``docs/losses.md`` gives each
formula with its parameters, defaults, conventions and references.

Notation (as in :mod:`~napari_losslens.core.losses`): p is the predicted foreground
probability, y = [target > 0]; sums run over the counted pixels (those in ``mask``);
TP = Σpy, FP = Σp(1 − y), FN = Σ(1 − p)y; s is the smoothing term.

Conventions where the literature varies (each is repeated in the loss's docstring):

- Balanced and combo cross-entropy weight positives by β and negatives by 1 − β (Jadon
  2020; Taghanaki et al. 2019), not the ``weighted_bce`` form −βy·log p − (1 − y)·log(1 − p).
- Tversky: α weighs FP and β weighs FN (Salehi et al. 2017; MONAI's ``TverskyLoss``).
- Focal Tversky: the exponent γ is applied as written, (1 − TI)^γ; Abraham & Khan 2019
  write (1 − TI)^{1/γ} with γ = 4/3, so the default γ = 0.75 is their recommended setting.
- Boundary loss and Hausdorff DT loss are means over the counted pixels (as in the
  authors' code), so they are pixel losses whose map is the per-pixel term.
- Distance maps are computed from the whole target (ignoring ``mask``, which only decides
  which pixels count) with ``scipy.ndimage.distance_transform_edt`` in ``spacing`` units;
  a map that needs a boundary is 0 when the target (or thresholded prediction) has no
  boundary, i.e. is empty or all foreground.
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

import numpy as np
import torch
from scipy import ndimage

from ._arrays import validate_spacing
from .losses import LossContext, bce_terms, dice_score
from .registry import LossParam, register_loss

__all__ = [
    "boundary_signed_distance",
    "distance_penalty_map",
    "overlap_terms",
    "two_sided_distance",
]


# --------------------------------------------------------------------------------------
# Helpers
# --------------------------------------------------------------------------------------


def _smooth_param(default: float = 1e-6) -> LossParam:
    return LossParam(
        "smooth",
        default,
        description="added to numerator and denominator",
        minimum=0.0,
        maximum=1e3,
    )


def _safe_pow(x: torch.Tensor, gamma: float, floor: float) -> torch.Tensor:
    """x**gamma for x >= 0 with a finite gradient at 0.

    The value is exact (``max(x, 0) ** gamma``); the gradient is that of ``t ** gamma`` at
    ``t = max(x, floor)``, which for gamma < 1 stays finite where the true slope is infinite.
    """
    xc = x + (x.clamp_min(floor) - x).detach()  # value max(x, floor), gradient 1
    out = xc**gamma
    return out + (x.clamp_min(0.0) ** gamma - out).detach()


def _one_minus_ratio(num: torch.Tensor, den: torch.Tensor) -> torch.Tensor:
    """1 − num/den, and 0 when den is 0 (only possible with smooth=0: 0/0 is a perfect score)."""
    if float(den.detach()) == 0.0:
        return den * 0.0
    return 1.0 - num / den


def _nonzero(den: torch.Tensor) -> torch.Tensor:
    """den where it is not 0, else 1 (for sums whose numerator is then 0 as well)."""
    return torch.where(den != 0, den, torch.ones_like(den))


def overlap_terms(ctx: LossContext) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """TP = Σpy, FP = Σp(1 − y), FN = Σ(1 − p)y over the counted pixels."""
    p, y = ctx.p, ctx.y
    return ctx.sum(p * y), ctx.sum(p * (1.0 - y)), ctx.sum((1.0 - p) * y)


def _dice_loss(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    """1 − Dice as the registered ``dice`` loss computes it (0 for 0/0 with smooth=0)."""
    if smooth == 0.0:
        den = ctx.sum(ctx.p**gamma) + ctx.sum(ctx.y**gamma)
        if float(den.detach()) == 0.0:
            return den * 0.0
    return 1.0 - dice_score(ctx, smooth, gamma)


def _edt(inside: np.ndarray, sampling: tuple[float, ...]) -> np.ndarray:
    """Distance from each True pixel to the nearest False pixel (0 on False pixels).

    All zeros when there is no False pixel (scipy's result is undefined there).
    """
    if inside.all():
        return np.zeros(inside.shape)
    return ndimage.distance_transform_edt(inside, sampling=sampling)


def _foreground(ctx: LossContext) -> np.ndarray:
    return (ctx.labels > 0).cpu().numpy()


def _to_ctx(a: np.ndarray, ctx: LossContext) -> torch.Tensor:
    return torch.as_tensor(a, dtype=ctx.dtype, device=ctx.device)


def two_sided_distance(foreground: np.ndarray, spacing=None) -> np.ndarray:
    """Distance from every pixel to the nearest pixel of the other class.

    Foreground pixels get the distance to the nearest background pixel and background
    pixels the distance to the nearest foreground pixel (the distance map d of Karimi &
    Salcudean 2019), in ``spacing`` units. All zeros when one class is absent (no boundary).

    Args:
        foreground: bool array.
        spacing: pixel size per axis (default 1).

    Returns:
        float64 array of ``foreground.shape``.
    """
    fg = np.asarray(foreground, dtype=bool)
    sampling = validate_spacing(spacing, fg.ndim)
    if not fg.any() or fg.all():
        return np.zeros(fg.shape)
    return _edt(fg, sampling) + _edt(~fg, sampling)


def boundary_signed_distance(foreground: np.ndarray, spacing=None) -> np.ndarray:
    """The signed distance map φ of the boundary loss: positive outside, ≤ 0 inside.

    Outside the target, the distance to the nearest foreground pixel; inside, minus the
    distance to the nearest background pixel plus the smallest pixel size, so that inner
    boundary pixels get 0 (Kervadec et al.'s ``one_hot2dist``, which subtracts 1 pixel).
    All zeros when the target is empty or all foreground (no boundary).

    Returns:
        float64 array of ``foreground.shape``.
    """
    fg = np.asarray(foreground, dtype=bool)
    sampling = validate_spacing(spacing, fg.ndim)
    if not fg.any() or fg.all():
        return np.zeros(fg.shape)
    outside = _edt(~fg, sampling)
    inside = _edt(fg, sampling)
    return np.where(fg, -(inside - min(sampling)), outside)


def distance_penalty_map(foreground: np.ndarray, spacing=None) -> np.ndarray:
    """The penalty φ of the distance-penalised cross-entropy, in [0, 1): high at boundaries.

    On each side of the boundary, φ = (d_max − d)/d_max, with d the distance to the nearest
    pixel of the other class and d_max its largest value on that side: pixels next to the
    boundary get nearly 1, the innermost pixels 0 (the inverted, normalised distance map of
    Caliva et al. 2019 as implemented in Ma et al. 2020). All zeros when one class is absent.

    Returns:
        float64 array of ``foreground.shape``.
    """
    fg = np.asarray(foreground, dtype=bool)
    sampling = validate_spacing(spacing, fg.ndim)
    phi = np.zeros(fg.shape)
    if not fg.any() or fg.all():
        return phi
    for side in (fg, ~fg):
        d = _edt(side, sampling)
        d_max = d[side].max()
        phi[side] = (d_max - d[side]) / d_max
    return phi


_SPACING = LossParam("spacing", None, kind="spacing", description="pixel size per axis", gui=False)


# --------------------------------------------------------------------------------------
# Distribution-based losses
# --------------------------------------------------------------------------------------


@register_loss(
    "focal",
    title="Focal loss",
    kind="pixel",
    multiclass=True,
    params=(
        LossParam(
            "alpha",
            0.25,
            kind="optional_float",
            description="weight of positive pixels (negatives get 1 − α); None: no weight",
            minimum=0.0,
            maximum=1.0,
        ),
        LossParam(
            "gamma",
            2.0,
            description="focusing exponent; 0 gives (α-weighted) BCE",
            minimum=0.0,
            maximum=10.0,
        ),
    ),
    formula=(
        r"L(x) = -\alpha (1 - p)^\gamma\, y \log p"
        r" - (1 - \alpha)\, p^\gamma (1 - y) \log(1 - p)"
    ),
    reference="Lin et al. 2017 (Focal loss for dense object detection); Jadon 2020",
)
def _focal(ctx: LossContext, alpha: float | None, gamma: float) -> torch.Tensor:
    r"""Focal loss: BCE with easy pixels down-weighted by (1 − p_t)^γ.

    .. math::

        L(x) = -\alpha (1 - p)^\gamma\, y \log p - (1 - \alpha)\, p^\gamma (1 - y)\log(1 - p)

    With ``alpha=None`` the α and 1 − α factors are dropped (then γ = 0 is BCE). From
    logits, 1 − p is computed as sigmoid(−x) (no cancellation). Lin et al. 2017.
    """
    p = ctx.p
    q = torch.sigmoid(-ctx.input) if ctx.from_logits else 1.0 - p
    pos = _safe_pow(q, gamma, ctx.eps) * ctx.y * ctx.log_p
    neg = _safe_pow(p, gamma, ctx.eps) * (1.0 - ctx.y) * ctx.log_1mp
    if alpha is None:
        return -(pos + neg)
    return -(alpha * pos + (1.0 - alpha) * neg)


@register_loss(
    "balanced_bce",
    title="Balanced binary cross-entropy",
    kind="pixel",
    formula=(
        r"L(x) = -\beta\, y \log p - (1 - \beta)(1 - y)\log(1 - p),"
        r"\quad \beta = \frac{\#\{y = 0\}}{N}"
    ),
    reference="Jadon 2020 (Xie & Tu 2015, holistically-nested edge detection)",
)
def _balanced_bce(ctx: LossContext) -> torch.Tensor:
    r"""Balanced BCE: positives weighted by β, negatives by 1 − β, β = fraction of negatives.

    .. math::

        L(x) = -\beta\, y \log p - (1 - \beta)(1 - y)\log(1 - p),
        \qquad \beta = \frac{\#\{y = 0\}}{N}

    β is computed per image over the counted pixels, so both classes carry the same total
    weight. An empty target gives β = 1 and an all-foreground one β = 0: the loss is then 0
    everywhere (there is nothing to balance). Jadon 2020.
    """
    beta = 1.0 - ctx.mean(ctx.y).detach()
    return -(beta * ctx.y * ctx.log_p + (1.0 - beta) * (1.0 - ctx.y) * ctx.log_1mp)


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
    return (1.0 + _to_ctx(phi, ctx)) * bce_terms(ctx)


# --------------------------------------------------------------------------------------
# Region-based losses
# --------------------------------------------------------------------------------------


@register_loss(
    "jaccard",
    title="Jaccard (IoU) loss",
    kind="region",
    multiclass=True,
    params=(_smooth_param(),),
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
    return _one_minus_ratio(tp + smooth, tp + fp + fn + smooth)


_TVERSKY_PARAMS = (
    LossParam("alpha", 0.5, description="weight of false positives", minimum=0.0, maximum=10.0),
    LossParam("beta", 0.5, description="weight of false negatives", minimum=0.0, maximum=10.0),
    _smooth_param(),
)


def tversky_index(ctx: LossContext, alpha: float, beta: float, smooth: float) -> torch.Tensor:
    """(TP + s)/(TP + α·FP + β·FN + s); 1 for 0/0 (smooth=0, empty target and prediction)."""
    tp, fp, fn = overlap_terms(ctx)
    return 1.0 - _one_minus_ratio(tp + smooth, tp + alpha * fp + beta * fn + smooth)


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
    return _safe_pow(base, gamma, ctx.eps)


_DICE_PARAMS = (
    _smooth_param(),
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
    return torch.log(torch.cosh(_dice_loss(ctx, smooth, gamma)))


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
        _smooth_param(),
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
    sens = ctx.sum(err * y) / _nonzero(ctx.sum(y) + smooth)
    spec = ctx.sum(err * (1.0 - y)) / _nonzero(ctx.sum(1.0 - y) + smooth)
    return w * sens + (1.0 - w) * spec


# --------------------------------------------------------------------------------------
# Compound losses
# --------------------------------------------------------------------------------------


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
        _smooth_param(),
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
    return alpha * ctx.mean(ce) + (1.0 - alpha) * _dice_loss(ctx, smooth, gamma)


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
        _smooth_param(1.0),
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
    l_dice = _safe_pow(-torch.log(dice), gamma_dice, ctx.eps)

    n = float(ctx.count)
    n_fg = float(ctx.sum(ctx.y).detach())
    n_bg = n - n_fg
    w_fg = math.sqrt(n / n_fg) if n_fg else 0.0
    w_bg = math.sqrt(n / n_bg) if n_bg else 0.0
    nll = -(ctx.y * ctx.log_p + (1.0 - ctx.y) * ctx.log_1mp)
    weights = w_fg * ctx.y + w_bg * (1.0 - ctx.y)
    l_ce = ctx.mean(weights * _safe_pow(nll, gamma_ce, ctx.eps))
    return w_dice * l_dice + w_ce * l_ce


# --------------------------------------------------------------------------------------
# Boundary-based losses
# --------------------------------------------------------------------------------------


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
    phi = boundary_signed_distance(_foreground(ctx), spacing)
    return ctx.p * _to_ctx(phi, ctx)


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
    d_y = two_sided_distance(_foreground(ctx), spacing)
    d_p = two_sided_distance((ctx.p.detach() > 0.5).cpu().numpy(), spacing)
    dist = _to_ctx(d_p**alpha + d_y**alpha, ctx)
    return (ctx.p - ctx.y) ** 2 * dist


# ``ce`` (softmax cross-entropy) and the multi-class machinery live in .multiclass.
# The losses of MONAI, kornia and smp (and the last two of the survey) register in
# .library_losses.
from . import library_losses, multiclass  # noqa: E402,F401
