"""Array plumbing shared by the core: kinds in and out, devices, input validation.

Every public core function follows one contract: numpy in gives numpy out (float32 unless
float64 came in), torch in gives torch out on the input's device with autograd intact.
The helpers here implement that contract once, so that each function only does its math.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

__all__ = [
    "MAX_SPACING_RATIO",
    "ArrayLike",
    "as_tensor",
    "check_dask_chunks",
    "check_fits",
    "check_label_array",
    "check_mask_dtype",
    "check_same_shape",
    "is_dask",
    "is_torch",
    "resolve_device",
    "result_dtype",
    "spacing_in_units",
    "to_caller",
    "validate_labels",
    "validate_mask",
    "validate_prediction",
    "validate_spacing",
]

ArrayLike = Any  # numpy.ndarray | torch.Tensor | anything numpy.asarray accepts

#: Spacing values may differ by at most this factor. Distances are computed in units of the
#: largest spacing, and the square of the smallest must stay a normal float64 (> 1e-308).
MAX_SPACING_RATIO = 1e150

_INT32_MAX = int(np.iinfo(np.int32).max)


def is_torch(x: object) -> bool:
    """True when ``x`` is a torch tensor."""
    return isinstance(x, torch.Tensor)


def is_dask(x: object) -> bool:
    """True for a dask array (without importing dask when it is not loaded)."""
    mod = type(x).__module__
    return mod.startswith("dask.") and hasattr(x, "chunks")


def resolve_device(device: str | torch.device | None, *arrays: object) -> torch.device:
    """The device to compute on.

    ``None`` means the device of the first torch tensor among ``arrays``, otherwise CUDA when
    available, otherwise the CPU. ``"cpu"``, ``"cuda"`` and ``"cuda:1"`` are accepted.

    Raises:
        ValueError: the device string is not a device, or names a CUDA device that torch
            does not see.
        TypeError: ``device`` is neither ``None``, a string nor a ``torch.device``.
    """
    if device is None:
        for a in arrays:
            if is_torch(a):
                return a.device
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if isinstance(device, str):
        if device.strip().lower() == "auto":
            return resolve_device(None, *arrays)
        try:
            dev = torch.device(device)
        except RuntimeError as err:
            raise ValueError(
                f"device must be None, 'auto', 'cpu', 'cuda' or 'cuda:N', got {device!r}"
            ) from err
    elif isinstance(device, torch.device):
        dev = device
    else:
        raise TypeError(
            f"device must be None, a string or a torch.device, got {type(device).__name__}"
        )
    if dev.type == "cuda":
        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        index = 0 if dev.index is None else dev.index
        if index >= n:
            seen = "no CUDA device" if n == 0 else f"{n} CUDA device(s) (cuda:0..cuda:{n - 1})"
            raise ValueError(
                f"device {str(dev)!r} is not available: torch sees {seen}; "
                "use device='cpu' or device=None"
            )
    elif dev.type != "cpu":
        raise ValueError(f"device must be 'cpu' or a CUDA device, got {str(dev)!r}")
    return dev


def result_dtype(*arrays: object, default: torch.dtype = torch.float32) -> torch.dtype:
    """float64 when any floating input is float64, else float32 (the library default)."""
    for a in arrays:
        if a is None:
            continue
        dt = getattr(a, "dtype", None)
        if dt is None:  # nested lists or tuples: the dtype numpy would give them
            dt = np.asarray(a).dtype
        if isinstance(dt, np.dtype):
            dt = dt.newbyteorder("=")  # big-endian float64 is float64 too
        if dt in (np.float64, torch.float64):
            return torch.float64
    return default


def _to_tensor(x: ArrayLike, device: torch.device, dtype: torch.dtype | None = None):
    if is_torch(x):
        t = x
    else:
        a = np.asarray(x)
        if a.dtype == np.float16:
            a = a.astype(np.float32)
        if a.dtype.byteorder not in ("=", "|"):
            a = a.astype(a.dtype.newbyteorder("="))
        if a.dtype == np.uint64:
            if a.size and a.max() > np.iinfo(np.int64).max:
                raise ValueError("label ids must fit in int64, got ids above 2**63 - 1")
            a = a.astype(np.int64)
        elif a.dtype in (np.uint16, np.uint32):
            a = a.astype(np.int64)
        t = torch.from_numpy(np.ascontiguousarray(a))
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    return t.to(device)


def as_tensor(x: ArrayLike, device: torch.device | None = None, dtype: torch.dtype | None = None):
    """``x`` as a tensor (any byte order, nested lists, numpy or torch), optionally moved/cast.

    numpy arrays are converted to native byte order first (torch refuses big-endian data);
    float16 becomes float32, and unsigned types torch lacks become int64.
    """
    return _to_tensor(x, device if device is not None else torch.device("cpu"), dtype)


def check_fits(values: dict[str, float], dtype: torch.dtype, what: str) -> None:
    """Raise ``ValueError`` when the sum of ``values`` exceeds the largest ``dtype`` value.

    ``values`` maps parameter names to the (non-negative) numbers whose sum bounds an output
    (e.g. ``{"w0": w0, "class_weights": max(pair)}`` for the weight map). The message names
    the parameter(s) and the usable range.
    """
    top = float(torch.finfo(dtype).max)
    total = sum(values.values())
    if total <= top:
        return
    too_big = [k for k, v in values.items() if v > top] or list(values)
    names = " and ".join(too_big)
    got = ", ".join(f"{k}={v:.4g}" for k, v in values.items())
    raise ValueError(
        f"{names} too large for a {str(dtype).replace('torch.', '')} {what}: "
        f"{' + '.join(values)} must be at most {top:.4g}, got {got}; "
        "use float64 (dtype=torch.float64, or float64 input) or smaller values"
    )


def check_dask_chunks(x: object, name: str) -> None:
    """Raise ``ValueError`` for a dask array whose chunk sizes are unknown (NaN)."""
    chunks = getattr(x, "chunks", ())
    if any(isinstance(c, float) and c != c for axis in chunks for c in axis):
        raise ValueError(
            f"{name} is a dask array of unknown chunk sizes (shape {tuple(x.shape)}), e.g. "
            f"after boolean indexing; call {name}.compute_chunk_sizes() first"
        )


def to_caller(t: torch.Tensor, like: object, dtype: torch.dtype | None = None):
    """Return ``t`` in the caller's kind: a tensor for torch input, a numpy array otherwise.

    numpy output is float32 unless ``dtype`` (or ``t``) is float64.
    """
    if dtype is not None and t.dtype != dtype:
        t = t.to(dtype)
    if is_torch(like):
        return t
    return t.detach().cpu().numpy()


def _shape(x: ArrayLike) -> tuple[int, ...]:
    return tuple(x.shape) if hasattr(x, "shape") else np.shape(x)


def check_same_shape(a: ArrayLike, b: ArrayLike, name_a: str, name_b: str) -> None:
    """Raise ``ValueError`` unless ``a`` and ``b`` have the same shape."""
    sa, sb = _shape(a), _shape(b)
    if sa != sb:
        raise ValueError(f"{name_a} and {name_b} must have the same shape, got {sa} and {sb}")


def _ndim_check(shape: tuple[int, ...], name: str, ndims: Sequence[int] | None) -> None:
    if ndims is not None and len(shape) not in ndims:
        want = " or ".join(f"{n}D" for n in ndims)
        raise ValueError(
            f"{name} must be {want} (all axes spatial), got {len(shape)}D with shape {shape}"
        )
    if any(s == 0 for s in shape):
        raise ValueError(f"{name} must not be empty, got shape {shape}")


def check_label_array(
    labels: ArrayLike, name: str = "labels", ndims: Sequence[int] | None = (2, 3)
) -> tuple[int, ...]:
    """Cheap checks of a label array's kind and shape (no conversion, no pass over values).

    Returns the shape. The values are checked by :func:`validate_labels`, tile by tile.
    """
    if is_torch(labels):
        if labels.dtype.is_complex:
            raise TypeError(f"{name} must be an integer (or bool) array, got dtype {labels.dtype}")
    else:
        dt = getattr(labels, "dtype", None)
        if dt is None:
            labels = np.asarray(labels)
            dt = labels.dtype
        if np.dtype(dt).kind not in "biuf":
            raise TypeError(
                f"{name} must be an integer (or bool) array of label ids, got dtype {dt}"
            )
    shape = _shape(labels)
    _ndim_check(shape, name, ndims)
    return shape


def validate_labels(
    labels: ArrayLike,
    device: torch.device,
    name: str = "labels",
    ndims: Sequence[int] | None = (2, 3),
    int32_ok: bool = False,
) -> torch.Tensor:
    """Check a label image and return it as an int64 tensor on ``device`` (a copy or a view).

    A label image holds non-negative integer ids: 0 is background, every positive id a cell.
    bool and integer dtypes are accepted, and floats that hold integers.

    With ``int32_ok`` (for the CPU kernels, which take both) int32 and int64 arrays are
    returned as they are (no copy), and other integer and bool dtypes as int32 when their ids
    fit (4 bytes per voxel instead of 8); floats still become int64.

    Raises:
        TypeError: the array is not numeric (strings, objects, complex).
        ValueError: wrong dimensionality, empty, negative ids, non-integer or non-finite
            values.
    """
    if not is_torch(labels):
        labels = np.asarray(labels)
        kind = labels.dtype.kind
        if kind not in "biuf":
            raise TypeError(
                f"{name} must be an integer (or bool) array of label ids, got dtype {labels.dtype}"
            )
    elif labels.dtype.is_complex:
        raise TypeError(f"{name} must be an integer (or bool) array, got dtype {labels.dtype}")
    shape = _shape(labels)
    _ndim_check(shape, name, ndims)
    if int32_ok and not is_torch(labels) and labels.dtype.kind in "biu":
        small = labels.dtype.itemsize <= 2 or (labels.dtype.kind == "b")
        if small or (
            labels.dtype == np.uint32 and (labels.size == 0 or int(labels.max()) <= _INT32_MAX)
        ):
            labels = labels.astype(np.int32)  # torch lacks uint16/uint32: int32, not int64
    t = _to_tensor(labels, device)
    if t.dtype.is_floating_point:
        if not bool(torch.isfinite(t).all()):
            raise ValueError(f"{name} must hold finite integer ids, got NaN or inf")
        if not bool((t == torch.round(t)).all()):
            bad = t[t != torch.round(t)].flatten()[0].item()
            raise ValueError(
                f"{name} must hold integer ids, got non-integer values (e.g. {bad!r})"
            )
        if bool((t.abs() > 2.0**53).any()):
            raise ValueError(f"{name} float ids must be below 2**53 to be exact")
    if not (int32_ok and t.dtype in (torch.int32, torch.int64)):
        small = int32_ok and not t.dtype.is_floating_point and t.dtype.itemsize <= 2
        t = t.to(torch.int32 if small else torch.int64)
    # numpy's min on the CPU: torch's parallel reduction costs more to start than a
    # single-threaded pass over a few million ids (several ms on a busy machine)
    low = 0 if not t.numel() else int(t.numpy().min() if t.device.type == "cpu" else t.min())
    if low < 0:
        raise ValueError(
            f"{name} must hold non-negative ids (0 is background), got a minimum of {low}"
        )
    return t


def validate_spacing(spacing: object, ndim: int) -> tuple[float, ...]:
    """Check ``spacing`` (``None`` means 1 per axis) and return it as a tuple of floats.

    A number (Python, numpy or a 0-d array/tensor) applies to every axis; otherwise one value
    per axis. Any finite positive float64 is accepted, from the smallest subnormal to the
    largest float, as long as the values of one spacing lie within
    :data:`MAX_SPACING_RATIO` of each other.

    Raises:
        ValueError: not numbers (a string, ...), wrong length, a value that is not finite
            and positive, or values more than ``MAX_SPACING_RATIO`` apart.
    """
    if spacing is None:
        return (1.0,) * ndim
    bad = ValueError(f"spacing must be numbers (one, or one per axis), got {spacing!r}")
    if isinstance(spacing, (str, bytes)):
        raise bad
    try:
        arr = np.asarray(spacing, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise bad from err
    if arr.ndim == 0:
        values = (float(arr),) * ndim
    else:
        values = tuple(float(s) for s in arr.ravel())
        if arr.ndim != 1 or len(values) != ndim:
            raise ValueError(
                f"spacing must have one value per axis ({ndim}), got {len(values)}: {values}"
            )
    if not all(math.isfinite(v) and v > 0 for v in values):
        raise ValueError(f"spacing values must be finite and positive, got {values}")
    if max(values) / min(values) > MAX_SPACING_RATIO:
        raise ValueError(
            f"spacing values must lie within a factor {MAX_SPACING_RATIO:g} of each other, "
            f"got {values}"
        )
    return values


def spacing_in_units(spacing: tuple[float, ...]) -> tuple[float, tuple[float, ...]]:
    """``(unit, spacing / unit)`` with ``unit`` the largest value of a validated spacing.

    Distances are computed in these units (every value in (0, 1], and its square a normal
    float64), then scaled by ``unit``: no square of a huge or tiny spacing overflows or
    underflows on the way.
    """
    unit = max(spacing)
    return unit, tuple(s / unit for s in spacing)


def validate_prediction(
    prediction: ArrayLike,
    device: torch.device,
    dtype: torch.dtype,
    from_logits: bool,
    name: str = "prediction",
) -> torch.Tensor:
    """Check a prediction and return it as a floating tensor on ``device``.

    Probabilities must lie in [0, 1] unless ``from_logits``; NaN and inf are refused.
    Torch input keeps its autograd graph.

    Raises:
        TypeError: a non-numeric array.
        ValueError: NaN or inf, or probabilities outside [0, 1].
    """
    if not is_torch(prediction):
        prediction = np.asarray(prediction)
        if prediction.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a numeric array, got dtype {prediction.dtype}")
    elif prediction.dtype.is_complex:
        raise TypeError(f"{name} must be a real array, got dtype {prediction.dtype}")
    t = _to_tensor(prediction, device)
    if not t.dtype.is_floating_point:
        t = t.to(dtype)
    elif t.dtype != dtype:
        t = t.to(dtype)
    if t.numel() == 0:
        raise ValueError(f"{name} must not be empty, got shape {tuple(t.shape)}")
    with torch.no_grad():
        # one pass: min and max propagate NaN, so both are finite iff every value is
        lo, hi = (float(v) for v in torch.aminmax(t.detach()))
        if not (math.isfinite(lo) and math.isfinite(hi)):
            n_bad = int((~torch.isfinite(t)).sum())
            raise ValueError(f"{name} must be finite, got {n_bad} NaN or inf value(s)")
        if not from_logits:
            if lo < 0.0 or hi > 1.0:
                raise ValueError(
                    f"{name} must hold probabilities in [0, 1], got values in "
                    f"[{lo:.4g}, {hi:.4g}]; pass from_logits=True if these are logits"
                )
    return t


def check_mask_dtype(dtype: object, name: str = "mask") -> None:
    """Raise ``TypeError`` unless ``dtype`` is bool, integer or float (holding 0 and 1)."""
    if isinstance(dtype, torch.dtype):
        ok = not dtype.is_complex
    else:
        ok = np.dtype(dtype).kind in "biuf"
    if not ok:
        raise TypeError(f"{name} must be boolean (or hold 0 and 1), got dtype {dtype}")


def validate_mask(
    mask: ArrayLike | None,
    shape: tuple[int, ...],
    device: torch.device,
    *,
    require_any: bool = True,
    name: str = "mask",
):
    """Check an optional boolean mask of pixels that count; return a bool tensor or None.

    ``require_any=False`` accepts a mask that counts no pixel (one block of a larger mask).

    A mask is boolean, or numbers that are all 0 or 1 (integers or floats).

    Raises:
        TypeError: a dtype that is not bool, integer or float.
        ValueError: the shape differs from ``shape``, a value other than 0 and 1, or (with
            ``require_any``) no pixel is counted.
    """
    if mask is None:
        return None
    m = mask if is_torch(mask) else np.asarray(mask)
    if tuple(m.shape) != tuple(shape):
        raise ValueError(
            f"{name} and target must have the same shape, got {tuple(m.shape)} and {tuple(shape)}"
        )
    check_mask_dtype(m.dtype, name)
    t = _to_tensor(m, device)
    if t.dtype != torch.bool:
        is_01 = (t == 0) | (t == 1)
        if not bool(is_01.all()):
            bad = t[~is_01].flatten()[0].item()
            raise ValueError(
                f"{name} must be boolean or hold only 0 and 1, got dtype {m.dtype} holding {bad!r}"
            )
        t = t != 0
    if require_any and not bool(t.any()):
        raise ValueError(f"{name} excludes every pixel: at least one pixel must count")
    return t
