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

from . import _layers, core
from ._compute import WEIGHT_PARAMS, ComputeRequest, WeightParams, run

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from ._widget import LossLensWidget

__all__ = ["InspectResult", "inspect", "show"]

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


def show(viewer: napari.Viewer) -> LossLensWidget:
    """Open the "Loss Lens" widget docked in ``viewer`` (or return the one already open).

    Example::

        w = napari_losslens.show(viewer)
        w.sigma.value = 3
        w.compute()
    """
    _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
    return widget
