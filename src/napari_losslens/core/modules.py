"""``torch.nn.Module`` wrappers of the losses, for training loops.

Each module stores the loss's parameters and its ``forward`` only calls
:func:`~napari_losslens.core.losses.loss_value`; use them like ``torch.nn.BCELoss``.

Example:
    >>> import torch
    >>> crit = SegmentationLoss("dice", from_logits=True)
    >>> logits = torch.zeros(8, 8, requires_grad=True)
    >>> crit(logits, torch.ones(8, 8)).backward()
"""

from __future__ import annotations

import torch

from .losses import loss_value
from .registry import get_loss

__all__ = [
    "BCELoss",
    "SegmentationLoss",
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
