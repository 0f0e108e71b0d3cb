"""Losses of MONAI, kornia and segmentation_models_pytorch, and the last two of Jadon's survey.

Each loss is a pure function of tensors first (``lovasz_hinge_loss``, ``soft_cldice_loss``,
...: probabilities or logits and targets in, a tensor out, autograd intact), then its
registration with :func:`~napari_losslens.core.registry.register_loss`, a thin adapter from
the :class:`~napari_losslens.core.losses.LossContext` to the function. So every loss here
works through :func:`~napari_losslens.core.losses.loss_map`, ``gradient_map``,
``loss_value`` and ``available_losses()``, and its map follows the package's rule: the
per-pixel loss for a pixel loss (its mean over the counted pixels is the loss), the signed
gradient ∂L/∂p for a region loss.

Notation as in :mod:`~napari_losslens.core.losses`: p is the foreground probability,
y = [target > 0]; sums run over the counted pixels (those in ``mask``).

Conventions where a reference library and the paper differ are stated on each loss; the
tests hold each loss to its reference library where the conventions agree (values and
autograd gradients) and to a float64 formula otherwise.

References: Berman et al. 2018 (Lovász); Sudre et al. 2017 (generalised Dice); Shit et
al. 2021 (clDice); Karimi & Salcudean 2019 (Hausdorff); Yeung et al. 2022 (unified focal);
Abhishek & Hamarneh 2021 (MCC); Wu et al. 2016 (top-k); Hayder et al. 2017 and Jadon 2020
(shape-aware); Zhao et al. 2019 (structural similarity loss).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from functools import partial

import numpy as np
import torch
import torch.nn.functional as F
from scipy import ndimage

from ._arrays import validate_spacing
from .losses import LossContext, bce_terms
from .registry import LossParam, register_loss
from .survey_losses import _safe_pow, two_sided_distance

__all__ = [
    "contour",
    "dice_cldice_loss",
    "generalized_dice_loss",
    "hausdorff_er_map",
    "local_standardized",
    "log_hausdorff_dt_loss",
    "lovasz_grad",
    "lovasz_hinge_loss",
    "lovasz_softmax_loss",
    "mcc_loss",
    "mean_contour_distance",
    "soft_cldice_loss",
    "soft_skeleton",
    "ssl_weights",
    "topk_selection",
    "unified_focal_loss",
]


#: A sum over the counted pixels (``LossContext.sum``, which the chunked path replaces by
#: the sum over the whole image).
Total = Callable[[torch.Tensor], torch.Tensor]


def _msum(x: torch.Tensor, mask: torch.Tensor | None = None) -> torch.Tensor:
    """Sum of ``x`` over the pixels of ``mask`` (all pixels when None)."""
    if mask is None:
        return x.sum()
    return torch.where(mask, x, torch.zeros_like(x)).sum()


def _total(mask: torch.Tensor | None, total: Total | None) -> Total:
    return total if total is not None else partial(_msum, mask=mask)


def _check_spatial(x: torch.Tensor, loss: str) -> None:
    if x.ndim not in (2, 3):
        raise ValueError(
            f"loss {loss!r} needs a 2D or 3D image (all axes spatial), got {x.ndim}D with "
            f"shape {tuple(x.shape)}"
        )


def _binary_logits(ctx: LossContext) -> torch.Tensor:
    """The logit x = log p − log(1 − p): exact from logits, from clamped p otherwise."""
    return ctx.log_p - ctx.log_1mp


def _class_probabilities(ctx: LossContext) -> tuple[torch.Tensor, torch.Tensor]:
    """(C, *spatial) probabilities and class ids; a binary prediction is (1 − p, p)."""
    if ctx.multiclass:
        return ctx.p, ctx.labels
    return torch.stack([1.0 - ctx.p, ctx.p]), (ctx.labels > 0).long()


# --------------------------------------------------------------------------------------
# Lovász hinge and Lovász-softmax (Berman et al. 2018)
# --------------------------------------------------------------------------------------


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


def lovasz_softmax_loss(
    probas: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    present_only: bool = True,
) -> torch.Tensor:
    r"""Lovász-softmax loss: the mean over classes of the Lovász extension of 1 − IoU_c.

    .. math::

        L = \frac{1}{|K|}\sum_{c \in K} \sum_i e_{c,\pi_c(i)}\, g_i(y_{c,\pi_c}),
        \qquad e_c = |y_c - p_c|

    with y_c = [labels == c], π_c the order of decreasing e_c and g :func:`lovasz_grad`.
    K is the set of classes present in ``labels`` (``present_only=True``, Berman et al.'s
    and segmentation_models_pytorch's default) or all classes (kornia's
    ``lovasz_softmax_loss``). Berman et al. 2018.

    Args:
        probas: (C, *spatial) class probabilities.
        labels: (*spatial) integer class ids in 0..C−1.
        mask: optional bool tensor of the counted pixels.
        present_only: average over the classes present in the counted pixels only.

    Returns:
        A 0-d tensor.
    """
    n_classes = probas.shape[0]
    p = probas.reshape(n_classes, -1)
    lab = labels.reshape(-1)
    if mask is not None:
        keep = mask.reshape(-1)
        p, lab = p[:, keep], lab[keep]
    losses = []
    for c in range(n_classes):
        fg = (lab == c).to(p.dtype)
        if present_only and not bool(fg.any()):
            continue
        errors_sorted, perm = torch.sort((fg - p[c]).abs(), descending=True)
        losses.append(torch.dot(errors_sorted, lovasz_grad(fg[perm])))
    return torch.stack(losses).mean()


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
    return lovasz_hinge_loss(_binary_logits(ctx), ctx.y, ctx.mask)


@register_loss(
    "lovasz_softmax",
    blockwise=False,
    title="Lovász-softmax loss",
    kind="region",
    multiclass=True,
    params=(
        LossParam(
            "present_only",
            True,
            kind="bool",
            description="average over the classes present in the target only",
        ),
    ),
    formula=r"L = \frac{1}{|K|}\sum_{c \in K} \overline{\Delta_{J_c}}(|y_c - p_c|)",
    reference="Berman et al. 2018 (CVPR); smp LovaszLoss; kornia lovasz_softmax_loss",
)
def _lovasz_softmax(ctx: LossContext, present_only: bool) -> torch.Tensor:
    """Lovász-softmax over the classes; a binary prediction is the two classes (1 − p, p)."""
    probas, labels = _class_probabilities(ctx)
    return lovasz_softmax_loss(probas, labels, ctx.mask, present_only)


# --------------------------------------------------------------------------------------
# Generalised Dice (Sudre et al. 2017)
# --------------------------------------------------------------------------------------


def generalized_dice_loss(
    probas: torch.Tensor,
    labels: torch.Tensor,
    mask: torch.Tensor | None = None,
    smooth_nr: float = 1e-5,
    smooth_dr: float = 1e-5,
    *,
    total: Total | None = None,
) -> torch.Tensor:
    r"""Generalised Dice loss with class weights 1/(Σy_c)².

    .. math::

        L = 1 - \frac{2\sum_c w_c \sum_x p_c y_c + s_{nr}}
        {\sum_c w_c \sum_x (p_c + y_c) + s_{dr}},\qquad w_c = \frac{1}{(\sum_x y_c)^2}

    A class absent from the target gets the largest weight of the present ones (as MONAI's
    ``GeneralizedDiceLoss``, whose defaults these are). The weights are constants (no
    gradient). Sudre et al. 2017.

    Args:
        probas: (C, *spatial) class probabilities.
        labels: (*spatial) integer class ids in 0..C−1.
        mask: optional bool tensor of the counted pixels.
        smooth_nr, smooth_dr: added to the numerator and the denominator.
        total: the sum over the counted pixels (default: over ``mask``).

    Returns:
        A 0-d tensor.
    """
    sum_ = _total(mask, total)
    tp, both, ground = [], [], []
    for c in range(probas.shape[0]):
        y = (labels == c).to(probas.dtype)
        tp.append(sum_(probas[c] * y))
        both.append(sum_(probas[c] + y))
        ground.append(sum_(y).detach())
    g = torch.stack(ground)
    w = torch.where(g > 0, 1.0 / g.clamp_min(1.0) ** 2, torch.zeros_like(g))
    w = torch.where(g > 0, w, w.max())
    num = 2.0 * (w * torch.stack(tp)).sum() + smooth_nr
    den = (w * torch.stack(both)).sum() + smooth_dr
    return 1.0 - num / den


_NR = LossParam("smooth_nr", 1e-5, description="added to the numerator", minimum=0.0, maximum=1e3)
_DR = LossParam(
    "smooth_dr",
    1e-5,
    description="added to the denominator",
    minimum=0.0,
    maximum=1e3,
    exclusive_minimum=True,
)


@register_loss(
    "generalized_dice",
    title="Generalised Dice loss",
    kind="region",
    multiclass=True,
    params=(_NR, _DR),
    formula=(
        r"L = 1 - \frac{2\sum_c w_c \sum p_c y_c + s_{nr}}{\sum_c w_c \sum (p_c + y_c)"
        r" + s_{dr}},\quad w_c = (\textstyle\sum y_c)^{-2}"
    ),
    reference="Sudre et al. 2017 (DLMIA); MONAI GeneralizedDiceLoss",
)
def _generalized_dice(ctx: LossContext, smooth_nr: float, smooth_dr: float) -> torch.Tensor:
    """Generalised Dice over the classes; a binary prediction is the two classes (1 − p, p)."""
    probas, labels = _class_probabilities(ctx)
    return generalized_dice_loss(probas, labels, ctx.mask, smooth_nr, smooth_dr, total=ctx.sum)


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
    tprec = (_msum(skel_p * y, mask) + smooth) / (_msum(skel_p, mask) + smooth)
    tsens = (_msum(skel_y * p, mask) + smooth) / (_msum(skel_y, mask) + smooth)
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
    dice = 1.0 - (2.0 * _msum(p * y, mask) + smooth) / (_msum(p, mask) + _msum(y, mask) + smooth)
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
    _check_spatial(ctx.p, "soft_cldice")
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
    _check_spatial(ctx.p, "dice_cldice")
    return dice_cldice_loss(ctx.p, ctx.y, ctx.mask, iterations, smooth, alpha)


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


def log_hausdorff_dt_loss(
    p: torch.Tensor,
    y: torch.Tensor,
    d_p: torch.Tensor,
    d_y: torch.Tensor,
    mask: torch.Tensor | None = None,
    alpha: float = 2.0,
) -> torch.Tensor:
    r"""log(1 + Hausdorff distance-transform loss).

    .. math::

        L = \log\left(1 + \frac{1}{N}\sum_x (p - y)^2 (d_p^\alpha + d_y^\alpha)\right)

    d_p and d_y are the two-sided distance maps of [p > 0.5] and of the target
    (:func:`~napari_losslens.core.survey_losses.two_sided_distance`), constants.
    MONAI ``LogHausdorffDTLoss``; Karimi & Salcudean 2019.

    Args:
        p, y: probabilities and binary target.
        d_p, d_y: the distance maps (same shape).
        mask: optional bool tensor of the counted pixels (N is their number).
        alpha: exponent of the distances.

    Returns:
        A 0-d tensor.
    """
    n = p.numel() if mask is None else int(mask.sum())
    term = (p - y) ** 2 * (d_p**alpha + d_y**alpha)
    return torch.log1p(_msum(term, mask) / n)


_HD_ALPHA = LossParam(
    "alpha", 2.0, description="exponent of the distances", minimum=0.0, maximum=4.0
)
_SPACING = LossParam("spacing", None, kind="spacing", description="pixel size per axis", gui=False)


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
    _check_spatial(ctx.p, "hausdorff_er")
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
    d_y = two_sided_distance((ctx.labels > 0).cpu().numpy(), spacing)
    d_p = two_sided_distance((ctx.p.detach() > 0.5).cpu().numpy(), spacing)
    as_t = lambda a: torch.as_tensor(a, dtype=ctx.dtype, device=ctx.device)  # noqa: E731
    return log_hausdorff_dt_loss(ctx.p, ctx.y, as_t(d_p), as_t(d_y), ctx.mask, alpha)


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
    sum_ = _total(mask, total)
    if count is None:
        count = p.numel() if mask is None else int(mask.sum())
    eps = float(torch.finfo(p.dtype).eps)
    back = (1.0 - delta) * _safe_pow(p, gamma, eps) * (-(1.0 - y) * log_1mp)
    fore = delta * (-y * log_p)
    focal = sum_(back + fore) / (2.0 * count)
    q, z = 1.0 - p, 1.0 - y
    tis = []
    for pc, yc in ((q, z), (p, y)):
        tp = sum_(pc * yc)
        fn = sum_((1.0 - pc) * yc)
        fp = sum_(pc * (1.0 - yc))
        tis.append((tp + smooth) / (tp + delta * fn + (1.0 - delta) * fp + smooth))
    tversky = 0.5 * ((1.0 - tis[0]) + _safe_pow(1.0 - tis[1], 1.0 - gamma, eps))
    return weight * focal + (1.0 - weight) * tversky


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
    """Asymmetric unified focal loss of a binary prediction."""
    return unified_focal_loss(
        ctx.p,
        ctx.y,
        ctx.log_p,
        ctx.log_1mp,
        ctx.mask,
        weight,
        delta,
        gamma,
        smooth,
        total=ctx.sum,
        count=ctx.count,
    )


# --------------------------------------------------------------------------------------
# Matthews correlation coefficient (Abhishek & Hamarneh 2021)
# --------------------------------------------------------------------------------------


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
        smooth_nr, smooth_dr: added to the numerator and under the root.
        total: the sum over the counted pixels (default: over ``mask``).

    Returns:
        A 0-d tensor of ``p``'s dtype.
    """
    sum_ = _total(mask, total)
    tp = sum_(p * y).double()
    tn = sum_((1.0 - p) * (1.0 - y)).double()
    fp = sum_(p * (1.0 - y)).double()
    fn = sum_((1.0 - p) * y).double()
    num = tp * tn - fp * fn + smooth_nr
    den = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + smooth_dr)
    score = 1.0 - num / den
    perfect = bool((fp.detach() == 0) & (fn.detach() == 0))
    return (score * 0.0 if perfect else score).to(p.dtype)


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
            minimum=0.0,
            maximum=1e3,
            exclusive_minimum=True,
        ),
    ),
    formula=(
        r"L = 1 - \frac{TP\,TN - FP\,FN + s_{nr}}"
        r"{\sqrt{(TP + FP)(TP + FN)(TN + FP)(TN + FN) + s_{dr}}}"
    ),
    reference="Abhishek & Hamarneh 2021 (ISBI); MONAI MCCLoss; smp MCCLoss",
)
def _mcc(ctx: LossContext, smooth_nr: float, smooth_dr: float) -> torch.Tensor:
    """1 − soft MCC of a binary prediction."""
    return mcc_loss(ctx.p, ctx.y, ctx.mask, smooth_nr, smooth_dr, total=ctx.sum)


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

    Args:
        pred, target: bool arrays of the same shape.
        spacing: pixel size per axis (default 1).

    Returns:
        A float.
    """
    c_pred, c_true = contour(pred), contour(target)
    if not c_pred.any() or not c_true.any():
        return 0.0
    sampling = validate_spacing(spacing, c_true.ndim)
    d = ndimage.distance_transform_edt(~c_true, sampling=sampling)
    return float(d[c_pred].mean())


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
