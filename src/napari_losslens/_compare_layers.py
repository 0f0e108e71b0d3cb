"""The layers of a comparison: panes in napari's grid mode, the difference, the hot-spots.

Part of the layer adapter (:mod:`~napari_losslens._layers`), for
:class:`~napari_losslens._compare.Comparison` results: every layer written here carries
``metadata["napari_losslens"] = {"role": "compare", "source": <labels layer>, "pane": i}``
(or the roles ``compare_difference`` and ``compare_hot_spots``), is found again by that
mark and updated in place on every recompute; a pane no longer needed is removed.

Grid mode. napari 0.9 lays the *visible* layers out one per viewbox
(``viewer.canvas.grid``, stride 1); every viewbox gets its own vispy camera, all driven by
the one ``viewer.scene.camera`` model, so zooming or panning in one pane moves all of them, and
setting ``viewer.scene.camera.center`` (stepping through hot-spots) centres every pane at once.
:func:`show_grid` turns grid mode on and hides the layers that are neither panes nor the
ground truth (remembering them, so that :func:`hide_grid` shows them again).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._compare import CHANGE_COLUMNS, Comparison
from ._layers import OWNER, _diverging, find_owned, layer_inputs

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = [
    "apply_comparison",
    "compare_layers",
    "comparison_inputs",
    "focus_hot_spot",
    "hide_grid",
    "show_comparison",
    "show_grid",
    "write_changes",
]


def _mark(layer) -> dict:
    mark = layer.metadata.get(OWNER) if isinstance(layer.metadata, dict) else None
    return mark if isinstance(mark, dict) else {}


def compare_layers(viewer: napari.Viewer, source: str | None = None) -> list:
    """The pane layers of the comparison of labels layer ``source`` (any when None), in order."""
    panes = [
        layer
        for layer in viewer.layers
        if _mark(layer).get("role") == "compare"
        and (source is None or _mark(layer).get("source") == source)
    ]
    return sorted(panes, key=lambda layer: _mark(layer).get("pane", 0))


def _kwargs(role: str, source, name: str, **extra) -> dict[str, Any]:
    return {
        "name": name,
        "metadata": {OWNER: {"role": role, "source": source.name, **extra}},
        "scale": tuple(source.scale),
        "translate": tuple(source.translate),
    }


def _titled(layer):
    """Show the layer's name (the pane's title) and colour bar in its grid viewbox.

    Layer overlays exist from napari 0.6 on; older versions show the title in the layer
    list only.
    """
    name_overlay = getattr(layer, "name_overlay", None)
    if name_overlay is not None:
        name_overlay.visible = True
        name_overlay.box = True
    colorbar = getattr(layer, "colorbar", None)
    if colorbar is not None:
        colorbar.visible = True
    return layer


def _upsert(viewer, layer, data, kwargs, colormap, limits):
    if layer is None:
        return _titled(
            viewer.add_image(
                data, colormap=colormap, contrast_limits=limits, blending="translucent", **kwargs
            )
        )
    layer.data = data
    layer.name = kwargs["name"]
    hidden = _mark(layer).get("hidden")
    mark = dict(kwargs["metadata"][OWNER])
    if hidden:  # the layers a grid shown earlier hid: still to be shown again
        mark["hidden"] = hidden
    layer.metadata = {**layer.metadata, OWNER: mark}
    layer.scale, layer.translate = kwargs["scale"], kwargs["translate"]
    layer.colormap = colormap
    layer.contrast_limits_range = limits
    layer.contrast_limits = limits
    return layer


def write_changes(source, table: dict[str, np.ndarray]) -> None:
    """Merge the per-object changes into the labels layer's ``features`` (by ``index``)."""
    ours = pd.DataFrame({k: np.asarray(v) for k, v in table.items()})
    old = source.features
    if old is not None and len(old.columns):
        old = old.drop(columns=[c for c in CHANGE_COLUMNS if c in old.columns and c != "area"])
        if "index" not in old.columns:
            old = old.assign(index=np.arange(len(old)))
        if "area" in old.columns:
            ours = ours.drop(columns=["area"])
        if len(old.columns) > 1:
            ours = old.merge(ours, on="index", how="outer")
    source.features = ours.reset_index(drop=True)


def apply_comparison(viewer: napari.Viewer, source, comparison: Comparison) -> dict[str, Any]:
    """Write ``comparison`` into the plugin's compare layers; return them by role.

    Returns:
        ``{"panes": [layers...], "difference": layer or None, "hot_spots": layer or None,
        "object_changes": the labels layer or None}``.
    """
    existing = compare_layers(viewer, source.name)
    panes = []
    for i, pane in enumerate(comparison.panes):
        layer = existing[i] if i < len(existing) else None
        cmap = "inferno" if pane.kind == "pixel" else _diverging()
        kwargs = _kwargs("compare", source, f"compare {i + 1}: {pane.title}", pane=i)
        panes.append(
            _upsert(viewer, layer, pane.normalized, kwargs, cmap, comparison.pane_limits(pane))
        )
    for layer in existing[len(comparison.panes) :]:
        viewer.layers.remove(layer)
    out: dict[str, Any] = {"panes": panes, "difference": None, "hot_spots": None}
    diff = find_owned(viewer, "compare_difference", source.name)
    if comparison.difference is not None:
        title = comparison.panes[0].loss.title
        kwargs = _kwargs("compare_difference", source, f"compare A − B: {title}")
        out["difference"] = _upsert(
            viewer,
            diff,
            comparison.difference.astype(np.float32),
            kwargs,
            _diverging(),
            comparison.limits["difference"],
        )
    elif diff is not None:
        viewer.layers.remove(diff)
    out["object_changes"] = None
    if comparison.table is not None:
        write_changes(source, comparison.table)
        out["object_changes"] = source
    spots = comparison.hot_spots
    coords = np.array([tuple(map(float, s.peak_position)) for s in spots], float)
    coords = coords.reshape(len(spots), source.ndim)
    features = pd.DataFrame(
        {"rank": [s.rank for s in spots], "peak": [s.peak for s in spots]},
    ).astype({"rank": int, "peak": float})
    layer = find_owned(viewer, "compare_hot_spots", source.name)
    if layer is None:
        layer = viewer.add_points(
            coords,
            ndim=source.ndim,
            features=features,
            size=14,
            symbol="ring",
            face_color="cyan",
            border_width=0,
            **_kwargs("compare_hot_spots", source, f"{source.name} compare hot-spots"),
        )
    else:
        layer.data = coords
        layer.features = features
        layer.scale, layer.translate = tuple(source.scale), tuple(source.translate)
    out["hot_spots"] = layer
    return out


def comparison_inputs(labels_layer, prediction_layers) -> tuple:
    """``(labels, predictions, spacing)`` copied from the layers, as the widget reads them.

    A Labels layer used as a prediction counts as a 0/1 mask; ``spacing`` is the labels
    layer's ``scale``.
    """
    arrays = [layer_inputs(labels_layer, layer) for layer in prediction_layers]
    return arrays[0].labels, [a.prediction for a in arrays], arrays[0].spacing


def show_comparison(
    viewer: napari.Viewer, source, comparison: Comparison, *, grid: bool = True, keep=()
) -> dict[str, Any]:
    """:func:`apply_comparison`, then (``grid=True``) :func:`show_grid`; returns the layers."""
    layers = apply_comparison(viewer, source, comparison)
    if grid:
        show_grid(viewer, source, layers, keep=keep)
    return layers


def show_grid(viewer: napari.Viewer, source, layers: dict[str, Any], keep=()) -> None:
    """Grid mode with one pane per compare layer (and the labels layer); others hidden.

    ``keep``: more layers to leave visible (an image, say). The layers hidden here are
    remembered in the first pane's mark and shown again by :func:`hide_grid`. The labels
    layer becomes the selected layer, so hovering over an object in any pane shows its row
    of ``features`` (the per-object change).
    """
    extra = list(keep)
    keep = {id(x) for x in layers["panes"]}
    keep.update(id(x) for x in extra if x is not None)
    keep.add(id(source))
    if layers.get("difference") is not None:
        keep.add(id(layers["difference"]))
    hidden = []
    for layer in viewer.layers:
        if id(layer) not in keep and layer.visible and layer is not layers.get("hot_spots"):
            layer.visible = False
            hidden.append(layer.name)
        elif id(layer) in keep:
            layer.visible = True
    if layers.get("hot_spots") is not None:
        layers["hot_spots"].visible = False  # markers would take a pane of their own
    first = layers["panes"][0]
    mark = dict(_mark(first))
    mark["hidden"] = sorted(set(mark.get("hidden", [])) | set(hidden))
    first.metadata = {**first.metadata, OWNER: mark}
    viewer.canvas.grid.stride = 1
    viewer.canvas.grid.enabled = True
    viewer.layers.selection.active = source


def hide_grid(viewer: napari.Viewer, source_name: str | None = None) -> None:
    """Leave grid mode and show the layers that :func:`show_grid` hid (and the hot-spots)."""
    viewer.canvas.grid.enabled = False
    spots = find_owned(viewer, "compare_hot_spots", source_name)
    if spots is not None:
        spots.visible = True
    for pane in compare_layers(viewer, source_name)[:1]:
        mark = dict(_mark(pane))
        for name in mark.pop("hidden", []):
            if name in viewer.layers:
                viewer.layers[name].visible = True
        pane.metadata = {**pane.metadata, OWNER: mark}


def focus_hot_spot(viewer: napari.Viewer, source, comparison: Comparison, rank: int) -> None:
    """Centre the shared camera (hence every pane) on hot-spot ``rank`` (1 = worst).

    Raises:
        ValueError: no such hot-spot.
    """
    spots = comparison.hot_spots
    if not 1 <= rank <= len(spots):
        raise ValueError(f"rank must be between 1 and {len(spots)}, got {rank}")
    pos = np.asarray(spots[rank - 1].peak_position, float)
    world = pos * np.asarray(source.scale) + np.asarray(source.translate)
    displayed = list(viewer.dims.displayed)
    lead = [i for i in range(len(world)) if i not in displayed[-len(world) :]]
    for axis in lead:  # bring the slice of the spot into view
        viewer.dims.set_point(axis, float(world[axis]))
    center = tuple(float(world[a]) for a in displayed[-viewer.dims.ndisplay :])
    viewer.scene.camera.center = center
