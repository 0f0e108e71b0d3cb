"""The napari reader of training recordings (``*.losslens.zarr``), and their refresh.

``viewer.open("run.losslens.zarr", plugin="napari-losslens")`` (or dropping the folder on
the window) adds, per validation sample: the image, the target as labels, the weight map
when one was recorded, and the prediction and each recorded map with a leading **step
axis**, so the dims slider is training time. Layers are named ``"<sample> <array>"`` and
marked in ``layer.metadata[RECORDING]`` with the store, the sample, the array and the
recorded steps. Nothing is loaded up front: the per-step arrays are dask arrays over the
zarr chunks (one step per chunk), read when a step is shown.

A store that is still being written can be opened: the layers hold the steps committed at
that moment. :func:`refresh_recordings` (or opening the store again) shows the new ones.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ._layers import ERROR_COLORS
from .training.store import SUFFIX, Recording

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["RECORDING", "get_reader", "read_recording", "refresh_recordings"]

#: The key of the recording mark in ``layer.metadata``.
RECORDING = "napari_losslens_recording"

_MAP_DISPLAY = {
    "loss_map": {"colormap": "inferno", "blending": "additive"},
    "gradient_map": {"colormap": "PiYG", "blending": "translucent"},
    "weight_map": {"colormap": "magma", "blending": "additive"},
}


def _is_recording(path: str) -> bool:
    return path.rstrip("/\\").endswith(SUFFIX) and os.path.isdir(path)


def get_reader(path: str | list[str]):
    """npe2 reader hook: :func:`read_recording` for a ``*.losslens.zarr`` folder, else None.

    npe2 offers every folder to readers that accept directories, whatever their filename
    patterns, so the suffix is checked here.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    if not paths or not all(_is_recording(os.fspath(p)) for p in paths):
        return None
    return read_recording


def _limits(row: np.ndarray, signed: bool) -> tuple[float, float]:
    """Contrast limits from one step's map: up to the 99.5th percentile of its magnitude."""
    values = np.abs(row[np.isfinite(row)])
    hi = float(np.percentile(values, 99.5)) if values.size else 1.0
    hi = hi if hi > 0 else 1.0
    return (-hi, hi) if signed else (0.0, hi)


def _mark(rec: Recording, sample: str, array: str) -> dict[str, Any]:
    return {
        RECORDING: {
            "path": str(rec.path),
            "sample": sample,
            "array": array,
            "loss": rec.loss,
            "steps": rec.steps,
        }
    }


def _sample_layers(rec: Recording, sample: str) -> list[tuple]:
    steps = rec.steps
    last = len(steps) - 1
    ndim = rec.ndim
    image = rec.lazy(sample, "image")
    image_kw: dict[str, Any] = {"name": f"{sample} image", "colormap": "gray"}
    if image.ndim == ndim + 1:  # a channel axis before the spatial ones
        image_kw.update(
            channel_axis=0, name=[f"{sample} image {c}" for c in range(image.shape[0])]
        )
    layers: list[tuple] = [(image, {**image_kw, "metadata": _mark(rec, sample, "image")}, "image")]
    names = ["prediction", *(o for o in rec.outputs if o != "weight_map")]
    if "weight_map" in rec.outputs:
        w = rec.read(sample, "weight_map")
        layers.append(
            (
                w,
                {
                    "name": f"{sample} weight_map",
                    "visible": False,
                    "contrast_limits": (float(w.min()), float(max(w.max(), w.min() + 1e-6))),
                    "metadata": _mark(rec, sample, "weight_map"),
                    **_MAP_DISPLAY["weight_map"],
                },
                "image",
            )
        )
    for name in names:
        data = rec.lazy(sample, name)
        kw: dict[str, Any] = {
            "name": f"{sample} {name}",
            "metadata": _mark(rec, sample, name),
            "axis_labels": ("step", *(f"{a}" for a in "zyx"[-ndim:])),
        }
        if name == "error_map":
            from napari.utils.colormaps import DirectLabelColormap  # napari: only when read

            kw.update(colormap=DirectLabelColormap(color_dict=ERROR_COLORS), visible=False)
            layers.append((data, kw, "labels"))
            continue
        if name == "prediction":
            kw.update(colormap="viridis", contrast_limits=(0.0, 1.0), opacity=0.5, visible=False)
        else:
            row = rec.read(sample, name, last) if last >= 0 else np.zeros(1, np.float32)
            signed = name == "gradient_map" or float(np.nanmin(row)) < 0
            kw.update(contrast_limits=_limits(row, signed), **_MAP_DISPLAY[name])
            if signed and name == "loss_map":
                kw.update(_MAP_DISPLAY["gradient_map"])
        layers.append((data, kw, "image"))
    target = rec.lazy(sample, "target")
    layers.append(
        (
            target,
            {"name": f"{sample} target", "opacity": 0.4, "metadata": _mark(rec, sample, "target")},
            "labels",
        )
    )
    return layers


def read_recording(path: str | list[str]) -> list[tuple]:
    """Layer-data tuples of a recording (or of several): see the module docstring.

    Raises:
        ValueError: not a napari-losslens recording, or no step recorded yet.
    """
    paths = [path] if isinstance(path, (str, os.PathLike)) else list(path)
    layers: list[tuple] = []
    for p in paths:
        rec = Recording(Path(os.fspath(p).rstrip("/\\")))
        if not rec.steps:
            raise ValueError(f"{rec.path} has no recorded step yet: open it after the first")
        for sample in rec.samples:
            layers.extend(_sample_layers(rec, sample))
    return layers


def refresh_recordings(viewer: napari.Viewer) -> dict[str, int]:
    """Show the steps written since the recordings in ``viewer`` were opened.

    Every layer with a :data:`RECORDING` mark and a step axis gets the store's committed
    steps (lazily, as when opened); its mark's ``steps`` is updated.

    Returns:
        For each store path, the number of steps now shown.

    Example:
        >>> refresh_recordings(viewer)
        {'/data/run.losslens.zarr': 120}
    """
    stores: dict[str, Recording] = {}
    for layer in viewer.layers:
        mark = layer.metadata.get(RECORDING) if isinstance(layer.metadata, dict) else None
        if not mark:
            continue
        rec = stores.get(mark["path"])
        if rec is None:
            rec = stores[mark["path"]] = Recording(mark["path"])
        if not rec.is_per_step(mark["sample"], mark["array"]):
            continue
        layer.data = rec.lazy(mark["sample"], mark["array"])
        layer.metadata = {**layer.metadata, RECORDING: {**mark, "steps": rec.steps}}
    return {path: len(rec.steps) for path, rec in stores.items()}
