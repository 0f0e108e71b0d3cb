"""The layout of a training recording (``*.losslens.zarr``) and a reader for it.

A recording is a zarr group, written by :class:`~napari_losslens.training.LossRecorder`::

    run.losslens.zarr/
        (attributes)  losslens: {format, format_version, version, loss, params, outputs,
                                 every, ndim, threshold, samples, steps}
        <sample>/image          the validation image, written once   (spatial or C, spatial)
        <sample>/target         its instance labels, written once    (spatial), int32
        <sample>/weight_map     the loss's weight map, once, when the loss has one
        <sample>/prediction     probabilities per recorded step       (T, spatial), float32
        <sample>/loss_map       one per chosen output, per step       (T, spatial)
        <sample>/gradient_map   ...
        <sample>/error_map      TP/FP/FN codes per step               (T, spatial), uint8
        <sample>/loss           the scalar loss per step              (T,), float64
        <sample>/objects/index  the object ids, once                  (n,), int64
        <sample>/objects/area   their areas, once                     (n,), int64
        <sample>/objects/<col>  mean_loss, total_loss, dice, iou      (T, n), float64

Per-step arrays are chunked one step per chunk, so appending a step writes new chunk files
and never rewrites old ones. Their first axis may be longer than the number of recorded
steps (capacity grows by doubling); the rows past ``len(steps)`` are not part of the
recording.

The commit rule, which makes a recording safe to kill: a step's arrays are written first,
and the step is appended to the ``steps`` attribute last. zarr writes each file atomically
(a temporary file renamed into place), so a reader sees either the old attribute or the new
one: every step it lists is complete, and a half-written step is simply not listed (a
resumed run overwrites it).

zarr is an optional dependency (the ``zarr`` extra); it is imported when a store is opened.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np

__all__ = [
    "FORMAT",
    "FORMAT_VERSION",
    "OBJECT_COLUMNS",
    "OUTPUTS",
    "SUFFIX",
    "Recording",
    "open_recording",
]

#: The directory suffix of a recording.
SUFFIX = ".losslens.zarr"
#: The value of the ``format`` attribute.
FORMAT = "napari-losslens recording"
#: Bumped when the layout changes incompatibly.
FORMAT_VERSION = 1
#: The per-step maps a recorder can write (``weight_map`` is written once per sample).
OUTPUTS = ("loss_map", "gradient_map", "weight_map", "error_map")
#: The per-object columns recorded per step.
OBJECT_COLUMNS = ("mean_loss", "total_loss", "dice", "iou")
ZARR_HINT = 'pip install "napari-losslens[zarr]"'
_NAME = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")


def import_zarr():
    """zarr, imported on first use: it is an optional dependency (the ``zarr`` extra)."""
    try:
        import zarr
    except ImportError:
        raise ModuleNotFoundError(f"Training recordings need zarr: {ZARR_HINT}") from None
    return zarr


def check_sample_name(name: Any) -> str:
    """A sample name usable as a zarr group name (letters, digits, ``_ . -``)."""
    if not isinstance(name, str) or not _NAME.match(name) or name == "objects":
        raise ValueError(
            "sample names must be non-empty strings of letters, digits, '_', '.', '-' "
            f"(not starting with '.' or '-', and not 'objects'), got {name!r}"
        )
    return name


class Recording:
    """A training recording opened for reading: its settings, steps and arrays.

    The arrays are zarr arrays cut to the steps that were committed when the recording was
    opened (or last :meth:`refresh`-ed): the recorder may still be writing further steps.
    Nothing is loaded into memory until it is indexed (:meth:`lazy` gives dask arrays).

    Args:
        path: a ``*.losslens.zarr`` directory.

    Raises:
        FileNotFoundError: ``path`` does not exist.
        ValueError: ``path`` is not a losslens recording (or of a newer format).
        ModuleNotFoundError: zarr is not installed.

    Example:
        >>> rec = Recording("run.losslens.zarr")
        >>> rec.loss, rec.steps[-1], rec.samples
        ('unet_ce', 990, ['dsb_nuclei'])
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if not self.path.exists():
            raise FileNotFoundError(f"no recording at {self.path}")
        zarr = import_zarr()
        try:
            self._group = zarr.open_group(str(self.path), mode="r")
        except Exception as exc:  # zarr raises several kinds for "not a group"
            raise ValueError(f"{self.path} is not a zarr group ({exc})") from None
        self.refresh()

    def refresh(self) -> list[int]:
        """Re-read the committed steps (the recorder may have added some); return them."""
        attrs = read_attrs(self._group, self.path)
        self.attrs: dict[str, Any] = attrs
        return self.steps

    @property
    def loss(self) -> str:
        """The loss's name."""
        return self.attrs["loss"]

    @property
    def params(self) -> dict[str, Any]:
        """The loss's parameters (as given to the recorder, JSON types)."""
        return dict(self.attrs["params"])

    @property
    def outputs(self) -> list[str]:
        """The maps recorded (names from :data:`OUTPUTS`)."""
        return list(self.attrs["outputs"])

    @property
    def samples(self) -> list[str]:
        """The sample names, in order."""
        return list(self.attrs["samples"])

    @property
    def steps(self) -> list[int]:
        """The training steps recorded, in increasing order."""
        return list(self.attrs["steps"])

    @property
    def ndim(self) -> int:
        """Spatial dimensions of a sample (2 or 3)."""
        return int(self.attrs["ndim"])

    def _sample(self, sample: str):
        if sample not in self.samples:
            raise KeyError(f"no sample {sample!r} in {self.path}; samples: {self.samples}")
        return self._group[sample]

    def zarr_array(self, sample: str, name: str):
        """The stored zarr array ``name`` of ``sample``, whole (per-step ones uncut).

        Raises:
            KeyError: no such sample or array.
        """
        group = self._sample(sample)
        try:
            return group[name]
        except KeyError:
            raise KeyError(f"sample {sample!r} has no array {name!r}") from None

    def is_per_step(self, sample: str, name: str) -> bool:
        """Whether array ``name`` has a leading step axis."""
        return bool(self.zarr_array(sample, name).attrs.get("per_step", False))

    def read(self, sample: str, name: str, index: int | None = None) -> np.ndarray:
        """An array of ``sample`` as numpy: per-step arrays cut to the committed steps.

        Args:
            sample: a name from :attr:`samples`.
            name: ``image``, ``target``, ``weight_map``, ``prediction``, ``loss``, an output
                map, or ``objects/<column>`` (``index``, ``area``, ``mean_loss``, ...).
            index: for a per-step array, only the row of this step index (0 ..
                ``len(steps) - 1``; negative counts from the end).

        Raises:
            KeyError: no such sample or array.
            IndexError: ``index`` out of range.
            ValueError: ``index`` given for an array without a step axis.
        """
        arr = self.zarr_array(sample, name)
        n = len(self.steps)
        if not arr.attrs.get("per_step", False):
            if index is not None:
                raise ValueError(f"{name!r} has no step axis; do not pass an index")
            return np.asarray(arr[...])
        if index is None:
            return np.asarray(arr[:n])
        if not -n <= index < n:
            raise IndexError(f"step index {index} out of range for {n} recorded steps")
        return np.asarray(arr[index % n])

    def lazy(self, sample: str, name: str):
        """:meth:`read` as a dask array (chunks of one step): nothing loads until computed."""
        import dask.array as da  # optional, like zarr (the zarr extra installs both)

        arr = self.zarr_array(sample, name)
        out = da.from_zarr(arr)
        return out[: len(self.steps)] if arr.attrs.get("per_step", False) else out

    def __repr__(self) -> str:
        return (
            f"Recording({str(self.path)!r}, loss={self.loss!r}, samples={self.samples}, "
            f"steps={len(self.steps)})"
        )


def read_attrs(group, path: Path) -> dict[str, Any]:
    """The ``losslens`` attribute of a recording's root group, checked."""
    attrs = group.attrs.asdict() if hasattr(group.attrs, "asdict") else dict(group.attrs)
    meta = attrs.get("losslens")
    if not isinstance(meta, Mapping) or meta.get("format") != FORMAT:
        raise ValueError(
            f"{path} is not a napari-losslens recording (no 'losslens' attribute with "
            f"format {FORMAT!r})"
        )
    if int(meta.get("format_version", 0)) > FORMAT_VERSION:
        raise ValueError(
            f"{path} has format version {meta['format_version']}, newer than this "
            f"napari-losslens reads ({FORMAT_VERSION}): upgrade napari-losslens"
        )
    return dict(meta)


def open_recording(path: str | Path) -> Recording:
    """Open a training recording for reading (see :class:`Recording`)."""
    return Recording(path)
