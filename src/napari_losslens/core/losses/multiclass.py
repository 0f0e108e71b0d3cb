"""Multi-class segmentation: a prediction with a leading class axis.

A prediction of shape ``(C, *spatial)`` (probabilities, or logits with ``from_logits=True``,
to which a softmax over the class axis is applied) and a target of class ids of shape
``spatial`` (0..C−1) go through the same public functions as binary ones:
:func:`~napari_losslens.core.maps.loss_value`, ``loss_map`` and ``gradient_map``
recognise the class axis by ``prediction.ndim == target.ndim + 1``.

Losses that accept a class axis (:func:`multiclass_losses`):

- ``ce``: softmax cross-entropy −w_y·log p_y per pixel, with optional class weights. With a
  binary (same-shape) prediction it is the two-class case, i.e. BCE.
- ``dice``, ``jaccard``, ``tversky``, ``focal``: the binary loss of each class against the
  rest (p = p_c, y = [target == c]), then ``average``:

  - ``"macro"`` (default): the mean of the per-class losses.
  - ``"micro"``: for the region losses, TP, FP and FN (or the Dice sums) pooled over the
    classes before the ratio is formed; for ``focal``, a pixel loss, the same as macro.
  - ``None``: no average. :func:`~napari_losslens.core.maps.loss_map` keeps one map per
    class, a ``(C, *spatial)`` stack; ``loss_value`` and ``gradient_map`` use the *sum* of
    the per-class losses (so that they stay one scalar and its gradient);
    :func:`~napari_losslens.core.maps.class_losses` gives the per-class values themselves.

Pixels outside ``mask`` may hold any id (e.g. 255 for "ignore"); counted pixels must hold
ids below C. The maps: a pixel loss's map has the target's shape (the class mean of the
per-class maps for ``focal``, or ``(C, *spatial)`` with ``average=None``); a region loss's
map is its gradient with respect to the probabilities, of the prediction's shape.
"""

from __future__ import annotations

import math
from dataclasses import replace
from functools import partial
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from .._arrays import ArrayLike, check_fits, is_torch
from ..registry import LossInfo, LossParam, register_loss
from ._context import LossContext
from ._terms import Total, class_probabilities, lovasz_grad, total_or_masked

__all__ = [
    "AVERAGES",
    "check_average",
    "check_classes",
    "class_contexts",
    "generalized_dice_loss",
    "has_class_axis",
    "lovasz_softmax_loss",
    "multiclass_losses",
    "resolve_multiclass",
]

AVERAGES = ("macro", "micro", None)

# binary losses applied class by class (``average`` applies to them)
_PER_CLASS = ("dice", "jaccard", "tversky", "focal")

# losses that take the class axis themselves
_NATIVE = ("ce", "lovasz_softmax", "generalized_dice", "topk_ce")


def multiclass_losses() -> tuple[str, ...]:
    """Names of the losses that accept a prediction with a leading class axis."""
    return (*_NATIVE[:1], *_PER_CLASS, *_NATIVE[1:])


def has_class_axis(prediction: ArrayLike, target: ArrayLike) -> bool:
    """True when ``prediction`` has exactly one more (leading, class) axis than ``target``."""
    return _ndim(prediction) == _ndim(target) + 1


def _ndim(x: Any) -> int:
    if hasattr(x, "ndim"):
        return int(x.ndim)
    return int(np.ndim(x))


def check_average(average: Any) -> str | None:
    """Return ``average`` checked: ``"macro"``, ``"micro"`` or ``None``.

    Raises:
        ValueError: any other value.
    """
    if average is None or (isinstance(average, str) and average in ("macro", "micro")):
        return average
    raise ValueError(f"average must be 'macro', 'micro' or None, got {average!r}")


def resolve_multiclass(info: LossInfo, params: dict[str, Any]):
    """The loss to run on a multi-class prediction and its resolved parameters.

    For a per-class loss, ``average`` is taken from ``params`` and the returned
    :class:`~napari_losslens.core.registry.LossInfo` calls the binary loss class by class.

    Raises:
        ValueError: the loss takes no class axis, or a bad ``average``.
        TypeError: an unknown parameter.
    """
    if info.name in _NATIVE:
        return info, info.resolve_params(params)
    if info.name not in _PER_CLASS:
        raise ValueError(
            f"loss {info.name!r} does not accept a class axis (the prediction has one more "
            f"axis than the target); losses that do: {', '.join(multiclass_losses())}"
        )
    params = dict(params)
    average = check_average(params.pop("average", "macro"))
    resolved = info.resolve_params(params)
    return replace(info, func=partial(_per_class_loss, info, average)), resolved


def check_classes(
    prediction: torch.Tensor, labels: torch.Tensor, mask: torch.Tensor | None
) -> torch.Tensor:
    """Check a ``(C, *spatial)`` prediction against a target of class ids.

    Returns the labels with ids outside ``mask`` set to 0 (they do not count).

    Raises:
        ValueError: fewer than two classes, spatial shapes that differ, or a counted pixel
            whose id is not below C.
    """
    n_classes = int(prediction.shape[0])
    if tuple(prediction.shape[1:]) != tuple(labels.shape):
        raise ValueError(
            "a multi-class prediction (C, ...) must have the target's shape after its class "
            f"axis, got {tuple(prediction.shape)} and {tuple(labels.shape)}"
        )
    if n_classes < 2:
        raise ValueError(
            f"a class axis needs at least 2 classes, got {n_classes}; for a binary "
            "prediction drop the class axis"
        )
    if mask is not None:
        labels = torch.where(mask, labels, torch.zeros_like(labels))
    top = int(labels.max())
    if top >= n_classes:
        raise ValueError(
            f"target holds class id {top} but the prediction has {n_classes} classes "
            f"(ids 0..{n_classes - 1}); mask out ignored pixels with mask="
        )
    return labels


def class_contexts(ctx: LossContext) -> list[LossContext]:
    """One binary context per class: p = p_c, y = [labels == c], the same mask.

    From logits, log p_c and log(1 − p_c) are the stable log-softmax terms
    x_c − logsumexp(x) and logsumexp_{k≠c}(x_k) − logsumexp(x).
    """
    p = ctx.p
    n_classes = p.shape[0]
    out = []
    lse = torch.logsumexp(ctx.input, 0) if ctx.from_logits else None
    for c in range(n_classes):
        sub = LossContext(p[c], (ctx.labels == c).long(), False, ctx.mask, ctx.dtype)
        if ctx.from_logits:
            x = ctx.input
            # LossContext's log terms are cached properties: set the stable ones directly
            sub.log_p = x[c] - lse
            sub.log_1mp = torch.logsumexp(torch.cat([x[:c], x[c + 1 :]]), 0) - lse
        out.append(sub)
    return out


def _one_hot(labels: torch.Tensor, n_classes: int) -> torch.Tensor:
    return torch.movedim(F.one_hot(labels, n_classes), -1, 0)


def _per_class_loss(info: LossInfo, average: str | None, ctx: LossContext, **params):
    """The binary loss ``info`` applied class by class, then averaged."""
    if average == "micro" and info.kind == "region":
        onehot = _one_hot(ctx.labels, ctx.p.shape[0])
        mask = None if ctx.mask is None else ctx.mask.expand(onehot.shape)
        pooled = LossContext(ctx.p, onehot, False, mask, ctx.dtype)
        return info.func(pooled, **params)
    values = torch.stack([info.func(sub, **params) for sub in class_contexts(ctx)])
    if average is None:
        return values if info.kind == "pixel" else values.sum()
    return values.mean(0)


# --------------------------------------------------------------------------------------
# Softmax cross-entropy
# --------------------------------------------------------------------------------------


def _class_weight_vector(
    class_weights: Any, labels: torch.Tensor, n_classes: int, ctx: LossContext
) -> torch.Tensor | None:
    if class_weights is None:
        return None
    if isinstance(class_weights, str):
        if class_weights.lower() != "balanced":
            raise ValueError(
                f"class_weights must be None, 'balanced' or one weight per class, got "
                f"{class_weights!r}"
            )
        counted = labels if ctx.mask is None else labels[ctx.mask]
        counts = torch.bincount(counted.flatten(), minlength=n_classes).to(ctx.dtype)
        n = float(counted.numel())
        w = torch.where(counts > 0, n / (n_classes * counts.clamp_min(1)), 0.0)
        return w.to(ctx.device)
    w = class_weights if is_torch(class_weights) else None
    try:
        values = [float(v) for v in (w.flatten().tolist() if w is not None else class_weights)]
    except (TypeError, ValueError) as err:
        raise TypeError(
            f"class_weights must be None, 'balanced' or a sequence of numbers, got "
            f"{class_weights!r}"
        ) from err
    if len(values) != n_classes:
        raise ValueError(
            f"class_weights must have one weight per class ({n_classes}), got {len(values)}"
        )
    if not all(math.isfinite(v) and v >= 0 for v in values):
        raise ValueError(f"class weights must be finite and >= 0, got {tuple(values)}")
    check_fits({"class_weights": max(values)}, ctx.dtype, "cross-entropy")
    return torch.tensor(values, dtype=ctx.dtype, device=ctx.device)


@register_loss(
    "ce",
    title="Cross-entropy (softmax, multi-class)",
    kind="pixel",
    multiclass=True,
    params=(
        LossParam(
            "class_weights",
            None,
            kind="class_weights",
            description="None, 'balanced' or one weight per class (a pair when binary)",
        ),
    ),
    formula=r"L(x) = -w_{y(x)} \log p_{y(x)}(x)",
    reference="Jadon 2020 (cross-entropy); torch.nn.functional.cross_entropy",
)
def _ce(ctx: LossContext, class_weights) -> torch.Tensor:
    r"""Softmax cross-entropy −w_y·log p_y per pixel.

    .. math::

        L(x) = -w_{y(x)} \log p_{y(x)}(x)

    From logits, log p = log_softmax over the class axis (``torch.nn.functional.cross_entropy``
    with ``reduction="none"``); from probabilities, log of p clamped to [ε, 1]. A binary
    (same-shape) prediction is the two-class case (p_1 = p, p_0 = 1 − p): BCE.
    ``class_weights="balanced"`` gives class c the weight N/(C·N_c) over the counted pixels
    (0 for an absent class). The scalar loss is the mean over counted pixels,
    Σ w_y(−log p_y)/N; ``torch.nn.functional.cross_entropy`` with weights instead divides
    by Σ w_y.
    """
    if ctx.multiclass:
        n_classes = int(ctx.input.shape[0])
        labels = ctx.labels
        log_py = ctx.log_p.gather(0, labels.unsqueeze(0)).squeeze(0)
    else:
        n_classes = 2
        labels = (ctx.labels > 0).long()
        log_py = ctx.y * ctx.log_p + (1.0 - ctx.y) * ctx.log_1mp
    w = _class_weight_vector(class_weights, labels, n_classes, ctx)
    if w is None:
        return -log_py
    return -w[labels] * log_py


# --------------------------------------------------------------------------------------
# Lovász-softmax (Berman et al. 2018)
# --------------------------------------------------------------------------------------


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
    probas, labels = class_probabilities(ctx)
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
    sum_ = total_or_masked(mask, total)
    tp, both, ground = [], [], []
    for c in range(probas.shape[0]):
        y = (labels == c).to(probas.dtype)
        tp.append(sum_(probas[c] * y))
        both.append(sum_(probas[c] + y))
        ground.append(sum_(y).detach())
    return _generalized_dice_from_sums(tp, both, ground, smooth_nr, smooth_dr)


def _generalized_dice_from_sums(tp, both, ground, smooth_nr, smooth_dr) -> torch.Tensor:
    """1 − GDL from the per-class sums Σp_c·y_c, Σ(p_c + y_c) and Σy_c (the weights,
    from Σy_c, are constants)."""
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
    tp, both, ground = [], [], []
    if ctx.multiclass:
        for c in range(ctx.p.shape[0]):
            # Σp_c·y_c and Σp_c from one read of p_c (no map of the products, nor of
            # p_c + y_c), Σy_c a count
            region = ctx.labels == c
            tp_c, fp_c, _, _ = ctx.overlap_sums(ctx.p[c], region)
            ground.append(ctx.sum(region))
            tp.append(tp_c)
            both.append(tp_c + fp_c + ground[-1])
    else:
        # the two classes (1 − p, p) from the four overlap sums of p: class 1 has
        # Σp·y = TP and Σp = TP + FP, class 0 Σ(1 − p)(1 − y) = TN and Σ(1 − p) = FN + TN
        tp1, fp1, fn1, tn1 = ctx.overlap_sums()
        ground = [ctx.sum(ctx.bg), ctx.sum(ctx.fg)]
        tp = [tn1, tp1]
        both = [fn1 + tn1 + ground[0], tp1 + fp1 + ground[1]]
    return _generalized_dice_from_sums(tp, both, ground, smooth_nr, smooth_dr)
