"""What a registered loss function receives: :class:`LossContext`.

Conventions. p is the predicted probability of the foreground, y = [target > 0]. From
probabilities, p is clamped to [ε, 1 − ε] with ε the dtype's machine epsilon before any
logarithm (the clamp passes gradients straight through, so a confident wrong pixel gets a
large finite gradient, never 0, NaN or inf). From logits, log p and log(1 − p) are computed
stably as −softplus(−x) and −softplus(x).

Every loss is a function of elementwise terms and of sums over the counted pixels
(:meth:`LossContext.sum`); the blockwise evaluation of :mod:`~napari_losslens.core.chunked`
relies on it.
"""

from __future__ import annotations

from functools import cached_property

import torch
import torch.nn.functional as F

from ._accumulate import overlap_sums_float64, sum_float64

__all__ = ["LossContext"]


class LossContext:
    """What a registered loss function receives: the inputs, validated, and common terms.

    Attributes:
        input: the prediction as given (probabilities, or logits when ``from_logits``).
        from_logits: whether ``input`` holds logits.
        labels: the target as int64 ids (instance labels or a 0/1 mask).
        fg: the binary target ``labels > 0`` (bool); ``bg`` its complement.
        y: the binary target ``labels > 0`` in the prediction's dtype.
        mask: bool tensor of counted pixels, or None (all count).
        multiclass: ``input`` has a leading class axis (``input.ndim == labels.ndim + 1``);
            then p is the softmax over it (from logits) and ``labels`` holds class ids
            (see :mod:`~napari_losslens.core.losses.multiclass`).
    """

    def __init__(self, input, labels, from_logits: bool, mask, dtype: torch.dtype):
        self.input = input
        self.labels = labels
        self.from_logits = from_logits
        self.mask = mask
        self.dtype = dtype
        self.device = input.device
        self.multiclass = input.ndim == labels.ndim + 1

    @cached_property
    def fg(self) -> torch.Tensor:
        """The binary target ``labels > 0`` as a bool tensor."""
        return self.labels > 0

    @cached_property
    def bg(self) -> torch.Tensor:
        """The complement of :attr:`fg`, ``labels <= 0`` (bool)."""
        return torch.logical_not(self.fg)

    @cached_property
    def y(self) -> torch.Tensor:
        """The binary target ``labels > 0`` in the prediction's dtype."""
        return self.fg.to(self.dtype)

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
        if not p.requires_grad:  # no gradient to pass through: the clamp alone, one pass
            return p.clamp(self.eps, 1.0 - self.eps)
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

    def sum(self, x: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
        """Sum over the counted pixels, accumulated in float64 (a 0-d float64 tensor).

        float32 terms of 1e37 over a million pixels would overflow a float32 sum; in float64
        the sum, and the ratios and means built from it, stay finite and exact to float64
        rounding (:func:`~napari_losslens.core.losses._accumulate.sum_float64`: every term
        converted and added in float64, a few at a time, without a float64 copy of the
        map). The loss is returned in the input's dtype at the end. A bool ``x`` is counted
        (its True pixels), exactly, without a float or integer map.

        Args:
            x: the terms, of the labels' shape (or one that broadcasts against the mask).
            where: optional bool tensor of ``x``'s shape: sum over these pixels only (and
                the counted ones), the same as ``sum(torch.where(where, x, 0))`` without
                the masked map.
        """
        region = self.mask
        if where is not None:
            region = where if region is None else where & region
        if x.dtype == torch.bool:  # a count (e.g. of foreground pixels): exact in int64
            counted = x if region is None else x & region
            return self._total(torch.count_nonzero(counted).to(torch.float64))
        if region is not None and (
            region.shape != x.shape or not x.dtype.is_floating_point
        ):  # terms that broadcast against the mask, or integer terms: a masked map
            x, region = torch.where(region, x, 0), None
        if not x.dtype.is_floating_point:  # integer terms: converted as before
            return self._total(x.sum(dtype=torch.float64))
        return self._total(sum_float64(x, where=region))

    def overlap_sums(
        self, x: torch.Tensor | None = None, region: torch.Tensor | None = None
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
        """TP = Σpy, FP = Σp(1 − y), FN = Σ(1 − p)y, TN = Σ(1 − p)(1 − y) over the counted
        pixels, in float64 (0-d tensors), without any of those maps.

        The same values as ``sum(p * y)``, ``sum(p * (1 - y))``, ... up to float64 rounding
        (each 1 − p is formed in float64, where the float32 map would round it) and the
        same gradients, from one read of p and one map in the backward
        (:func:`~napari_losslens.core.losses._accumulate.overlap_sums_float64`).

        Args:
            x: the terms in place of p (default p), of the labels' shape.
            region: bool tensor in place of the foreground ``fg`` (default ``fg``).
        """
        x = self.p if x is None else x
        region = self.fg if region is None else region
        mask = self.mask
        if mask is not None and mask.shape != x.shape:  # a mask that broadcasts: expand it
            mask = mask.expand(x.shape)
        tp, fp, fn, tn = self._total(overlap_sums_float64(x, region, mask)).unbind()
        return tp, fp, fn, tn

    def _total(self, local: torch.Tensor) -> torch.Tensor:
        """The sums over all the counted pixels from this context's own sums (0-d or a
        vector): the same here; the chunked evaluation replaces them by the sums over the
        whole image (:mod:`~napari_losslens.core.chunked`)."""
        return local

    @cached_property
    def count(self) -> int:
        """Number of counted pixels."""
        return int(self.mask.sum()) if self.mask is not None else self.labels.numel()

    def mean(self, x: torch.Tensor) -> torch.Tensor:
        """Mean over the counted pixels."""
        return self.sum(x) / self.count

    def with_probabilities(self, p: torch.Tensor) -> LossContext:
        """The same context with ``p`` as the (probability) input."""
        return LossContext(p, self.labels, False, self.mask, self.dtype)
