"""Each bad combination shows a notification that says what to change; nothing crashes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens._widget import LossLensWidget


@pytest.fixture
def viewer(make_napari_viewer):
    return make_napari_viewer()


def _check(widget, messages, *words):
    before = {layer.name: np.array(layer.data, copy=True) for layer in widget._viewer.layers}
    assert widget.compute() is None
    assert messages and messages[-1][0] == "error"
    text = messages[-1][1]
    for word in words:
        assert word in text, text
    assert widget.status.value.startswith("⚠")
    for name, data in before.items():  # nothing was modified, nothing was added
        np.testing.assert_array_equal(widget._viewer.layers[name].data, data)
    assert set(before) == {layer.name for layer in widget._viewer.layers}


def test_no_layers(viewer, messages):
    _check(LossLensWidget(viewer), messages, "No layers", "Open Sample")


def test_shape_mismatch(viewer, messages):
    viewer.add_labels(np.zeros((32, 32), np.int32), name="gt")
    viewer.add_image(np.zeros((32, 30), np.float32), name="prediction")
    _check(LossLensWidget(viewer), messages, "(32, 32)", "(32, 30)", "same shape")


def test_prediction_not_probabilities(viewer, messages):
    viewer.add_labels(np.ones((16, 16), np.int32), name="gt")
    viewer.add_image(np.linspace(-3, 3, 256, dtype=np.float32).reshape(16, 16), name="pred")
    _check(LossLensWidget(viewer), messages, "not probabilities", "prediction holds logits")


def test_prediction_with_nan(viewer, messages):
    viewer.add_labels(np.ones((16, 16), np.int32), name="gt")
    pred = np.full((16, 16), 0.5, np.float32)
    pred[3, 3] = np.nan
    viewer.add_image(pred, name="pred")
    _check(LossLensWidget(viewer), messages, "NaN")


def test_negative_label_ids(viewer, messages):
    lab = np.zeros((16, 16), np.int32)
    lab[2:5, 2:5] = -2
    viewer.add_labels(lab, name="gt")
    viewer.add_image(np.full((16, 16), 0.5, np.float32), name="pred")
    _check(LossLensWidget(viewer), messages, "negative ids", "-2")


def test_logits_declared_but_look_like_probabilities(viewer, messages):
    viewer.add_labels(np.ones((16, 16), np.int32), name="gt")
    viewer.add_image(np.full((16, 16), 0.7, np.float32), name="pred")
    widget = LossLensWidget(viewer)
    widget.from_logits.value = True
    assert widget.compute() is not None  # allowed, but warned about
    assert messages[-1][0] == "warning" and "untick" in messages[-1][1]


def test_bad_loss_parameter_text(viewer, messages):
    viewer.add_labels(np.ones((16, 16), np.int32), name="gt")
    viewer.add_image(np.full((16, 16), 0.5, np.float32), name="pred")
    widget = LossLensWidget(viewer)
    widget.loss.value = "dice"
    widget.dice_params.dice_smooth.value = "tiny"
    _check(widget, messages, "smooth", "not a value")
