"""The one layer adapter: napari layers to arrays, and results back into owned layers.

The widget and the console API both go through here, so they produce the same layers with
the same names, colormaps and marks. Output layers carry
``layer.metadata["napari_losslens"] = {"role": ..., "source": ..., "source_id": ...}``; they
are found by that mark and the source layer's stable id (never by a name: renaming the
ground truth renames its outputs), updated in place on every computation, and a user's
layer is never touched, even one with the same name (napari then suffixes ours). The only
thing written to an input layer is the per-object table in the ground-truth layer's
``features``, which is what napari shows when hovering over an object.

The distances d1, d2 of a labels layer are kept in one :class:`DistanceCache` per layer
(:func:`distance_cache`), shared by the widget and the console API and emptied by the layer's
data and paint events.
"""

from __future__ import annotations

import weakref
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from ._compute import ComputeResult, DistanceCache

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = [
    "IMAGE_ROLES",
    "OWNER",
    "ROLES",
    "STATS_COLUMNS",
    "LayerInputs",
    "apply_result",
    "display",
    "distance_cache",
    "find_owned",
    "is_owned",
    "layer_inputs",
    "resolve_input",
    "source_id",
]

#: The key of the plugin's mark in ``layer.metadata``.
OWNER = "napari_losslens"

#: Output role -> name suffix.
ROLES = {
    "loss_map": "loss map",
    "gradient_map": "gradient",
    "weight_map": "weight map",
    "d1": "d1",
    "d2": "d2",
    "errors": "errors",
    "hot_spots": "hot-spots",
}

#: Columns this plugin writes into the ground-truth layer's ``features`` (a region loss's
#: table has ``mean_abs_gradient``/``total_abs_gradient`` instead of the loss columns).
STATS_COLUMNS = (
    "area",
    "mean_loss",
    "total_loss",
    "mean_abs_gradient",
    "total_abs_gradient",
    "dice",
    "iou",
    "mean_intensity",
)

#: Image outputs, in order: a newly made one is shown only when none before it is, so
#: that the overlay stays readable.
IMAGE_ROLES = ("loss_map", "gradient_map", "weight_map", "d1", "d2")
_UPDATE_ORDER = ("weight_map", "d1", "d2", "gradient_map", "loss_map")

#: Colours of the error map: true positive, false positive, false negative.
ERROR_COLORS = {
    None: (0.0, 0.0, 0.0, 0.0),
    0: (0.0, 0.0, 0.0, 0.0),
    1: (0.25, 0.8, 0.3, 0.35),
    2: (1.0, 0.2, 0.6, 0.9),
    3: (0.2, 0.6, 1.0, 0.9),
}
ERROR_NAMES = ("true negative", "true positive", "false positive", "false negative")


def _napari():
    """napari, imported on first use (not at the top of this module): the console API
    imports this module, and ``import napari_losslens.api`` must stay GUI-free."""
    import napari
    import napari.utils.colormaps

    return napari


def _mark(layer) -> dict | None:
    mark = layer.metadata.get(OWNER) if isinstance(layer.metadata, dict) else None
    return mark if isinstance(mark, dict) else None


def is_owned(layer) -> bool:
    """True for a layer this plugin created (an output or an array input of the API)."""
    return _mark(layer) is not None


def source_id(layer) -> str:
    """The stable id of a source layer: napari's ``unique_id``, unchanged by a rename."""
    return str(layer.unique_id)


def find_owned(viewer: napari.Viewer, role: str, source=None):
    """The plugin's layer with this role, or None.

    ``source`` narrows it to the outputs of one ground-truth layer: a layer (matched by its
    stable id, so that renaming the ground truth keeps its outputs) or a layer name.
    """
    for layer in viewer.layers:
        mark = _mark(layer)
        if not mark or mark.get("role") != role:
            continue
        if source is None:
            return layer
        if isinstance(source, str):
            if mark.get("source") == source:
                return layer
        elif mark.get("source_id") == source_id(source):
            return layer
    return None


# --------------------------------------------------------------------------------------
# The distance cache of a labels layer
# --------------------------------------------------------------------------------------

_CACHES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def distance_cache(layer) -> DistanceCache:
    """The :class:`DistanceCache` of a labels layer (one per layer, made on first use).

    The widget and :func:`~napari_losslens.inspect` both use it, so that moving w0 or σ in
    either reuses the distances that the other computed. It is emptied when the layer's data
    change (``events.data``, ``events.paint``); it lives as long as the layer. Entries also
    carry a digest of the labels they were computed from, so an edit that sends no event
    (``layer.data[...] = v`` alone) is caught when the distances are next asked for.
    """
    cache = _CACHES.get(layer)
    if cache is None:
        cache = DistanceCache()
        _CACHES[layer] = cache
        for name in ("data", "paint"):
            emitter = getattr(layer.events, name, None)
            if emitter is not None:
                emitter.connect(cache.invalidate)
    return cache


# --------------------------------------------------------------------------------------
# Layers -> arrays
# --------------------------------------------------------------------------------------


def _data(layer) -> Any:
    data = layer.data
    if getattr(layer, "multiscale", False):
        data = data[0]
    return data


def resolve_input(viewer: napari.Viewer, value, role: str, kind: str):
    """A layer from a layer, a layer name or an array (which becomes a plugin-owned layer).

    ``kind`` is ``"labels"`` or ``"image"``. An array input is put into the layer the plugin
    keeps for ``role`` (created the first time, updated in place afterwards).

    Raises:
        ValueError: no layer of that name.
        TypeError: something that is neither a layer, a name nor an array.
    """
    if value is None:
        return None
    if isinstance(value, _napari().layers.Layer):
        return value
    if isinstance(value, str):
        if value not in viewer.layers:
            names = ", ".join(repr(layer.name) for layer in viewer.layers) or "none"
            raise ValueError(f"no layer named {value!r} in the viewer; layers: {names}")
        return viewer.layers[value]
    if hasattr(value, "detach"):
        value = value.detach().cpu().numpy()
    if not hasattr(value, "shape"):
        raise TypeError(
            f"{role} must be a layer, a layer name or an array, got {type(value).__name__}"
        )
    data = np.asarray(value)
    if not data.dtype.isnative:  # napari's colormaps take native byte order only (a copy)
        data = data.astype(data.dtype.newbyteorder("="))
    layer = find_owned(viewer, f"input:{role}")
    if layer is not None and layer._type_string == kind:
        old = layer.data
        same = (
            isinstance(old, np.ndarray)
            and old.shape == data.shape
            and old.dtype == data.dtype
            and np.array_equal(old, data)
        )
        if not same:  # the same array again keeps the layer (and its distance cache)
            layer.data = data
        return layer
    add = viewer.add_labels if kind == "labels" else viewer.add_image
    return add(data, name=role, metadata={OWNER: {"role": f"input:{role}", "source": None}})


@dataclass
class LayerInputs:
    """Arrays taken from layers, ready for a :class:`~napari_losslens._compute.ComputeRequest`.

    ``index`` is the frame taken (leading indices) when only the current slice is used, and
    ``()`` otherwise; ``full_shape`` is the labels layer's shape; ``layers`` are the layers
    read (labels, prediction and the image when given).
    """

    labels: np.ndarray
    prediction: np.ndarray
    image: np.ndarray | None
    spacing: tuple[float, ...]
    index: tuple[int, ...]
    full_shape: tuple[int, ...]
    source: Any
    layers: tuple = field(default=())


def current_index(viewer: napari.Viewer, layer, n_leading: int) -> tuple[int, ...]:
    """The viewer's current position along the layer's first ``n_leading`` axes."""
    if n_leading <= 0:
        return ()
    point = np.asarray(viewer.dims.point, float)[-layer.ndim :]
    data_pt = (point - np.asarray(layer.translate)) / np.asarray(layer.scale)
    shape = np.shape(_data(layer))
    return tuple(int(np.clip(np.round(data_pt[i]), 0, shape[i] - 1)) for i in range(n_leading))


def layer_inputs(
    labels_layer,
    prediction_layer,
    image_layer=None,
    *,
    viewer: napari.Viewer | None = None,
    current_slice: bool = False,
) -> LayerInputs:
    """Arrays (copies of the part used, so painting cannot change them mid-computation)."""
    lab = _data(labels_layer)
    full_shape = tuple(np.shape(lab))
    index: tuple[int, ...] = ()
    if current_slice and len(full_shape) > 2 and viewer is not None:
        index = current_index(viewer, labels_layer, len(full_shape) - 2)

    def take(layer, labels: bool = False):
        if layer is None:
            return None
        data = _data(layer)
        if index and tuple(np.shape(data)) == full_shape:
            data = data[index]
        arr = np.array(data, copy=True)
        if not labels and layer._type_string == "labels":
            arr = (arr > 0).astype(np.float32)  # a mask used as the prediction
        return arr

    return LayerInputs(
        labels=take(labels_layer, labels=True),
        prediction=take(prediction_layer),
        image=take(image_layer),
        spacing=tuple(float(s) for s in labels_layer.scale)[len(index) :],
        index=index,
        full_shape=full_shape,
        source=labels_layer,
        layers=tuple(x for x in (labels_layer, prediction_layer, image_layer) if x is not None),
    )


# --------------------------------------------------------------------------------------
# Arrays -> owned layers
# --------------------------------------------------------------------------------------


def _diverging():
    return _napari().utils.colormaps.Colormap(
        [[0.15, 0.45, 1.0, 1.0], [0.0, 0.0, 0.0, 0.0], [1.0, 0.3, 0.1, 1.0]],
        name="losslens diverging",
        display_name="losslens diverging",
    )


def _robust_limits(data: np.ndarray, signed: bool, floor: float | None = None):
    flat = np.ravel(data)
    if flat.size > 65_536:  # percentiles of a regular subsample: as good, much faster
        flat = flat[:: flat.size // 65_536]
    finite = flat[np.isfinite(flat)]
    if finite.size == 0:
        return (-1.0, 1.0) if signed else (0.0, 1.0)
    if signed:
        hi = float(np.percentile(np.abs(finite), 99.5))
        hi = hi if hi > 0 else float(np.abs(finite).max()) or 1.0
        return (-hi, hi)
    lo = float(finite.min()) if floor is None else floor
    hi = float(np.percentile(finite, 99.5))
    if hi <= lo:
        hi = float(finite.max())
    if hi <= lo:
        hi = lo + 1.0
    return (lo, hi)


def _gradient_limits(data: np.ndarray) -> tuple[float, float]:
    """Symmetric limits for a region loss's gradient: its largest magnitude.

    Such a gradient is nearly constant over each class (every background pixel carries
    about the same value), so percentile limits put the whole background at full colour;
    the largest magnitude keeps each pixel at its true share of the largest push.
    """
    finite = np.abs(data[np.isfinite(data)])
    hi = float(finite.max()) if finite.size else 0.0
    hi = hi if hi > 0 else 1.0
    return (-hi, hi)


def _has_negative(data: np.ndarray) -> bool:
    flat = np.ravel(data)
    return bool(flat.size) and float(np.nanmin(flat)) < 0.0


def display(role: str, data: np.ndarray, signed: bool) -> dict[str, Any]:
    """How an image output is drawn: colormap, contrast limits, blending, opacity.

    Every key is set on every update, so switching losses never leaves a layer drawn the
    way the previous loss wanted. A map that can be negative (a gradient, a region loss's
    map, a signed per-pixel loss such as ``boundary``) is diverging and centred on 0.
    """
    if role == "gradient_map" or (role == "loss_map" and signed):
        return {
            "colormap": _diverging(),
            "contrast_limits": _gradient_limits(data),
            "blending": "translucent",
            "opacity": 0.8,
        }
    if role == "loss_map" and _has_negative(data):
        return {
            "colormap": _diverging(),
            "contrast_limits": _robust_limits(data, True),
            "blending": "translucent",
            "opacity": 0.8,
        }
    if role == "loss_map":
        return {
            "colormap": "inferno",
            "contrast_limits": _robust_limits(data, False, floor=0.0),
            "blending": "additive",
            "opacity": 1.0,
        }
    if role == "weight_map":
        lo = float(np.min(data[:: max(1, data.shape[0] // 64)])) if data.size else 0.0
        return {
            "colormap": "magma",
            "contrast_limits": _robust_limits(data, False, floor=lo),
            "blending": "additive",
            "opacity": 1.0,
        }
    return {  # d1, d2
        "colormap": "turbo",
        "contrast_limits": _robust_limits(data, False, floor=0.0),
        "blending": "translucent",
        "opacity": 0.5,
    }


def _owned_kwargs(role: str, source) -> dict[str, Any]:
    return {
        "name": f"{source.name} {ROLES[role]}",
        "metadata": {OWNER: {"role": role, "source": source.name, "source_id": source_id(source)}},
        "scale": tuple(source.scale),
        "translate": tuple(source.translate),
    }


def _follow_source(layer, role: str, source) -> None:
    """Keep an output's place and name in step with its source (moved, or renamed).

    Each is set only when it differs: setting a layer's scale or translate makes the
    viewer recompute its extent and dims (~10 ms each, on every update otherwise).
    """
    scale, translate = tuple(source.scale), tuple(source.translate)
    if not np.array_equal(layer.scale, scale):
        layer.scale = scale
    if not np.array_equal(layer.translate, translate):
        layer.translate = translate
    mark = _mark(layer)
    if mark is not None and mark.get("source") != source.name:
        mark["source"] = source.name
        layer.name = f"{source.name} {ROLES[role]}"


def _place(layer, data: np.ndarray, index: tuple[int, ...], full_shape, dtype):
    """The full array to show: ``data`` written at ``index`` (kept from the layer if it fits)."""
    if not index:
        return data, True
    if layer is not None and tuple(layer.data.shape) == tuple(full_shape):
        layer.data[index] = data
        return layer.data, False
    full = np.zeros(full_shape, dtype)
    full[index] = data
    return full, True


#: How a hidden output layer is to be drawn once shown again (see :func:`_set_look`).
_PENDING_LOOKS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()
_FOLLOWED: weakref.WeakSet = weakref.WeakSet()  # layers whose visibility is followed


def _show_pending_look(layer) -> None:
    """``layer`` was shown or hidden: shown, it gets the look of its newest data."""
    if layer.visible and layer in _PENDING_LOOKS:
        _apply_look(layer, _PENDING_LOOKS.pop(layer))


def _set_look(layer, look: dict[str, Any]) -> None:
    """Draw ``layer`` as ``look`` says, or, while it is hidden, once it is shown again.

    Setting a hidden image layer's contrast limits redraws the whole canvas (its data
    alone does not): on every live update, for the weight map the default outputs add
    hidden, a paint of 25-150 ms in software OpenGL right when the loss map is due.
    """
    if layer.visible:
        _PENDING_LOOKS.pop(layer, None)
        _apply_look(layer, look)
        return
    if layer not in _FOLLOWED:  # first time hidden: follow its visibility
        _FOLLOWED.add(layer)
        ref = weakref.ref(layer)  # the handler does not keep the layer alive
        layer.events.visible.connect(lambda *_: _on_visible(ref))
    _PENDING_LOOKS[layer] = look


def _on_visible(ref) -> None:
    layer = ref()
    if layer is not None:
        _show_pending_look(layer)


def _upsert_image(viewer, role, source, data, index, full_shape, signed, visible=True):
    layer = find_owned(viewer, role, source)
    full, replaced = _place(layer, data, index, full_shape, np.float32)
    look = display(role, data, signed)
    if layer is None:
        return viewer.add_image(full, visible=visible, **_owned_kwargs(role, source), **look)
    if replaced:
        layer.data = full
    else:
        layer.refresh()
    _follow_source(layer, role, source)
    _set_look(layer, look)
    return layer


def _apply_look(layer, look: dict[str, Any]) -> None:
    """Set colormap, blending, opacity and contrast limits (each only when it differs)."""
    look = dict(look)
    limits = look.pop("contrast_limits")
    colormap = look.pop("colormap")
    if layer.colormap.name != getattr(colormap, "name", colormap):
        layer.colormap = colormap
    for key, value in look.items():  # set only when it differs: each set redraws
        if getattr(layer, key) != value:
            setattr(layer, key, value)
    layer.contrast_limits_range = limits
    layer.contrast_limits = limits


def _upsert_errors(viewer, source, data, index, full_shape, visible=True):
    DirectLabelColormap = _napari().utils.colormaps.DirectLabelColormap
    layer = find_owned(viewer, "errors", source)
    full, replaced = _place(layer, data, index, full_shape, np.uint8)
    features = pd.DataFrame({"index": np.arange(4), "error": list(ERROR_NAMES)})
    if layer is None:
        return viewer.add_labels(
            full,
            colormap=DirectLabelColormap(color_dict=ERROR_COLORS),
            features=features,
            opacity=1.0,
            blending="translucent",
            visible=visible,
            **_owned_kwargs("errors", source),
        )
    if replaced:
        layer.data = full
    else:
        layer.refresh()
    _follow_source(layer, "errors", source)
    return layer


def _upsert_hot_spots(viewer, source, spots, index):
    layer = find_owned(viewer, "hot_spots", source)
    ndim = source.ndim
    lead = tuple(float(i) for i in index)
    coords = np.array([lead + tuple(map(float, s.peak_position)) for s in spots], float)
    coords = coords.reshape(len(spots), ndim)
    features = pd.DataFrame(
        {
            "rank": np.array([s.rank for s in spots], int),
            "peak": np.array([s.peak for s in spots], float),
            "mean": np.array([s.mean for s in spots], float),
            "total": np.array([s.total for s in spots], float),
            "area": np.array([s.area for s in spots], int),
        }
    )
    if layer is None:
        return viewer.add_points(
            coords,
            ndim=ndim,
            features=features,
            size=14,
            symbol="ring",
            face_color="cyan",
            border_width=0,
            text={
                "string": "{rank}",
                "color": "cyan",
                "size": 10,
                "translation": (-10,) + (0,) * (ndim - 1),
            },
            **_owned_kwargs("hot_spots", source),
        )
    # one write of each, and only what changed: a w0/σ move often keeps the spots where
    # they were (only their values change); the features setter also redraws the text
    moved = layer.data.shape != coords.shape or not np.array_equal(layer.data, coords)
    if moved:
        layer.data = coords
    old = layer.features
    if moved or list(old.columns) != list(features.columns) or not old.equals(features):
        layer.features = features
    _follow_source(layer, "hot_spots", source)
    return layer


def _write_stats(source, stats: dict[str, np.ndarray]) -> None:
    """Put the per-object table into the ground-truth layer's ``features`` (merged)."""
    ours = pd.DataFrame({k: np.asarray(v) for k, v in stats.items()})
    old = source.features
    if old is not None and len(old.columns):
        old = old.drop(columns=[c for c in STATS_COLUMNS if c in old.columns])
        if "index" not in old.columns:
            old = old.assign(index=np.arange(len(old)))
        if len(old.columns) > 1:
            ours = old.merge(ours, on="index", how="outer")
    source.features = ours.reset_index(drop=True)


def _unchanged(previous, result: ComputeResult, index, attr: str, key=None) -> bool:
    """``result`` holds the very object that the previous result showed (a step whose
    inputs did not change was not recomputed), so its layer needs no update."""
    if previous is None:
        return False
    prev_result, prev_index = previous
    if prev_result is None or tuple(prev_index) != tuple(index):
        return False
    old, new = getattr(prev_result, attr), getattr(result, attr)
    if key is not None:
        old, new = old.get(key), new.get(key)
    return new is not None and old is new


def apply_ready(
    viewer: napari.Viewer,
    inputs: LayerInputs,
    arrays: dict[str, np.ndarray],
    region: tuple[int, ...] = (),
    signed: bool = False,
) -> dict[str, tuple[Any, tuple, np.ndarray]]:
    """Write image outputs that are ready before the rest of a computation (the weight map,
    what a w0/σ slider changes, then the loss map) into their existing layers, so that they
    show at once; ``signed`` is the result's (how a loss map is drawn).

    Only layers that exist already are written: a new layer is made by
    :func:`apply_result`, which decides its visibility. Returns what was written, by role,
    as ``(source, index, array)``: pass it as ``early`` to :func:`apply_result`, which then
    does not write the same array again.
    """
    source = inputs.source
    index = tuple(inputs.index) + tuple(region)
    written = {}
    for role in _UPDATE_ORDER:
        if role not in arrays or find_owned(viewer, role, source) is None:
            continue
        data = arrays[role]
        _upsert_image(viewer, role, source, data, index, inputs.full_shape, signed)
        written[role] = (source, index, data)
    return written


def apply_result(
    viewer: napari.Viewer,
    inputs: LayerInputs,
    result: ComputeResult,
    previous: tuple[ComputeResult | None, tuple] | None = None,
    early: dict[str, tuple[Any, tuple, np.ndarray]] | None = None,
) -> dict[str, Any]:
    """Write ``result`` into the plugin's layers; return them by role.

    ``previous`` is ``(result, index)`` of what these layers show now: an output that is
    the very same object as there (its step was not recomputed) is not written again.
    ``early`` is what :func:`apply_ready` wrote since (by role): a layer that shows the
    very array of ``result`` already is not written again, and one that shows another
    (from a computation that was superseded) is.
    A newly made image layer is visible only when no image output before it in
    :data:`IMAGE_ROLES` is, and a new error map only when no image output is, so that the
    overlay stays readable; an existing layer keeps the visibility the user gave it.
    """
    source = inputs.source
    index = tuple(inputs.index) + tuple(result.region)
    layers: dict[str, Any] = {}
    visible_if_new, shown = {}, False
    for role in IMAGE_ROLES:
        if role in result.arrays:
            layer = find_owned(viewer, role, source)
            visible_if_new[role] = not shown
            shown = shown or layer is None or bool(layer.visible)
    for role in _UPDATE_ORDER:  # the weight map, what a slider changes, first
        if role not in result.arrays:
            continue
        layer = find_owned(viewer, role, source)
        if early and role in early:
            shown_source, shown_index, shown = early[role]
            same = shown_source is source and shown_index == index
            same = same and shown is result.arrays[role]
        else:
            same = _unchanged(previous, result, index, "arrays", role)
        if layer is not None and same:
            _follow_source(layer, role, source)
        else:
            layer = _upsert_image(
                viewer,
                role,
                source,
                result.arrays[role],
                index,
                inputs.full_shape,
                result.signed,
                visible=visible_if_new[role],
            )
        layers[role] = layer
    if "errors" in result.arrays:
        layer = find_owned(viewer, "errors", source)
        if layer is None or not _unchanged(previous, result, index, "arrays", "errors"):
            layer = _upsert_errors(
                viewer, source, result.arrays["errors"], index, inputs.full_shape, not shown
            )
        else:
            _follow_source(layer, "errors", source)
        layers["errors"] = layer
    if result.stats is not None:
        if not _unchanged(previous, result, index, "stats"):
            _write_stats(source, result.stats)
        layers["object_stats"] = source
    if "hot_spots" in result.outputs:
        layer = find_owned(viewer, "hot_spots", source)
        if layer is None or not _unchanged(previous, result, index, "hot_spots"):
            layer = _upsert_hot_spots(viewer, source, result.hot_spots, tuple(inputs.index))
        else:
            _follow_source(layer, "hot_spots", source)
        layers["hot_spots"] = layer
    return layers
