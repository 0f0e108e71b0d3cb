"""The background computations: start, cancel, newest wins, progress.

:class:`ComputeOrchestrator` runs :func:`~napari_losslens._compute.run_steps` in thread
workers. Its rules:

- **Newest wins.** Every request gets a new generation number; a running worker is told to
  quit (it stops at the end of its current step) and whatever it still sends is dropped,
  since its generation is no longer the current one.
- **Bounded.** At most :attr:`ComputeOrchestrator.MAX_WORKERS` workers are alive (the
  current one and one that is stopping). A request beyond that waits, and starts with the
  then current parameters when one ends, so a burst of changes never piles up workers.
- **Progress.** A computation that runs longer than
  :attr:`ComputeOrchestrator.PROGRESS_DELAY_MS` is reported as long (the presentation then
  shows a bar and the running step).
- **Early outputs.** An output that is final before the computation ends (the weight map,
  what a w0/σ slider changes, then the loss map) is handed to the client at once, the
  rest when it is done; not when a newer change already waits (in a burst, it would soon
  be replaced). The worker waits until the main thread has taken it (at most
  :attr:`ComputeOrchestrator.READY_WAIT_S`) before its next step, so that the loss, the
  statistics and the hot-spots do not take the CPU from the main thread while it shows
  what the user is tuning.
- **Errors are handled here.** A worker's exception goes to the client once (which shows
  one notification); it is never re-raised on the main thread, where it would reach
  ``sys.excepthook`` (with PyQt6 and Python's default hook, that aborts the process).
- **Closed means stopped.** After :meth:`~ComputeOrchestrator.shutdown` nothing starts until
  :meth:`~ComputeOrchestrator.reopen`; after :meth:`~ComputeOrchestrator.destroy` nothing
  ever does.

What to compute and what to do with results is not its business: it asks a
:class:`Client` (the widget) to read the request and hands it progress, results and errors.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

from qtpy.QtCore import QObject, QTimer
from superqt.utils import create_worker, qdebounced

from .._compute import ComputeResult, Progress, StepMemo, run_steps

__all__ = ["Client", "ComputeOrchestrator"]


class _Taken:
    """Counts the early outputs the main thread took, for a worker that waits for them.

    One count per output, not a flag: the worker waits for the weight map to be taken,
    then for the loss map, and a flag set by the first would let it past the second.
    """

    def __init__(self):
        self._cond = threading.Condition()
        self._count = 0

    def add(self) -> None:
        """The main thread took one more (or let it go)."""
        with self._cond:
            self._count += 1
            self._cond.notify_all()

    def wait_for(self, count: int, timeout: float) -> bool:
        """Wait until ``count`` were taken, at most ``timeout`` s; True if they were."""
        with self._cond:
            return self._cond.wait_for(lambda: self._count >= count, timeout)


class Client(Protocol):
    """What the orchestrator asks of the widget that owns it (all on the main thread)."""

    def read_request(self) -> tuple[Any, Any, Any]:
        """``(inputs, request, cache)`` now; raises an ``InputError`` when there is none."""

    @property
    def memo(self) -> StepMemo:
        """The step memo that the computations share."""

    def on_request_failed(self, err: Exception) -> None:
        """:meth:`read_request` raised ``err``."""

    def on_started(self) -> None:
        """A computation started."""

    def on_step(self, progress: Progress, long_running: bool) -> None:
        """The current computation is about to run a step."""

    def on_ready(self, inputs: Any, progress: Progress) -> None:
        """The current computation has outputs that are final before its end
        (``progress.ready``): they may be shown at once."""

    def on_long_running(self, step: str) -> None:
        """The current computation has run for ``PROGRESS_DELAY_MS``; ``step`` runs now."""

    def on_progress_end(self) -> None:
        """The current computation ended, or was cancelled: no more progress to show."""

    def on_result(self, inputs: Any, result: ComputeResult, requested: float) -> None:
        """The current computation's result (never a stale one); ``requested`` is the
        ``time.perf_counter()`` of the change that asked for it."""

    def on_error(self, err: Exception) -> None:
        """The current computation raised ``err``."""


class ComputeOrchestrator:
    """Thread workers for a :class:`Client`: newest wins, bounded, with progress.

    Args:
        client: reads requests and receives progress, results and errors.
        parent: the QObject that owns the timers (the widget's native widget).
        debounce_ms: how long :meth:`start_soon` waits for a burst of changes to stop.
    """

    #: At most this many background workers are alive at once: the current one and one that
    #: was cancelled and stops at the end of its current step.
    MAX_WORKERS = 2
    #: A background computation that runs longer than this (ms) is reported as long.
    PROGRESS_DELAY_MS = 300
    #: After sending an early output, a worker waits at most this long (s) for the main
    #: thread to take it before it goes on.
    READY_WAIT_S = 0.5

    def __init__(self, client: Client, parent: QObject, debounce_ms: int = 15):
        self._client = client
        self._workers: dict[int, Any] = {}  # generation -> alive worker
        self._generation = 0
        self.pending = False  # a request waits for a worker to end
        self.job_layers: tuple = ()  # the layers the current worker reads
        self.step = ""  # the step the current worker runs
        self.long_running = False  # the current worker was reported as long
        self.closed = False  # closed or out of its dock: no background work
        self.dead = False  # the Qt widget is gone: never again
        self._requested: float | None = None  # when the first unserved change came
        # leading edge: a lone change starts at once; the changes that follow it within
        # ``debounce_ms`` of each other start one more computation when they stop
        self._debounced_start: Callable[[], None] = qdebounced(
            self.start, timeout=debounce_ms, leading=True
        )
        self._progress_timer = QTimer(parent)
        self._progress_timer.setSingleShot(True)
        self._progress_timer.timeout.connect(self._on_long_running)

    # ------------------------------------------------------------------ state

    @property
    def worker(self):
        """The worker of the newest request, while it runs (else None)."""
        return self._workers.get(self._generation)

    @property
    def workers(self) -> tuple:
        """Every worker still alive (the current one and any that is stopping)."""
        return tuple(self._workers.values())

    @property
    def busy(self) -> bool:
        """A newer result is on its way (a worker runs or a request waits)."""
        return self.worker is not None or self.pending

    # ---------------------------------------------------------------- control

    def start_soon(self) -> None:
        """Start now if no change came in the last ``debounce_ms``, else once the changes
        stop for that long (live mode, edits): a single slider move waits for nothing, and
        a burst costs two computations at most (its first change's, cancelled, and its
        last one's)."""
        if self._requested is None:
            self._requested = time.perf_counter()
        self._debounced_start()

    def start(self, *_) -> None:
        """Compute in a thread worker; this request supersedes every running one.

        With :attr:`MAX_WORKERS` alive already (one current, one stopping), the request
        waits and starts when one ends, with the parameters of that moment.
        """
        if self.closed or self.dead:
            return
        if self._requested is None:
            self._requested = time.perf_counter()
        self.cancel()
        if len(self._workers) >= self.MAX_WORKERS:
            self.pending = True
            return
        self._launch()

    def cancel(self) -> None:
        """Supersede every running computation: each stops at its next step, and whatever
        it still sends is dropped (its generation is no longer the current one)."""
        self._generation += 1
        self.pending = False
        for worker in self._workers.values():
            worker.quit()

    def cancel_if_reading(self, layer) -> bool:
        """Cancel the current computation if it reads ``layer``; True if it did."""
        if self.worker is None or not any(layer is x for x in self.job_layers):
            return False
        self.cancel()
        self.end_progress()
        return True

    def end_progress(self) -> None:
        """Stop waiting to report a long computation, and end any progress shown."""
        if self.dead:
            return
        self._progress_timer.stop()
        if self.long_running:
            self.long_running = False
            self._client.on_progress_end()

    def shutdown(self) -> None:
        """Stop all work (closed, or taken out of its dock); results on their way are
        dropped. Workers stop at the end of their current step."""
        self.closed = True
        self._debounced_start.cancel()
        self.cancel()
        self.end_progress()

    def reopen(self) -> None:
        """Shown or docked again: work may start again."""
        if not self.dead:
            self.closed = False

    def destroy(self) -> None:
        """The Qt widget is gone: stop all work, for good."""
        self.dead = True
        self.closed = True
        self._debounced_start.cancel()
        self.cancel()

    # ---------------------------------------------------------------- workers

    def _launch(self) -> None:
        self.pending = False
        generation = self._generation
        requested = self._requested if self._requested is not None else time.perf_counter()
        self._requested = None
        try:
            inputs, request, cache = self._client.read_request()
        except (ValueError, TypeError) as err:  # InputError is a ValueError
            self.end_progress()
            self._client.on_request_failed(err)
            return

        memo = self._client.memo
        taken = _Taken()  # how many early outputs the main thread took (or let go)
        wait_s = self.READY_WAIT_S

        def work():
            steps = run_steps(request, cache, memo)
            try:
                progress = next(steps)
                sent = 0
                while True:
                    yield progress
                    if progress.ready:  # the main thread first, then the next step
                        sent += 1
                        taken.wait_for(sent, wait_s)
                    progress = next(steps)
            except StopIteration as stop:
                return stop.value

        # superqt's worker, not napari's: napari's relays every error to its notification
        # manager (a second notification, with a traceback that prints the arrays), and
        # without an ``errored`` handler at creation both re-raise it on the main thread
        worker = create_worker(work, _start_thread=False, _ignore_errors=True)
        # the callbacks hold the generation, not the worker: no reference cycle
        worker.yielded.connect(
            lambda progress: self._on_yielded(generation, inputs, progress, taken)
        )
        worker.returned.connect(
            lambda result: self._on_returned(generation, inputs, result, requested)
        )
        worker.errored.connect(lambda err: self._on_errored(generation, err))
        worker.finished.connect(lambda: self._on_finished(generation))
        self._workers[generation] = worker
        self.job_layers = inputs.layers
        self.step = ""
        self._client.on_started()
        if not self.long_running:
            self._progress_timer.start(self.PROGRESS_DELAY_MS)
        worker.start()

    def _current(self, generation: int) -> bool:
        return not self.dead and generation == self._generation

    def _on_yielded(self, generation: int, inputs, progress: Progress, taken: _Taken) -> None:
        try:
            if not self._current(generation):
                return
            if progress.ready and self._requested is None and not self.pending:
                # shown at once, unless a newer change already waits (during a burst of
                # changes the main thread would spend its time on outputs about to be
                # replaced)
                self._client.on_ready(inputs, progress)
            self.step = progress.step
            self._client.on_step(progress, self.long_running)
        finally:
            if progress.ready:
                taken.add()  # the worker goes on

    def _on_long_running(self) -> None:
        if self.dead or self.worker is None:
            return
        self.long_running = True
        self._client.on_long_running(self.step)

    def _on_returned(self, generation: int, inputs, result, requested: float) -> None:
        if not self._current(generation) or result is None:
            return  # stale: a newer request superseded it, or the widget is gone
        self.end_progress()
        self._client.on_result(inputs, result, requested)

    def _on_errored(self, generation: int, err: Exception) -> None:
        if not self._current(generation):
            return
        self.end_progress()
        self._client.on_error(err)

    def _on_finished(self, generation: int) -> None:
        self._workers.pop(generation, None)
        if self.dead:
            return
        if generation == self._generation:
            self.end_progress()
        if self.pending and not self.closed and len(self._workers) < self.MAX_WORKERS:
            self._launch()
