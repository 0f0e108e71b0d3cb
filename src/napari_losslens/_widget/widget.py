"""The "Loss Lens" dock widget: controls, background work and presentation, wired together.

It holds no math and little logic of its own: :class:`~._controls.LossLensControls` declares
the controls and reads them into a request, :class:`~._orchestrator.ComputeOrchestrator`
runs requests in thread workers (the newest wins, stale work is cancelled, long work reports
progress), and :class:`~._presentation.Presenter` writes results into the plugin's layers,
the status line and the histograms. This module connects them to each other and to the
viewer: which changes start a computation, what an edit of the ground truth does, and what
closing the widget stops. ``compute()`` runs synchronously (for scripts and tests); the
Compute button and live mode go through the orchestrator.

Under stress the rules are: at most :attr:`LossLensWidget.MAX_WORKERS` workers are alive;
only the newest request's result is shown; a result whose input layer was removed is
dropped; an edit of the labels while a computation runs starts a fresh one; closing the
widget or taking it out of its dock stops all work. A computation that runs longer than
:attr:`LossLensWidget.PROGRESS_DELAY_MS` shows a progress bar, and the status line names
the step that runs.

Subwidget names are part of the scripting contract: ``labels_layer``, ``prediction_layer``,
``image_layer``, ``loss``, ``device``, ``w0``, ``sigma``, ``class_weights``, ``live``, and
``from_logits``, ``background_only``, ``separate_touching``, ``outputs``, ``stack_mode``,
``current_slice``, ``threshold``, ``hotspot_k``, ``hotspot_prev``, ``hotspot_next``,
``compute_button``, ``status``, ``progress``, ``histogram``; the compare mode's controls are
in ``compare_panel`` (:class:`~._compare_panel.ComparePanel`).
"""

from __future__ import annotations

import threading
import time
import weakref
from typing import Any

import napari
import numpy as np
from magicgui.widgets import Label
from qtpy.QtCore import QEvent, QObject
from qtpy.QtWidgets import QSizePolicy

from .. import _layers, core
from .._compute import ComputeResult, DistanceCache, InputError, Progress, StepMemo, run
from ._compare_panel import ComparePanel
from ._controls import LossLensControls
from ._orchestrator import ComputeOrchestrator
from ._presentation import Presenter
from ._recording import RecordingPanel

__all__ = ["LossLensWidget"]


_warm_up_started = threading.Event()


def _warm_kernels() -> None:
    """Compile the numba kernels and load torch's kernels on a tiny case, so that the
    first real computation never waits for compilation (4-8 s on a fresh install)."""
    labels = np.zeros((16, 16), np.int32)
    labels[2:7, 2:7], labels[8:14, 8:14] = 1, 2
    prediction = np.where(labels > 0, 0.8, 0.2).astype(np.float32)
    try:
        core.loss_map(prediction, labels, "unet_ce")
    except Exception:  # a warm-up only: the real computation reports any problem
        pass


def warm_up_in_background() -> threading.Thread | None:
    """Run :func:`_warm_kernels` in a daemon thread, once per process (None after that):
    the widget appears at once, and the kernels are ready by the first computation."""
    if _warm_up_started.is_set():
        return None
    _warm_up_started.set()
    thread = threading.Thread(target=_warm_kernels, name="losslens-warm-up", daemon=True)
    thread.start()
    return thread


class _LifecycleFilter(QObject):
    """An event filter on the widget's native QWidget that stops all work when the widget
    is closed or taken out of its dock (its parent becomes None), and lets it work again
    when shown or docked again. It holds the widget weakly and never raises (it runs inside
    Qt)."""

    def __init__(self, widget: LossLensWidget):
        super().__init__(widget.native)
        self._widget = weakref.ref(widget)
        widget.native.installEventFilter(self)

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
                w._orchestrator.reopen()  # shown again, or docked again
        return False


class LossLensWidget(LossLensControls):
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
    MAX_WORKERS = ComputeOrchestrator.MAX_WORKERS
    #: A background computation that runs longer than this (ms) shows the progress bar.
    PROGRESS_DELAY_MS = ComputeOrchestrator.PROGRESS_DELAY_MS
    #: The histogram waits until background results have stopped coming for this long (ms).
    HISTOGRAM_DELAY_MS = Presenter.HISTOGRAM_DELAY_MS

    def __init__(self, viewer: napari.viewer.Viewer):
        super().__init__(viewer)
        warm_up_in_background()
        # compare mode: several losses or two models side by side (its own worker)
        self.compare_panel = ComparePanel(viewer, self)
        self.extend(
            [Label(value="<b>Compare</b>", name="compare_heading", label=" "), self.compare_panel]
        )
        self._watched_labels = None
        self._labels_view = None
        self._memo = StepMemo()  # the last output of each step, reused while inputs stand
        self._orchestrator = ComputeOrchestrator(self, self.native)
        self._presenter = Presenter(
            viewer, self, self.native, busy=lambda: self._orchestrator.busy
        )
        self._lifecycle = _LifecycleFilter(self)
        recording = RecordingPanel(viewer)  # issue 15: shown while a recording is open
        self.append(recording)
        # the panels' combo boxes and message lines must not widen the dock either
        panel = self.compare_panel
        self.keep_narrow((panel.compare_status, recording.recording_info, recording.wrong_info))
        # the compare panel takes the width the main controls give (its rows fit in it), it
        # does not ask for more: the canvas keeps its room
        panel.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Preferred)
        self._fit_width()
        ref = weakref.ref(self)

        def on_destroyed(*_):
            widget = ref()
            if widget is not None:
                widget._on_destroyed()

        self.native.destroyed.connect(on_destroyed)

        # what starts a computation
        for widget in self.parameter_widgets():
            widget.changed.connect(self._on_parameter_changed)
        self.labels_layer.changed.connect(self._on_labels_layer_changed)
        self.compute_button.changed.connect(self._orchestrator.start)
        self.hotspot_next.changed.connect(lambda: self.goto_hot_spot(self._spot_index + 1))
        self.hotspot_prev.changed.connect(lambda: self.goto_hot_spot(self._spot_index - 1))
        events = viewer.layers.events
        for ev in (events.inserted, events.removed, events.moved):
            ev.connect(self._on_layers_changed)
        viewer.dims.events.current_step.connect(self._on_dims_changed)
        self.reset_choices()
        self._on_labels_layer_changed(self.labels_layer.value)

    # -------------------------------------------------------------- public state

    @property
    def last_result(self) -> ComputeResult | None:
        """The result shown now (None before the first one)."""
        return self._presenter.last_result

    @property
    def last_message(self) -> str:
        """The last problem reported ('' after a successful computation)."""
        return self._presenter.last_message

    @property
    def layers(self) -> dict[str, Any]:
        """The plugin's layers of the last result, by role."""
        return self._presenter.layers

    @property
    def worker(self):
        """The background worker of the newest request, while it runs (else None)."""
        return self._orchestrator.worker

    @property
    def workers(self) -> tuple:
        """Every background worker still alive (the current one and any that is stopping)."""
        return self._orchestrator.workers

    @property
    def cache(self) -> DistanceCache:
        """The distance cache of the chosen labels layer (shared with :func:`inspect`)."""
        layer = self.labels_layer.value
        return _layers.distance_cache(layer) if layer is not None else DistanceCache()

    @property
    def memo(self) -> StepMemo:
        """The steps' last outputs, reused while their inputs do not change."""
        return self._memo

    @property
    def _pending(self) -> bool:
        return self._orchestrator.pending

    @property
    def _dead(self) -> bool:
        return self._orchestrator.dead

    @property
    def _closed(self) -> bool:
        return self._orchestrator.closed

    @property
    def _spot_index(self) -> int:
        return self._presenter.spot_index

    # ----------------------------------------------------------------- compute

    def compute(self) -> ComputeResult | None:
        """Compute now and update the layers; returns the result (None after an error).

        Synchronous: for scripts, the console and tests. A running background computation
        is cancelled first.
        """
        requested = time.perf_counter()
        self._orchestrator.cancel()
        self._orchestrator.end_progress()
        try:
            inputs, request, cache = self.read_request()
            result = run(request, cache, self._memo)
        except (InputError, ValueError, TypeError) as err:
            self._presenter.fail(err)
            return None
        self._presenter.apply(inputs, result, requested)
        return result

    def goto_hot_spot(self, i: int) -> None:
        """Centre and zoom the camera on hot-spot ``i`` (wraps around), worst is 0."""
        self._presenter.goto_hot_spot(i)

    # ------------------------------------------- the orchestrator's client (Client)

    def on_request_failed(self, err: Exception) -> None:
        if self.live.value and isinstance(err, InputError):
            # live: every slider move would pop up the same dialog again (a layer that was
            # just removed, a picker that fell back to a layer that does not fit): the
            # status line says it, and the Compute button still shows a notification
            self._presenter.say(str(err))
        else:
            self._presenter.fail(err)

    def on_started(self) -> None:
        self._presenter.started(quiet=bool(self.live.value))

    def on_step(self, progress: Progress, long_running: bool) -> None:
        self._presenter.step(progress, long_running)

    def on_ready(self, inputs, progress: Progress) -> None:
        if any(layer not in self._viewer.layers for layer in inputs.layers):
            return  # an input layer was removed meanwhile
        self._presenter.apply_ready(inputs, progress.ready, progress.region, progress.signed)

    def on_long_running(self, step: str) -> None:
        self._presenter.long_running(step)

    def on_progress_end(self) -> None:
        self._presenter.progress_end()

    def on_result(self, inputs, result: ComputeResult, requested: float) -> None:
        if any(layer not in self._viewer.layers for layer in inputs.layers):
            return  # an input layer was removed meanwhile
        self._presenter.apply(inputs, result, requested, histogram_delay=self.HISTOGRAM_DELAY_MS)

    def on_error(self, err: Exception) -> None:
        self._presenter.fail(err)

    # ------------------------------------------------------------ what starts work

    def _on_parameter_changed(self, *_):
        if self.live.value and not self._closed:
            self._orchestrator.start_soon()

    def _on_dims_changed(self, *_):
        if self.live.value and self.current_slice.value and not self._closed:
            self._orchestrator.start_soon()

    def _on_layers_changed(self, event=None):
        if self._dead:
            return
        removed = (
            getattr(event, "value", None) if getattr(event, "type", "") == "removed" else None
        )
        if removed is not None and self._orchestrator.cancel_if_reading(removed):
            # its result would describe a layer that is gone: stopped and dropped
            self._presenter.stopped(removed.name)
        self.reset_choices()

    def _on_labels_layer_changed(self, layer):
        if self._dead:
            return
        self._watch_labels(layer)
        if self.live.value and not self._closed:
            self._orchestrator.start_soon()

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
        if self.live.value or self._orchestrator.busy:
            self._orchestrator.start_soon()

    def _on_labels_refreshed(self, *_event):
        """``events.set_data``: a new slice was drawn, or the same view was refreshed, which
        is how ``layer.data[...] = v; layer.refresh()`` shows an edit."""
        view = self._view_key()
        same, self._labels_view = view == self._labels_view, view
        if same:
            self._on_labels_edited()

    # ------------------------------------------------------------------- lifecycle

    def close(self) -> None:
        """Close the widget: running computations stop, and none starts until it is shown."""
        self._shutdown()
        super().close()

    def _shutdown(self) -> None:
        """Stop all work (closed, or taken out of its dock); results on their way are
        dropped. Workers stop at the end of their current step."""
        self._orchestrator.shutdown()
        self.compare_panel.stop()

    def _on_destroyed(self) -> None:
        """The Qt widget is gone: stop all work and let go of the viewer's events."""
        self._orchestrator.destroy()
        self._presenter.stop()
        self.compare_panel.stop()
        events = self._viewer.layers.events
        for ev in (events.inserted, events.removed, events.moved):
            ev.disconnect(self._on_layers_changed)
        self._viewer.dims.events.current_step.disconnect(self._on_dims_changed)
        layer, self._watched_labels = self._watched_labels, None
        if layer is not None:
            layer.events.data.disconnect(self._on_labels_edited)
            layer.events.paint.disconnect(self._on_labels_edited)
            layer.events.set_data.disconnect(self._on_labels_refreshed)
