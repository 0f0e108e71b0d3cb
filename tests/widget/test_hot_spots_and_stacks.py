"""Hot-spots are the true maxima on a hand-made case; stacks as frames, volume, one slice."""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens import core
from napari_losslens._widget import LossLensWidget


def _camera(viewer):
    return viewer.scene.camera if hasattr(viewer, "scene") else viewer.camera


def test_hot_spots_are_the_worst_places(make_napari_viewer):
    viewer = make_napari_viewer()
    lab = np.zeros((96, 96), np.int32)
    pred = np.full(lab.shape, 0.01, np.float32)
    # false positives of increasing confidence: BCE there is -log(1 - p)
    where = {(20, 20): 0.6, (70, 30): 0.99, (40, 75): 0.9}
    for (r, c), p in where.items():
        pred[r - 2 : r + 3, c - 2 : c + 3] = p
    viewer.add_labels(lab, name="gt")
    viewer.add_image(pred, name="prediction")
    widget = LossLensWidget(viewer)
    widget.loss.value = "bce"
    widget.outputs.value = ("loss_map", "hot_spots")
    widget.hotspot_k.value = 3
    widget.compute()
    points = widget.layers["hot_spots"]
    np.testing.assert_array_equal(points.data, [[70, 30], [40, 75], [20, 20]])
    assert points.features["rank"].tolist() == [1, 2, 3]
    assert points.features["peak"].is_monotonic_decreasing
    widget.hotspot_next.clicked.emit()  # the worst first
    assert tuple(_camera(viewer).center[-2:]) == pytest.approx((70, 30), abs=0.5)
    widget.hotspot_next.clicked.emit()
    assert tuple(_camera(viewer).center[-2:]) == pytest.approx((40, 75), abs=0.5)
    widget.hotspot_prev.clicked.emit()
    assert tuple(_camera(viewer).center[-2:]) == pytest.approx((70, 30), abs=0.5)
    assert "1/3" in widget.hotspot_info.value


def _stack():
    from napari_losslens._sample_data import make_prediction, make_touching_nuclei

    _, lab = make_touching_nuclei((96, 96), seed=1)
    labels = np.stack([lab, np.roll(lab, 7, axis=1), np.roll(lab, 13, axis=0)])
    pred = np.stack([make_prediction(frame, seed=i) for i, frame in enumerate(labels)])
    return labels, pred


def test_stack_as_frames_and_current_slice(make_napari_viewer):
    viewer = make_napari_viewer()
    labels, pred = _stack()
    viewer.add_labels(labels, name="gt")
    viewer.add_image(pred, name="prediction")
    widget = LossLensWidget(viewer)
    widget.outputs.value = ("weight_map",)
    widget.stack_mode.value = "frames"
    widget.compute()
    layer = widget.layers["weight_map"]
    for t in range(3):
        np.testing.assert_allclose(layer.data[t], core.unet_weight_map(labels[t]), atol=1e-3)
    # current slice only: only frame 1 changes
    widget.current_slice.value = True
    widget.w0.value = 3.0
    viewer.dims.set_current_step(0, 1)
    widget.compute()
    assert widget.layers["weight_map"] is layer
    np.testing.assert_allclose(layer.data[1], core.unet_weight_map(labels[1], w0=3.0), atol=1e-3)
    np.testing.assert_allclose(layer.data[0], core.unet_weight_map(labels[0]), atol=1e-3)


def test_stack_as_volume_uses_scale(make_napari_viewer):
    viewer = make_napari_viewer()
    labels, pred = _stack()
    viewer.add_labels(labels, name="gt", scale=(4.0, 1.0, 1.0))
    viewer.add_image(pred, name="prediction", scale=(4.0, 1.0, 1.0))
    widget = LossLensWidget(viewer)
    widget.outputs.value = ("weight_map",)
    widget.stack_mode.value = "volume"
    widget.compute()
    ref = core.unet_weight_map(labels, spacing=(4.0, 1.0, 1.0))
    np.testing.assert_allclose(widget.layers["weight_map"].data, ref, atol=1e-3)


def test_stack_controls_only_for_stacks(make_napari_viewer):
    """A 2D ground truth hides the stack choices; picking a stack shows them again."""
    viewer = make_napari_viewer()
    labels, pred = _stack()
    viewer.add_labels(labels[0], name="gt 2d")
    viewer.add_image(pred[0], name="prediction")
    widget = LossLensWidget(viewer)
    stack_controls = (widget.stack_mode, widget.current_slice, widget.stack_hint)
    assert widget.labels_layer.value is viewer.layers["gt 2d"]
    assert all(control.native.isHidden() for control in stack_controls)
    viewer.add_labels(labels, name="gt stack")
    widget.labels_layer.value = viewer.layers["gt stack"]
    assert not widget.stack_mode.native.isHidden()
    assert not widget.current_slice.native.isHidden()
    assert not widget.stack_hint.native.isHidden()
    widget.labels_layer.value = viewer.layers["gt 2d"]
    assert all(control.native.isHidden() for control in stack_controls)
