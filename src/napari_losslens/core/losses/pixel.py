"""Pixel-wise (distribution-based) losses: one value per pixel, the scalar loss is their mean.

Binary cross-entropy and its weighted, balanced and focal variants (Jadon 2020, section
"distribution-based losses"). Each is registered here with
:func:`~napari_losslens.core.registry.register_loss` and works through
:func:`~napari_losslens.core.maps.loss_map`, ``gradient_map`` and ``loss_value``.

Convention where the literature varies: balanced cross-entropy weights positives by β and
negatives by 1 − β (Jadon 2020), not the ``weighted_bce`` form −βy·log p − (1 − y)·log(1 − p).

References: S. Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB
2020, and the original papers cited on each loss.
"""

from __future__ import annotations

import torch

from ..registry import LossParam, register_loss
from ._context import LossContext
from ._terms import bce_terms, safe_pow

__all__: list[str] = []  # the losses are used by name, through the registry


@register_loss(
    "bce",
    title="Binary cross-entropy",
    kind="pixel",
    formula=r"L(x) = -y \log p - (1 - y)\log(1 - p)",
    reference="Jadon 2020, eq. (1)",
)
def _bce(ctx: LossContext) -> torch.Tensor:
    """Binary cross-entropy: −y·log p − (1 − y)·log(1 − p) per pixel."""
    return bce_terms(ctx)


@register_loss(
    "weighted_bce",
    title="Weighted binary cross-entropy",
    kind="pixel",
    params=(
        LossParam(
            "beta",
            1.0,
            description="weight of positive (foreground) pixels; > 1 penalises misses",
            minimum=0.0,
            maximum=1e6,
        ),
    ),
    formula=r"L(x) = -\beta\, y \log p - (1 - y)\log(1 - p)",
    reference="Jadon 2020, eq. (2)",
)
def _weighted_bce(ctx: LossContext, beta: float) -> torch.Tensor:
    """Weighted BCE: positive pixels weighted by β."""
    return bce_terms(ctx, beta)


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
    pos = safe_pow(q, gamma, ctx.eps) * ctx.y * ctx.log_p
    neg = safe_pow(p, gamma, ctx.eps) * (1.0 - ctx.y) * ctx.log_1mp
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
