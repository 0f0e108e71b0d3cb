"""What the user sees of a computation: layers, status line, progress, histograms, hot-spots.

:class:`Presenter` writes a :class:`~napari_losslens._compute.ComputeResult` into the
plugin's layers (through the one layer adapter, :mod:`napari_losslens._layers`), says what
happened in the status line (and in one notification for an error), shows the progress of a
long computation, draws the histograms once a burst of live results is over, and moves the
camera along the hot-spots. It computes nothing and starts nothing.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import napari
import numpy as np
from matplotlib.backends.backend_qtagg import FigureCanvasQTAgg
from matplotlib.figure import Figure
from napari.utils import notifications
from qtpy.QtCore import QObject, QTimer
from qtpy.QtWidgets import QVBoxLayout

from .. import _layers
from .._compute import GRADIENT_COLUMNS, ComputeResult, InputError, Progress

if TYPE_CHECKING:  # pragma: no cover
    from ._controls import LossLensControls

__all__ = ["Presenter"]


class Presenter:
    """Shows results and progress in the viewer and in the controls' display slots.

    Args:
        viewer: the napari viewer (layers, camera).
        controls: the widget's controls, whose ``status``, ``progress``, ``hotspot_info``
            and ``histogram`` it fills.
        parent: the QObject that owns the histogram timer.
        busy: whether a newer result is on its way (the histogram then waits for it).
    """

    #: The histogram (a matplotlib redraw, ~0.2 s) waits until background results have
    #: stopped coming for this long (ms), so that live updates are not slowed by it.
    HISTOGRAM_DELAY_MS = 250

    def __init__(
        self,
        viewer: napari.viewer.Viewer,
        controls: LossLensControls,
        parent: QObject,
        busy: Callable[[], bool],
    ):
        self._viewer = viewer
        self._controls = controls
        self._busy = busy
        self._titles = {key: info.title for key, info in controls._losses.items()}
        self.last_result: ComputeResult | None = None
        self.last_message = ""
        self.layers: dict[str, Any] = {}
        self.inputs_of_last = None
        self.spot_index = -1
        self._early: dict[str, tuple] = {}  # written by apply_ready since the last apply
        self._stopped = False
        self._drawn: tuple | None = None
        self._drawn_timer = QTimer(parent)
        self._drawn_timer.setSingleShot(True)
        self._drawn_timer.timeout.connect(self._on_drawn)
        self._histogram_timer = QTimer(parent)
        self._histogram_timer.setSingleShot(True)
        self._histogram_timer.timeout.connect(self._on_histogram_due)
        self._figure, self._canvas, self._axes = self._make_histogram()

    # --------------------------------------------------------------- status line

    def say(self, message: str) -> None:
        """A problem in the status line only (live mode: no pop-up)."""
        self.last_message = message
        self._controls.status.value = f"⚠ {message}"

    def fail(self, err: Exception) -> None:
        """A problem in the status line and in one error notification."""
        message = str(err) if isinstance(err, InputError) else f"Loss Lens: {err}"
        self.say(message)
        notifications.show_error(message)

    def stopped(self, layer_name: str) -> None:
        """The computation stopped because an input layer was removed."""
        self._controls.status.value = f"stopped: layer {layer_name!r} was removed"

    # ------------------------------------------------------------------ progress

    def started(self) -> None:
        self._controls.progress.value = 0
        self._controls.status.value = "computing…"

    def step(self, progress: Progress, long_running: bool) -> None:
        self._controls.progress.value = progress.percent
        if long_running and progress.done < progress.total:
            self._controls.status.value = f"computing: {progress.step}…"

    def long_running(self, step: str) -> None:
        """Show the bar and the running step."""
        self._controls.progress.visible = True
        if step and step != "done":
            self._controls.status.value = f"computing: {step}…"

    def progress_end(self) -> None:
        self._controls.progress.visible = False

    # -------------------------------------------------------------------- layers

    def apply(
        self, inputs, result: ComputeResult, requested: float, histogram_delay: int = 0
    ) -> None:
        """Write ``result`` into the plugin's layers and say what it was.

        ``requested`` is the ``time.perf_counter()`` of the change that asked for it: the
        status line gives the time from there until the layers are drawn (updated once
        the event loop has run the redraw that the new layer data queued).
        """
        last, last_inputs = self.last_result, self.inputs_of_last
        previous = None
        if last is not None and last_inputs is not None and last_inputs.source is inputs.source:
            previous = (last, tuple(last_inputs.index) + tuple(last.region))
        early, self._early = self._early, {}
        self.layers = _layers.apply_result(self._viewer, inputs, result, previous, early)
        self.last_result = result
        self.last_message = ""
        self.inputs_of_last = inputs
        self.spot_index = -1
        self._say_done(result, requested)
        self._drawn = (result, requested)
        self._drawn_timer.start(0)  # after the redraw that the new data queued
        n = len(result.hot_spots)
        self._controls.hotspot_info.value = (
            f"{n} hot-spot(s) found" if "hot_spots" in result.outputs else ""
        )
        # after the layers are drawn, and once a burst of live results is over: the
        # histogram is not on the critical path
        self._histogram_timer.start(histogram_delay)

    def apply_ready(self, inputs, arrays: dict[str, np.ndarray], region: tuple) -> None:
        """Write outputs that are ready before the rest (the weight map) into their
        layers at once; the rest comes with :meth:`apply`, which does not write them again."""
        if self._stopped:
            return
        self._early.update(_layers.apply_ready(self._viewer, inputs, arrays, region))

    # ----------------------------------------------------------------- hot-spots

    def _on_drawn(self) -> None:
        if self._drawn is not None:
            self._say_done(*self._drawn)

    def _say_done(self, result: ComputeResult, requested: float) -> None:
        if self._stopped or result is not self.last_result:
            return
        shown = (time.perf_counter() - requested) * 1000
        self._controls.status.value = (
            f"{self._titles[result.loss]}: {result.value:.4g} · {result.device} · "
            f"shown in {shown:.0f} ms (computed in {result.seconds * 1000:.0f} ms)"
        )

    def goto_hot_spot(self, i: int) -> None:
        """Centre and zoom the camera on hot-spot ``i`` (wraps around), worst is 0."""
        result = self.last_result
        info = self._controls.hotspot_info
        if result is None or not result.hot_spots:
            info.value = "no hot-spots: compute with 'hot-spots' ticked"
            return
        spots = result.hot_spots
        i %= len(spots)
        self.spot_index = i
        spot = spots[i]
        inputs = self.inputs_of_last
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
        info.value = (
            f"hot-spot {i + 1}/{len(spots)}: peak {spot.peak:.3g}, mean {spot.mean:.3g}, "
            f"{spot.area} px"
        )

    # ----------------------------------------------------------------- histogram

    def _make_histogram(self):
        # fixed margins, not a layout engine, and a fixed height, so that a status line
        # that wraps differently does not resize it: each redraw costs ~0.1 s, not ~0.8 s
        figure = Figure(figsize=(2.8, 2.4), dpi=90)
        figure.subplots_adjust(left=0.16, right=0.97, top=0.93, bottom=0.1, hspace=0.6)
        canvas = FigureCanvasQTAgg(figure)
        canvas.setFixedHeight(220)
        canvas.setMinimumWidth(120)
        canvas.setVisible(False)  # empty axes say nothing: shown with the first result
        slot = self._controls.histogram.native
        layout = slot.layout()
        if layout is None:
            layout = QVBoxLayout(slot)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.addWidget(canvas)
        axes = figure.subplots(2, 1)
        for ax in axes:
            ax.tick_params(labelsize=7)
        return figure, canvas, axes

    def stop(self) -> None:
        """No more histogram redraws (the widget is gone)."""
        self._stopped = True
        self._histogram_timer.stop()

    def _on_histogram_due(self) -> None:
        if self._stopped or self.last_result is None:
            return
        if self._busy():  # a newer result is on its way
            self._histogram_timer.start(self.HISTOGRAM_DELAY_MS)
            return
        self.update_histogram(self.last_result)

    def update_histogram(self, result: ComputeResult) -> None:
        """Redraw the per-pixel and per-object histograms of ``result``."""
        ax_map, ax_obj = self._axes
        ax_map.clear()
        ax_obj.clear()
        lm = result.arrays.get("loss_map")
        ax_map.set_visible(lm is not None)
        if lm is not None:
            values = lm[np.isfinite(lm)].ravel()
            if values.size > 50_000:  # enough for a histogram
                values = values[:: values.size // 50_000 + 1]
            positive = not result.signed and values.size and values.min() >= 0
            ax_map.hist(values, bins=80, color="tab:orange", log=bool(positive))
            ax_map.set_title(
                "gradient ∂L/∂p per pixel" if result.signed else "loss per pixel", fontsize=8
            )
            if not positive:
                ax_map.axvline(0.0, color="0.5", lw=0.8)
        column, title = self._object_column(result)
        ax_obj.set_visible(column is not None)
        if column is not None:
            values = np.asarray(result.stats[column], float)
            values = values[np.isfinite(values)]
            if values.size and values.min() > 0 and values.max() > 10 * values.min():
                # heavy-tailed (a few bad objects): bins even in log10 (a log axis would
                # cost a mathtext tick layout, ~0.5 s, on every redraw)
                values = np.log10(values)
                ax_obj.set_xlabel("log10", fontsize=7)
            ax_obj.hist(values, bins=30, color="tab:blue")
            ax_obj.set_title(title, fontsize=8)
        for ax in self._axes:
            ax.tick_params(labelsize=7)
        self._canvas.setVisible(lm is not None or column is not None)
        self._canvas.draw_idle()

    @staticmethod
    def _object_column(result: ComputeResult) -> tuple[str | None, str]:
        """The per-object column to plot, and its honest title."""
        stats = result.stats
        if stats is None:
            return None, ""
        if GRADIENT_COLUMNS["mean_loss"] in stats:
            return GRADIENT_COLUMNS["mean_loss"], "mean |∂L/∂p| per object"
        if "mean_loss" in stats:
            return "mean_loss", "mean loss per object"
        return None, ""
