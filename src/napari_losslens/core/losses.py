"""Per-pixel loss maps, gradient maps and scalar losses for binary segmentation.

Three views of one loss, all through the same registered function:

- :func:`loss_value`: the scalar a training loop sees (the mean over counted pixels for a
  pixel-wise loss; the loss itself for a region loss such as Dice).
- :func:`loss_map`: a map of the target's shape. For a pixel-wise loss, the per-pixel loss.
  For a region loss, which has no per-pixel value, the signed gradient ∂L/∂p with respect to
  the probability: negative where the loss pulls the prediction up, positive where down.
- :func:`gradient_map`: ∂L/∂(input) of :func:`loss_value` through autograd, with respect to
  the probabilities, or to the logits when ``from_logits=True``.

Conventions. p is the predicted probability of the foreground, y = [target > 0]. From
probabilities, p is clamped to [ε, 1 − ε] with ε the dtype's machine epsilon before any
logarithm (the clamp passes gradients straight through, so a confident wrong pixel gets a
large finite gradient, never 0, NaN or inf). From logits, log p and log(1 − p) are computed
stably as −softplus(−x) and −softplus(x).

References: S. Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB
2020; O. Ronneberger et al., "U-Net", MICCAI 2015.
"""

from __future__ import annotations

from functools import cached_property

import torch
import torch.nn.functional as F

from ._arrays import (
    ArrayLike,
    check_same_shape,
    is_torch,
    resolve_device,
    result_dtype,
    to_caller,
    validate_labels,
    validate_mask,
    validate_prediction,
)
from .registry import LossParam, get_loss, register_loss

__all__ = ["LossContext", "gradient_map", "loss_map", "loss_value"]


class LossContext:
    """What a registered loss function receives: the inputs, validated, and common terms.

    Attributes:
        input: the prediction as given (probabilities, or logits when ``from_logits``).
        from_logits: whether ``input`` holds logits.
        labels: the target as int64 ids (instance labels or a 0/1 mask).
        y: the binary target ``labels > 0`` in the prediction's dtype.
        mask: bool tensor of counted pixels, or None (all count).
        multiclass: ``input`` has a leading class axis (``input.ndim == labels.ndim + 1``);
            then p is the softmax over it (from logits) and ``labels`` holds class ids
            (see :mod:`~napari_losslens.core.multiclass`).
    """

    def __init__(self, input, labels, from_logits: bool, mask, dtype: torch.dtype):
        self.input = input
        self.labels = labels
        self.from_logits = from_logits
        self.mask = mask
        self.dtype = dtype
        self.device = input.device
        self.multiclass = input.ndim == labels.ndim + 1
        self.y = (labels > 0).to(dtype)

    @cached_property
    def eps(self) -> float:
        """The clamp margin for probabilities: the dtype's machine epsilon."""
        return float(torch.finfo(self.dtype).eps)

    @cached_property
    def p(self) -> torch.Tensor:
        """The probability (sigmoid, or softmax over the class axis, of the logits)."""
        if self.from_logits and self.multiclass:
            return torch.softmax(self.input, dim=0)
        return torch.sigmoid(self.input) if self.from_logits else self.input

    @cached_property
    def p_clamped(self) -> torch.Tensor:
        """p clamped to [ε, 1 − ε]; the gradient passes straight through the clamp."""
        p = self.p
        return p + (p.clamp(self.eps, 1.0 - self.eps) - p).detach()

    @cached_property
    def log_p(self) -> torch.Tensor:
        """log p, stable (−softplus(−x), or log_softmax, from logits)."""
        if self.from_logits and self.multiclass:
            return F.log_softmax(self.input, dim=0)
        if self.from_logits:
            return -F.softplus(-self.input)
        return torch.log(self.p_clamped)

    @cached_property
    def log_1mp(self) -> torch.Tensor:
        """log(1 − p), stable (−softplus(x) from binary logits)."""
        if self.from_logits and not self.multiclass:
            return -F.softplus(self.input)
        return torch.log1p(-self.p_clamped)

    def sum(self, x: torch.Tensor) -> torch.Tensor:
        """Sum over the counted pixels."""
        if self.mask is None:
            return x.sum()
        return torch.where(self.mask, x, torch.zeros_like(x)).sum()

    @cached_property
    def count(self) -> int:
        """Number of counted pixels."""
        return int(self.mask.sum()) if self.mask is not None else self.y.numel()

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the counted pixels."""
        return self.sum(x) / self.count

    def with_probabilities(self, p: torch.Tensor) -> LossContext:
        """The same context with ``p`` as the (probability) input."""
        return LossContext(p, self.labels, False, self.mask, self.dtype)


# --------------------------------------------------------------------------------------
# Built-in losses (Jadon 2020; Ronneberger et al. 2015)
# --------------------------------------------------------------------------------------

_SMOOTH = LossParam(
    "smooth", 1e-6, description="added to numerator and denominator", minimum=0.0, maximum=1e3
)


def bce_terms(ctx: LossContext, beta: float = 1.0) -> torch.Tensor:
    """Per-pixel −β·y·log p − (1 − y)·log(1 − p)."""
    return -(beta * ctx.y * ctx.log_p + (1.0 - ctx.y) * ctx.log_1mp)


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


def dice_score(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    """(2Σpy + s) / (Σp^γ + Σy^γ + s) over the counted pixels."""
    p = ctx.p
    num = 2.0 * ctx.sum(p * ctx.y) + smooth
    den = ctx.sum(p**gamma) + ctx.sum(ctx.y**gamma) + smooth
    return num / den


@register_loss(
    "dice",
    title="Dice loss",
    kind="region",
    multiclass=True,
    params=(
        _SMOOTH,
        LossParam(
            "gamma",
            2.0,
            description="exponent of p and y in the denominator",
            minimum=0.0,
            maximum=10.0,
            exclusive_minimum=True,
        ),
    ),
    formula=r"L = 1 - \frac{2\sum p y + s}{\sum p^\gamma + \sum y^\gamma + s}",
    reference="Jadon 2020, eq. (6); defaults as the seed article's code",
)
def _dice(ctx: LossContext, smooth: float, gamma: float) -> torch.Tensor:
    """Dice loss 1 − (2Σpy + s)/(Σp^γ + Σy^γ + s)."""
    if smooth == 0.0:
        # 0/0 when both prediction and target are empty: define the loss as 0 there
        den = ctx.sum(ctx.p**gamma) + ctx.sum(ctx.y**gamma)
        if float(den.detach()) == 0.0:
            return den * 0.0
    return 1.0 - dice_score(ctx, smooth, gamma)


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
        from .weights import unet_weight_map

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
        w = weight_map if is_torch(weight_map) else torch.as_tensor(weight_map)
        w = w.to(device=ctx.device, dtype=ctx.dtype)
        if not bool(torch.isfinite(w).all()) or bool((w < 0).any()):
            raise ValueError("weight_map must be finite and >= 0")
    return w * bce_terms(ctx)


# --------------------------------------------------------------------------------------
# The public functions
# --------------------------------------------------------------------------------------


def _prepare(prediction, target, loss, from_logits, mask, device, params):
    from .multiclass import check_classes, has_class_axis, resolve_multiclass

    info = get_loss(loss)
    multiclass = has_class_axis(prediction, target)  # a leading class axis
    if multiclass:
        info, resolved = resolve_multiclass(info, params)
    else:
        resolved = info.resolve_params(params)
        check_same_shape(prediction, target, "prediction", "target")
    dev = resolve_device(device, prediction, target)
    dtype = result_dtype(prediction)
    labels = validate_labels(target, dev, name="target", ndims=None)
    pred = validate_prediction(prediction, dev, dtype, bool(from_logits))
    m = validate_mask(mask, tuple(labels.shape), dev)
    if multiclass:
        labels = check_classes(pred, labels, m)
    return info, resolved, LossContext(pred, labels, bool(from_logits), m, dtype)


def _any_dask(*arrays) -> bool:
    from .chunked import is_dask

    return any(is_dask(a) for a in arrays)


def _zero_outside(ctx: LossContext, x: torch.Tensor) -> torch.Tensor:
    if ctx.mask is None:
        return x
    return torch.where(ctx.mask, x, torch.zeros_like(x))


def _value(info, ctx: LossContext, params) -> torch.Tensor:
    out = info.func(ctx, **params)
    if info.kind == "pixel":
        return ctx.mean(out)
    return out


def loss_value(
    prediction: ArrayLike,
    target: ArrayLike,
    loss: str = "bce",
    *,
    from_logits: bool = False,
    mask: ArrayLike | None = None,
    device=None,
    **params,
):
    """The scalar loss, as a training loop sees it.

    For a pixel-wise loss, the mean of the per-pixel loss over the counted pixels; for a
    region loss, the loss itself.

    Args:
        prediction: probabilities in [0, 1], or logits with ``from_logits=True``.
        target: a binary mask or instance labels (foreground = ``target > 0``), same shape.
        loss: a name from :func:`~napari_losslens.core.registry.available_losses`.
        from_logits: the prediction holds logits (computed stably from them).
        mask: optional bool array of the pixels that count.
        device: ``None``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        **params: the loss's parameters (see ``available_losses()[loss].params``).

    Returns:
        A Python float for numpy input; a 0-d tensor (with autograd) for torch input.

    Raises:
        ValueError: shapes differ, NaN/inf in the prediction, probabilities outside [0, 1]
            without ``from_logits``, negative or non-integer target ids, an unknown loss,
            a parameter out of range, an all-excluding mask, an unavailable device.
        TypeError: an unknown parameter name, a non-numeric array.

    Example:
        >>> import numpy as np
        >>> round(loss_value(np.array([0.5, 0.5]), np.array([0, 1])), 6)
        0.693147
    """
    if _any_dask(prediction, target, mask):
        from .chunked import loss_value_dask

        return loss_value_dask(
            prediction, target, loss, from_logits=from_logits, mask=mask, device=device, **params
        )
    info, resolved, ctx = _prepare(prediction, target, loss, from_logits, mask, device, params)
    value = _value(info, ctx, resolved)
    if is_torch(prediction):
        return value
    return float(value.detach())


def loss_map(
    prediction: ArrayLike,
    target: ArrayLike,
    loss: str = "bce",
    *,
    from_logits: bool = False,
    mask: ArrayLike | None = None,
    device=None,
    **params,
):
    """A map of the target's shape showing where the loss is.

    For a pixel-wise loss (``available_losses()[loss].kind == "pixel"``), the per-pixel loss,
    whose mean over counted pixels is :func:`loss_value`. For a region loss (Dice, ...),
    which has no per-pixel value, the signed gradient ∂L/∂p with respect to the probability:
    negative where the loss pulls the prediction up, positive where it pushes it down.
    Pixels outside ``mask`` are 0.

    Arguments, errors: as :func:`loss_value`.

    Returns:
        numpy (float32, or float64 for float64 input) for numpy input; a tensor on the
        compute device for torch input, with autograd intact.

    Example:
        >>> import numpy as np
        >>> loss_map(np.array([0.5, 0.9]), np.array([1, 1])).round(4).tolist()
        [0.6931, 0.1054]
    """
    if _any_dask(prediction, target, mask):
        from .chunked import loss_map_dask

        return loss_map_dask(
            prediction, target, loss, from_logits=from_logits, mask=mask, device=device, **params
        )
    info, resolved, ctx = _prepare(prediction, target, loss, from_logits, mask, device, params)
    if info.kind == "pixel":
        out = _zero_outside(ctx, info.func(ctx, **resolved))
    else:
        keep_graph = ctx.p.requires_grad
        p = ctx.p if keep_graph else ctx.p.detach().requires_grad_(True)
        with torch.enable_grad():
            value = info.func(ctx.with_probabilities(p), **resolved)
            (grad,) = torch.autograd.grad(value, p, create_graph=keep_graph, allow_unused=True)
        out = _zero_outside(ctx, torch.zeros_like(p) if grad is None else grad)
    return to_caller(out, prediction)


def gradient_map(
    prediction: ArrayLike,
    target: ArrayLike,
    loss: str = "bce",
    *,
    from_logits: bool = False,
    mask: ArrayLike | None = None,
    device=None,
    **params,
):
    """∂L/∂(prediction) of :func:`loss_value`, through autograd.

    With respect to the probabilities, or to the logits when ``from_logits=True``. Negative
    where a gradient-descent step would raise the prediction. For a pixel-wise loss it is the
    per-pixel derivative divided by the number of counted pixels (the loss is a mean).

    Arguments, errors: as :func:`loss_value`. Returns the caller's array kind (a detached
    tensor for torch input).

    Example:
        >>> import numpy as np
        >>> gradient_map(np.array([0.0, 0.0]), np.array([0, 1]), from_logits=True).tolist()
        [0.25, -0.25]
    """
    if _any_dask(prediction, target, mask):
        from .chunked import loss_map_dask

        return loss_map_dask(
            prediction,
            target,
            loss,
            from_logits=from_logits,
            mask=mask,
            device=device,
            gradient=True,
            **params,
        )
    info, resolved, ctx = _prepare(prediction, target, loss, from_logits, mask, device, params)
    x = ctx.input.detach().clone().requires_grad_(True)
    with torch.enable_grad():
        leaf_ctx = LossContext(x, ctx.labels, ctx.from_logits, ctx.mask, ctx.dtype)
        value = _value(info, leaf_ctx, resolved)
        (grad,) = torch.autograd.grad(value, x, allow_unused=True)
    if grad is None:
        grad = torch.zeros_like(x)
    return to_caller(_zero_outside(ctx, grad), prediction)


from . import survey_losses  # noqa: E402,F401  (registers the survey losses)
