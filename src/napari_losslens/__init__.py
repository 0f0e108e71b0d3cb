"""napari-losslens: see what a segmentation loss does.

The math lives in :mod:`napari_losslens.core` (no napari, no Qt); its public functions are
re-exported here lazily, so ``import napari_losslens`` stays fast and GUI-free.
"""

from __future__ import annotations

import importlib
from importlib.metadata import PackageNotFoundError, version

try:
    __version__ = version("napari-losslens")
except PackageNotFoundError:  # pragma: no cover - running from a source tree
    __version__ = "0.0.0+unknown"

_CORE = (
    "available_losses",
    "cell_distances",
    "gradient_map",
    "loss_map",
    "loss_value",
    "unet_weight_map",
    "weight_map_from_distances",
    "separate_touching_cells",
    "cutoff_radius",
    "two_nearest_cells",
)

# the console API (napari_losslens.api): napari is imported only when these are called
_API = ("CompareResult", "InspectResult", "compare", "inspect", "show")

__all__ = ["__version__", *_CORE, *_API]


def __getattr__(name: str):
    if name in _CORE:
        return getattr(importlib.import_module("napari_losslens.core"), name)
    if name in _API:
        return getattr(importlib.import_module("napari_losslens.api"), name)
    raise AttributeError(f"module 'napari_losslens' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(__all__))
