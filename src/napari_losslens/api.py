"""The console and scripting API: the widget's work, one call away.

``inspect`` computes with :mod:`napari_losslens.core` and writes exactly the layers the
widget would (same marks, names, colormaps, in-place updates), through the same layer
adapter and with the same distance cache per labels layer (so a second call with only w0 or
σ changed skips the distances); ``show`` opens (or returns) the docked "Loss Lens" widget.
napari is imported only inside these calls (by the layer adapter), so
``import napari_losslens`` stays GUI-free.

In napari's console::

    import napari_losslens
    r = napari_losslens.inspect(viewer, "ground truth", "prediction", loss="unet_ce",
                                outputs=("loss_map", "weight_map"), w0=10, sigma=5)
    r.value, r.layers["loss_map"]
    w = napari_losslens.show(viewer); w.sigma.value = 3; w.compute()
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd

from . import _layers, core
from ._compare import LossSpec, compare_arrays, parse_losses
from ._compare_layers import comparison_inputs, show_comparison
from ._compute import WEIGHT_PARAMS, ComputeRequest, WeightParams, run

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from ._widget import LossLensWidget

__all__ = ["CompareResult", "InspectResult", "compare", "inspect", "show"]

#: Keyword arguments of :func:`inspect` that are options rather than loss parameters.
_OPTIONS = {
    "from_logits": False,
    "device": "auto",
    "stack_mode": "volume",
    "current_slice": False,
    "threshold": None,
    "hotspot_k": 10,
    "hotspot_sigma": 2.0,
}


@dataclass
class InspectResult:
    """What :func:`inspect` computed.

    Attributes:
        value: the scalar loss (as a training loop sees it).
        arrays: the computed maps by name (``loss_map``, ``gradient_map``, ``weight_map``,
            ``d1``, ``d2``, ``errors``).
        layers: the napari layers written, by role (``object_stats`` is the labels layer,
            whose ``features`` hold the table).
        seconds: the computation's wall time.
        device: the device used.
        loss: the loss name.
        stats: the per-object table (a dict of columns) or None.
        hot_spots: the hot-spots, worst first.
    """

    value: float
    arrays: dict[str, np.ndarray]
    layers: dict[str, Any]
    seconds: float
    device: str
    loss: str
    stats: dict[str, np.ndarray] | None = None
    hot_spots: list = field(default_factory=list)


def inspect(
    viewer: napari.Viewer,
    labels,
    prediction,
    *,
    image=None,
    loss: str = "bce",
    outputs=("loss_map",),
    **params,
) -> InspectResult:
    """Compute a loss's maps for layers (or arrays) and show them as the widget would.

    Args:
        viewer: the napari viewer.
        labels: ground-truth instance labels: a Labels layer, a layer name, or an array (it
            becomes a layer named "labels", reused by later calls).
        prediction: probabilities (or logits with ``from_logits=True``), or a mask: a layer,
            a layer name or an array (a layer named "prediction").
        image: an optional intensity image, likewise.
        loss: a name from :func:`~napari_losslens.core.available_losses`.
        outputs: among ``loss_map``, ``gradient_map``, ``weight_map``, ``distances``,
            ``errors``, ``object_stats``, ``hot_spots``.
        **params: the loss's parameters; the weight-map parameters ``w0``, ``sigma``,
            ``class_weights``, ``background_only``, ``separate_touching``; and the options
            ``from_logits``, ``device``, ``stack_mode`` (``"volume"``/``"frames"``),
            ``current_slice``, ``threshold``, ``hotspot_k``, ``hotspot_sigma``.

    Returns:
        An :class:`InspectResult`.

    Raises:
        ValueError: a bad combination (the message says what to change), an unknown layer
            name or output.
        TypeError: an unknown parameter (the message lists the loss's parameters).
    """
    info = core.get_loss(loss)
    if isinstance(outputs, str):
        outputs = (outputs,)
    options = {k: params.pop(k, v) for k, v in _OPTIONS.items()}
    weights = WeightParams(**{k: params.pop(k) for k in WEIGHT_PARAMS if k in params})
    own = {p.name for p in info.params}
    unknown = sorted(set(params) - own)
    if unknown:
        known = sorted(own | set(WEIGHT_PARAMS) | set(_OPTIONS))
        raise TypeError(
            f"unknown parameter(s) {', '.join(map(repr, unknown))} for loss {loss!r}; "
            f"inspect takes: {', '.join(known)}"
        )
    info.resolve_params(params)  # validate the loss's own parameters early
    lab_layer = _layers.resolve_input(viewer, labels, "labels", "labels")
    pred_layer = _layers.resolve_input(viewer, prediction, "prediction", "image")
    img_layer = _layers.resolve_input(viewer, image, "image", "image")
    if lab_layer._type_string != "labels":
        raise ValueError(f"labels must be a Labels layer, got a {lab_layer._type_string} layer")
    inputs = _layers.layer_inputs(
        lab_layer, pred_layer, img_layer, viewer=viewer, current_slice=options["current_slice"]
    )
    request = ComputeRequest(
        labels=inputs.labels,
        prediction=inputs.prediction,
        image=inputs.image,
        spacing=inputs.spacing,
        loss=loss,
        loss_params=params,
        weights=weights,
        outputs=tuple(outputs),
        from_logits=bool(options["from_logits"]),
        device=options["device"],
        stack_mode=options["stack_mode"],
        threshold=options["threshold"],
        hotspot_k=int(options["hotspot_k"]),
        hotspot_sigma=float(options["hotspot_sigma"]),
        cache_key=("layer", inputs.index),
    )
    result = run(request, _layers.distance_cache(lab_layer))
    layers = _layers.apply_result(viewer, inputs, result)
    return InspectResult(
        value=result.value,
        arrays=result.arrays,
        layers=layers,
        seconds=result.seconds,
        device=result.device,
        loss=loss,
        stats=result.stats,
        hot_spots=result.hot_spots,
    )


#: Keyword arguments of :func:`compare` that are options rather than loss parameters.
_COMPARE_OPTIONS = {
    "from_logits": False,
    "device": "auto",
    "threshold": None,
    "hotspot_k": 10,
    "hotspot_sigma": 2.0,
    "grid": True,
}


@dataclass
class CompareResult:
    """What :func:`compare` computed.

    Attributes:
        mode: ``"losses"`` (one prediction, several losses) or ``"models"`` (two
            predictions, one loss).
        maps: the normalised maps by pane title (each divided by the sum of its absolute
            values), and ``"A − B"``: the difference map of two predictions in the loss's
            units.
        values: the scalar loss of each pane, by title.
        table: per-object changes from model A to model B (a pandas DataFrame, one row
            per object: ``index``, ``area``, ``loss_a``, ``loss_b``, ``loss_change``,
            ``dice_*``, ``iou_*``, ``verdict``), or None when comparing losses.
        layers: the layers written: ``panes`` (a list), ``difference``, ``hot_spots``,
            ``object_changes`` (the labels layer whose features hold the table).
        comparison: the full :class:`~napari_losslens._compare.Comparison` (raw maps,
            scales, shared contrast limits, hot-spots).
    """

    mode: str
    maps: dict[str, np.ndarray]
    values: dict[str, float]
    table: Any
    layers: dict[str, Any]
    comparison: Any


def compare(
    viewer: napari.Viewer,
    labels,
    predictions,
    *,
    losses,
    image=None,
    **params,
) -> CompareResult:
    """Maps of several losses (or of two models) side by side in napari's grid mode.

    One prediction and 2–6 losses: one pane per loss. Two predictions (model A, model B)
    and one loss: one pane per model, a difference pane (A − B, diverging, centred on 0)
    and the per-object change in loss, Dice and IoU written into the labels layer's
    ``features`` (hover over an object to read whether it got better or worse).

    Each pane shows its map divided by the sum of its absolute values (the share of the
    loss, or of the gradient's pull, at each pixel); panes of the same kind share one
    contrast range. The layers are the plugin's own (marked in ``layer.metadata``) and are
    updated in place by the next call. Grid mode shows the panes, the labels layer and the
    image (other layers are hidden until grid mode is left with
    ``napari_losslens._compare_layers.hide_grid(viewer)``); every pane follows the one
    ``viewer.scene.camera``.

    Args:
        viewer: the napari viewer.
        labels: ground-truth instance labels: a Labels layer, a layer name or an array.
        predictions: one prediction (layer, name or array), or a list of two (model A,
            model B): probabilities, or logits with ``from_logits=True``.
        losses: loss names or ``(name, params)`` pairs, e.g.
            ``["bce", ("focal", {"gamma": 1}), "dice"]``.
        image: an optional intensity image (a layer, name or array), kept visible.
        **params: options ``from_logits``, ``device``, ``threshold`` (for Dice/IoU),
            ``hotspot_k``, ``hotspot_sigma``, ``grid`` (turn grid mode on, default True);
            any other keyword is a loss parameter given to every listed loss that takes
            it (e.g. ``smooth=1.0``).

    Returns:
        A :class:`CompareResult`.

    Raises:
        ValueError: the wrong number of predictions or losses, shapes that differ, an
            unknown layer name, a parameter out of range.
        TypeError: a parameter that none of the losses takes, a malformed loss entry.

    Example::

        r = napari_losslens.compare(viewer, "ground truth", "prediction",
                                    losses=["bce", "dice", ("focal", {"gamma": 1})])
        r = napari_losslens.compare(viewer, "ground truth", ["model A", "model B"],
                                    losses=["bce"])
        r.table.sort_values("dice_change").head()
    """
    options = {k: params.pop(k, v) for k, v in _COMPARE_OPTIONS.items()}
    specs = parse_losses(losses)
    if params:
        takers = {
            name: [s for s in specs if name in {p.name for p in core.get_loss(s.name).params}]
            for name in params
        }
        unknown = sorted(n for n, t in takers.items() if not t)
        if unknown:
            raise TypeError(
                f"unknown parameter(s) {', '.join(map(repr, unknown))}: none of the losses "
                f"{', '.join(s.name for s in specs)} takes them; compare's options are "
                f"{', '.join(_COMPARE_OPTIONS)}"
            )
        specs = parse_losses(
            [
                LossSpec(
                    s.name,
                    {
                        **{k: v for k, v in params.items() if s in takers[k]},
                        **s.params,
                    },
                )
                for s in specs
            ]
        )
    if isinstance(predictions, (list, tuple)):
        if len(predictions) not in (1, 2):
            raise ValueError(
                "predictions must be one layer/array or a list of two (model A, model B), "
                f"got {len(predictions)}"
            )
        roles = ["prediction"] if len(predictions) == 1 else ["prediction A", "prediction B"]
        pred_layers = [
            _layers.resolve_input(viewer, v, r, "image")
            for v, r in zip(predictions, roles, strict=True)
        ]
    else:
        pred_layers = [_layers.resolve_input(viewer, predictions, "prediction", "image")]
    lab_layer = _layers.resolve_input(viewer, labels, "labels", "labels")
    img_layer = _layers.resolve_input(viewer, image, "image", "image")
    if lab_layer._type_string != "labels":
        raise ValueError(f"labels must be a Labels layer, got a {lab_layer._type_string} layer")
    lab, preds, spacing = comparison_inputs(lab_layer, pred_layers)
    device = options["device"]
    comparison = compare_arrays(
        lab,
        preds,
        specs,
        from_logits=bool(options["from_logits"]),
        spacing=spacing,
        device=None if device == "auto" else device,
        threshold=options["threshold"],
        hotspot_k=int(options["hotspot_k"]),
        hotspot_sigma=float(options["hotspot_sigma"]),
    )
    layers = show_comparison(
        viewer, lab_layer, comparison, grid=bool(options["grid"]), keep=(img_layer,)
    )
    table = None if comparison.table is None else pd.DataFrame(comparison.table)
    return CompareResult(
        mode=comparison.mode,
        maps=comparison.maps,
        values={p.title: p.value for p in comparison.panes},
        table=table,
        layers=layers,
        comparison=comparison,
    )


def show(viewer: napari.Viewer) -> LossLensWidget:
    """Open the "Loss Lens" widget docked in ``viewer`` (or return the one already open).

    Example::

        w = napari_losslens.show(viewer)
        w.sigma.value = 3
        w.compute()
    """
    _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
    return widget
