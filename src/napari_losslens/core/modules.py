"""``torch.nn.Module`` wrappers of the losses, for training loops.

Each module stores the loss's parameters and its ``forward`` only calls
:func:`~napari_losslens.core.maps.loss_value`; use them like ``torch.nn.BCELoss``.
:class:`SegmentationLoss` wraps any registered loss by name; the named classes wrap one
loss each.

The per-class losses (``DiceLoss``, ``JaccardLoss``, ``TverskyLoss``, ``FocalLoss``) also
take ``average`` (``"macro"``, ``"micro"`` or ``None``), used when ``forward`` receives a
prediction with a leading class axis (see :mod:`~napari_losslens.core.losses.multiclass`).

Example:
    >>> import torch
    >>> crit = SegmentationLoss("dice", from_logits=True)
    >>> logits = torch.zeros(8, 8, requires_grad=True)
    >>> crit(logits, torch.ones(8, 8)).backward()
"""

from __future__ import annotations

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
    "DistancePenalizedCELoss",
    "ExpLogLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "HausdorffDTLoss",
    "JaccardLoss",
    "LogCoshDiceLoss",
    "SegmentationLoss",
    "SensitivitySpecificityLoss",
    "TverskyLoss",
    "UNetCELoss",
    "WeightedBCELoss",
]


class SegmentationLoss(torch.nn.Module):
    """Any registered loss as a module: ``SegmentationLoss("dice", smooth=1.0)``.

    Args:
        loss: a name from ``available_losses()``.
        from_logits: ``forward`` receives logits.
        **params: the loss's parameters, validated now.
    """

    loss_name: str = "bce"

    def __init__(self, loss: str | None = None, *, from_logits: bool = False, **params):
        super().__init__()
        self.loss_name = loss if loss is not None else type(self).loss_name
        self.from_logits = bool(from_logits)
        self.params = get_loss(self.loss_name).resolve_params(params)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask=None):
        """The scalar loss (a 0-d tensor) of ``prediction`` against ``target``."""
        return loss_value(
            prediction,
            target,
            self.loss_name,
            from_logits=self.from_logits,
            mask=mask,
            **self.params,
        )

    def extra_repr(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.params.items() if k != "weight_map")
        return f"{self.loss_name!r}, from_logits={self.from_logits}" + (
            f", {args}" if args else ""
        )


class _Named(SegmentationLoss):
    def __init__(self, *, from_logits: bool = False, **params):
        super().__init__(type(self).loss_name, from_logits=from_logits, **params)


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

    def __init__(self, *, from_logits: bool = False, average: str | None = "macro", **params):
        super().__init__(from_logits=from_logits, **params)
        self.average = check_average(average)

    def forward(self, prediction: torch.Tensor, target: torch.Tensor, mask=None):
        """The scalar loss (a 0-d tensor) of ``prediction`` against ``target``."""
        extra = {"average": self.average} if has_class_axis(prediction, target) else {}
        return loss_value(
            prediction,
            target,
            self.loss_name,
            from_logits=self.from_logits,
            mask=mask,
            **self.params,
            **extra,
        )

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
