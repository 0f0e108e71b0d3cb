"""The widget's worker runs a small map's torch work with one intra-op thread, in its own
thread only: the main thread's count and the process's default stay as they were."""

from __future__ import annotations

import threading

import numpy as np
import pytest
import torch

from napari_losslens import core
from napari_losslens._compute import ComputeRequest
from napari_losslens._widget._orchestrator import (
    ComputeOrchestrator,
    intra_op_threads,
    region_pixels,
)

ORIGINAL = torch.get_num_threads()
OTHER = 2 if ORIGINAL == 1 else 1  # a count that differs from the process's


def _recording_steps(seen: list[int], n: int = 3):
    for i in range(n):
        seen.append(torch.get_num_threads())  # inside a step
        yield i
    seen.append(torch.get_num_threads())
    return "value"


def test_intra_op_threads_during_steps_and_restored_between():
    seen, between = [], []
    gen = intra_op_threads(_recording_steps(seen), OTHER, ORIGINAL)
    items = []
    while True:
        try:
            items.append(next(gen))
        except StopIteration as stop:
            returned = stop.value
            break
        between.append(torch.get_num_threads())
    assert items == [0, 1, 2]
    assert returned == "value"
    assert seen == [OTHER] * 4
    assert between == [ORIGINAL] * 3
    assert torch.get_num_threads() == ORIGINAL


def test_intra_op_threads_restores_after_an_error():
    def failing():
        yield 1
        raise RuntimeError("step failed")

    gen = intra_op_threads(failing(), OTHER, ORIGINAL)
    assert next(gen) == 1
    with pytest.raises(RuntimeError, match="step failed"):
        next(gen)
    assert torch.get_num_threads() == ORIGINAL


def test_intra_op_threads_in_a_worker_thread_leaves_the_main_thread_alone():
    seen: list[int] = []
    after: list[int] = []
    started = threading.Event()
    release = threading.Event()
    main_during: list[int] = []

    def steps():
        seen.append(torch.get_num_threads())
        started.set()
        release.wait(10)  # the main thread looks at its own count meanwhile
        yield 0
        return None

    def work():
        list(intra_op_threads(steps(), OTHER, ORIGINAL))
        after.append(torch.get_num_threads())

    thread = threading.Thread(target=work)
    thread.start()
    assert started.wait(10)
    main_during.append(torch.get_num_threads())
    release.set()
    thread.join(10)
    assert seen == [OTHER]
    assert main_during == [ORIGINAL]
    assert after == [ORIGINAL]

    fresh: list[int] = []  # a thread's first torch call takes the process's default
    t = threading.Thread(target=lambda: fresh.append(torch.get_num_threads()))
    t.start()
    t.join(10)
    assert fresh == [ORIGINAL]


@pytest.mark.parametrize("bad", [0, -1, 1.5, True, None])
def test_intra_op_threads_validates_counts(bad):
    with pytest.raises(ValueError, match=r"threads must be an integer >= 1, got"):
        list(intra_op_threads(iter(()), bad, ORIGINAL))
    with pytest.raises(ValueError, match=r"restore must be an integer >= 1, got"):
        list(intra_op_threads(iter(()), 1, bad))


def test_region_pixels_counts_the_computed_region():
    labels = np.zeros((3, 5, 7), np.int32)
    pred = np.zeros((3, 5, 7), np.float32)
    volume = ComputeRequest(labels=labels, prediction=pred, stack_mode="volume")
    frame = ComputeRequest(labels=labels, prediction=pred, current_index=(1,))
    frames = ComputeRequest(labels=labels, prediction=pred, stack_mode="frames")
    assert region_pixels(volume) == 105
    assert region_pixels(frame) == 35
    assert region_pixels(frames) == 105


def _record_loss_threads(monkeypatch) -> list[tuple[int, bool]]:
    seen: list[tuple[int, bool]] = []
    loss_map = core.loss_map

    def recording(*args, **kwargs):
        on_main = threading.current_thread() is threading.main_thread()
        seen.append((torch.get_num_threads(), on_main))
        return loss_map(*args, **kwargs)

    monkeypatch.setattr(core, "loss_map", recording)
    return seen


@pytest.mark.skipif(ORIGINAL == 1, reason="torch runs one thread already: nothing to tell")
def test_worker_computes_a_small_map_with_one_thread(widget, sample_viewer, qtbot, monkeypatch):
    seen = _record_loss_threads(monkeypatch)
    widget.loss.value = "bce"
    widget.outputs.value = ("loss_map",)
    widget.compute_button.clicked.emit()
    with qtbot.waitSignal(widget.worker.finished, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: "loss_map" in widget.layers, timeout=5_000)
    assert seen == [(1, False)]  # the 512² sample, in the worker thread
    assert torch.get_num_threads() == ORIGINAL
    labels = sample_viewer.layers["ground truth"].data
    pred = sample_viewer.layers["prediction"].data
    expected = core.loss_map(pred, labels, "bce")  # the same values as with more threads
    np.testing.assert_array_equal(widget.layers["loss_map"].data, expected)


@pytest.mark.skipif(ORIGINAL == 1, reason="torch runs one thread already: nothing to tell")
def test_worker_keeps_the_default_count_for_a_large_map(widget, qtbot, monkeypatch):
    monkeypatch.setattr(ComputeOrchestrator, "SMALL_MAP_PIXELS", 100)
    seen = _record_loss_threads(monkeypatch)
    widget.outputs.value = ("loss_map",)
    widget.compute_button.clicked.emit()
    with qtbot.waitSignal(widget.worker.finished, timeout=20_000):
        pass
    assert seen == [(ORIGINAL, False)]
