"""LossRecorder: write where the loss is, step by step, while a model trains.

A training loop calls :meth:`LossRecorder.record` with the model's prediction on a few fixed
validation samples; the recorder computes the loss map (and the other chosen maps) through
:mod:`napari_losslens.core`, the per-object loss, Dice and IoU, and appends them to a zarr
store that napari opens with a step slider (the layout is in
:mod:`napari_losslens.training.store`).

How it stays cheap and safe:

- ``record`` copies the inputs to CPU numpy arrays (detached: no autograd graph is kept)
  and hands them to a background writer thread through a bounded queue; the training loop
  goes on while the maps are computed and written. When the writer falls behind, ``record``
  waits for a free slot, so no step is ever dropped; ``close`` (or leaving the ``with``
  block) waits until every queued step is written.
- The weight map of a loss that has one (``unet_ce``) depends only on the target, so it is
  computed once per sample and reused at every step.
- A step is committed by appending it to the ``steps`` attribute after its arrays are
  written; zarr replaces files atomically, so a run killed at any moment leaves a store
  whose listed steps are all complete.

No napari, no Qt: this is what a training script imports.
"""

from __future__ import annotations

import atexit
import json
import os
import queue
import threading
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from .. import __version__
from ..core import error_map, get_loss, gradient_map, loss_map, loss_value, object_stats
from ..core import unet_weight_map as _unet_weight_map
from ..core.losses.distance import UNET_WEIGHT_PARAMS
from .store import (
    FORMAT,
    FORMAT_VERSION,
    OBJECT_COLUMNS,
    OUTPUTS,
    SUFFIX,
    check_sample_name,
    import_zarr,
    read_attrs,
)

__all__ = ["LossRecorder"]

_INITIAL_CAPACITY = 16
_STOP = object()


def _jsonable(value: Any) -> Any:
    """``value`` with tuples as lists and numpy scalars as Python numbers (JSON types)."""
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    json.dumps(value)  # raises TypeError for anything else
    return value


def _to_numpy(x: Any, name: str) -> np.ndarray:
    """A CPU numpy copy of an array or tensor (detached), never a view of the caller's."""
    if isinstance(x, torch.Tensor):
        x = x.detach()
        if x.is_floating_point() and x.dtype not in (torch.float32, torch.float64):
            x = x.float()  # half, bfloat16: numpy has no bfloat16
        return x.to("cpu", copy=True).numpy()
    if hasattr(x, "__array__") or isinstance(x, (list, tuple)):
        a = np.array(x, copy=True)
        if a.dtype.kind not in "biuf":
            raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
        return a
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")


class LossRecorder:
    """Record loss maps of fixed validation samples over training, into a zarr store.

    Per sample, the image and the target are written once; per recorded step, the
    prediction (as probabilities), each map in ``outputs``, the scalar loss, and per object
    of the target its mean and total loss, Dice and IoU (see
    :func:`~napari_losslens.core.object_stats`; the prediction is thresholded at
    ``threshold``). The maps are those of :func:`~napari_losslens.core.loss_map`,
    :func:`~napari_losslens.core.gradient_map` and :func:`~napari_losslens.core.error_map`;
    ``weight_map`` is :func:`~napari_losslens.core.unet_weight_map` of the target, written
    once.

    Reopening an existing store with the same settings appends to it (resumed training);
    steps not after the last one recorded are skipped. Different settings are refused.

    Args:
        path: the store, a directory whose name ends in ``.losslens.zarr``.
        loss: a loss name from :func:`~napari_losslens.core.available_losses` (binary).
        every: record the steps that are multiples of ``every``.
        outputs: maps to record, among ``loss_map``, ``gradient_map``, ``weight_map`` (for
            a loss with a weight map, such as ``unet_ce``) and ``error_map``.
        ndim: spatial dimensions of one sample, 2 or 3; a target with ``ndim + 1``
            dimensions is a batch ``(N, ...)`` of samples.
        threshold: the foreground threshold of the probabilities for Dice, IoU and the
            error map.
        names: the sample names (default ``sample_0``, ``sample_1``, ...).
        background: compute and write in a background thread (``False``: in ``record``).
        queue_size: how many steps may wait for the writer before ``record`` blocks.
        **params: the loss's parameters (``w0=10, sigma=5`` for ``unet_ce``, ...).

    Raises:
        ValueError: a path without the suffix, an existing store with other settings (the
            message says which differ) or that is not a recording, an unknown loss, output
            or parameter value, ``every``, ``ndim`` or ``threshold`` out of range.
        TypeError: an unknown parameter name, a parameter that cannot be stored as JSON.
        ModuleNotFoundError: zarr is not installed (the ``zarr`` extra).

    Example:
        >>> import numpy as np
        >>> target = np.zeros((64, 64), np.int32); target[10:30, 10:30] = 1
        >>> with LossRecorder("run.losslens.zarr", loss="bce") as rec:
        ...     for step in range(3):
        ...         pred = np.full((64, 64), 0.2 + 0.2 * step, np.float32)
        ...         rec.record(step, target.astype(np.float32), pred, target)
        True
        True
        True
        >>> from napari_losslens.training import Recording
        >>> Recording("run.losslens.zarr").steps
        [0, 1, 2]
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        loss: str = "unet_ce",
        every: int = 1,
        outputs: Sequence[str] = ("loss_map",),
        ndim: int = 2,
        threshold: float = 0.5,
        names: Sequence[str] | None = None,
        background: bool = True,
        queue_size: int = 2,
        **params: Any,
    ) -> None:
        self.path = Path(path)
        if not self.path.name.endswith(SUFFIX) or self.path.name == SUFFIX:
            raise ValueError(f"the store's name must end in {SUFFIX!r}, got {self.path.name!r}")
        self._info = get_loss(loss)
        self.loss = loss
        if isinstance(every, bool) or not isinstance(every, (int, np.integer)) or every < 1:
            raise ValueError(f"every must be an integer >= 1, got {every!r}")
        self.every = int(every)
        self.outputs = self._check_outputs(outputs)
        if ndim not in (2, 3) or isinstance(ndim, bool):
            raise ValueError(f"ndim must be 2 or 3, got {ndim!r}")
        self.ndim = int(ndim)
        if not isinstance(threshold, (int, float)) or not 0.0 <= float(threshold) <= 1.0:
            raise ValueError(f"threshold must be a number in [0, 1], got {threshold!r}")
        self.threshold = float(threshold)
        if "weight_map" in params:
            raise ValueError(
                "do not pass weight_map: the recorder computes it from each target "
                "(pass its parameters, such as w0 and sigma, instead)"
            )
        self._params = self._info.resolve_params(params)
        self.params = {k: _jsonable(v) for k, v in self._params.items() if k != "weight_map"}
        self._names = None if names is None else [check_sample_name(n) for n in names]
        if self._names is not None and len(set(self._names)) != len(self._names):
            raise ValueError(f"sample names must be unique, got {self._names}")
        if isinstance(queue_size, bool) or not isinstance(queue_size, int) or queue_size < 1:
            raise ValueError(f"queue_size must be an integer >= 1, got {queue_size!r}")

        self._zarr = import_zarr()
        self._group = self._open_store()
        meta = read_attrs(self._group, self.path)
        self._steps: list[int] = list(meta["steps"])
        self._samples: list[str] = list(meta["samples"])
        self._last_step = self._steps[-1] if self._steps else None
        self._ready = False  # samples checked/created at the first record of this session
        self._meta = meta
        self._targets: list[np.ndarray] = []
        self._arrays: list[dict[str, Any]] = []
        self._weights: list[np.ndarray | None] = []
        self._error: BaseException | None = None
        self._closed = False
        self._queue: queue.Queue | None = None
        self._thread: threading.Thread | None = None
        if background:
            self._queue = queue.Queue(maxsize=queue_size)
            self._thread = threading.Thread(
                target=self._writer,
                args=(self._queue,),
                name=f"LossRecorder({self.path.name})",
                daemon=True,
            )
            self._thread.start()
        atexit.register(self.close)

    # ------------------------------------------------------------------ settings, store

    def _check_outputs(self, outputs) -> tuple[str, ...]:
        if isinstance(outputs, str):
            outputs = (outputs,)
        outputs = tuple(outputs)
        unknown = [o for o in outputs if o not in OUTPUTS]
        if unknown:
            raise ValueError(f"unknown output(s) {unknown}; choose among: {', '.join(OUTPUTS)}")
        if "weight_map" in outputs and not self._has_weight_map():
            raise ValueError(
                f"loss {self._info.name!r} has no weight map; 'weight_map' is an output of "
                "losses with one (unet_ce)"
            )
        return tuple(dict.fromkeys(outputs))

    def _has_weight_map(self) -> bool:
        return any(p.name == "weight_map" for p in self._info.params)

    def settings(self) -> dict[str, Any]:
        """The settings stored in, and compared against, a store's attributes."""
        return {
            "loss": self.loss,
            "params": self.params,
            "outputs": list(self.outputs),
            "every": self.every,
            "ndim": self.ndim,
            "threshold": self.threshold,
        }

    def _open_store(self):
        zarr = self._zarr
        if self.path.exists():
            if not self.path.is_dir():
                raise ValueError(f"{self.path} exists and is not a directory")
            if any(self.path.iterdir()):
                try:
                    group = zarr.open_group(str(self.path), mode="r+")
                except Exception as exc:  # zarr raises several kinds for "not a group"
                    raise ValueError(
                        f"{self.path} exists and is not a napari-losslens recording ({exc})"
                    ) from None
                meta = read_attrs(group, self.path)
                self._check_same_settings(meta)
                return group
        meta = {
            "format": FORMAT,
            "format_version": FORMAT_VERSION,
            "version": __version__,
            **self.settings(),
            "samples": [],
            "steps": [],
        }
        # the attributes go with the group's metadata, in one file: no store without them
        return zarr.open_group(str(self.path), mode="w", attributes={"losslens": meta})

    def _check_same_settings(self, meta: dict[str, Any]) -> None:
        now = self.settings()
        differ = [
            f"{key}: {meta.get(key)!r} in the store, {value!r} now"
            for key, value in now.items()
            if _jsonable(meta.get(key)) != _jsonable(value)
        ]
        if differ:
            raise ValueError(
                f"{self.path} was recorded with other settings ("
                + "; ".join(differ)
                + "): use the same settings to append, or another path"
            )

    # ------------------------------------------------------------------ recording

    def due(self, step: int) -> bool:
        """Whether :meth:`record` would record ``step`` (a multiple of ``every``, after the
        last recorded step): call the model on the validation samples only then."""
        step = self._check_step(step)
        return step % self.every == 0 and (self._last_step is None or step > self._last_step)

    @staticmethod
    def _check_step(step) -> int:
        if isinstance(step, bool) or not isinstance(step, (int, np.integer)):
            raise TypeError(f"step must be an integer, got {type(step).__name__}")
        if step < 0:
            raise ValueError(f"step must be >= 0, got {step}")
        return int(step)

    def record(self, step: int, image, prediction, target, *, from_logits: bool = False) -> bool:
        """Record the prediction on the validation samples at a training step.

        Args:
            step: the training step (an integer >= 0); recorded when :meth:`due`.
            image: the input image(s): ``(*S)`` or ``(C, *S)`` for one sample, ``(N, *S)``
                or ``(N, C, *S)`` for a batch, with S the spatial shape (``ndim`` axes).
            prediction: probabilities, or logits with ``from_logits=True``, of shape
                ``(*S)`` / ``(N, *S)``, or with a channel axis of size 1 (``(N, 1, *S)``).
            target: instance labels or a 0/1 mask, ``(*S)`` or ``(N, *S)``; the same at
                every step.
            from_logits: the prediction holds logits.

        Returns:
            True when the step was recorded (queued for writing), False when skipped.

        Raises:
            ValueError: shapes that do not fit, a target other than the one recorded
                before, NaN in the prediction, probabilities outside [0, 1], a closed
                recorder.
            TypeError: a non-integer step, an input that is not an array.
            Exception: an error of the background writer is raised by the next call.
        """
        self._raise_pending()
        if self._closed:
            raise ValueError(f"the recorder of {self.path} is closed")
        if not self.due(step):
            return False
        target_np = _to_numpy(target, "target")
        pred_np = _to_numpy(prediction, "prediction")
        image_np = _to_numpy(image, "image")
        target_np, pred_np, image_np = self._as_batch(target_np, pred_np, image_np, from_logits)
        if not self._ready:
            self._setup_samples(image_np, target_np)
        self._last_step = int(step)
        job = (int(step), pred_np, bool(from_logits))
        if self._queue is None:
            self._write_step(*job)
        else:
            self._queue.put(job)
        return True

    def _as_batch(self, target, pred, image, from_logits: bool):
        """Inputs as ``(N, *S)`` (target, prediction) and ``(N, [C,] *S)`` (image)."""
        d = self.ndim
        if target.ndim == d:
            single = True
        elif target.ndim == d + 1:
            single = False
        else:
            raise ValueError(
                f"target must have {d} (one sample) or {d + 1} (a batch) dimensions for "
                f"ndim={d}, got shape {target.shape}"
            )
        if target.dtype.kind == "f" and not np.all(target == np.round(target)):
            raise ValueError("target must hold integer ids or a 0/1 mask, got fractions")
        if target.size and target.min() < 0:
            raise ValueError(f"target must hold ids >= 0, got a minimum of {target.min()}")
        if single:
            target, pred, image = target[None], pred[None], image[None]
        if pred.ndim == target.ndim + 1 and pred.shape[1] == 1:
            pred = pred[:, 0]
        if pred.shape != target.shape:
            raise ValueError(
                "prediction must have the target's shape (or a channel axis of size 1), got "
                f"{pred.shape[1:] if single else pred.shape} and "
                f"{target.shape[1:] if single else target.shape}"
            )
        if (
            image.shape[0] != target.shape[0]
            or image.shape[-d:] != target.shape[-d:]
            or not (target.ndim <= image.ndim <= target.ndim + 1)
        ):
            raise ValueError(
                "image must have the target's shape, with an optional channel axis before "
                f"the spatial axes, got {image.shape[1:] if single else image.shape} and "
                f"{target.shape[1:] if single else target.shape}"
            )
        if pred.dtype.kind != "f":
            pred = pred.astype(np.float32)
        if not np.all(np.isfinite(pred)):
            raise ValueError("prediction must be finite, got NaN or inf")
        if not from_logits and (pred.min() < 0.0 or pred.max() > 1.0):
            raise ValueError(
                "prediction must hold probabilities in [0, 1] (pass from_logits=True for "
                f"logits), got values in [{pred.min():.4g}, {pred.max():.4g}]"
            )
        if image.ndim == target.ndim + 1 and image.shape[1] == 1:
            image = image[:, 0]
        return target.astype(np.int32, copy=False), pred, image.astype(np.float32, copy=False)

    def _raise_pending(self) -> None:
        if self._error is not None:
            error, self._error = self._error, None
            raise error

    # ------------------------------------------------------------------ samples

    def _setup_samples(self, image: np.ndarray, target: np.ndarray) -> None:
        n = target.shape[0]
        names = self._names or [f"sample_{i}" for i in range(n)]
        if len(names) != n:
            raise ValueError(f"{len(names)} sample names for a batch of {n}: {names}")
        if self._samples:
            self._check_same_samples(names, target)
        else:
            for i, name in enumerate(names):
                self._create_sample(name, image[i], target[i])
            self._commit(samples=names)
            self._samples = names
        self._targets = list(target)
        self._weights = [self._weight_map(t) for t in self._targets]
        self._ready = True

    def _check_same_samples(self, names: list[str], target: np.ndarray) -> None:
        if names != self._samples and self._names is not None:
            raise ValueError(
                f"the store holds samples {self._samples}, not {names}: the validation "
                "samples must stay the same"
            )
        if len(self._samples) != target.shape[0]:
            raise ValueError(
                f"the store holds {len(self._samples)} samples, got a batch of "
                f"{target.shape[0]}: the validation samples must stay the same"
            )
        for i, name in enumerate(self._samples):
            stored = np.asarray(self._group[name]["target"][...])
            if stored.shape != target[i].shape or not np.array_equal(stored, target[i]):
                raise ValueError(
                    f"the target of sample {name!r} differs from the one in the store: the "
                    "validation samples must stay the same"
                )

    def _weight_map(self, target: np.ndarray) -> np.ndarray | None:
        if not self._has_weight_map():
            return None
        kwargs = {k: self._params[k] for k in UNET_WEIGHT_PARAMS if k in self._params}
        return np.asarray(_unet_weight_map(target, **kwargs), np.float32)

    def _array(self, group, name, shape, chunks, dtype, *, per_step: bool, fill_value=0):
        arr = group.create_array(
            name, shape=shape, chunks=chunks, dtype=dtype, fill_value=fill_value
        )
        arr.attrs["per_step"] = per_step
        return arr

    def _create_sample(self, name: str, image: np.ndarray, target: np.ndarray) -> None:
        group = self._group.require_group(name)
        spatial = target.shape
        cap = _INITIAL_CAPACITY
        self._array(group, "image", image.shape, image.shape, "float32", per_step=False)[...] = (
            image
        )
        self._array(group, "target", spatial, spatial, "int32", per_step=False)[...] = target
        if "weight_map" in self.outputs:
            w = self._weight_map(target)
            self._array(group, "weight_map", spatial, spatial, "float32", per_step=False)[...] = w
        step_chunks = (1, *spatial)
        self._array(group, "prediction", (cap, *spatial), step_chunks, "float32", per_step=True)
        for out in self.outputs:
            if out == "weight_map":
                continue
            dtype = "uint8" if out == "error_map" else "float32"
            self._array(group, out, (cap, *spatial), step_chunks, dtype, per_step=True)
        self._array(group, "loss", (cap,), (1,), "float64", per_step=True, fill_value=np.nan)
        stats = object_stats(target)
        objects = group.require_group("objects")
        n = len(stats["index"])
        self._array(objects, "index", (n,), (max(n, 1),), "int64", per_step=False)[...] = stats[
            "index"
        ]
        self._array(objects, "area", (n,), (max(n, 1),), "int64", per_step=False)[...] = stats[
            "area"
        ]
        for col in OBJECT_COLUMNS:
            self._array(
                objects, col, (cap, n), (1, max(n, 1)), "float64", per_step=True,
                fill_value=np.nan,
            )  # fmt: skip

    # ------------------------------------------------------------------ writing

    def _writer(self, jobs: queue.Queue) -> None:
        while True:
            job = jobs.get()
            try:
                if job is _STOP:
                    return
                if self._error is None:  # after an error, drop the rest (it is raised)
                    self._write_step(*job)
            except BaseException as exc:  # handed to the training thread, raised there
                self._error = exc
            finally:
                jobs.task_done()

    def _write_step(self, step: int, pred: np.ndarray, from_logits: bool) -> None:
        t = len(self._steps)
        for i in range(len(self._samples)):
            self._write_sample(i, t, pred[i], from_logits)
        self._steps.append(step)
        self._commit(steps=self._steps)

    def _sample_arrays(self, i: int) -> dict[str, Any]:
        """The per-step zarr arrays of sample i, opened once (zarr lookups are slow)."""
        while len(self._arrays) <= i:
            group = self._group[self._samples[len(self._arrays)]]
            names = ["prediction", "loss", *(o for o in self.outputs if o != "weight_map")]
            arrays = {name: group[name] for name in names}
            arrays.update({f"objects/{c}": group["objects"][c] for c in OBJECT_COLUMNS})
            self._arrays.append(arrays)
        return self._arrays[i]

    def _write_sample(self, i: int, t: int, raw: np.ndarray, from_logits: bool) -> None:
        target = self._targets[i]
        kwargs = dict(self._params)
        if self._weights[i] is not None:
            kwargs["weight_map"] = self._weights[i]
        lm = loss_map(raw, target, self.loss, from_logits=from_logits, **kwargs)
        prob = (1.0 / (1.0 + np.exp(-raw.astype(np.float64)))) if from_logits else raw
        prob = prob.astype(np.float32, copy=False)
        if self._info.kind == "pixel":
            value = float(np.mean(lm, dtype=np.float64))
        else:
            value = float(loss_value(raw, target, self.loss, from_logits=from_logits, **kwargs))
        rows: dict[str, Any] = {"prediction": prob, "loss": value}
        if "loss_map" in self.outputs:
            rows["loss_map"] = lm
        if "gradient_map" in self.outputs:
            rows["gradient_map"] = gradient_map(
                raw, target, self.loss, from_logits=from_logits, **kwargs
            )
        if "error_map" in self.outputs:
            rows["error_map"] = error_map(target, prob, threshold=self.threshold)
        stats = object_stats(target, lm, prob, threshold=self.threshold)
        rows.update({f"objects/{c}": stats[c] for c in OBJECT_COLUMNS})
        arrays = self._sample_arrays(i)
        for name, data in rows.items():
            arr = arrays[name]
            if t >= arr.shape[0]:  # grow by doubling: a metadata rewrite, rarely
                arr.resize((max(2 * arr.shape[0], t + 1), *arr.shape[1:]))
            arr[t] = data

    def _commit(self, **changes: Any) -> None:
        """Rewrite the ``losslens`` attribute (one atomic file write) with ``changes``."""
        self._meta.update({k: list(v) for k, v in changes.items()})
        self._group.attrs["losslens"] = self._meta

    # ------------------------------------------------------------------ lifecycle

    @property
    def steps(self) -> list[int]:
        """The steps written so far (queued ones appear once written; see :meth:`flush`)."""
        return list(self._steps)

    def flush(self) -> None:
        """Wait until every queued step is written; raise a writer error if there was one."""
        if self._queue is not None and self._thread is not None and self._thread.is_alive():
            self._queue.join()
        self._raise_pending()

    def close(self) -> None:
        """Write the queued steps, stop the writer thread; raise a writer error if any.

        Safe to call twice; called at interpreter exit for a recorder left open.
        """
        if self._closed:
            return
        self._closed = True
        atexit.unregister(self.close)
        if self._thread is not None and self._queue is not None:
            self._queue.put(_STOP)
            self._thread.join()
        self._raise_pending()

    def __enter__(self) -> LossRecorder:
        return self

    def __exit__(self, *exc_info) -> None:
        self.close()

    def __repr__(self) -> str:
        return (
            f"LossRecorder({str(self.path)!r}, loss={self.loss!r}, every={self.every}, "
            f"outputs={self.outputs}, steps={len(self._steps)})"
        )
