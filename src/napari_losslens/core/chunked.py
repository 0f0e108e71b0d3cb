"""Chunked computation on dask arrays: the same results as in one piece, in bounded memory.

Weight map. :func:`~napari_losslens.core.weights.unet_weight_map_dask` (re-exported here)
computes each block with a halo of the border term's cutoff radius, so that the block's
weight map is exactly the whole image's there. Global quantities (the pixel counts of
``class_weights="balanced"``) come from a first pass.

Loss maps. Every loss is a function of elementwise terms and of sums over the counted pixels
(``LossContext.sum``). A first pass collects each block's sums and adds them up; the second
pass evaluates each block with the global sums in place of its own, so values are the global
ones and gradients (region losses' maps) are exact: inside a block,
``sum(x) = S_global + (x.sum() − x.sum().detach())`` has the value of the global sum and the
gradient of the local one. Losses that need distance maps of the whole target or prediction
(those that take ``spacing``, except ``unet_ce``, whose weight map is itself chunked) are
refused with a message saying so.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

from ._arrays import (
    check_dask_chunks,
    check_mask_dtype,
    is_dask,
    resolve_device,
    result_dtype,
    validate_labels,
    validate_mask,
    validate_prediction,
)
from .losses import LossContext
from .losses.distance import UNET_WEIGHT_PARAMS
from .registry import get_loss
from .weights import unet_weight_map_dask

__all__ = ["is_dask", "loss_map_dask", "loss_value_dask", "unet_weight_map_dask"]


class _GlobalSums:
    """Mixin for :class:`~napari_losslens.core.losses.LossContext` on one block.

    ``sum`` and ``overlap_sums`` (through the ``_total`` hook) record the block's own sums
    and return the global values known from the previous pass, with the block's gradient:
    ``S_global + (local − local.detach())``.
    Where no global value is known yet (the first pass) it returns a placeholder of 1
    instead: that keeps every loss on its generic path (no "0/0" branch taken because one
    block happens to be empty), so all blocks call the same sums in the same order. Passes
    repeat until the sums stop changing (a loss whose summands depend on earlier sums, such
    as label-frequency weights, needs two). ``count`` and ``mean`` use the global count.
    """

    def __init__(self, *args, sums=None, total_count=1, strict=False, **kwargs):
        super().__init__(*args, **kwargs)
        self.recorded: list[float] = []
        self._sums = None if sums is None else list(sums)
        self._total_count = total_count
        self._strict = strict

    def _total(self, local):
        # each element of the block's sums (a 0-d sum, or the vector of overlap sums)
        values = local.detach().double().reshape(-1).tolist()
        i = len(self.recorded)
        self.recorded.extend(values)
        if self._sums is not None and i + len(values) <= len(self._sums):
            known = self._sums[i : i + len(values)]
            value = torch.tensor(known, dtype=local.dtype, device=local.device)
            value = value.reshape(local.shape)
        elif self._strict:
            raise RuntimeError("a loss called more sums than in the first pass")
        else:
            value = torch.ones_like(local)
        return value + (local - local.detach())

    @property
    def count(self):
        return self._total_count

    def mean(self, x):
        return self.sum(x) / self._total_count


class _BlockContext(_GlobalSums, LossContext):
    """A :class:`~napari_losslens.core.losses.LossContext` of one block, with global sums."""


def _as_array(x):
    """dask and numpy arrays as they are; nested lists (and CPU tensors) as numpy."""
    return x if x is None or is_dask(x) or hasattr(x, "ndim") else np.asarray(x)


def _prepare_dask(prediction, target, loss, mask, params, device=None):
    # dask is an optional dependency (the "zarr" extra); a dask array came in, so it is there
    import dask.array as da

    info = get_loss(loss)
    resolved = info.resolve_params(params)
    resolve_device(device if device is not None else "cpu")  # refused now, not in a block
    prediction, target, mask = _as_array(prediction), _as_array(target), _as_array(mask)
    for x, name in ((prediction, "prediction"), (target, "target"), (mask, "mask")):
        check_dask_chunks(x, name)
    if mask is not None:
        check_mask_dtype(mask.dtype, "mask")
        if tuple(mask.shape) != tuple(target.shape):
            raise ValueError(
                f"mask and target must have the same shape, got {tuple(mask.shape)} and "
                f"{tuple(target.shape)}"
            )
    if info.multiclass and prediction.ndim == target.ndim + 1:
        raise ValueError("multi-class predictions are not supported on dask arrays yet")
    if not info.blockwise:
        raise ValueError(
            f"loss {info.name!r} needs the whole image at once (it sorts, takes maxima or "
            "neighbourhoods) and cannot be computed blockwise; pass NumPy arrays (or "
            "compute the dask arrays first)"
        )
    takes_spacing = any(p.kind == "spacing" for p in info.params)
    if takes_spacing and info.name != "unet_ce":
        raise ValueError(
            f"loss {info.name!r} needs distance maps of the whole image and cannot be "
            "computed blockwise; pass NumPy arrays (or compute the dask arrays first)"
        )
    if tuple(prediction.shape) != tuple(target.shape):
        raise ValueError(
            f"prediction and target must have the same shape, got {tuple(prediction.shape)} "
            f"and {tuple(target.shape)}"
        )
    pred = da.asarray(prediction)
    tgt = da.asarray(target).rechunk(pred.chunks)
    arrays = [pred, tgt]
    if mask is not None:
        arrays.append(da.asarray(mask).rechunk(pred.chunks))
    if info.name == "unet_ce":
        w = _as_array(resolved.pop("weight_map"))
        if w is not None:
            check_dask_chunks(w, "weight_map")
            if tuple(w.shape) != tuple(target.shape):
                raise ValueError(
                    f"weight_map and target must have the same shape, got {tuple(w.shape)} "
                    f"and {tuple(target.shape)}"
                )
        if w is None:
            w = unet_weight_map_dask(target, **{k: resolved[k] for k in UNET_WEIGHT_PARAMS})
        arrays.append(da.asarray(w).rechunk(pred.chunks))
    return info, resolved, arrays, mask is not None


def _block_setup(info, resolved, blocks, has_mask, from_logits, device, **sums_kwargs):
    """The context of one block (inputs validated as in memory) and the loss's keywords."""
    p, t = blocks[0], blocks[1]
    dev = resolve_device(device if device is not None else "cpu")
    dtype = result_dtype(p)
    labels = validate_labels(np.asarray(t), dev, name="target", ndims=None)
    pred = validate_prediction(np.asarray(p), dev, dtype, bool(from_logits))
    m = None
    if has_mask:  # validated as in memory, except that one block may count no pixel
        m = validate_mask(np.asarray(blocks[2]), tuple(labels.shape), dev, require_any=False)
    ctx = _BlockContext(pred, labels, bool(from_logits), m, dtype, **sums_kwargs)
    kw = dict(resolved)
    if info.name == "unet_ce":
        kw["weight_map"] = np.asarray(blocks[3 if has_mask else 2])
    return ctx, kw


def _first_pass(info, resolved, arrays, has_mask, from_logits, device, max_passes=4):
    """Global sums of the loss over all blocks, iterated to a fixed point."""
    import dask  # optional dependency, present since dask arrays came in

    delayed = [a.to_delayed().ravel() for a in arrays]

    def block_sums(sums, total, *blocks):
        ctx, kw = _block_setup(
            info, resolved, blocks, has_mask, from_logits, device, sums=sums, total_count=total
        )
        with torch.no_grad():
            info.func(ctx, **kw)
        counted = int(np.count_nonzero(blocks[2])) if has_mask else int(np.asarray(blocks[0]).size)
        return np.asarray(ctx.recorded, np.float64), counted

    sums, total = None, 1
    for _ in range(max_passes):
        tasks = [
            dask.delayed(block_sums)(sums, total, *blocks) for blocks in zip(*delayed, strict=True)
        ]
        results = dask.compute(*tasks)
        lengths = {len(r[0]) for r in results}
        if len(lengths) != 1:
            raise RuntimeError(f"loss {info.name!r} called different numbers of sums per block")
        total = sum(r[1] for r in results)
        if total == 0:
            raise ValueError("mask excludes every pixel: at least one pixel must count")
        new = np.sum([r[0] for r in results], axis=0) if lengths != {0} else np.zeros(0)
        if sums is not None and len(new) == len(sums) and np.array_equal(new, sums):
            break
        sums = new
    return sums, total


def loss_map_dask(
    prediction,
    target,
    loss: str = "bce",
    *,
    from_logits: bool = False,
    mask=None,
    device=None,
    gradient: bool = False,
    **params: Any,
):
    """:func:`~napari_losslens.core.maps.loss_map` of dask arrays, blockwise.

    With ``gradient=True``, :func:`~napari_losslens.core.maps.gradient_map` instead.

    One eager pass gathers the global sums a loss needs (class fractions, region sums); the
    map itself is returned as a lazy dask array with the prediction's chunks, equal to the
    in-memory map.
    """
    info, resolved, arrays, has_mask = _prepare_dask(
        prediction, target, loss, mask, params, device
    )
    sums, total = _first_pass(info, resolved, arrays, has_mask, from_logits, device)
    out_dtype = (
        np.float64 if np.dtype(arrays[0].dtype).newbyteorder("=") == np.float64 else np.float32
    )
    global_sums = {"sums": sums, "total_count": total, "strict": True}

    def block_map(*blocks):
        ctx, kw = _block_setup(
            info, resolved, blocks, has_mask, from_logits, device, **global_sums
        )

        def differentiate(x, logits):
            """The block's part of d(loss)/dx, x a leaf for the input (logits or p)."""
            leaf = type(ctx)(x, ctx.labels, logits, ctx.mask, ctx.dtype, **global_sums)
            with torch.enable_grad():
                value = info.func(leaf, **kw)
                if gradient and info.kind == "pixel":  # the mean: local terms / global count
                    if ctx.mask is not None:
                        value = torch.where(ctx.mask, value, torch.zeros_like(value))
                    value = value.sum() / total
                (g,) = torch.autograd.grad(value, x, allow_unused=True)
            return torch.zeros_like(x) if g is None else g

        if gradient:  # as gradient_map: w.r.t. the logits when from_logits
            out = differentiate(ctx.input.detach().requires_grad_(True), ctx.from_logits)
        elif info.kind == "pixel":
            with torch.no_grad():
                out = info.func(ctx, **kw)
        else:  # a region loss's map: d(loss)/dp
            out = differentiate(ctx.p.detach().requires_grad_(True), False)
        if ctx.mask is not None:
            out = torch.where(ctx.mask, out, torch.zeros_like(out))
        out = out.detach().cpu().numpy().astype(out_dtype, copy=False)
        if not np.isfinite(out).all():
            raise ValueError(
                f"loss {info.name!r}: the {'gradient' if gradient else 'loss map'} does not "
                f"fit {out_dtype.__name__} for these inputs and parameters; pass float64 "
                "input or smaller parameter values"
            )
        return out

    return arrays[0].map_blocks(block_map, *arrays[1:], dtype=out_dtype)


def loss_value_dask(
    prediction,
    target,
    loss: str = "bce",
    *,
    from_logits=False,
    mask=None,
    device=None,
    **params,
) -> float:
    """:func:`~napari_losslens.core.maps.loss_value` of dask arrays (streams over blocks)."""
    import dask.array as da  # optional dependency, present since dask arrays came in

    info, resolved, arrays, has_mask = _prepare_dask(
        prediction, target, loss, mask, params, device
    )
    if info.kind == "pixel":
        m = loss_map_dask(
            prediction, target, loss, from_logits=from_logits, mask=mask, device=device, **params
        )
        total = int(da.asarray(mask).sum().compute()) if has_mask else int(np.prod(m.shape))
        return _finite_value(float(m.sum(dtype=np.float64).compute()) / total, info)
    sums, total = _first_pass(info, resolved, arrays, has_mask, from_logits, device)
    # a region loss is a function of the global sums: evaluate it on any one block
    first = [a.blocks[(0,) * a.ndim].compute() for a in arrays]
    ctx, kw = _block_setup(
        info,
        resolved,
        first,
        has_mask,
        from_logits,
        device,
        sums=sums,
        total_count=total,
        strict=True,
    )
    with torch.no_grad():
        return _finite_value(float(info.func(ctx, **kw)), info)


def _finite_value(value: float, info) -> float:
    if not np.isfinite(value):
        raise ValueError(
            f"loss {info.name!r}: the loss value is not finite for these inputs and "
            "parameters; pass float64 input or smaller parameter values"
        )
    return value
