"""Sums of float32 terms accumulated in float64, in one pass and without a float64 copy.

Why. ``x.sum(dtype=torch.float64)`` on a float32 tensor first converts the whole tensor to
float64 (ATen's reduction casts its input to the accumulation dtype before reducing, on the
CPU and on CUDA alike): for a 4096² map, a 128 MB copy written and read back, ten to
twenty times the cost of the float32 sum. Its backward is no cheaper: the float64
gradient, expanded to the input's shape, is cast back to float32, which writes a full map.

How. :func:`sum_float64` reads the terms once and converts them to float64 a few at a time,
where they are added:

- CPU, float32 and float16: numpy's ``add.reduce(a, dtype=float64)`` on the tensor's
  memory (no copy). numpy casts through a small buffer (8192 elements) and sums each buffer
  pairwise in float64; one thread, about 10 ms on 4096², 1.5 times torch's float32 sum.
  The pure-torch loop over chunks (below) costs two parallel regions per chunk: 15 ms with
  one thread, 36 to 90 ms with two on a busy two-core machine.
- Other devices (CUDA) and dtypes (bfloat16): torch alone. The flattened tensor is cut into
  chunks of 2^22 elements; each is copied into one reused float64 buffer (32 MB, within
  the L2 cache of recent GPUs) and summed there, and the chunks' float64 partial sums are added.

Masked sums (``where=``, the counted pixels, or Dice's Σpy as the sum of p over the
foreground) take no masked copy of the map either. On the CPU, numpy multiplies each chunk
of 2^18 terms by the mask into a float64 buffer (exact: a product by 0 or 1), sums it
pairwise, and adds the chunks' sums exactly (``math.fsum``): about 25 ms on 4096², where
``torch.where(mask, x, 0)`` alone writes a new map (about 250 ms, on a shared two-core
machine). A term outside the mask that is not finite would turn the product into NaN: then
numpy's ``where=`` reduction, which skips it, gives the sum. The torch path applies
``where`` chunk by chunk in its buffer. The backward of a masked sum is the mask times the
gradient.

Every term is converted exactly (float64 holds every float32, float16 and bfloat16 value)
and every addition is a float64 addition, as in ``sum(dtype=float64)``; only the order of
the additions differs. The backward is the sum's: the incoming 0-d gradient, cast to the
input's dtype first and then expanded (a view, no map written).

Error bound. For any order of float64 additions of n terms, with u = 2^-53,
``|computed − exact| <= (n − 1)·u·Σ|x_i|`` to first order (Higham 1993): for 4096² terms
at most 1.9e-9 relative to Σ|x_i|, thirty times below float32's resolution (2^-24 ≈ 6e-8),
and the pairwise sums within numpy's buffers and torch's chunks bring the actual error far
lower (measured: below 1e-15 relative on 4096² uniform terms, see docs/performance.md).
float32 terms up to the float32 maximum (3.4e38) over any realistic image stay far from
float64's overflow (1.8e308), and subnormal float32 terms are exact in float64. A float32
accumulation (torch's ``x.sum()``, or float32 partial sums over blocks then a float64 sum
of the partials) is not an option: it overflows for terms above 3.4e38 / (block length),
and its error, about 2^-24 relative per partial sum, is float32's resolution itself.

Overlap sums (:func:`overlap_sums_float64`): the four sums of the soft confusion matrix,
TP = Σ_R x, FP = Σ_R̄ x, FN = Σ_R (1 − x), TN = Σ_R̄ (1 − x), for a region R (the foreground)
and its complement R̄ within the counted pixels, in one read of x and one map written by
the backward (∂/∂x = g_TP − g_FN on R, g_FP − g_TN on R̄). Each term 1 − x is formed in
float64 from the exact float64 value of x (exact for float32 x in [2^-29, 1], within one
float64 rounding otherwise), so each of the four is a float64 sum of its own terms within
the bound above. FN is not taken as Σ_R 1 − TP: that difference cancels when TP is far
larger than FN (a confident prediction), and its error is then bounded by 2^-53 times TP,
not times FN.

Reference: N. J. Higham, "The accuracy of floating point summation", SIAM J. Sci. Comput.
14(4), 1993.
"""

from __future__ import annotations

import math

import numpy as np
import torch

__all__ = ["overlap_sums_float64", "sum_float64"]

#: Elements per chunk of the torch path: large enough that the launches are few (four for
#: 4096²), small enough that a chunk's float64 copy (32 MB) stays in a GPU's L2 cache.
TORCH_CHUNK = 1 << 22
#: Elements per chunk of numpy's masked sum on the CPU (a 2 MB float64 buffer, in the cache).
NUMPY_CHUNK = 1 << 18

# dtypes numpy reads straight from a CPU tensor's memory (numpy has no bfloat16)
_NUMPY_DTYPES = (torch.float32, torch.float16)


def chunked_float64_sum(
    x: torch.Tensor, where: torch.Tensor | None = None, chunk: int = TORCH_CHUNK
) -> torch.Tensor:
    """Σx (over ``where`` if given) in float64 (0-d), in torch alone, chunk by chunk
    through one float64 buffer.

    No autograd (see :func:`sum_float64`); any device and floating dtype. Terms outside
    ``where`` are left out, whatever their value (NaN and inf included).
    """
    flat = x.reshape(-1)  # a view for the usual contiguous terms
    region = None if where is None else where.reshape(-1)
    if flat.numel() <= chunk and region is None:
        return flat.to(torch.float64).sum()
    chunk = min(chunk, max(flat.numel(), 1))
    chunks = flat.split(chunk)
    regions = [None] * len(chunks) if region is None else region.split(chunk)
    # one buffer for every chunk: a fresh float64 tensor per chunk would be a fresh
    # allocation per chunk
    buffer = torch.empty(chunk, dtype=torch.float64, device=x.device)
    partials = torch.empty(len(chunks), dtype=torch.float64, device=x.device)
    zero = torch.zeros((), dtype=torch.float64, device=x.device)
    for i, (c, r) in enumerate(zip(chunks, regions, strict=True)):
        b = buffer[: c.numel()]
        b.copy_(c)  # exact: float64 holds every float32, float16 and bfloat16 value
        if r is not None:
            torch.where(r, b, zero, out=b)
        torch.sum(b, 0, out=partials[i])
    return partials.sum()


def _numpy_masked_sum(a: np.ndarray, m: np.ndarray) -> float:
    """Σ a[m] in float64 for float32/float16 ``a`` and bool ``m`` (numpy, one thread).

    Chunk by chunk: a·m into a float64 buffer (exact: a product by 0 or 1), numpy's
    pairwise sum of the buffer, then the exactly rounded sum of the partial sums
    (``math.fsum``). A term that is not finite outside ``m`` would make a NaN there (0·inf):
    then the slower ``where=`` reduction, which skips those terms, gives the sum.
    """
    a, m = a.reshape(-1), m.reshape(-1)
    chunk = min(NUMPY_CHUNK, max(a.size, 1))
    buffer = np.empty(chunk, np.float64)
    partials = []
    with np.errstate(invalid="ignore"):  # 0·inf outside the mask: handled below
        for i in range(0, a.size, chunk):
            b = buffer[: min(chunk, a.size - i)]
            np.multiply(a[i : i + b.size], m[i : i + b.size], out=b, dtype=np.float64)
            partials.append(np.add.reduce(b))
    total = math.fsum(partials)
    if math.isfinite(total):
        return total
    return float(np.add.reduce(a, dtype=np.float64, where=m))


def _float64_sum(x: torch.Tensor, where: torch.Tensor | None) -> torch.Tensor:
    """Σx (over ``where``) in float64 (0-d, on x's device), by the fastest exact path; no
    autograd."""
    if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES:
        a = x.detach().resolve_neg().numpy()  # the tensor's memory, strides and all
        if where is None:
            total = float(np.add.reduce(a, axis=None, dtype=np.float64))
        else:
            total = _numpy_masked_sum(a, where.numpy())
        return torch.tensor(total, dtype=torch.float64)
    return chunked_float64_sum(x, where)


class _Float64Sum(torch.autograd.Function):
    """Σx (over ``where``) accumulated in float64, with the backward of a (masked) sum."""

    @staticmethod
    def forward(x: torch.Tensor, where: torch.Tensor | None) -> torch.Tensor:
        return _float64_sum(x, where)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, where = inputs
        ctx.shape = x.shape
        ctx.dtype = x.dtype
        ctx.where = where  # a bool tensor: not differentiable, nothing to save for autograd

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # cast the 0-d gradient, then expand: a view, where casting the expanded float64
        # gradient would write a full map (built from differentiable ops, so a second
        # derivative, ``create_graph=True``, goes through it)
        g = grad.to(ctx.dtype)
        if ctx.where is None:
            return g.expand(ctx.shape), None
        if g.device.type == "cpu" and not g.requires_grad and math.isfinite(float(g)):
            # [where]·g: one cast and an in-place product, twice as fast on the CPU as
            # ``torch.where``; the same values for a finite g
            return ctx.where.to(ctx.dtype).mul_(g), None
        return torch.where(ctx.where, g, torch.zeros((), dtype=g.dtype, device=g.device)), None


def sum_float64(x: torch.Tensor, where: torch.Tensor | None = None) -> torch.Tensor:
    r"""The sum of the elements of ``x`` (those where ``where`` is True), in float64.

    .. math::

        S = \sum_{i \,:\, w_i} x_i \quad \text{(every term converted to float64, every
        addition in float64)}

    The same value as ``x.sum(dtype=torch.float64)`` (or ``torch.where(where, x,
    0).sum(dtype=torch.float64)``) up to float64 rounding (the order of the additions
    differs), the same gradient (1 on the counted elements, 0 elsewhere, in ``x``'s dtype),
    at the cost of one read of ``x`` and no float64 copy of it: see the module docstring for
    the method and the bound ``|error| <= (n − 1)·2^-53·Σ|x_i|``. Elements outside
    ``where`` are left out whatever their value, NaN and inf included.

    Args:
        x: a floating tensor of any shape, on any device.
        where: optional bool tensor of ``x``'s shape and device: the elements to add.

    Returns:
        A 0-d float64 tensor on ``x``'s device, differentiable with respect to ``x``.

    Raises:
        TypeError: ``x`` is not a floating tensor, or ``where`` not a bool tensor.
        ValueError: ``where`` has another shape or device than ``x``.

    Example:
        >>> import torch
        >>> x = torch.tensor([2.0**24, 1.0, 1.0, 1.0])  # float32 cannot hold 2^24 + 3
        >>> float(sum_float64(x)), float(x.sum())
        (16777219.0, 16777216.0)
        >>> float(sum_float64(x, where=torch.tensor([False, True, True, False])))
        2.0
    """
    if not (isinstance(x, torch.Tensor) and x.dtype.is_floating_point):
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"sum_float64 needs a floating tensor, got {got}")
    if where is not None:
        if not (isinstance(where, torch.Tensor) and where.dtype == torch.bool):
            got = (
                f"dtype {where.dtype}" if isinstance(where, torch.Tensor) else type(where).__name__
            )
            raise TypeError(f"sum_float64: where must be a bool tensor, got {got}")
        if where.shape != x.shape or where.device != x.device:
            raise ValueError(
                "sum_float64: where must have the shape and device of x, got "
                f"{tuple(where.shape)} on {where.device} and {tuple(x.shape)} on {x.device}"
            )
    if x.dtype == torch.float64:  # nothing to convert: torch's own float64 sum
        return x.sum() if where is None else torch.where(where, x, 0.0).sum()
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _float64_sum(x, where)
    return _Float64Sum.apply(x, where)


def _numpy_overlap_sums(a: np.ndarray, region: np.ndarray, mask: np.ndarray | None) -> list:
    """[Σ_R a, Σ_R̄ a, Σ_R (1 − a), Σ_R̄ (1 − a)] in float64 over ``mask`` (numpy, one thread).

    Chunk by chunk: the chunk's a in float64 (exact), times the 0/1 indicators of R and R̄
    (exact products), 1 − a on each (one float64 rounding at most), numpy's pairwise sum
    of each, and the exactly rounded sum of each sum's partial sums (``math.fsum``).
    """
    a, region = a.reshape(-1), region.reshape(-1)
    mask = None if mask is None else mask.reshape(-1)
    chunk = min(NUMPY_CHUNK, max(a.size, 1))
    value = np.empty(chunk, np.float64)
    term = np.empty(chunk, np.float64)
    inside = np.empty(chunk, np.bool_)
    partials: list[list[float]] = [[], [], [], []]
    with np.errstate(invalid="ignore"):  # 0·inf outside the regions: handled below
        for i in range(0, a.size, chunk):
            n = min(chunk, a.size - i)
            v, t, r = value[:n], term[:n], inside[:n]
            np.copyto(v, a[i : i + n])
            for k, complement in ((0, False), (1, True)):
                if complement:
                    np.logical_not(region[i : i + n], out=r)
                else:
                    np.copyto(r, region[i : i + n])
                if mask is not None:
                    np.logical_and(r, mask[i : i + n], out=r)
                np.multiply(v, r, out=t)  # x on the region, 0 elsewhere: exact
                partials[k].append(np.add.reduce(t))
                np.subtract(r, t, out=t)  # 1 − x on the region, 0 elsewhere
                partials[k + 2].append(np.add.reduce(t))
    sums = [math.fsum(p) for p in partials]
    if all(math.isfinite(s) for s in sums):
        return sums
    # a term that is not finite outside the counted pixels made 0·inf: numpy's where=
    # reductions, which skip those terms (and a float64 copy: a rare, slower path)
    counted = np.ones(a.size, np.bool_) if mask is None else mask
    regions = (region & counted, ~region & counted)
    ones_minus = np.subtract(1.0, a, dtype=np.float64)
    return [float(np.add.reduce(a, dtype=np.float64, where=r)) for r in regions] + [
        float(np.add.reduce(ones_minus, where=r)) for r in regions
    ]


def chunked_overlap_sums(
    x: torch.Tensor,
    region: torch.Tensor,
    mask: torch.Tensor | None = None,
    chunk: int = TORCH_CHUNK,
) -> torch.Tensor:
    """[Σ_R x, Σ_R̄ x, Σ_R (1 − x), Σ_R̄ (1 − x)] over ``mask`` in float64 (a (4,) tensor),
    in torch alone, chunk by chunk through one float64 buffer; no autograd.

    Terms outside the counted pixels are left out whatever their value.
    """
    flat, reg = x.reshape(-1), region.reshape(-1)
    counted = None if mask is None else mask.reshape(-1)
    chunk = min(chunk, max(flat.numel(), 1))
    buffer = torch.empty(chunk, dtype=torch.float64, device=x.device)
    zero = torch.zeros((), dtype=torch.float64, device=x.device)
    partials = torch.zeros(4, dtype=torch.float64, device=x.device)
    for i in range(0, flat.numel(), chunk):
        v = buffer[: min(chunk, flat.numel() - i)]
        v.copy_(flat[i : i + v.numel()])  # exact
        r = reg[i : i + v.numel()]
        for k, inside in enumerate((r, ~r)):
            if counted is not None:
                inside = inside & counted[i : i + v.numel()]
            on = torch.where(inside, v, zero)
            partials[k] += on.sum()
            partials[k + 2] += (inside.to(torch.float64) - on).sum()
    return partials


def _overlap_sums(x: torch.Tensor, region: torch.Tensor, mask: torch.Tensor | None):
    """The four overlap sums in float64 ((4,), on x's device) by the fastest path; no autograd."""
    if x.device.type == "cpu" and x.dtype in _NUMPY_DTYPES:
        a = x.detach().resolve_neg().numpy()
        m = None if mask is None else mask.numpy()
        return torch.tensor(_numpy_overlap_sums(a, region.numpy(), m), dtype=torch.float64)
    return chunked_overlap_sums(x.detach(), region, mask)


class _OverlapSums(torch.autograd.Function):
    """The four overlap sums, with the backward of the four sums as one map."""

    @staticmethod
    def forward(x: torch.Tensor, region: torch.Tensor, mask: torch.Tensor | None):
        return _overlap_sums(x, region, mask)

    @staticmethod
    def setup_context(ctx, inputs, output):
        x, region, mask = inputs
        ctx.dtype = x.dtype
        ctx.region, ctx.mask = region, mask  # bool tensors: nothing for autograd to save

    @staticmethod
    def backward(ctx, grad: torch.Tensor):
        # ∂/∂x: g_TP − g_FN on the region, g_FP − g_TN on its complement, 0 outside mask;
        # the two values cast to x's dtype first (as autograd casts each sum's gradient)
        g = grad.to(ctx.dtype)
        # one selection (one map written; the values on and off exactly, where r·(on − off)
        # + off would round), differentiable in g for a second derivative
        out = torch.where(ctx.region, g[0] - g[2], g[1] - g[3])
        if ctx.mask is not None:
            out = out.mul_(ctx.mask) if not out.requires_grad else out * ctx.mask
        return out, None, None


def overlap_sums_float64(
    x: torch.Tensor, region: torch.Tensor, mask: torch.Tensor | None = None
) -> torch.Tensor:
    r"""The soft confusion matrix of ``x`` against a region, in float64: a (4,) tensor.

    .. math::

        (TP, FP, FN, TN) = \Big(\sum_{R} x_i,\ \sum_{\bar R} x_i,\ \sum_{R} (1 - x_i),\
        \sum_{\bar R} (1 - x_i)\Big)

    over the counted pixels (``mask``), with R the pixels where ``region`` is True and
    R̄ the others. For x = p and R the foreground these are Σpy, Σp(1 − y), Σ(1 − p)y and
    Σ(1 − p)(1 − y), without any of those maps: one read of ``x`` (see the module
    docstring), and a backward that writes one map. Each sum is a float64 sum of its own
    terms, within ``(n − 1)·2^-53·Σ|terms|`` (plus one rounding of each 1 − x where float64
    cannot hold it exactly); terms outside ``mask`` are left out whatever their value.

    Args:
        x: a floating tensor.
        region: bool tensor of ``x``'s shape and device (the foreground).
        mask: optional bool tensor of ``x``'s shape and device: the counted pixels.

    Returns:
        A (4,) float64 tensor on ``x``'s device, differentiable with respect to ``x``.

    Raises:
        TypeError: ``x`` is not a floating tensor, or ``region``/``mask`` not bool tensors.
        ValueError: ``region`` or ``mask`` has another shape or device than ``x``.

    Example:
        >>> import torch
        >>> p = torch.tensor([0.75, 0.25, 0.5])
        >>> overlap_sums_float64(p, torch.tensor([True, True, False])).tolist()
        [1.0, 0.5, 1.0, 0.5]
    """
    if not (isinstance(x, torch.Tensor) and x.dtype.is_floating_point):
        got = f"dtype {x.dtype}" if isinstance(x, torch.Tensor) else type(x).__name__
        raise TypeError(f"overlap_sums_float64 needs a floating tensor, got {got}")
    for name, t in (("region", region), ("mask", mask)):
        if t is None and name == "mask":
            continue
        if not (isinstance(t, torch.Tensor) and t.dtype == torch.bool):
            got = f"dtype {t.dtype}" if isinstance(t, torch.Tensor) else type(t).__name__
            raise TypeError(f"overlap_sums_float64: {name} must be a bool tensor, got {got}")
        if t.shape != x.shape or t.device != x.device:
            raise ValueError(
                f"overlap_sums_float64: {name} must have the shape and device of x, got "
                f"{tuple(t.shape)} on {t.device} and {tuple(x.shape)} on {x.device}"
            )
    if not (x.requires_grad and torch.is_grad_enabled()):
        return _overlap_sums(x, region, mask)
    return _OverlapSums.apply(x, region, mask)
