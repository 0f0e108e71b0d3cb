"""The Compute button runs a thread worker; the newest request wins."""

from __future__ import annotations

import numpy as np

from napari_losslens import core


def test_button_runs_in_a_worker(widget, sample_viewer, qtbot):
    widget.outputs.value = ("weight_map",)
    widget.w0.value = 4.0
    widget.compute_button.clicked.emit()
    worker = widget.worker
    assert worker is not None
    with qtbot.waitSignal(worker.finished, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: "weight_map" in widget.layers, timeout=5_000)
    lab = sample_viewer.layers["ground truth"].data
    np.testing.assert_allclose(
        widget.layers["weight_map"].data, core.unet_weight_map(lab, w0=4.0), atol=1e-3
    )
    assert "ms" in widget.status.value


def test_newest_request_wins(widget, sample_viewer, qtbot):
    widget.outputs.value = ("weight_map",)
    widget.w0.value = 2.0
    widget.compute_button.clicked.emit()
    stale = widget.worker
    widget.w0.value = 9.0
    widget.compute_button.clicked.emit()
    newest = widget.worker
    assert newest is not stale
    with qtbot.waitSignal(newest.finished, timeout=20_000):
        pass
    qtbot.waitUntil(lambda: stale.is_running is False, timeout=20_000)
    qtbot.wait(50)
    lab = sample_viewer.layers["ground truth"].data
    np.testing.assert_allclose(
        widget.layers["weight_map"].data, core.unet_weight_map(lab, w0=9.0), atol=1e-3
    )
