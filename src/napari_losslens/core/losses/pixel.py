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

import math

import torch
import torch.nn.functional as F

from ..registry import LossParam, register_loss
from ._context import LossContext
from ._terms import bce_terms, safe_pow

# the losses are used by name, through the registry; these are their building blocks
__all__ = ["local_standardized", "ssl_weights", "topk_selection"]


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


# --------------------------------------------------------------------------------------
# Top-k cross-entropy (Wu et al. 2016)
# --------------------------------------------------------------------------------------


def topk_selection(values: torch.Tensor, k: float, mask: torch.Tensor | None = None):
    """The ``k`` % largest of ``values`` among the counted pixels: (bool map, K, N).

    K = max(1, ⌊N·k/100⌋) pixels of the N counted ones; ties are broken by
    ``torch.topk`` (the sum of the K largest values does not depend on which).
    """
    v = values.detach()
    if mask is not None:
        v = torch.where(mask, v, torch.full_like(v, -math.inf))
    n = v.numel() if mask is None else int(mask.sum())
    kk = max(1, math.floor(n * k / 100.0 + 1e-9))
    idx = torch.topk(v.reshape(-1), kk, sorted=False).indices
    chosen = torch.zeros(v.numel(), dtype=torch.bool, device=v.device)
    chosen[idx] = True
    return chosen.reshape(v.shape), kk, n


@register_loss(
    "topk_ce",
    blockwise=False,
    title="Top-k cross-entropy (hard pixel mining)",
    kind="pixel",
    multiclass=True,
    params=(
        LossParam(
            "k",
            10.0,
            description="percentage of the counted pixels kept (the hardest)",
            minimum=0.0,
            maximum=100.0,
            exclusive_minimum=True,
        ),
    ),
    formula=(
        r"L = \frac{1}{K}\sum_{x \in \mathrm{top}_K} -\log p_{y(x)}(x),"
        r"\quad K = \max(1, \lfloor N k / 100 \rfloor)"
    ),
    reference="Wu et al. 2016 (online bootstrapping); nnU-Net TopKLoss",
)
def _topk_ce(ctx: LossContext, k: float) -> torch.Tensor:
    r"""Cross-entropy of the k % hardest pixels; the map is (N/K)·CE there, 0 elsewhere.

    .. math::

        L = \frac{1}{K}\sum_{x \in \mathrm{top}_K} -\log p_{y(x)}(x)

    The K = max(1, ⌊N·k/100⌋) pixels of largest cross-entropy among the N counted ones are
    kept (the selection is a constant: no gradient through it). As a pixel loss its map is
    N/K times the cross-entropy on the kept pixels and 0 elsewhere, so that its mean is
    the loss. With a class axis, the softmax cross-entropy −log p_y. Wu et al. 2016
    ("bootstrapped" cross-entropy); nnU-Net's ``TopKLoss`` (k = 10).
    """
    if ctx.multiclass:
        ce = -ctx.log_p.gather(0, ctx.labels.unsqueeze(0)).squeeze(0)
    else:
        ce = bce_terms(ctx)
    chosen, kk, n = topk_selection(ce, k, ctx.mask)
    return torch.where(chosen, ce * (n / kk), torch.zeros_like(ce))


# --------------------------------------------------------------------------------------
# Structural similarity loss (Zhao et al. 2019)
# --------------------------------------------------------------------------------------


def _gaussian_filter(x: torch.Tensor, sigma: float) -> torch.Tensor:
    """Separable Gaussian filter (radius ⌈3σ⌉, zero padding) along every axis of ``x``."""
    r = max(1, math.ceil(3.0 * sigma))
    t = torch.arange(-r, r + 1, dtype=x.dtype, device=x.device)
    g = torch.exp(-(t**2) / (2.0 * sigma**2))
    g = (g / g.sum()).view(1, 1, -1)
    out = x
    for axis in range(x.ndim):
        moved = out.movedim(axis, -1)
        shape = moved.shape
        filtered = F.conv1d(moved.reshape(-1, 1, shape[-1]), g, padding=r)
        out = filtered.reshape(shape).movedim(-1, axis)
    return out


def local_standardized(x: torch.Tensor, sigma: float = 1.5, c: float = 0.01) -> torch.Tensor:
    r"""(x − μ + c)/(σ_x + c) with μ, σ_x the Gaussian-weighted local mean and deviation.

    .. math::

        \mu = \frac{G * x}{G * 1},\quad \sigma_x = \sqrt{\max(0, \tfrac{G * x^2}{G * 1}
        - \mu^2)}

    G a Gaussian of standard deviation ``sigma`` pixels (divided by G * 1 so that the
    window is renormalised at the image edge).
    """
    ones = torch.ones_like(x)
    norm = _gaussian_filter(ones, sigma)
    mu = _gaussian_filter(x, sigma) / norm
    var = (_gaussian_filter(x * x, sigma) / norm - mu * mu).clamp_min(0.0)
    return (x - mu + c) / (torch.sqrt(var) + c)


def ssl_weights(
    p: torch.Tensor,
    y: torch.Tensor,
    mask: torch.Tensor | None = None,
    beta: float = 0.1,
    sigma: float = 1.5,
    c: float = 0.01,
) -> torch.Tensor:
    r"""The structural-similarity weights e·f of Zhao et al. 2019, scaled by N/M.

    .. math::

        e = \left|\frac{y - \mu_y + c}{\sigma_y + c} - \frac{p - \mu_p + c}{\sigma_p + c}
        \right|,\quad f = [e > \beta\, e_{\max}],\quad M = \sum f

    computed without gradient (:func:`local_standardized`); e_max and M over the counted
    pixels. Returns (N/M)·e·f, all zeros when M = 0 (then p and y agree in structure
    everywhere).
    """
    with torch.no_grad():
        e = (local_standardized(y, sigma, c) - local_standardized(p.detach(), sigma, c)).abs()
        if mask is not None:
            e = torch.where(mask, e, torch.zeros_like(e))
        f = e > beta * e.max()
        m = int(f.sum())
        n = e.numel() if mask is None else int(mask.sum())
        if m == 0:
            return torch.zeros_like(e)
        return torch.where(f, e * (n / m), torch.zeros_like(e))


@register_loss(
    "ssl",
    blockwise=False,
    title="Structural similarity loss",
    kind="pixel",
    params=(
        LossParam(
            "beta",
            0.1,
            description="keep pixels whose error e exceeds β·max(e)",
            minimum=0.0,
            maximum=1.0,
        ),
        LossParam(
            "sigma",
            1.5,
            description="standard deviation of the local window (pixels)",
            minimum=0.0,
            maximum=20.0,
            exclusive_minimum=True,
        ),
        LossParam(
            "c",
            0.01,
            description="stabilising constant of the local standardisation",
            minimum=0.0,
            maximum=10.0,
            exclusive_minimum=True,
        ),
    ),
    formula=(
        r"L = \frac{1}{M}\sum_x e(x) f(x)\, \mathrm{CE}(x),\quad"
        r" e = \left|\frac{y - \mu_y + c}{\sigma_y + c} - \frac{p - \mu_p + c}{\sigma_p + c}"
        r"\right|,\ f = [e > \beta e_{\max}]"
    ),
    reference="Zhao et al. 2019 (arXiv:1910.08711); Jadon 2020",
)
def _ssl(ctx: LossContext, beta: float, sigma: float, c: float) -> torch.Tensor:
    r"""Cross-entropy of the pixels where y and p differ most in local structure, weighted by e.

    .. math::

        L = \frac{1}{M}\sum_x e(x)\, f(x)\, [-y \log p - (1 - y)\log(1 - p)]

    (:func:`ssl_weights`; e and f are constants, as hard-example weights). As a pixel loss
    its map is (N/M)·e·f·CE, so that its mean over the N counted pixels is the loss.
    Zhao et al. 2019; Jadon 2020.
    """
    return ssl_weights(ctx.p, ctx.y, ctx.mask, beta, sigma, c) * bce_terms(ctx)
