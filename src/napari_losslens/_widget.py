"""The "Loss Lens" dock widget: controls over :mod:`._compute`, results through :mod:`._layers`.

It holds no math. Every computation reads the chosen layers through the layer adapter, runs
the napari-free pipeline (with a distance cache per labels layer, invalidated when the labels
change, painting included) and writes the plugin's own layers. ``compute()`` runs
synchronously (for scripts and tests); the Compute button and live mode run a
``thread_worker`` generator, where the newest request wins and stale work is cancelled.

Under stress the rules are: at most :attr:`LossLensWidget.MAX_WORKERS` workers are alive
(the current one and one that is stopping at its next step; a request beyond that waits and
starts, with the then current parameters, when one ends); only the newest request's result is
shown; a result whose input layer was removed is dropped; an edit of the labels while a
computation runs starts a fresh one; closing the widget or taking it out of its dock stops
all work. A computation that runs longer than :attr:`LossLensWidget.PROGRESS_DELAY_MS` shows
a progress bar, and the status line names the step that runs.

Subwidget names are part of the scripting contract: ``labels_layer``, ``prediction_layer``,
``image_layer``, ``loss``, ``device``, ``w0``, ``sigma``, ``class_weights``, ``live``, and
``from_logits``, ``background_only``, ``separate_touching``, ``outputs``, ``stack_mode``,
``current_slice``, ``threshold``, ``hotspot_k``, ``hotspot_prev``, ``hotspot_next``,
``compute_button``, ``status``, ``progress``, ``histogram``.
"""

from __future__ import annotations

import ast
import weakref
from typing import TYPE_CHECKING, Any

import numpy as np
from magicgui.widgets import (
    CheckBox,
    ComboBox,
    Container,
    EmptyWidget,
    FloatSlider,
    FloatSpinBox,
    Label,
    LineEdit,
    ProgressBar,
    PushButton,
    SpinBox,
)

from . import _layers
from ._compute import (
    OUTPUTS,
    WEIGHT_PARAMS,
    ComputeRequest,
    ComputeResult,
    DistanceCache,
    InputError,
    Progress,
    WeightParams,
    looks_like_probabilities,
    run,
    run_steps,
)

if TYPE_CHECKING:  # pragma: no cover
    import napari

__all__ = ["LossLensWidget"]

#: Human names of the outputs, in the order shown.
OUTPUT_LABELS = {
    "loss_map": "loss map",
    "gradient_map": "gradient ∂L/∂input",
    "weight_map": "weight map",
    "distances": "distances d1, d2",
    "errors": "error map (TP/FP/FN)",
    "object_stats": "per-object statistics",
    "hot_spots": "hot-spots",
}
DEFAULT_OUTPUTS = ("loss_map", "weight_map", "object_stats", "hot_spots")
_PRED_HINTS = ("pred", "prob", "logit", "output", "sigmoid")


class _MissingLayer(InputError):
    """No ground truth or no prediction chosen (in live mode: a status line, no pop-up)."""


def _notify_error(message: str) -> None:
    from napari.utils import notifications

    notifications.show_error(message)


def _notify_warning(message: str) -> None:
    from napari.utils import notifications

    notifications.show_warning(message)


class _Outputs(Container):
    """A check box per output; ``value`` is the tuple of the checked ones."""

    def __init__(self, name: str, value=DEFAULT_OUTPUTS):
        boxes = [
            CheckBox(name=key, text=text, value=key in value)
            for key, text in OUTPUT_LABELS.items()
        ]
        super().__init__(name=name, widgets=boxes, labels=False, label="outputs")
        self.margins = (0, 0, 0, 0)

    @property
    def value(self) -> tuple[str, ...]:
        return tuple(key for key in OUTPUT_LABELS if self[key].value)

    @value.setter
    def value(self, outputs) -> None:
        outputs = (outputs,) if isinstance(outputs, str) else tuple(outputs)
        unknown = set(outputs) - set(OUTPUTS)
        if unknown:
            raise ValueError(f"unknown output(s) {sorted(unknown)}; choose among {OUTPUTS}")
        for key in OUTPUT_LABELS:
            self[key].value = key in outputs


def _lifecycle_filter(widget: LossLensWidget):
    """An event filter on the widget's native QWidget that stops all work when the widget is
    closed or taken out of its dock (its parent becomes None), and lets it work again when
    shown or docked again. It holds the widget weakly and never raises (it runs inside Qt)."""
    from qtpy.QtCore import QEvent, QObject

    class _Filter(QObject):
        def __init__(self):
            super().__init__(widget.native)
            self._widget = weakref.ref(widget)

        def eventFilter(self, obj, event):
            ref = getattr(self, "_widget", None)  # gone while Python shuts down
            w = ref() if ref is not None else None
            if w is not None and not w._dead:
                kind = event.type()
                if kind == QEvent.Type.Close or (
                    kind == QEvent.Type.ParentChange and obj.parent() is None
                ):
                    w._shutdown()
                elif kind in (QEvent.Type.Show, QEvent.Type.ParentChange):
                    w._closed = False  # shown again, or docked again
            return False

    f = _Filter()
    widget.native.installEventFilter(f)
    return f


def _param_control(info_name: str, p) -> Any:
    """A magicgui control for one registry parameter (see :class:`core.LossParam`)."""
    name = f"{info_name}_{p.name}"
    tip = p.description
    if p.kind == "bool":
        return CheckBox(name=name, text=p.name, value=bool(p.default), tooltip=tip)
    if p.kind == "int":
        return SpinBox(
            name=name,
            label=p.name,
            value=int(p.default),
            tooltip=tip,
            min=int(p.minimum) if p.minimum is not None else -(10**9),
            max=int(p.maximum) if p.maximum is not None else 10**9,
        )
    if p.kind == "float" and (p.default == 0 or abs(float(p.default)) >= 0.01):
        lo = p.minimum if p.minimum is not None else -1e9
        if p.exclusive_minimum:
            lo = lo + 1e-3
        return FloatSpinBox(
            name=name,
            label=p.name,
            value=float(p.default),
            tooltip=tip,
            min=lo,
            max=p.maximum if p.maximum is not None else 1e9,
            step=0.1,
        )
    # tiny floats, optional floats and anything else: typed as Python literals
    return LineEdit(name=name, label=p.name, value=repr(p.default), tooltip=tip)


def _param_value(widget, p) -> Any:
    value = widget.value
    if not isinstance(widget, LineEdit):
        return value
    text = str(value).strip()
    if text in ("", "None"):
        return None
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        raise InputError(
            f"Parameter {p.name!r}: {text!r} is not a value (type a number such as 1e-6)."
        ) from None


class LossLensWidget(Container):
    """See where a segmentation loss is high, and tune the U-Net weight map live.

    Args:
        viewer: the napari viewer (injected by napari when docked from the plugin menu).

    Example (napari console)::

        w = napari_losslens.show(viewer)
        w.sigma.value = 3
        result = w.compute()
    """

    #: At most this many background workers are alive at once: the current one and one that
    #: was cancelled and stops at the end of its current step.
    MAX_WORKERS = 2
    #: A background computation that runs longer than this (ms) shows the progress bar.
    PROGRESS_DELAY_MS = 300
    #: The histogram (a matplotlib redraw, ~0.2 s) waits until background results have
    #: stopped coming for this long (ms), so that live updates are not slowed by it.
    HISTOGRAM_DELAY_MS = 250

    def __init__(self, viewer: napari.viewer.Viewer):
        from .core import available_losses

        super().__init__(labels=True, scrollable=False)
        self._viewer = viewer
        self._watched_labels = None
        self._labels_view = None
        self._workers: dict[int, Any] = {}  # generation -> alive worker
        self._pending = False  # a request waits for a worker to end
        self._job_layers: tuple = ()  # the layers the current worker reads
        self._step = ""
        self._progress_shown = False
        self._closed = False  # closed or out of its dock: no background work
        self._dead = False  # the Qt widget is gone
        self._generation = 0
        self._spot_index = -1
        self.last_result: ComputeResult | None = None
        self.last_message: str = ""
        self.layers: dict[str, Any] = {}
        self._inputs_of_last = None

        # inputs
        self.labels_layer = ComboBox(
            name="labels_layer", label="ground truth", choices=self._labels_choices
        )
        self.prediction_layer = ComboBox(
            name="prediction_layer", label="prediction", choices=self._prediction_choices
        )
        self.image_layer = ComboBox(
            name="image_layer", label="image", choices=self._image_choices, nullable=True
        )
        self.from_logits = CheckBox(name="from_logits", text="prediction holds logits")
        # loss and its own parameters (built from the registry)
        self._losses = available_losses()
        self.loss = ComboBox(
            name="loss",
            label="loss",
            choices=[(info.title, key) for key, info in self._losses.items()],
            value="unet_ce" if "unet_ce" in self._losses else next(iter(self._losses)),
        )
        self._param_widgets: dict[str, dict[str, Any]] = {}
        param_boxes = []
        for key, info in self._losses.items():
            controls = {
                p.name: _param_control(key, p)
                for p in info.params
                if p.gui and p.name not in WEIGHT_PARAMS
            }
            self._param_widgets[key] = controls
            box = Container(name=f"{key}_params", widgets=list(controls.values()), labels=True)
            box.margins = (0, 0, 0, 0)
            param_boxes.append(box)
        # the U-Net weight map
        self.w0 = FloatSlider(name="w0", label="w0", value=10.0, min=0.0, max=50.0, step=0.5)
        self.sigma = FloatSlider(
            name="sigma", label="σ (world units)", value=5.0, min=0.5, max=30.0, step=0.25
        )
        self.class_weights = ComboBox(
            name="class_weights", label="class weights", choices=["none", "balanced", "custom"]
        )
        self.w_background = FloatSpinBox(
            name="w_background",
            label="w background",
            value=1.0,
            min=0.0,
            max=1e4,
            step=0.1,
            visible=False,
        )
        self.w_foreground = FloatSpinBox(
            name="w_foreground",
            label="w foreground",
            value=1.0,
            min=0.0,
            max=1e4,
            step=0.1,
            visible=False,
        )
        self.background_only = CheckBox(
            name="background_only", text="border term on background only", value=True
        )
        self.separate_touching = CheckBox(
            name="separate_touching", text="separate touching cells", value=False
        )
        # how to compute
        self.device = ComboBox(name="device", label="device", choices=self._device_choices())
        self.outputs = _Outputs(name="outputs")
        self.stack_mode = ComboBox(
            name="stack_mode",
            label="stacks",
            choices=[
                ("3D volume (distances in 3D)", "volume"),
                ("independent 2D frames", "frames"),
            ],
        )
        self.current_slice = CheckBox(name="current_slice", text="current slice only")
        self.threshold = FloatSpinBox(
            name="threshold",
            label="threshold",
            value=0.5,
            min=-100.0,
            max=100.0,
            step=0.05,
            tooltip="foreground threshold of the prediction for Dice/IoU and the error map "
            "(0 is used for logits)",
        )
        # hot-spots
        self.hotspot_k = SpinBox(name="hotspot_k", label="hot-spots", value=10, min=1, max=200)
        self.hotspot_prev = PushButton(name="hotspot_prev", text="◀ previous hot-spot")
        self.hotspot_next = PushButton(name="hotspot_next", text="next hot-spot ▶")
        self.hotspot_info = Label(name="hotspot_info", value="", label=" ")
        # run
        self.compute_button = PushButton(name="compute_button", text="Compute")
        self.live = CheckBox(name="live", text="live (recompute on every change)")
        self.status = Label(name="status", value="", label=" ")
        self.progress = ProgressBar(
            name="progress", label=" ", min=0, max=100, value=0, visible=False
        )
        self.histogram = EmptyWidget(name="histogram", label=" ")
        self._figure = None

        self.extend(
            [
                Label(value="<b>Layers</b>", name="inputs_heading", label=" "),
                self.labels_layer,
                self.prediction_layer,
                self.image_layer,
                self.from_logits,
                Label(value="<b>Loss</b>", name="loss_heading", label=" "),
                self.loss,
                *param_boxes,
                Label(value="<b>U-Net weight map</b>", name="weights_heading", label=" "),
                self.w0,
                self.sigma,
                self.class_weights,
                self.w_background,
                self.w_foreground,
                self.background_only,
                self.separate_touching,
                Label(value="<b>Outputs</b>", name="outputs_heading", label=" "),
                self.outputs,
                self.threshold,
                self.stack_mode,
                self.current_slice,
                self.device,
                self.hotspot_k,
                Container(
                    name="hotspot_buttons",
                    label=" ",
                    widgets=[self.hotspot_prev, self.hotspot_next],
                    layout="horizontal",
                    labels=False,
                ),
                self.hotspot_info,
                self.compute_button,
                self.live,
                self.status,
                self.progress,
                self.histogram,
            ]
        )
        self._make_histogram()
        self._show_loss_params()

        from qtpy.QtCore import QTimer
        from superqt.utils import qdebounced

        self._debounced_start = qdebounced(self._start_worker, timeout=15)
        self._progress_timer = QTimer(self.native)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.timeout.connect(self._show_progress)
        self._histogram_timer = QTimer(self.native)
        self._histogram_timer.setSingleShot(True)
        self._histogram_timer.timeout.connect(self._on_histogram_due)
        self._lifecycle = _lifecycle_filter(self)
        ref = weakref.ref(self)

        def on_destroyed(*_):
            widget = ref()
            if widget is not None:
                widget._on_destroyed()

        self.native.destroyed.connect(on_destroyed)

        # signals
        self.loss.changed.connect(self._show_loss_params)
        self.class_weights.changed.connect(self._on_class_weights_changed)
        for widget in self._parameter_widgets():
            widget.changed.connect(self._on_parameter_changed)
        self.labels_layer.changed.connect(self._on_labels_layer_changed)
        self.compute_button.changed.connect(self._start_worker)
        self.hotspot_next.changed.connect(lambda: self.goto_hot_spot(self._spot_index + 1))
        self.hotspot_prev.changed.connect(lambda: self.goto_hot_spot(self._spot_index - 1))
        events = viewer.layers.events
        for ev in (events.inserted, events.removed, events.moved):
            ev.connect(self._on_layers_changed)
        viewer.dims.events.current_step.connect(self._on_dims_changed)
        self.reset_choices()
        self._on_labels_layer_changed(self.labels_layer.value)

    # ---------------------------------------------------------------- layer choices

    def _inputs(self, types):
        import napari

        wanted = tuple(getattr(napari.layers, t) for t in types)
        return [
            layer
            for layer in self._viewer.layers
            if isinstance(layer, wanted) and not self._is_output(layer)
        ]

    @staticmethod
    def _is_output(layer) -> bool:
        mark = layer.metadata.get(_layers.OWNER) if isinstance(layer.metadata, dict) else None
        return isinstance(mark, dict) and not str(mark.get("role", "")).startswith("input:")

    def _labels_choices(self, _widget=None):
        layers = self._inputs(("Labels",))
        layers.sort(key=lambda layer: any(h in layer.name.lower() for h in _PRED_HINTS))
        return [(layer.name, layer) for layer in layers]

    def _prediction_choices(self, _widget=None):
        def score(layer):
            name = layer.name.lower()
            hinted = any(h in name for h in _PRED_HINTS)
            is_float = np.dtype(getattr(layer.data, "dtype", float)).kind == "f"
            return (not hinted, layer._type_string != "image", not is_float)

        layers = sorted(self._inputs(("Image", "Labels")), key=score)
        return [(layer.name, layer) for layer in layers]

    def _image_choices(self, _widget=None):
        layers = self._inputs(("Image",))
        layers.sort(key=lambda layer: any(h in layer.name.lower() for h in _PRED_HINTS))
        return [(layer.name, layer) for layer in layers]

    @staticmethod
    def _device_choices():
        import torch

        n = torch.cuda.device_count() if torch.cuda.is_available() else 0
        return ["auto", "cpu", *(f"cuda:{i}" for i in range(n))]

    def _on_layers_changed(self, event=None):
        if self._dead:
            return
        removed = (
            getattr(event, "value", None) if getattr(event, "type", "") == "removed" else None
        )
        if removed is not None and self.worker is not None:
            if any(removed is layer for layer in self._job_layers):
                # its result would describe a layer that is gone: stop and drop it
                self._cancel_worker()
                self._end_progress()
                self.status.value = f"stopped: layer {removed.name!r} was removed"
        self.reset_choices()

    def reset_choices(self, *_):
        super().reset_choices()
        # a layer chosen as the prediction should not also be the "image"
        pred = self.prediction_layer.value
        if self.image_layer.value is None or self.image_layer.value is pred:
            others = [layer for _, layer in self._image_choices() if layer is not pred]
            self.image_layer.value = others[0] if others else None

    # ------------------------------------------------------------------- controls

    def _parameter_widgets(self):
        yield from (
            self.w0,
            self.sigma,
            self.class_weights,
            self.w_background,
            self.w_foreground,
            self.background_only,
            self.separate_touching,
            self.loss,
            self.from_logits,
            self.device,
            self.stack_mode,
            self.current_slice,
            self.threshold,
            self.hotspot_k,
            self.prediction_layer,
            self.image_layer,
        )
        yield from self.outputs
        for controls in self._param_widgets.values():
            yield from controls.values()

    def _show_loss_params(self, *_):
        for key in self._losses:
            self[f"{key}_params"].visible = key == self.loss.value and bool(
                self._param_widgets[key]
            )

    def _on_class_weights_changed(self, value):
        custom = value == "custom"
        self.w_background.visible = custom
        self.w_foreground.visible = custom

    def _on_parameter_changed(self, *_):
        if self.live.value and not self._closed:
            self._debounced_start()

    def _on_dims_changed(self, *_):
        if self.live.value and self.current_slice.value and not self._closed:
            self._debounced_start()

    # ------------------------------------------------------------ labels and cache

    def _on_labels_layer_changed(self, layer):
        if self._dead:
            return
        self._watch_labels(layer)
        if self.live.value and not self._closed:
            self._debounced_start()

    def _watch_labels(self, layer) -> None:
        """Follow the edits of the chosen labels layer (and of no other)."""
        old, self._watched_labels = self._watched_labels, layer
        if old is not None:
            old.events.data.disconnect(self._on_labels_edited)
            old.events.paint.disconnect(self._on_labels_edited)
            old.events.set_data.disconnect(self._on_labels_refreshed)
        if layer is not None:
            _layers.distance_cache(layer)  # connected before our handlers: emptied first
            layer.events.data.connect(self._on_labels_edited)
            layer.events.paint.connect(self._on_labels_edited)
            layer.events.set_data.connect(self._on_labels_refreshed)
        self._labels_view = self._view_key()

    def _view_key(self) -> tuple:
        dims = self._viewer.dims
        return (tuple(dims.current_step), dims.ndisplay, tuple(dims.order))

    def _on_labels_edited(self, *_event):
        """The labels changed (painting included): recompute when live, or when a
        computation is running (its result would show the labels before the edit).

        The layer's distance cache was emptied by the same event (:func:`_layers.distance_cache`).
        """
        if self._closed or self._dead:
            return
        if self.live.value or self.worker is not None or self._pending:
            self._debounced_start()

    def _on_labels_refreshed(self, *_event):
        """``events.set_data``: a new slice was drawn, or the same view was refreshed, which
        is how ``layer.data[...] = v; layer.refresh()`` shows an edit."""
        view = self._view_key()
        same, self._labels_view = view == self._labels_view, view
        if same:
            self._on_labels_edited()

    @property
    def cache(self) -> DistanceCache:
        """The distance cache of the chosen labels layer (shared with :func:`inspect`)."""
        layer = self.labels_layer.value
        return _layers.distance_cache(layer) if layer is not None else DistanceCache()

    # ----------------------------------------------------------------- computation

    def weight_params(self) -> WeightParams:
        """The weight-map parameters as set in the widget."""
        cw: Any = self.class_weights.value
        if cw == "none":
            cw = None
        elif cw == "custom":
            cw = (float(self.w_background.value), float(self.w_foreground.value))
        return WeightParams(
            w0=float(self.w0.value),
            sigma=float(self.sigma.value),
            class_weights=cw,
            background_only=bool(self.background_only.value),
            separate_touching=bool(self.separate_touching.value),
        )

    def loss_params(self) -> dict[str, Any]:
        """The selected loss's own parameters as set in the widget."""
        info = self._losses[self.loss.value]
        controls = self._param_widgets[self.loss.value]
        return {
            p.name: _param_value(controls[p.name], p) for p in info.params if p.name in controls
        }

    def _gather(self):
        """Read the layers and the controls (main thread): ``(inputs, request, cache)``."""
        labels, pred = self.labels_layer.value, self.prediction_layer.value
        if labels is None and pred is None:
            raise _MissingLayer(
                "No layers to compare: open a sample (File > Open Sample > napari-losslens) "
                "or add a Labels layer of ground truth and an Image layer of predictions."
            )
        if labels is None:
            raise _MissingLayer("No ground truth: add or choose a Labels layer.")
        if pred is None:
            raise _MissingLayer(
                "No prediction: add or choose an Image layer of probabilities (or logits), "
                "or a Labels mask."
            )
        if pred is labels:
            raise InputError(
                "The prediction is the ground-truth layer itself: choose another prediction."
            )
        if np.shape(pred.data) != np.shape(labels.data):
            raise InputError(
                f"Ground truth {np.shape(labels.data)} and prediction {np.shape(pred.data)} "
                "differ in shape: choose layers of the same shape."
            )
        image = self.image_layer.value
        if image is not None and np.shape(image.data) != np.shape(labels.data):
            image = None  # an optional extra: ignore one that does not fit
        inputs = _layers.layer_inputs(
            labels, pred, image, viewer=self._viewer, current_slice=self.current_slice.value
        )
        request = ComputeRequest(
            labels=inputs.labels,
            prediction=inputs.prediction,
            image=inputs.image,
            spacing=inputs.spacing,
            loss=self.loss.value,
            loss_params=self.loss_params(),
            weights=self.weight_params(),
            outputs=self.outputs.value,
            from_logits=bool(self.from_logits.value),
            device=self.device.value,
            stack_mode=self.stack_mode.value,
            threshold=None if self.from_logits.value else float(self.threshold.value),
            hotspot_k=int(self.hotspot_k.value),
            cache_key=("layer", inputs.index),
        )
        if (
            request.from_logits
            and pred._type_string == "image"
            and looks_like_probabilities(inputs.prediction)
        ):
            _notify_warning(
                "The prediction lies in [0, 1] but 'prediction holds logits' is ticked: "
                "untick it if these are probabilities."
            )
        return inputs, request, _layers.distance_cache(labels)

    def _fail(self, err: Exception) -> None:
        message = str(err) if isinstance(err, InputError) else f"Loss Lens: {err}"
        self.last_message = message
        self.status.value = f"⚠ {message}"
        _notify_error(message)

    def compute(self) -> ComputeResult | None:
        """Compute now and update the layers; returns the result (None after an error).

        Synchronous: for scripts, the console and tests. A running background computation
        is cancelled first.
        """
        self._cancel_worker()
        self._end_progress()
        try:
            inputs, request, cache = self._gather()
            result = run(request, cache)
        except (InputError, ValueError, TypeError) as err:
            self._fail(err)
            return None
        self._apply(inputs, result)
        return result

    # ----------------------------------------------------------- background workers

    @property
    def worker(self):
        """The background worker of the newest request, while it runs (else None)."""
        return self._workers.get(self._generation)

    @property
    def workers(self) -> tuple:
        """Every background worker still alive (the current one and any that is stopping)."""
        return tuple(self._workers.values())

    def _cancel_worker(self) -> None:
        """Supersede every running computation: each stops at its next step, and whatever
        it still sends is dropped (its generation is no longer the current one)."""
        self._generation += 1
        self._pending = False
        for worker in self._workers.values():
            worker.quit()

    def _start_worker(self, *_) -> None:
        """Compute in a thread worker; a newer request cancels and supersedes this one.

        With :attr:`MAX_WORKERS` alive already (one current, one stopping), the request
        waits and starts when one ends, with the parameters of that moment, so that a burst
        of changes never piles up workers.
        """
        if self._closed or self._dead:
            return
        self._cancel_worker()
        if len(self._workers) >= self.MAX_WORKERS:
            self._pending = True
            return
        self._launch()

    def _launch(self) -> None:
        from napari.qt.threading import thread_worker

        self._pending = False
        generation = self._generation
        try:
            inputs, request, cache = self._gather()
        except (InputError, ValueError, TypeError) as err:
            self._end_progress()
            if isinstance(err, _MissingLayer) and self.live.value:
                # a layer was just removed (or the viewer is closing): say it, no pop-up
                self.last_message = str(err)
                self.status.value = f"⚠ {err}"
            else:
                self._fail(err)
            return

        @thread_worker(start_thread=False)
        def work():
            return (yield from run_steps(request, cache))

        worker = work()
        # the callbacks hold the generation, not the worker: no reference cycle
        worker.yielded.connect(lambda progress: self._on_progress(generation, progress))
        worker.returned.connect(lambda result: self._on_returned(generation, inputs, result))
        worker.errored.connect(lambda err: self._on_errored(generation, err))
        worker.finished.connect(lambda: self._on_worker_finished(generation))
        self._workers[generation] = worker
        self._job_layers = inputs.layers
        self._step = ""
        self.progress.value = 0
        self.status.value = "computing…"
        if not self._progress_shown:
            self._progress_timer.start(self.PROGRESS_DELAY_MS)
        worker.start()

    def _on_progress(self, generation: int, progress: Progress) -> None:
        if self._dead or generation != self._generation:
            return
        self._step = progress.step
        self.progress.value = progress.percent
        if self._progress_shown and progress.done < progress.total:
            self.status.value = f"computing: {progress.step}…"

    def _show_progress(self) -> None:
        """The current computation runs long: show the bar and the step."""
        if self._dead or self.worker is None:
            return
        self._progress_shown = True
        self.progress.visible = True
        if self._step and self._step != "done":
            self.status.value = f"computing: {self._step}…"

    def _end_progress(self) -> None:
        if self._dead:
            return
        self._progress_timer.stop()
        if self._progress_shown:
            self._progress_shown = False
            self.progress.visible = False

    def _on_returned(self, generation: int, inputs, result: ComputeResult) -> None:
        if self._dead or generation != self._generation or result is None:
            return  # stale: a newer request superseded it, or the widget is gone
        if any(layer not in self._viewer.layers for layer in inputs.layers):
            return  # an input layer was removed meanwhile
        self._end_progress()
        self._apply(inputs, result, histogram_delay=self.HISTOGRAM_DELAY_MS)

    def _on_errored(self, generation: int, err: Exception) -> None:
        if self._dead or generation != self._generation:
            return
        self._end_progress()
        self._fail(err)

    def _on_worker_finished(self, generation: int) -> None:
        self._workers.pop(generation, None)
        if self._dead:
            return
        if generation == self._generation:
            self._end_progress()
        if self._pending and not self._closed and len(self._workers) < self.MAX_WORKERS:
            self._launch()

    # ------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the widget: running computations stop, and none starts until it is shown."""
        self._shutdown()
        super().close()

    def _shutdown(self) -> None:
        """Stop all work (closed, or taken out of its dock); results on their way are
        dropped. Workers stop at the end of their current step."""
        self._closed = True
        self._debounced_start.cancel()
        self._cancel_worker()
        self._end_progress()

    def _on_destroyed(self) -> None:
        """The Qt widget is gone: stop all work and let go of the viewer's events."""
        self._dead = True
        self._closed = True
        self._debounced_start.cancel()
        self._cancel_worker()
        events = self._viewer.layers.events
        for ev in (events.inserted, events.removed, events.moved):
            ev.disconnect(self._on_layers_changed)
        self._viewer.dims.events.current_step.disconnect(self._on_dims_changed)
        layer, self._watched_labels = self._watched_labels, None
        if layer is not None:
            layer.events.data.disconnect(self._on_labels_edited)
            layer.events.paint.disconnect(self._on_labels_edited)
            layer.events.set_data.disconnect(self._on_labels_refreshed)

    def _apply(self, inputs, result: ComputeResult, histogram_delay: int = 0) -> None:
        self.layers = _layers.apply_result(self._viewer, inputs, result)
        self.last_result = result
        self.last_message = ""
        self._inputs_of_last = inputs
        self._spot_index = -1
        info = self._losses[result.loss]
        self.status.value = (
            f"{info.title}: {result.value:.4g} · {result.device} · {result.seconds * 1000:.0f} ms"
        )
        n = len(result.hot_spots)
        self.hotspot_info.value = f"{n} hot-spot(s) found" if "hot_spots" in result.outputs else ""
        # after the layers are drawn, and once a burst of live results is over: the
        # histogram is not on the critical path
        self._histogram_timer.start(histogram_delay)

    # -------------------------------------------------------------------- hot-spots

    def goto_hot_spot(self, i: int) -> None:
        """Centre and zoom the camera on hot-spot ``i`` (wraps around), worst is 0."""
        result = self.last_result
        if result is None or not result.hot_spots:
            self.hotspot_info.value = "no hot-spots: compute with 'hot-spots' ticked"
            return
        spots = result.hot_spots
        i %= len(spots)
        self._spot_index = i
        spot = spots[i]
        inputs = self._inputs_of_last
        source = inputs.source
        lead = tuple(float(v) for v in inputs.index)
        scale = np.asarray(source.scale, float)
        translate = np.asarray(source.translate, float)
        centre = np.asarray(lead + spot.centroid) * scale + translate
        viewer = self._viewer
        nd = source.ndim
        offset = viewer.dims.ndim - nd
        displayed = list(viewer.dims.displayed)
        for axis in range(nd):
            if axis + offset not in displayed:
                viewer.dims.set_point(axis + offset, centre[axis])
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
        camera.center = tuple(centre[[a - offset for a in displayed if a >= offset]])
        start = np.asarray(lead + spot.bbox[0], float)
        stop = np.asarray(tuple(v + 1 for v in lead) + spot.bbox[1], float)
        extent = float(np.max(((stop - start) * scale)[-2:]))
        canvas = tuple(getattr(getattr(viewer, "canvas", None), "size", (600, 600)))
        camera.zoom = 0.25 * min(canvas) / max(extent, 10.0 * float(scale[-1]))
        self.hotspot_info.value = (
            f"hot-spot {i + 1}/{len(spots)}: peak {spot.peak:.3g}, mean {spot.mean:.3g}, "
            f"{spot.area} px"
        )

    # -------------------------------------------------------------------- histogram

    def _make_histogram(self) -> None:
        from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
        from matplotlib.figure import Figure
        from qtpy.QtWidgets import QVBoxLayout

        self._figure = Figure(figsize=(3.2, 2.4), dpi=90, layout="constrained")
        self._canvas = FigureCanvasQTAgg(self._figure)
        self._canvas.setMinimumHeight(180)
        layout = self.histogram.native.layout()
        if layout is None:
            layout = QVBoxLayout(self.histogram.native)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(self._canvas)
        self._axes = self._figure.subplots(2, 1)
        for ax in self._axes:
            ax.tick_params(labelsize=7)

    def _on_histogram_due(self) -> None:
        if self._dead or self.last_result is None:
            return
        if self.worker is not None or self._pending:  # a newer result is on its way
            self._histogram_timer.start(self.HISTOGRAM_DELAY_MS)
            return
        self._update_histogram(self.last_result)

    def _update_histogram(self, result: ComputeResult) -> None:
        ax_map, ax_obj = self._axes
        ax_map.clear()
        ax_obj.clear()
        lm = result.arrays.get("loss_map")
        if lm is not None:
            values = lm[np.isfinite(lm)].ravel()
            if values.size > 50_000:  # enough for a histogram
                values = values[:: values.size // 50_000 + 1]
            positive = not result.signed and values.size and values.min() >= 0
            ax_map.hist(values, bins=80, color="tab:orange", log=bool(positive))
            ax_map.set_title(
                "gradient ∂L/∂p per pixel" if result.signed else "loss per pixel", fontsize=8
            )
        if result.stats is not None and "mean_loss" in result.stats:
            ax_obj.hist(result.stats["mean_loss"], bins=40, color="tab:blue")
            ax_obj.set_title("mean loss per object", fontsize=8)
        for ax in self._axes:
            ax.tick_params(labelsize=7)
        self._canvas.draw_idle()
