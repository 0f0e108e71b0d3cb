"""Per-pixel loss maps, gradient maps and scalar losses: the public entry points.

Three views of one loss, all through the same registered function:

- :func:`loss_value`: the scalar a training loop sees (the mean over counted pixels for a
  pixel-wise loss; the loss itself for a region loss such as Dice).
- :func:`loss_map`: a map of the target's shape. For a pixel-wise loss, the per-pixel loss.
  For a region loss, which has no per-pixel value, the signed gradient ∂L/∂p with respect to
  the probability: negative where the loss pulls the prediction up, positive where down.
- :func:`gradient_map`: ∂L/∂(input) of :func:`loss_value` through autograd, with respect to
  the probabilities, or to the logits when ``from_logits=True``.

and :func:`class_losses`, the loss of each class of a multi-class prediction.

Each validates its inputs here, looks the loss up in the registry and evaluates it on a
:class:`~napari_losslens.core.losses.LossContext`, in memory; dask arrays go to the
blockwise evaluation of :mod:`~napari_losslens.core.chunked`, which gives the same result.

Conventions (:mod:`~napari_losslens.core.losses`): p is the predicted probability of the
foreground, y = [target > 0]. From probabilities, p is clamped to [ε, 1 − ε] with ε the
dtype's machine epsilon before any logarithm; from logits, log p and log(1 − p) are
computed stably as −softplus(−x) and −softplus(x).

References: S. Jadon, "A survey of loss functions for semantic segmentation", IEEE CIBCB
2020; O. Ronneberger et al., "U-Net", MICCAI 2015.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from ._arrays import (
    ArrayLike,
    check_same_shape,
    is_dask,
    is_torch,
    resolve_device,
    result_dtype,
    to_caller,
    validate_labels,
    validate_mask,
    validate_prediction,
)
from .chunked import loss_map_dask, loss_value_dask
from .losses import LossContext
from .losses.multiclass import check_classes, class_contexts, has_class_axis, resolve_multiclass
from .registry import get_loss

__all__ = ["class_losses", "gradient_map", "loss_map", "loss_value"]


def _prepare(prediction, target, loss, from_logits, mask, device, params):
    """Validate the inputs and return the loss, its resolved parameters and the context."""
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
    return any(is_dask(a) for a in arrays)


def _zero_outside(ctx: LossContext, x: torch.Tensor) -> torch.Tensor:
    if ctx.mask is None:
        return x
    return torch.where(ctx.mask, x, torch.zeros_like(x))


def _value(info, ctx: LossContext, params) -> torch.Tensor:
    """The scalar loss, accumulated in float64 (``LossContext.sum``)."""
    out = info.func(ctx, **params)
    if info.kind == "pixel":
        return ctx.mean(out)
    return out


def _all_finite(t: torch.Tensor) -> bool:
    """Whether every value of a floating tensor is finite, in one pass and one sync.

    min and max propagate NaN, so both are finite exactly when every value is (a third of
    the time of ``isfinite(t).all()``, which writes a bool map and reduces it).
    """
    if t.numel() == 0:
        return True
    lo, hi = torch.aminmax(t.detach())
    return math.isfinite(float(lo)) and math.isfinite(float(hi))


def _finite(t: torch.Tensor, info, ctx: LossContext, params, what: str) -> torch.Tensor:
    """``t`` in the context's dtype, or ``ValueError`` if it (or its cast) is not finite.

    Inputs are finite and parameters in range when this runs, so a NaN or inf here means
    the result does not fit the dtype (e.g. float32 logits of 1e38 with ``beta=1e6``).
    """
    if t.dtype != ctx.dtype:
        t = t.to(ctx.dtype)
    with torch.no_grad():
        ok = _all_finite(t)
    if not ok:
        shown = ", ".join(
            f"{k}={v!r}" for k, v in params.items() if not hasattr(v, "shape") and k != "spacing"
        )
        dtype = str(ctx.dtype).replace("torch.", "")
        raise ValueError(
            f"loss {info.name!r}: the {what} does not fit {dtype} for these inputs"
            f"{' and parameters (' + shown + ')' if shown else ''}; its values exceed "
            f"{float(torch.finfo(ctx.dtype).max):.4g}: pass float64 input or smaller "
            "parameter values"
        )
    return t


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
        mask: optional array of the pixels that count: bool, or numbers that are all 0 or 1.
        device: ``None``, ``"cpu"``, ``"cuda"`` or ``"cuda:N"``.
        **params: the loss's parameters (see ``available_losses()[loss].params``).

    Returns:
        A Python float for numpy input (the float64 accumulation); a 0-d tensor of the
        prediction's dtype (with autograd) for torch input. Sums and means are accumulated
        in float64 whatever the input's dtype.

    Raises:
        ValueError: shapes differ, NaN/inf in the prediction, probabilities outside [0, 1]
            without ``from_logits``, negative or non-integer target ids, an unknown loss,
            a parameter out of range, a mask holding values other than 0 and 1 or excluding
            every pixel, an unavailable device, a dask array of unknown chunk sizes, a result
            that does not fit the input's dtype (e.g. float32 logits of 1e37 with
            ``beta=1e6``: pass float64).
        TypeError: an unknown parameter name, a non-numeric array.

    Example:
        >>> import numpy as np
        >>> round(loss_value(np.array([0.5, 0.5]), np.array([0, 1])), 6)
        0.693147
    """
    if _any_dask(prediction, target, mask):
        return loss_value_dask(
            prediction, target, loss, from_logits=from_logits, mask=mask, device=device, **params
        )
    info, resolved, ctx = _prepare(prediction, target, loss, from_logits, mask, device, params)
    value = _value(info, ctx, resolved)
    if is_torch(prediction):
        return _finite(value, info, ctx, resolved, "loss value")
    _finite(value.detach(), info, ctx, resolved, "loss value")
    return float(value.detach())  # the float64 accumulation, not rounded to the input dtype


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
    return to_caller(_finite(out, info, ctx, resolved, "loss map"), prediction)


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
    return to_caller(
        _finite(_zero_outside(ctx, grad), info, ctx, resolved, "gradient"), prediction
    )


def class_losses(
    prediction: ArrayLike,
    target: ArrayLike,
    loss: str = "dice",
    *,
    from_logits: bool = False,
    mask: ArrayLike | None = None,
    device=None,
    **params,
):
    """The loss of each class, a ``(C,)`` vector.

    For a region loss, the loss of class c against the rest; for a pixel loss, the mean of
    class c's per-pixel loss over the counted pixels. Their mean is ``loss_value(...,
    average="macro")`` and their sum ``loss_value(..., average=None)``.

    Args: as :func:`loss_value`, with a ``(C, *spatial)``
    prediction; ``loss`` one of the per-class losses (``dice``, ``jaccard``, ``tversky``,
    ``focal``).

    Returns:
        numpy for numpy input, a tensor (with autograd) for torch input.

    Example:
        >>> import numpy as np
        >>> p = np.array([[0.9, 0.2], [0.1, 0.8]])  # 2 classes, 2 pixels
        >>> class_losses(p, np.array([0, 1]), "jaccard").round(4).tolist()
        [0.25, 0.2727]
    """
    if loss == "ce":
        raise ValueError("class_losses applies to the per-class losses, not to 'ce'")
    if not has_class_axis(prediction, target):
        raise ValueError(
            "class_losses needs a prediction with a leading class axis (one more axis "
            f"than the target), got shapes {_shape(prediction)} and {_shape(target)}"
        )
    info, resolved, ctx = _prepare(
        prediction, target, loss, from_logits, mask, device, {**params, "average": None}
    )
    base = info.func.args[0]  # the binary loss behind the per-class wrapper
    values = []
    for sub in class_contexts(ctx):
        out = base.func(sub, **resolved)
        values.append(sub.mean(out) if base.kind == "pixel" else out)
    out = _finite(torch.stack(values), info, ctx, resolved, "class losses")
    return to_caller(out, prediction)


def _shape(x: ArrayLike) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)
