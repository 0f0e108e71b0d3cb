"""``torch.nn.Module`` wrappers of the losses, for training loops.

Each module stores the loss's parameters and its ``forward`` only calls
:func:`~napari_losslens.core.maps.loss_value`; use them like ``torch.nn.BCELoss``.
:class:`SegmentationLoss` wraps any registered loss by name; the named classes wrap one
loss each.

The per-class losses (``DiceLoss``, ``JaccardLoss``, ``TverskyLoss``, ``FocalLoss``) also
take ``average`` (``"macro"``, ``"micro"`` or ``None``), used when ``forward`` receives a
prediction with a class axis (see :mod:`~napari_losslens.core.losses.multiclass`).

Batches follow PyTorch's convention: ``spatial_dims`` (2 or 3, default 2) says how many
trailing axes are spatial; the leading ones index images, each of which gets its own weight
or distance map, and the batch's loss is the mean of the images' losses
(:func:`split_batch`).

Example:
    >>> import torch
    >>> crit = SegmentationLoss("dice", from_logits=True)
    >>> logits = torch.zeros(8, 8, requires_grad=True)
    >>> crit(logits, torch.ones(8, 8)).backward()
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .losses.multiclass import check_average, has_class_axis
from .maps import loss_value
from .registry import get_loss

__all__ = [
    "BCELoss",
    "BalancedBCELoss",
    "BoundaryLoss",
    "ComboLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "DiceclDiceLoss",
    "DistancePenalizedCELoss",
    "ExpLogLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "HausdorffERLoss",
    "JaccardLoss",
    "LogCoshDiceLoss",
    "LogHausdorffDTLoss",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "MCCLoss",
    "SegmentationLoss",
    "SensitivitySpecificityLoss",
    "ShapeAwareLoss",
    "SoftclDiceLoss",
    "StructuralSimilarityLoss",
    "TopKCELoss",
    "TverskyLoss",
    "UNetCELoss",
    "UnifiedFocalLoss",
    "WeightedBCELoss",
    "split_batch",
]


def _check_spatial_dims(spatial_dims: object) -> int:
    if isinstance(spatial_dims, bool) or spatial_dims not in (2, 3):
        raise ValueError(f"spatial_dims must be 2 or 3, got {spatial_dims!r}")
    return int(spatial_dims)


def _array(x):
    """Tensors and numpy arrays as they are; nested lists as numpy."""
    return x if x is None or hasattr(x, "reshape") else np.asarray(x)


def _moveaxis(x, src: int, dst: int):
    return torch.movedim(x, src, dst) if isinstance(x, torch.Tensor) else np.moveaxis(x, src, dst)


def split_batch(prediction, target, mask=None, weight_map=None, *, spatial_dims: int = 2):
    """Split a batch into images: ``[(prediction_i, target_i, mask_i, weight_map_i), ...]``.

    The last ``spatial_dims`` axes of ``target`` are spatial, the leading ones index images
    (``(N, H, W)``, ``(N, 1, H, W)``, ``(N, D, H, W)`` with ``spatial_dims=3``, ...). The
    prediction has the target's shape (binary), or one more axis at position 1, PyTorch's
    channel axis: ``(N, C, H, W)`` against a target ``(N, H, W)`` holds C class scores, and
    ``(N, 1, H, W)`` a binary prediction. ``mask`` and a precomputed ``weight_map`` have the
    target's shape (or, for the weight map, its spatial shape: the same map for every image).
    A target with no leading axis is one image, passed through unchanged.

    Raises:
        ValueError: shapes that do not fit together, naming the argument.
    """
    sd = _check_spatial_dims(spatial_dims)
    prediction, target = _array(prediction), _array(target)
    mask, weight_map = _array(mask), _array(weight_map)
    shape = tuple(target.shape)
    if len(shape) < sd:
        raise ValueError(
            f"target must have at least spatial_dims={sd} axes (the last {sd} are spatial), "
            f"got shape {shape}"
        )
    batch, spatial = shape[: len(shape) - sd], shape[len(shape) - sd :]
    if not batch:
        return [(prediction, target, mask, weight_map)]
    n = math.prod(batch)
    pshape = tuple(prediction.shape)
    if pshape == shape:
        preds = prediction.reshape(n, *spatial)
    elif len(pshape) == len(shape) + 1 and pshape[:1] + pshape[2:] == shape:
        if pshape[1] == 1:  # (N, 1, ...): a binary prediction with a channel axis
            preds = prediction[:, 0].reshape(n, *spatial)
        else:  # (N, C, ...): the class axis goes just before the spatial axes
            preds = _moveaxis(prediction, 1, len(batch)).reshape(n, pshape[1], *spatial)
    else:
        raise ValueError(
            f"prediction must have the target's shape {shape} or a class axis at position 1 "
            f"(N, C, ...), got {pshape} (spatial_dims={sd})"
        )
    targets = target.reshape(n, *spatial)
    masks = [None] * n
    if mask is not None:
        if tuple(mask.shape) != shape:
            raise ValueError(
                f"mask and target must have the same shape, got {tuple(mask.shape)} and {shape}"
            )
        masks = mask.reshape(n, *spatial)
    weights = [weight_map] * n
    if weight_map is not None and tuple(weight_map.shape) != spatial:
        if tuple(weight_map.shape) != shape:
            raise ValueError(
                f"weight_map must have the target's shape {shape} or its spatial shape "
                f"{spatial}, got {tuple(weight_map.shape)}"
            )
        weights = weight_map.reshape(n, *spatial)
    return [(preds[i], targets[i], masks[i], weights[i]) for i in range(n)]


class SegmentationLoss(torch.nn.Module):
    r"""Any registered loss as a module: ``SegmentationLoss("dice", smooth=1.0)``.

    ``forward`` follows PyTorch's batch convention: the last ``spatial_dims`` axes of the
    target are spatial and the leading ones index images (see :func:`split_batch`); each
    image gets its own loss, with its own weight map or distance maps, and the loss of the
    batch is the mean of the images' losses. A target with exactly ``spatial_dims`` axes is
    one image, as for :func:`~napari_losslens.core.maps.loss_value`.

    .. math::

        L_{batch} = \frac{1}{N} \sum_{i=1}^{N} L(p_i, y_i)

    Args:
        loss: a name from ``available_losses()``.
        from_logits: ``forward`` receives logits.
        spatial_dims: 2 (images, the default) or 3 (volumes).
        **params: the loss's parameters, validated now.

    Raises:
        ValueError: ``spatial_dims`` not 2 or 3; a parameter out of range.
        TypeError: an unknown parameter.

    Example:
        >>> import torch
        >>> crit = UNetCELoss(from_logits=True)  # spatial_dims=2
        >>> logits = torch.zeros(4, 1, 16, 16, requires_grad=True)  # N, C=1, H, W
        >>> target = torch.zeros(4, 16, 16, dtype=torch.long); target[:, 4:12, 4:12] = 1
        >>> crit(logits, target).backward()
    """

    loss_name: str = "bce"

    def __init__(
        self,
        loss: str | None = None,
        *,
        from_logits: bool = False,
        spatial_dims: int = 2,
        **params,
    ):
        super().__init__()
        self.loss_name = loss if loss is not None else type(self).loss_name
        self.from_logits = bool(from_logits)
        self.spatial_dims = _check_spatial_dims(spatial_dims)
        self.params = get_loss(self.loss_name).resolve_params(params)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask=None):
        """The scalar loss of ``prediction`` against ``target``: the mean over the images.

        A 0-d tensor for tensor input (a Python float for numpy input).
        """
        params = dict(self.params)
        weight_map = params.pop("weight_map", None)
        images = split_batch(prediction, target, mask, weight_map, spatial_dims=self.spatial_dims)
        values = []
        for p, t, m, w in images:
            extra = {} if "weight_map" not in self.params else {"weight_map": w}
            values.append(
                loss_value(
                    p,
                    t,
                    self.loss_name,
                    from_logits=self.from_logits,
                    mask=m,
                    **params,
                    **extra,
                    **self._extra(p, t),
                )
            )
        if len(values) == 1:
            return values[0]
        if isinstance(values[0], torch.Tensor):
            return torch.stack(values).mean()
        return float(np.mean(values))

    def _extra(self, prediction, target) -> dict:
        """Keywords that depend on the image (the per-class average, in subclasses)."""
        return {}

    def extra_repr(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != "weight_map")
        return (
            f"{self.loss_name!r}, from_logits={self.from_logits}, "
            f"spatial_dims={self.spatial_dims}" + (f", {args}" if args else "")
        )


class _Named(SegmentationLoss):
    def __init__(self, *, from_logits: bool = False, spatial_dims: int = 2, **params):
        super().__init__(
            type(self).loss_name, from_logits=from_logits, spatial_dims=spatial_dims, **params
        )


class BCELoss(_Named):
    """Binary cross-entropy (``loss="bce"``)."""

    loss_name = "bce"


class WeightedBCELoss(_Named):
    """Weighted binary cross-entropy (``loss="weighted_bce"``, parameter ``beta``)."""

    loss_name = "weighted_bce"


class UNetCELoss(_Named):
    """U-Net weighted cross-entropy (``loss="unet_ce"``; weight-map parameters).

    Pass ``weight_map=`` to ``forward``'s target owner instead by building the module per
    batch, or precompute the maps in the data loader and use ``SegmentationLoss("unet_ce",
    weight_map=w)``.
    """

    loss_name = "unet_ce"


class _PerClass(_Named):
    """A loss that, on a multi-class prediction, is applied per class and averaged."""

    def __init__(
        self,
        *,
        from_logits: bool = False,
        average: str | None = "macro",
        spatial_dims: int = 2,
        **params,
    ):
        super().__init__(from_logits=from_logits, spatial_dims=spatial_dims, **params)
        self.average = check_average(average)

    def _extra(self, prediction, target) -> dict:
        return {"average": self.average} if has_class_axis(prediction, target) else {}

    def extra_repr(self) -> str:
        return super().extra_repr() + f", average={self.average!r}"


class DiceLoss(_PerClass):
    """Dice loss (``loss="dice"``, parameters ``smooth``, ``gamma``; ``average``)."""

    loss_name = "dice"


class FocalLoss(_PerClass):
    """Focal loss (``loss="focal"``, parameters ``alpha``, ``gamma``; ``average``)."""

    loss_name = "focal"


class BalancedBCELoss(_Named):
    """Balanced BCE, β = fraction of negative pixels (``loss="balanced_bce"``)."""

    loss_name = "balanced_bce"


class DistancePenalizedCELoss(_Named):
    """Distance-map penalised BCE (``loss="distance_penalized_ce"``, ``spacing``)."""

    loss_name = "distance_penalized_ce"


class JaccardLoss(_PerClass):
    """Jaccard (IoU) loss (``loss="jaccard"``, parameter ``smooth``; ``average``)."""

    loss_name = "jaccard"


class TverskyLoss(_PerClass):
    """Tversky loss (``loss="tversky"``; ``alpha`` FP, ``beta`` FN, ``smooth``; ``average``)."""

    loss_name = "tversky"


class FocalTverskyLoss(_Named):
    """Focal Tversky loss (``loss="focal_tversky"``, Tversky parameters and ``gamma``)."""

    loss_name = "focal_tversky"


class LogCoshDiceLoss(_Named):
    """Log-cosh Dice loss (``loss="log_cosh_dice"``, parameters ``smooth``, ``gamma``)."""

    loss_name = "log_cosh_dice"


class SensitivitySpecificityLoss(_Named):
    """Sensitivity-specificity loss (``loss="sensitivity_specificity"``, ``w``, ``smooth``)."""

    loss_name = "sensitivity_specificity"


class ComboLoss(_Named):
    """Combo loss (``loss="combo"``, ``alpha``, ``beta``, ``smooth``, ``gamma``)."""

    loss_name = "combo"


class ExpLogLoss(_Named):
    """Exponential logarithmic loss (``loss="exp_log"``; ``gamma_dice``, ``gamma_ce``, ...)."""

    loss_name = "exp_log"


class BoundaryLoss(_Named):
    """Boundary loss of Kervadec et al. (``loss="boundary"``, ``spacing``)."""

    loss_name = "boundary"


class HausdorffDTLoss(_Named):
    """Hausdorff distance loss of Karimi & Salcudean (``loss="hausdorff_dt"``, ``alpha``)."""

    loss_name = "hausdorff_dt"


class CrossEntropyLoss(_Named):
    """Softmax cross-entropy, multi-class or binary (``loss="ce"``, ``class_weights``)."""

    loss_name = "ce"


class LovaszHingeLoss(_Named):
    """Lovász hinge loss of Berman et al. (``loss="lovasz_hinge"``)."""

    loss_name = "lovasz_hinge"


class LovaszSoftmaxLoss(_Named):
    """Lovász-softmax loss, multi-class or binary (``loss="lovasz_softmax"``, ``present_only``)."""

    loss_name = "lovasz_softmax"


class GeneralizedDiceLoss(_Named):
    """Generalised Dice loss (``loss="generalized_dice"``, ``smooth_nr``, ``smooth_dr``)."""

    loss_name = "generalized_dice"


class SoftclDiceLoss(_Named):
    """Soft clDice loss, 2D or 3D (``loss="soft_cldice"``, ``iterations``, ``smooth``)."""

    loss_name = "soft_cldice"


class DiceclDiceLoss(_Named):
    """Dice + clDice loss, 2D or 3D (``loss="dice_cldice"``; ``iterations``, ``smooth``, ...)."""

    loss_name = "dice_cldice"


class HausdorffERLoss(_Named):
    """Hausdorff loss by erosion, 2D or 3D (``loss="hausdorff_er"``, ``alpha``, ``k``)."""

    loss_name = "hausdorff_er"


class LogHausdorffDTLoss(_Named):
    """Log Hausdorff distance-transform loss (``loss="log_hausdorff_dt"``; ``alpha``, ...)."""

    loss_name = "log_hausdorff_dt"


class UnifiedFocalLoss(_Named):
    """Asymmetric unified focal loss (``loss="unified_focal"``; ``weight``, ``delta``, ...)."""

    loss_name = "unified_focal"


class MCCLoss(_Named):
    """Matthews correlation coefficient loss (``loss="mcc"``, ``smooth_nr``, ``smooth_dr``)."""

    loss_name = "mcc"


class TopKCELoss(_Named):
    """Top-k cross-entropy, multi-class or binary (``loss="topk_ce"``, ``k``)."""

    loss_name = "topk_ce"


class ShapeAwareLoss(_Named):
    """Shape-aware loss of Hayder et al. (``loss="shape_aware"``, ``spacing``)."""

    loss_name = "shape_aware"


class StructuralSimilarityLoss(_Named):
    """Structural similarity loss (``loss="ssl"``, ``beta``, ``sigma``, ``c``)."""

    loss_name = "ssl"
