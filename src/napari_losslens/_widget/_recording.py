"""The widget's panel for a training recording: the table at a step, an object's loss
over the steps, and the objects that stay wrong.

:class:`RecordingPanel` reads a ``*.losslens.zarr`` store opened by the reader
(:mod:`napari_losslens._reader`) through the analysis functions of
:mod:`napari_losslens.training`, and shows:

- the per-object table (:func:`~napari_losslens.training.table_at_step`) of the step under
  the dims slider on the target labels layer's ``features``, replaced in place when the
  slider moves (napari shows it in the status bar, and it is what the layer's features
  table widgets read);
- a matplotlib plot of the mean loss over the steps
  (:func:`~napari_losslens.training.object_history`) of the object under the mouse, or,
  when the mouse is over no object, of the target layer's selected label, with a line at
  the current step;
- the ranking of the objects that stay wrong
  (:func:`~napari_losslens.training.objects_that_stay_wrong`: the loss integrated over the
  steps), with buttons that move the camera from one to the next, like the hot-spot tour;
- a refresh button (:func:`~napari_losslens._reader.refresh_recordings`) for a store that
  training is still writing.

**How it is hooked in.** The panel is a part of the "Loss Lens" dock widget (the issue asks
for this "in the widget"): :class:`~.widget.LossLensWidget` appends it at the bottom, and it
shows itself only while a recording's target layer is in the viewer, so the widget looks as
before for users who never record. It keeps its own connections to the viewer and lets go of
them when its Qt widget is destroyed, so the main widget does nothing else for it (two lines
there). It also works on its own: ``viewer.window.add_dock_widget(RecordingPanel(viewer))``.

**Threads.** The ranking and the histories read every recorded step of the per-object
columns: with one zarr chunk per step that is a few thousand small files for a long run, so
they are read in a napari thread worker (the newest load wins). The table at one step reads
four one-chunk rows, as cheap as the image chunk napari reads on the same slider move, so it
is read in the slider's callback, on the main thread.
"""

from __future__ import annotations

import weakref
from typing import Any

import napari
import numpy as np
from magicgui.widgets import ComboBox, Container, EmptyWidget, Label, PushButton, Select, SpinBox
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.qt.threading import create_worker
from napari.utils import notifications
from qtpy.QtWidgets import QVBoxLayout

from .._reader import RECORDING, refresh_recordings
from ..training import (
    ObjectHistory,
    Recording,
    object_history,
    objects_that_stay_wrong,
    table_at_step,
)

__all__ = ["RecordingPanel", "recording_targets"]


def _mark(layer) -> dict[str, Any] | None:
    meta = getattr(layer, "metadata", None)
    return meta.get(RECORDING) if isinstance(meta, dict) else None


def recording_targets(viewer: napari.viewer.Viewer) -> list:
    """The target labels layers of the recordings open in ``viewer``, in layer-list order."""
    return [
        layer
        for layer in viewer.layers
        if isinstance(layer, napari.layers.Labels)
        and (_mark(layer) or {}).get("array") == "target"
    ]


def _load(path: str, sample: str, k: int) -> dict[str, Any]:
    """Everything of a sample that reads all the steps (run in a thread worker)."""
    rec = Recording(path)
    steps, ids, values = object_history(rec, sample, column="mean_loss")
    return {
        "recording": rec,
        "sample": sample,
        "ranking": objects_that_stay_wrong(rec, sample, k) if len(ids) else [],
        "steps": steps,
        "ids": ids,
        "mean_loss": values,
        "target": rec.read(sample, "target"),
    }


class RecordingPanel(Container):
    """The recording part of the Loss Lens widget (see the module docstring).

    Subwidget names (the scripting contract): ``recording_layer`` (the target layer of the
    recording shown), ``refresh_button``, ``recording_info``, ``curve`` (the plot's slot),
    ``wrong_k``, ``wrong_list``, ``wrong_prev``, ``wrong_next``, ``wrong_info``.

    Args:
        viewer: the napari viewer.

    Example (napari console)::

        viewer.open("run.losslens.zarr", plugin="napari-losslens")
        panel = RecordingPanel(viewer)
        viewer.window.add_dock_widget(panel, name="Loss Lens recording")
        panel.goto_object(0)  # the object that stayed wrong longest
    """

    _EMPTY_TITLE = "hover over an object: its loss over the steps"

    def __init__(self, viewer: napari.viewer.Viewer):
        self._viewer = viewer
        self.recording_layer = ComboBox(
            name="recording_layer", label="recording", choices=self._target_choices, nullable=True
        )
        self.refresh_button = PushButton(name="refresh_button", text="refresh: show new steps")
        self.recording_info = Label(name="recording_info", value="", label=" ")
        self.curve = EmptyWidget(name="curve", label=" ")
        self.wrong_k = SpinBox(name="wrong_k", label="stay wrong", value=10, min=1, max=200)
        self.wrong_list = Select(name="wrong_list", label=" ", choices=[])
        self.wrong_prev = PushButton(name="wrong_prev", text="◀ previous object")
        self.wrong_next = PushButton(name="wrong_next", text="next object ▶")
        self.wrong_info = Label(name="wrong_info", value="", label=" ")
        super().__init__(
            name="recording",
            label="training recording",
            widgets=[
                self.recording_layer,
                self.refresh_button,
                self.recording_info,
                self.curve,
                self.wrong_k,
                self.wrong_list,
                Container(
                    name="wrong_buttons",
                    layout="horizontal",
                    widgets=[self.wrong_prev, self.wrong_next],
                    labels=False,
                    label=" ",
                ),
                self.wrong_info,
            ],
        )
        self.margins = (0, 0, 0, 0)
        self.wrong_list.native.setMinimumHeight(90)

        self._data: dict[str, Any] | None = None  # what _load returned, for the layer shown
        self._generation = 0  # the newest load; older ones are dropped
        self._worker = None
        self._step_index: int | None = None
        self._object: int | None = None  # the object whose curve is drawn
        self._hover: int = 0  # the object under the mouse (0: none)
        self._watched = None  # the target layer whose selected label is followed
        self._touring = False
        self.tour_index = -1
        self._figure, self._canvas, self._axes = self._make_plot()

        self.recording_layer.changed.connect(self._on_layer_changed)
        self.refresh_button.changed.connect(self.refresh)
        self.wrong_k.changed.connect(self._on_k_changed)
        self.wrong_list.changed.connect(self._on_list_changed)
        self.wrong_next.changed.connect(lambda: self.goto_object(self.tour_index + 1))
        self.wrong_prev.changed.connect(lambda: self.goto_object(self.tour_index - 1))
        self._connect_viewer(connect=True)
        ref = weakref.ref(self)

        def on_destroyed(*_):
            panel = ref()
            if panel is not None:
                panel._on_destroyed()

        self.native.destroyed.connect(on_destroyed)
        self._on_layers_changed()

    # ------------------------------------------------------------------ state

    @property
    def recording(self) -> Recording | None:
        """The recording shown (None until it is loaded, or without one)."""
        return self._data["recording"] if self._data else None

    @property
    def sample(self) -> str | None:
        """The sample shown."""
        return self._data["sample"] if self._data else None

    @property
    def ranking(self) -> list[ObjectHistory]:
        """The objects that stay wrong, as listed (empty until loaded)."""
        return list(self._data["ranking"]) if self._data else []

    @property
    def step(self) -> int | None:
        """The training step whose table is on the target layer (None without one)."""
        if not self._data or self._step_index is None:
            return None
        return int(self._data["steps"][self._step_index])

    @property
    def curve_object(self) -> int | None:
        """The label id whose loss curve is drawn (None: none)."""
        return self._object

    @property
    def curve_axes(self):
        """The matplotlib axes of the loss-over-steps plot."""
        return self._axes

    @property
    def loading(self) -> bool:
        """Whether a recording is being read in the background."""
        return self._worker is not None

    # ------------------------------------------------------------ connections

    def _connect_viewer(self, connect: bool) -> None:
        viewer = self._viewer
        pairs = [
            (viewer.layers.events.inserted, self._on_layers_changed),
            (viewer.layers.events.removed, self._on_layers_changed),
            (viewer.dims.events.current_step, self._on_step_changed),
            (viewer.cursor.events.position, self._on_cursor_moved),
        ]
        for event, callback in pairs:
            (event.connect if connect else event.disconnect)(callback)

    def _watch(self, layer) -> None:
        old, self._watched = self._watched, layer
        if old is not None:
            old.events.selected_label.disconnect(self._on_selected_label)
        if layer is not None:
            layer.events.selected_label.connect(self._on_selected_label)

    def _on_destroyed(self) -> None:
        self._generation += 1  # a load on its way is dropped
        self._connect_viewer(connect=False)
        self._watch(None)

    def _target_choices(self, _widget=None) -> list[tuple[str, Any]]:
        return [(layer.name, layer) for layer in recording_targets(self._viewer)]

    def _on_layers_changed(self, *_event) -> None:
        self.recording_layer.reset_choices()
        targets = recording_targets(self._viewer)
        self.visible = bool(targets)
        if self.recording_layer.value is None and targets:
            self.recording_layer.value = targets[-1]  # the newest recording
        elif not targets:
            self._on_layer_changed(None)

    # ---------------------------------------------------------------- loading

    def _on_layer_changed(self, layer) -> None:
        self._watch(layer)
        self._data = None
        self._step_index = None
        self._object = None
        self.tour_index = -1
        self.wrong_list.choices = []
        self.wrong_info.value = ""
        self._draw_curve()
        if layer is None:
            self.recording_info.value = ""
            return
        self.reload()

    def _on_k_changed(self, *_):
        if self.recording_layer.value is not None:
            self.reload()

    def reload(self) -> None:
        """Read the chosen recording again (in the background) and show it."""
        layer = self.recording_layer.value
        if layer is None:
            return
        mark = _mark(layer)
        self._generation += 1
        generation = self._generation
        self.recording_info.value = "reading the recording…"
        worker = create_worker(
            _load, mark["path"], mark["sample"], int(self.wrong_k.value), _start_thread=False
        )
        worker.returned.connect(lambda data: self._on_loaded(generation, layer, data))
        worker.errored.connect(lambda err: self._on_load_failed(generation, err))
        worker.finished.connect(lambda: self._on_worker_finished(worker))
        self._worker = worker
        worker.start()

    def _on_worker_finished(self, worker) -> None:
        if self._worker is worker:
            self._worker = None

    def _on_load_failed(self, generation: int, err: Exception) -> None:
        if generation != self._generation:
            return
        message = f"Loss Lens: cannot read the recording: {err}"
        self.recording_info.value = f"⚠ {message}"
        notifications.show_error(message)

    def _on_loaded(self, generation: int, layer, data: dict[str, Any]) -> None:
        if generation != self._generation or layer is not self.recording_layer.value:
            return  # a newer load was asked for, or another recording chosen
        self._data = data
        rec = data["recording"]
        steps = data["steps"]
        span = f"steps {steps[0]}–{steps[-1]}" if len(steps) else "no step"
        self.recording_info.value = (
            f"{rec.loss} · {len(steps)} recorded step(s), {span} · {len(data['ids'])} objects"
        )
        ranking = data["ranking"]
        self.tour_index = -1
        self._touring = True
        try:
            self.wrong_list.choices = [
                (
                    f"{o.rank}. object {o.id}: ∫loss {o.score:.3g}, "
                    f"last loss {o.final_loss:.3g}, Dice {o.final_dice:.2f}",
                    o.rank - 1,
                )
                for o in ranking
            ]
        finally:
            self._touring = False
        self.wrong_info.value = f"{len(ranking)} object(s) ranked" if ranking else ""
        self._step_index = None
        self._on_step_changed()
        if self._object is not None and self._object not in data["ids"]:
            self._object = None
        self._draw_curve()

    def refresh(self) -> dict[str, int]:
        """Show the steps written since the recordings were opened (every recording layer in
        the viewer, through :func:`~napari_losslens._reader.refresh_recordings`), and read
        this panel's recording again.

        Returns:
            What ``refresh_recordings`` returned: for each store, the steps now shown.
        """
        try:
            shown = refresh_recordings(self._viewer)
        except (OSError, ValueError, KeyError) as err:
            message = f"Loss Lens: cannot refresh the recordings: {err}"
            self.recording_info.value = f"⚠ {message}"
            notifications.show_error(message)
            return {}
        self.reload()
        return shown

    # -------------------------------------------------------------- the step

    def _step_axis(self) -> int | None:
        rec = self.recording
        if rec is None:
            return None
        axis = self._viewer.dims.ndim - rec.ndim - 1
        return axis if axis >= 0 else None

    def _on_step_changed(self, *_event) -> None:
        data = self._data
        layer = self.recording_layer.value
        if data is None or layer is None or not len(data["steps"]):
            return
        axis = self._step_axis()
        n = len(data["steps"])
        if axis is None:  # no layer with a step axis: the last step
            index = n - 1
        else:
            index = int(np.clip(round(self._viewer.dims.point[axis]), 0, n - 1))
        if index == self._step_index:
            return
        self._step_index = index
        layer.features = table_at_step(
            data["recording"], data["sample"], int(data["steps"][index])
        )
        self._draw_step_marker()

    # ------------------------------------------------------------ the object

    def _object_at(self, position) -> int:
        """The label id of the target under a world position (0: none)."""
        layer = self.recording_layer.value
        data = self._data
        if layer is None or data is None:
            return 0
        if self._viewer.dims.ndisplay == 3:  # along the view ray: napari's own picking
            value = layer.get_value(
                position,
                view_direction=self._viewer.cursor._view_direction,
                dims_displayed=list(self._viewer.dims.displayed),
                world=True,
            )
            return int(value) if value is not None else 0
        target = data["target"]
        coords = np.round(np.asarray(layer.world_to_data(position))[-target.ndim :]).astype(int)
        if np.any(coords < 0) or np.any(coords >= target.shape):
            return 0
        return int(target[tuple(coords)])

    def _on_cursor_moved(self, *_event) -> None:
        if self._data is None or not self.visible:
            return
        label = self._object_at(self._viewer.cursor.position)
        if label == self._hover:
            return
        self._hover = label
        if label and label in self._data["ids"]:
            self.show_object(label)

    def _on_selected_label(self, *_event) -> None:
        layer = self.recording_layer.value
        if layer is not None and not self._hover:
            self.show_object(int(layer.selected_label))

    def show_object(self, label: int) -> None:
        """Plot the mean loss over the steps of object ``label`` of the target.

        A label that is not an object of the target (the background, or a painted one)
        clears the plot.
        """
        if self._data is None:
            return
        label = int(label)
        self._object = label if label in self._data["ids"] else None
        self._draw_curve()

    # ------------------------------------------------------------------ tour

    def _on_list_changed(self, value) -> None:
        if self._touring or not value:
            return
        self.goto_object(int(value[0]))

    def goto_object(self, i: int) -> None:
        """Centre and zoom the camera on the ``i``-th object that stays wrong (wraps around;
        0 is the worst), select its label on the target layer and plot its curve."""
        ranking = self.ranking
        layer = self.recording_layer.value
        if not ranking or layer is None:
            self.wrong_info.value = "no object to show: no recording, or no object in it"
            return
        i %= len(ranking)
        self.tour_index = i
        obj = ranking[i]
        viewer = self._viewer
        scale = np.asarray(layer.scale, float)
        translate = np.asarray(layer.translate, float)
        centre = np.asarray(obj.centroid) * scale + translate
        nd = layer.ndim
        offset = viewer.dims.ndim - nd
        displayed = list(viewer.dims.displayed)
        for axis in range(nd):
            if axis + offset not in displayed:  # a 3D target seen in 2D: go to its plane
                viewer.dims.set_point(axis + offset, centre[axis])
        camera = viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera
        camera.center = tuple(centre[[a - offset for a in displayed if a >= offset]])
        start, stop = (np.asarray(b, float) for b in obj.bbox)
        extent = float(np.max(((stop - start) * scale)[-2:]))
        canvas = tuple(getattr(getattr(viewer, "canvas", None), "size", (600, 600)))
        # the object and its neighbourhood: eight times its size, at least 64 pixels across
        camera.zoom = min(canvas) / max(8.0 * extent, 64.0 * float(scale[-1]))
        self._touring = True
        try:
            self.wrong_list.value = [i]
            layer.selected_label = obj.id
        finally:
            self._touring = False
        self._hover = 0
        self.show_object(obj.id)
        self.wrong_info.value = (
            f"object {i + 1}/{len(ranking)}: id {obj.id}, {obj.area} px, "
            f"last loss {obj.final_loss:.3g}, Dice {obj.final_dice:.2f}"
        )

    # ------------------------------------------------------------------ plot

    def _make_plot(self):
        """A matplotlib canvas in the ``curve`` slot (as the histograms of the main widget)."""
        figure = Figure(figsize=(3.2, 2.0), dpi=90, layout="constrained")
        canvas = FigureCanvasQTAgg(figure)
        canvas.setMinimumHeight(150)
        slot = self.curve.native
        layout = slot.layout()
        if layout is None:
            layout = QVBoxLayout(slot)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(canvas)
        axes = figure.subplots()
        axes.tick_params(labelsize=7)
        axes.set_title(self._EMPTY_TITLE, fontsize=8)
        self._empty_plot = True
        return figure, canvas, axes

    def _draw_curve(self) -> None:
        ax = self._axes
        data = self._data
        empty = data is None or self._object is None or not len(data["steps"])
        if empty and self._empty_plot:
            return  # nothing to redraw (and no redraw queued for a canvas about to go)
        ax.clear()
        ax.tick_params(labelsize=7)
        self._empty_plot = empty
        if empty:
            ax.set_title(self._EMPTY_TITLE, fontsize=8)
            self._canvas.draw_idle()
            return
        steps = data["steps"]
        ids = data["ids"]
        values = data["mean_loss"][:, int(np.searchsorted(ids, self._object))]
        if len(ids) > 1:
            ax.plot(
                steps,
                np.median(data["mean_loss"], axis=1),
                color="0.6",
                lw=1,
                label="median object",
            )
        ax.plot(steps, values, color="tab:red", marker=".", lw=1.5, label=f"object {self._object}")
        if self._step_index is not None:
            ax.axvline(steps[self._step_index], color="0.3", lw=0.8, ls="--", label="_step")
        ax.set_title(f"object {self._object}: mean loss over the steps", fontsize=8)
        ax.set_xlabel("training step", fontsize=7)
        ax.legend(fontsize=6, loc="best")
        self._canvas.draw_idle()

    @property
    def curve_line(self):
        """The plotted line of the object's loss (None when no object is drawn)."""
        for line in self._axes.get_lines():
            if line.get_label().startswith("object "):
                return line
        return None

    def _draw_step_marker(self) -> None:
        data = self._data
        if data is None or self._step_index is None:
            return
        for line in self._axes.get_lines():
            if line.get_label() == "_step":
                x = data["steps"][self._step_index]
                line.set_xdata([x, x])
                self._canvas.draw_idle()
                return
        if self._object is not None:
            self._draw_curve()
