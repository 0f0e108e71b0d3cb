"""The widget under stress: bursts of changes, layers removed and the widget closed while a
computation runs, labels edited mid-computation. Exceptions raised inside Qt slots fail these
tests (pytest-qt captures them)."""

from __future__ import annotations

import time

import numpy as np
import pytest
from qtpy.QtCore import QThreadPool

from napari_losslens import core
from napari_losslens._layers import find_owned


@pytest.fixture
def slow_distances(monkeypatch):
    """Make every distance computation take 0.3 s longer, so that a test can act while one
    runs; ``calls`` counts the computations started."""
    real = core.cell_distances

    class Slow:
        calls = 0

        def __call__(self, *args, **kwargs):
            Slow.calls += 1
            time.sleep(0.3)
            return real(*args, **kwargs)

    slow = Slow()
    monkeypatch.setattr(core, "cell_distances", slow)
    return slow


def _all_done(widget) -> bool:
    return (
        not widget.workers
        and not widget._pending
        and QThreadPool.globalInstance().activeThreadCount() == 0
    )


def test_burst_of_changes_shows_the_last_parameters(widget, sample_viewer, qtbot):
    pool = QThreadPool.globalInstance()
    widget.outputs.value = ("weight_map", "loss_map")
    widget.loss.value = "unet_ce"
    widget.compute()  # the distances are cached: each change is a full live update
    widget.live.value = True
    most_workers = most_threads = 0
    w0, sigma = widget.w0.value, widget.sigma.value
    for i in range(100):
        if i % 10 == 5:
            sigma = 2.5 + (i // 10) % 3  # 2.5, 3.5, 4.5: within the cached radius
            widget.sigma.value = sigma
        else:
            w0 = 1.0 + (i * 7) % 40  # a new value every time
            widget.w0.value = w0
        qtbot.wait(2 + (i % 4) * 6)  # 2-20 ms apart: some changes outlast the 15 ms debounce
        most_workers = max(most_workers, len(widget.workers))
        most_threads = max(most_threads, pool.activeThreadCount())
    qtbot.waitUntil(lambda: _all_done(widget), timeout=15_000)
    qtbot.wait(30)  # anything still queued lands now (and must not be stale)
    assert 1 <= most_workers <= widget.MAX_WORKERS
    assert most_threads <= widget.MAX_WORKERS
    assert (widget.w0.value, widget.sigma.value) == (w0, sigma)
    lab = sample_viewer.layers["ground truth"].data
    pred = sample_viewer.layers["prediction"].data
    np.testing.assert_allclose(
        widget.layers["weight_map"].data,
        core.unet_weight_map(lab, w0=w0, sigma=sigma),
        atol=1e-3,
    )
    np.testing.assert_allclose(
        widget.layers["loss_map"].data,
        core.loss_map(pred, lab, "unet_ce", w0=w0, sigma=sigma),
        rtol=1e-4,
        atol=1e-3,
    )
    assert not widget.status.value.startswith("⚠")
    assert widget.progress.native.isHidden()


@pytest.mark.parametrize("name", ["ground truth", "prediction"])
def test_removing_an_input_mid_computation(widget, sample_viewer, qtbot, slow_distances, name):
    widget.outputs.value = ("weight_map", "loss_map")
    widget.compute_button.clicked.emit()
    assert widget.worker is not None
    qtbot.waitUntil(lambda: slow_distances.calls > 0, timeout=5_000)  # inside the distances
    sample_viewer.layers.remove(name)
    assert widget.worker is None  # stopped at once
    qtbot.waitUntil(lambda: _all_done(widget), timeout=10_000)
    qtbot.wait(30)
    assert find_owned(sample_viewer, "weight_map") is None  # the stale result was dropped
    assert find_owned(sample_viewer, "loss_map") is None
    assert f"{name!r} was removed" in widget.status.value


def test_closing_the_widget_mid_computation(widget, sample_viewer, qtbot, slow_distances):
    widget.outputs.value = ("weight_map",)
    widget.live.value = True
    widget.compute_button.clicked.emit()
    qtbot.waitUntil(lambda: slow_distances.calls > 0, timeout=5_000)
    widget.close()
    assert widget.worker is None
    widget.sigma.value = 3.0  # live, but closed: nothing starts
    qtbot.wait(40)
    assert not widget.workers or widget.worker is None
    qtbot.waitUntil(lambda: _all_done(widget), timeout=10_000)
    qtbot.wait(30)
    assert find_owned(sample_viewer, "weight_map") is None


def test_closing_the_dock_mid_computation(sample_viewer, qtbot, slow_distances):
    dock, widget = sample_viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
    widget.outputs.value = ("weight_map",)
    widget.live.value = True
    widget.compute_button.clicked.emit()
    qtbot.waitUntil(lambda: slow_distances.calls > 0, timeout=5_000)
    sample_viewer.window.remove_dock_widget(dock)  # what the dock's close button does
    assert widget.worker is None
    qtbot.waitUntil(lambda: _all_done(widget), timeout=10_000)
    qtbot.wait(50)  # the dock is deleted now (deleteLater)
    sample_viewer.layers["ground truth"].paint((5, 5), 999, refresh=True)  # live, but gone
    sample_viewer.add_image(np.zeros((8, 8)), name="another")  # layer events still fine
    qtbot.wait(40)
    assert not widget.workers
    assert find_owned(sample_viewer, "weight_map") is None


def test_widget_destroyed_mid_computation(sample_viewer, qtbot, slow_distances):
    """As when the viewer closes: the Qt widget is deleted while a computation runs."""
    from napari_losslens._widget import LossLensWidget

    widget = LossLensWidget(sample_viewer)
    widget.outputs.value = ("weight_map",)
    widget.live.value = True
    widget.compute_button.clicked.emit()
    qtbot.waitUntil(lambda: slow_distances.calls > 0, timeout=5_000)
    with qtbot.waitSignal(widget.native.destroyed, timeout=2_000):
        widget.native.deleteLater()
    assert widget._dead and widget.worker is None
    qtbot.waitUntil(lambda: _all_done(widget), timeout=10_000)
    # the viewer's events no longer reach it
    sample_viewer.layers["ground truth"].paint((5, 5), 999, refresh=True)
    sample_viewer.add_image(np.zeros((8, 8)), name="another")
    sample_viewer.layers.remove("prediction")
    qtbot.wait(50)
    assert not widget.workers
    assert find_owned(sample_viewer, "weight_map") is None


def _edit(layer, how: str) -> None:
    new_id = int(layer.data.max()) + 1
    if how == "paint":  # the brush: events.paint
        layer.paint((30, 30), new_id, refresh=True)
    elif how == "setitem":  # a script: no data event, only the refresh
        layer.data[20:40, 20:40] = new_id
        layer.refresh()
    else:  # a new array: events.data
        data = np.array(layer.data, copy=True)
        data[20:40, 20:40] = 0
        layer.data = data


@pytest.mark.parametrize("how", ["paint", "setitem", "data"])
def test_labels_edit_mid_computation_recomputes(widget, sample_viewer, qtbot, slow_distances, how):
    gt = sample_viewer.layers["ground truth"]
    widget.outputs.value = ("weight_map",)
    widget.compute_button.clicked.emit()  # live is off: the edit alone restarts it
    first = widget.worker
    qtbot.waitUntil(lambda: slow_distances.calls > 0, timeout=5_000)
    _edit(gt, how)
    qtbot.waitUntil(
        lambda: widget.worker is not None and widget.worker is not first, timeout=5_000
    )
    qtbot.waitUntil(lambda: _all_done(widget), timeout=10_000)
    qtbot.wait(30)
    ref = core.unet_weight_map(gt.data)
    np.testing.assert_allclose(widget.layers["weight_map"].data, ref, atol=1e-3)
    # the cache holds the edited labels' distances, not the stale ones
    misses = widget.cache.misses
    widget.compute()
    assert widget.cache.misses == misses
    np.testing.assert_allclose(widget.layers["weight_map"].data, ref, atol=1e-3)
