"""What the user sees of a computation: layers, status line, progress, histograms, hot-spots.

:class:`Presenter` writes a :class:`~napari_losslens._compute.ComputeResult` into the
plugin's layers (through the one layer adapter, :mod:`napari_losslens._layers`), says what
happened in the status line (and in one notification for an error), shows the progress of a
long computation, draws the histograms once a burst of live results is over, and moves the
camera along the hot-spots. It computes nothing and starts nothing.
"""

from __future__ import annotations

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
from .._compute import ComputeResult, InputError, Progress

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
        self._stopped = False
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

    def apply(self, inputs, result: ComputeResult, histogram_delay: int = 0) -> None:
        """Write ``result`` into the plugin's layers and say what it was."""
        self.layers = _layers.apply_result(self._viewer, inputs, result)
        self.last_result = result
        self.last_message = ""
        self.inputs_of_last = inputs
        self.spot_index = -1
        c = self._controls
        c.status.value = (
            f"{self._titles[result.loss]}: {result.value:.4g} · {result.device} · "
            f"{result.seconds * 1000:.0f} ms"
        )
        n = len(result.hot_spots)
        c.hotspot_info.value = f"{n} hot-spot(s) found" if "hot_spots" in result.outputs else ""
        # after the layers are drawn, and once a burst of live results is over: the
        # histogram is not on the critical path
        self._histogram_timer.start(histogram_delay)

    # ----------------------------------------------------------------- hot-spots

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
        figure = Figure(figsize=(3.2, 2.4), dpi=90, layout="constrained")
        canvas = FigureCanvasQTAgg(figure)
        canvas.setMinimumHeight(180)
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
