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
from napari.utils import notifications
from qtpy.QtCore import QObject, QTimer

from .. import _layers
from .._compute import ComputeResult, InputError, Progress
from ._histograms import Histograms

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

    #: The histograms wait until background results have stopped coming for this long
    #: (ms), and then show the newest only, so that live updates are not slowed by them.
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
        #: the histograms under the controls (drawn by :meth:`update_histogram`)
        self.histograms = Histograms(controls.histogram.native)
        self._histogram_of: tuple | None = None  # what the histograms show now

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

    def started(self, quiet: bool = False) -> None:
        """A computation started; ``quiet`` (a live update) leaves the status line as it
        is: rewriting it costs a relayout of the dock (~20 ms of the main thread) right when
        the early weight map is due, and a live update that takes long enough to matter
        (``PROGRESS_DELAY_MS``) gets the progress bar and its running step anyway."""
        self._controls.progress.value = 0
        if not quiet:
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

    def apply_ready(
        self, inputs, arrays: dict[str, np.ndarray], region: tuple, signed: bool = False
    ) -> None:
        """Write outputs that are ready before the rest (the weight map, then the loss
        map) into their layers at once; the rest comes with :meth:`apply`, which does not
        write them again. ``signed``: whether the loss map can be negative."""
        if self._stopped:
            return
        self._early.update(_layers.apply_ready(self._viewer, inputs, arrays, region, signed))

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

    def stop(self) -> None:
        """No more histogram redraws (the widget is gone)."""
        self._stopped = True
        self._histogram_timer.stop()

    def _on_histogram_due(self) -> None:
        if self._stopped or self.last_result is None:
            return
        if self._busy():  # a newer result is on its way: draw that one, not this one
            self._histogram_timer.start(self.HISTOGRAM_DELAY_MS)
            return
        self.update_histogram(self.last_result)

    @staticmethod
    def _histogram_inputs(result: ComputeResult) -> tuple:
        """What the histograms of ``result`` are made of (the very objects)."""
        return (result.arrays.get("loss_map"), result.stats, result.signed)

    def update_histogram(self, result: ComputeResult) -> None:
        """Show the per-pixel and per-object histograms of ``result``.

        Nothing is redrawn when they would show what they show already: a result whose
        loss map and statistics are the very objects drawn last (steps reused from the
        memo, as when w0 or σ move for a loss that does not use the weight map).
        """
        inputs = self._histogram_inputs(result)
        drawn = self._histogram_of
        if drawn is not None and all(a is b for a, b in zip(inputs, drawn, strict=True)):
            return
        self._histogram_of = inputs
        self.histograms.show_result(result)
