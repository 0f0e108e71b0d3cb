"""Long work shows progress: per-step progress from the pipeline, a bar after 0.3 s, and the
running step in the status line."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtCore import QThreadPool

from napari_losslens import core
from napari_losslens._compute import ComputeRequest, Progress, run, run_steps
from napari_losslens._widget import _orchestrator

ALL = ("loss_map", "weight_map", "errors", "object_stats", "hot_spots")


def test_run_steps_reports_each_step_in_order(drive):
    lab = np.zeros((3, 24, 24), np.int32)
    lab[:, 4:10, 4:10] = 1
    lab[:, 10:16, 4:10] = 2
    pred = np.where(lab > 0, 0.8, 0.2).astype(np.float32)
    request = ComputeRequest(lab, pred, loss="unet_ce", outputs=ALL, stack_mode="frames")
    seen, result = drive(run_steps(request))
    assert all(isinstance(p, Progress) for p in seen)
    per_frame = ["distances", "weight map", "loss"]
    expected = [f"{s}, frame {f}/3" for f in (1, 2, 3) for s in per_frame]
    expected += ["error map", "overlap", "statistics", "hot-spots", "done"]
    assert [p.step for p in seen] == expected
    assert [p.done for p in seen] == list(range(len(expected)))
    assert {p.total for p in seen} == {len(expected) - 1}
    percents = [p.percent for p in seen]
    assert percents == sorted(percents) and percents[0] == 0 and percents[-1] == 100
    assert result.value == pytest.approx(run(request).value)


def test_run_steps_without_weights_skips_their_steps(drive):
    lab = np.zeros((16, 16), np.int32)
    lab[4:10, 4:10] = 1
    request = ComputeRequest(lab, (lab > 0).astype(np.float32) * 0.9, loss="bce")
    seen, _ = drive(run_steps(request))
    assert [p.step for p in seen] == ["loss", "done"]
    assert seen[-1].percent == 100


@pytest.fixture
def slow_distances(monkeypatch):
    """Distances that take 0.5 s: a computation long enough to show the progress bar."""
    real = core.cell_distances

    def slow(*args, **kwargs):
        time.sleep(0.5)
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "cell_distances", slow)


def test_long_computation_shows_progress(
    widget, sample_viewer, qtbot, slow_distances, monkeypatch
):
    widget.outputs.value = ALL
    bar, statuses, shown, yielded = [], [], [], []
    real_run_steps = _orchestrator.run_steps

    def recorded_steps(*args, **kwargs):
        # recorded in the worker thread as they are made: a slot connected to the
        # worker's ``yielded`` after the click could miss the first step (the worker
        # starts at once and a signal sent before a connection is not delivered to it)
        steps = real_run_steps(*args, **kwargs)
        try:
            while True:
                progress = next(steps)
                yielded.append(progress)
                yield progress
        except StopIteration as stop:
            return stop.value

    monkeypatch.setattr(_orchestrator, "run_steps", recorded_steps)
    widget.progress.changed.connect(bar.append)
    presenter = widget._presenter
    real_step = presenter.step

    def step_then_read_status(progress, long_running):  # the main thread's step handler
        real_step(progress, long_running)
        statuses.append(widget.status.value)

    monkeypatch.setattr(presenter, "step", step_then_read_status)
    widget.compute_button.clicked.emit()
    assert widget.worker is not None
    assert widget.progress.native.isHidden()  # not for the first 0.3 s
    qtbot.waitUntil(lambda: not widget.progress.native.isHidden(), timeout=5_000)
    shown.append(widget.status.value)
    qtbot.waitUntil(lambda: not widget.workers, timeout=20_000)
    qtbot.waitUntil(lambda: QThreadPool.globalInstance().activeThreadCount() == 0)
    assert shown[0] == "computing: distances…"  # the step that runs when the bar appears
    steps = ["distances", "weight map", "loss", "error map", "overlap", "statistics"]
    steps += ["hot-spots", "done"]
    assert [p.step for p in yielded] == steps
    percents = [p.percent for p in yielded]
    assert percents == sorted(percents) and percents[-1] == 100
    assert bar[-1] == 100 and bar == sorted(bar)  # the bar followed, in order, to 100 %
    assert "computing: loss…" in statuses, statuses
    assert widget.progress.native.isHidden()  # done: the bar goes, the result stays
    assert "ms" in widget.status.value
    lab = sample_viewer.layers["ground truth"].data
    np.testing.assert_allclose(
        widget.layers["weight_map"].data, core.unet_weight_map(lab), atol=1e-3
    )


def test_quick_computation_hides_the_bar(widget, qtbot):
    widget.outputs.value = ("weight_map",)
    widget.compute()  # distances cached: the next one is quick
    widget.compute_button.clicked.emit()
    worker = widget.worker
    # a quick worker may finish before a waitSignal could connect: wait for its end
    qtbot.waitUntil(lambda: not widget.workers, timeout=20_000)
    qtbot.wait(10)
    assert worker is not None and widget.worker is None
    assert widget.progress.native.isHidden()
    assert "ms" in widget.status.value
