"""The widget's controls: what the user sets, and what it amounts to.

:class:`LossLensControls` declares every control (the layer pickers, the loss and its own
parameters built from the registry, the U-Net weight map, the outputs, the run buttons, and
the status, progress and histogram slots that the presentation fills), lays them out, keeps
the layer pickers in step with the layer list, and reads everything into a
:class:`~napari_losslens._compute.ComputeRequest` (:meth:`LossLensControls.read_request`).
It starts no work and draws no result.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

import napari
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
from napari.utils import notifications
from qtpy.QtCore import Qt, QTimer
from qtpy.QtWidgets import QComboBox, QDockWidget, QFrame, QMainWindow, QSizePolicy

from .. import _layers, core
from .._compute import (
    OUTPUTS,
    WEIGHT_PARAMS,
    ComputeRequest,
    DistanceCache,
    InputError,
    WeightParams,
    looks_like_probabilities,
)

if TYPE_CHECKING:  # pragma: no cover
    from .._layers import LayerInputs

__all__ = ["DEFAULT_OUTPUTS", "OUTPUT_LABELS", "LossLensControls", "MissingLayer"]

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


class MissingLayer(InputError):
    """No ground truth or no prediction chosen (in live mode: a status line, no pop-up)."""


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


def _is_tiny(p) -> bool:
    """A float default too small for a spin box's decimals (such as ``smooth = 1e-6``)."""
    return p.kind == "float" and p.default != 0 and abs(float(p.default)) < 0.01


def _typed_names(losses) -> set[str]:
    """Parameter names typed as numbers in a text field for every loss that has them: one
    kind of control per name (Dice's ``smooth`` and Tversky's look the same). A name whose
    kind differs between losses (an int ``k`` here, a float ``k`` there) is typed too."""
    kinds: dict[str, set[str]] = {}
    for info in losses.values():
        for p in info.params:
            kinds.setdefault(p.name, set()).add(p.kind)
    return {
        p.name
        for info in losses.values()
        for p in info.params
        if _is_tiny(p) or p.kind not in ("bool", "int", "float") or len(kinds[p.name]) > 1
    }


def _param_control(info_name: str, p, typed: bool = False) -> Any:
    """A magicgui control for one registry parameter (see :class:`core.LossParam`);
    ``typed``: a text field where a number is typed (``1e-6``)."""
    name = f"{info_name}_{p.name}"
    tip = p.description
    if p.kind == "bool" and not typed:
        return CheckBox(name=name, text=p.name, value=bool(p.default), tooltip=tip)
    if p.kind == "int" and not typed:
        return SpinBox(
            name=name,
            label=p.name,
            value=int(p.default),
            tooltip=tip,
            min=int(p.minimum) if p.minimum is not None else -(10**9),
            max=int(p.maximum) if p.maximum is not None else 10**9,
        )
    if p.kind == "float" and not typed and not _is_tiny(p):
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


_TIME_NAMES = ("t", "time", "frame", "frames", "timepoint")
_Z_NAMES = ("z", "depth", "plane", "slice")


def _stack_default(layer, viewer) -> tuple[str, str]:
    """``(stack_mode, hint)`` for a labels layer of 3 or more dimensions.

    The leading axis (of the last three) is time when the layer or the viewer labels it so
    (``t``, ``time``, ``frame``...), z when labelled ``z`` or given a scale of its own;
    unlabelled with equal scales the data cannot tell: a volume, with a hint to choose
    frames for a time-lapse.
    """
    lead = layer.ndim - 3
    known = _TIME_NAMES + _Z_NAMES
    layer_names = [str(n).lower() for n in getattr(layer, "axis_labels", ())]
    viewer_names = [str(n).lower() for n in viewer.dims.axis_labels][-layer.ndim :]
    name = next(
        (
            names[lead]
            for names in (layer_names, viewer_names)
            if len(names) == layer.ndim and names[lead] in known
        ),
        "",
    )
    axis = f"axis {lead}"
    if name in _TIME_NAMES:
        return "frames", f"{axis} is '{name}': each 2D frame is its own image."
    if name in _Z_NAMES:
        return "volume", f"{axis} is '{name}': distances are 3D (in world units)."
    scale = [float(v) for v in layer.scale][-3:]
    if scale[0] != scale[1] and scale[1] == scale[2]:
        return "volume", f"{axis} has a scale of its own ({scale[0]:g}): read as z."
    return (
        "volume",
        f"{axis} read as z (3D distances); for a 2D + time stack choose 'independent 2D frames'.",
    )


def _device_choices() -> list[str]:
    # torch is imported here, not at the top: it is slow to import and only the device
    # list needs it (the computation itself goes through core, which imports it lazily)
    import torch

    n = torch.cuda.device_count() if torch.cuda.is_available() else 0
    return ["auto", "cpu", *(f"cuda:{i}" for i in range(n))]


def _is_output(layer) -> bool:
    """A layer the plugin wrote (an output, not an array input of the console API)."""
    mark = layer.metadata.get(_layers.OWNER) if isinstance(layer.metadata, dict) else None
    return isinstance(mark, dict) and not str(mark.get("role", "")).startswith("input:")


class LossLensControls(Container):
    """Every control of the Loss Lens widget, laid out, with the layer pickers kept in step
    with the viewer's layer list. Reads into a request; starts nothing.

    Args:
        viewer: the napari viewer whose layers the pickers offer.
    """

    def __init__(self, viewer: napari.viewer.Viewer):
        # scrollable: the controls are taller than a laptop screen (768 px)
        super().__init__(labels=True, scrollable=True)
        self._viewer = viewer
        scroll = self.root_native_widget
        scroll.setFrameShape(QFrame.Shape.NoFrame)

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
        self._losses = core.available_losses()
        self.loss = ComboBox(
            name="loss",
            label="loss",
            choices=[(info.title, key) for key, info in self._losses.items()],
            value="unet_ce" if "unet_ce" in self._losses else next(iter(self._losses)),
        )
        self._param_widgets: dict[str, dict[str, Any]] = {}
        param_boxes = []
        typed = _typed_names(self._losses)
        for key, info in self._losses.items():
            controls = {
                p.name: _param_control(key, p, p.name in typed)
                for p in info.params
                if p.gui and p.name not in WEIGHT_PARAMS
            }
            self._param_widgets[key] = controls
            box = Container(
                name=f"{key}_params", label=" ", widgets=list(controls.values()), labels=True
            )
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
        self.device = ComboBox(name="device", label="device", choices=_device_choices())
        self.outputs = _Outputs(name="outputs")
        self.stack_mode = ComboBox(
            name="stack_mode",
            label="stacks",
            choices=[
                ("3D volume (distances in 3D)", "volume"),
                ("independent 2D frames", "frames"),
            ],
        )
        self.stack_hint = Label(name="stack_hint", value="", label=" ", visible=False)
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
        self.hotspot_prev = PushButton(name="hotspot_prev", text="◀ previous")
        self.hotspot_next = PushButton(name="hotspot_next", text="next ▶")
        self.hotspot_info = Label(name="hotspot_info", value="", label=" ")
        # run, and the slots the presentation fills
        self.compute_button = PushButton(name="compute_button", text="Compute")
        self.live = CheckBox(name="live", text="live (recompute on every change)")
        self.status = Label(name="status", value="", label=" ")
        self.progress = ProgressBar(
            name="progress", label=" ", min=0, max=100, value=0, visible=False
        )
        self.histogram = EmptyWidget(name="histogram", label=" ")

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
                self.stack_hint,
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
        self.keep_narrow((self.status, self.hotspot_info, self.stack_hint))
        self._show_loss_params()
        self._fit_timer = QTimer(self.root_native_widget)  # dies with the widget
        self._fit_timer.setSingleShot(True)
        self._fit_timer.timeout.connect(self._fit_dock)
        self._fit_timer.start(0)  # once docked and polished (sizes are known then)
        self.loss.changed.connect(self._show_loss_params)
        self.class_weights.changed.connect(self._on_class_weights_changed)
        self.prediction_layer.changed.connect(self._on_prediction_changed)
        self.labels_layer.changed.connect(self._suggest_stack_mode)
        self._suggest_stack_mode(self.labels_layer.value)

    @property
    def native(self):
        """The scroll area around the controls: what napari docks.

        magicgui's ``native`` of a scrollable container is the inner widget, and napari
        docks ``native``; the inner widget would leave its scroll area behind.
        """
        return self.root_native_widget

    def keep_narrow(self, labels=()) -> None:
        """Keep the dock narrow whatever the controls show: every combo box (those added
        since included, unless narrowed already) as wide as 10 characters, not as its
        longest choice (a loss's title, a layer's name), and each of ``labels`` (message
        lines) wrapping a long message instead of widening the dock, so that the canvas
        keeps its room."""
        for combo in self.root_native_widget.widget().findChildren(QComboBox):
            if combo.minimumContentsLength() > 0:
                continue  # narrowed already by its panel
            combo.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            combo.setMinimumContentsLength(10)
        for label in labels:
            label.native.setWordWrap(True)
            label.native.setSizePolicy(
                QSizePolicy.Policy.Ignored, QSizePolicy.Policy.MinimumExpanding
            )

    # ---------------------------------------------------------------- layer choices

    def _inputs(self, types):
        wanted = tuple(getattr(napari.layers, t) for t in types)
        return [
            layer
            for layer in self._viewer.layers
            if isinstance(layer, wanted) and not _is_output(layer)
        ]

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

    def reset_choices(self, *_):
        super().reset_choices()
        self._on_prediction_changed()

    def _on_prediction_changed(self, *_):
        """A layer chosen as the prediction is not also the optional "image"."""
        pred = self.prediction_layer.value
        if self.image_layer.value is None or self.image_layer.value is pred:
            others = [layer for _, layer in self._image_choices() if layer is not pred]
            self.image_layer.value = others[0] if others else None

    def _suggest_stack_mode(self, layer=None, *_):
        """For a stack, read the leading axis as time (independent frames) when it is
        labelled so, else as z (a volume), and say which in a hint under the choice; for
        a 2D layer hide the stack controls."""
        is_stack = layer is not None and layer.ndim >= 3
        # a 2D image has no stack to read: the choices would only puzzle
        self.stack_mode.visible = is_stack
        self.current_slice.visible = is_stack
        if not is_stack:
            self.stack_hint.visible = False
            return
        mode, hint = _stack_default(layer, self._viewer)
        self.stack_mode.value = mode
        self.stack_hint.value = hint
        self.stack_hint.visible = True

    # ------------------------------------------------------------------- controls

    def parameter_widgets(self):
        """Every control whose change alters the result (what live mode listens to)."""
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
        self._fit_width()

    def _fit_dock(self) -> None:
        """Once, after docking: the dock about as narrow as the controls allow (napari
        sized it before the controls were polished, from their wider unpolished hints)."""
        self._fit_width()
        scroll = self.root_native_widget
        dock = scroll.parent()
        window = dock.parent() if isinstance(dock, QDockWidget) else None
        if isinstance(window, QMainWindow):
            dock.setMinimumWidth(scroll.minimumWidth())  # napari copied the unpolished one
            width = scroll.minimumWidth() + 10  # narrow: the canvas is what matters
            window.resizeDocks([dock], [width], Qt.Orientation.Horizontal)

    def _fit_width(self) -> None:
        """The scroll area as narrow as the rows shown allow (magicgui fixed its minimum
        while the rows were added, every loss's parameters included)."""
        inner = self.root_native_widget.widget()
        inner.layout().activate()
        self.root_native_widget.setMinimumWidth(inner.minimumSizeHint().width() + 20)

    def _on_class_weights_changed(self, value):
        custom = value == "custom"
        self.w_background.visible = custom
        self.w_foreground.visible = custom

    # ---------------------------------------------------------------- reading

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

    def read_request(self) -> tuple[LayerInputs, ComputeRequest, DistanceCache]:
        """Read the layers and the controls (main thread): ``(inputs, request, cache)``.

        Raises:
            MissingLayer: no ground truth or no prediction chosen.
            InputError: layers that do not fit together, or a parameter that is no value.
        """
        labels, pred = self.labels_layer.value, self.prediction_layer.value
        if labels is None and pred is None:
            raise MissingLayer(
                "No layers to compare: open a sample (File > Open Sample > napari-losslens) "
                "or add a Labels layer of ground truth and an Image layer of predictions."
            )
        if labels is None:
            raise MissingLayer("No ground truth: add or choose a Labels layer.")
        if pred is None:
            raise MissingLayer(
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
            notifications.show_warning(
                "The prediction lies in [0, 1] but 'prediction holds logits' is ticked: "
                "untick it if these are probabilities."
            )
        return inputs, request, _layers.distance_cache(labels)
