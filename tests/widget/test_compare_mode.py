"""The widget's compare mode with a real viewer: grid mode, shared camera, in-place updates."""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens._compare_layers import compare_layers
from napari_losslens._sample_data import make_prediction
from napari_losslens._widget._compare_panel import NO_LOSS, parse_params
from napari_losslens.core import loss_map


def test_parse_params():
    assert parse_params("gamma=1, alpha=0.25", "focal") == {"gamma": 1, "alpha": 0.25}
    assert parse_params(" ", "focal") == {}
    with pytest.raises(ValueError, match=r"must be written name=value.*got 'gamma'"):
        parse_params("gamma", "focal")
    with pytest.raises(ValueError, match=r"parameter 'gamma' of 'focal': 'x' is not a value"):
        parse_params("gamma=x", "focal")


def test_losses_side_by_side_and_hot_spots(widget, sample_viewer):
    v, panel = sample_viewer, widget.compare_panel
    visible_before = {layer.name: layer.visible for layer in v.layers}
    panel.set_losses(["bce", ("focal", {"gamma": 1.0}), "dice"])
    assert [box.value for box, _ in panel.loss_rows[:4]] == ["bce", "focal", "dice", NO_LOSS]
    assert panel.loss_rows[1][1].value == "gamma=1.0"
    c = panel.compare()
    assert c is not None and c.mode == "losses"
    panes = compare_layers(v, "ground truth")
    assert [p.name for p in panes] == [
        "compare 1: bce",
        "compare 2: focal (gamma=1)",
        "compare 3: dice",
    ]
    lab, pred = v.layers["ground truth"].data, v.layers["prediction"].data
    want = loss_map(pred, lab, "dice")
    np.testing.assert_allclose(panes[2].data, want / np.abs(want).sum(), rtol=1e-4, atol=1e-9)
    assert v.canvas.grid.enabled
    assert widget.image_layer.value is v.layers["image"]  # the image stays beside the panes
    assert {layer.name for layer in v.layers if layer.visible} == {
        "ground truth",
        "image",
        *(p.name for p in panes),
    }
    # one camera model behind every viewbox: the hot-spot buttons move all panes at once
    panel.compare_next.changed.emit(True)
    spot = c.hot_spots[0]
    assert tuple(v.scene.camera.center)[-2:] == pytest.approx(
        tuple(map(float, spot.peak_position))
    )
    panel.compare_next.changed.emit(True)
    assert "hot-spot 2/" in panel.compare_status.value
    panel.goto_hot_spot(-1)  # wraps around to the last
    assert f"hot-spot {len(c.hot_spots)}/" in panel.compare_status.value
    # recompute with other losses: the same layers, updated in place; a pane dropped
    ids = [id(p) for p in panes]
    panel.set_losses(["mcc", "lovasz_hinge"])
    panel.compare()
    again = compare_layers(v, "ground truth")
    assert [id(p) for p in again] == ids[:2]
    assert [p.name for p in again] == ["compare 1: mcc", "compare 2: lovasz_hinge"]
    panel.leave_grid()
    assert not v.canvas.grid.enabled
    for name, was in visible_before.items():
        assert v.layers[name].visible == was, name
    assert v.layers["ground truth compare hot-spots"].visible


def test_two_models_in_a_worker(widget, sample_viewer, qtbot):
    v, panel = sample_viewer, widget.compare_panel
    lab = v.layers["ground truth"].data
    v.add_image(make_prediction(lab, seed=8), name="model B prediction")
    widget.reset_choices()
    assert panel.prediction_b.native.isHidden()  # shown in models mode only
    panel.compare_mode.value = "models"
    assert not panel.prediction_b.native.isHidden()
    panel.prediction_b.value = v.layers["model B prediction"]
    panel.set_losses(["bce"])
    panel.start()
    qtbot.waitUntil(lambda: panel.comparison is not None, timeout=60_000)
    c = panel.comparison
    assert c.mode == "models" and [p.title for p in c.panes] == ["A: bce", "B: bce"]
    diff = panel.layers["difference"]
    a = loss_map(v.layers["prediction"].data, lab, "bce")
    b = loss_map(v.layers["model B prediction"].data, lab, "bce")
    np.testing.assert_allclose(diff.data, a - b, rtol=1e-5, atol=1e-5)
    feats = v.layers["ground truth"].features
    assert {"loss_change", "dice_change", "iou_change", "verdict"} <= set(feats.columns)
    assert set(feats["verdict"].dropna()) <= {"better", "worse", "same"}
    assert v.layers.selection.active is v.layers["ground truth"]
    assert "A: bce = " in panel.compare_status.value


def test_bad_requests_are_reported(widget, messages):
    panel = widget.compare_panel
    panel.set_losses(["bce"])
    assert panel.compare() is None
    assert "comparing losses needs 2 to 6" in panel.compare_status.value
    panel.compare_mode.value = "models"
    panel.start()  # no model B chosen: reported at once, no worker started
    assert panel._worker is None
    assert "choose model B's prediction" in panel.compare_status.value
    panel.compare_mode.value = "losses"
    panel.set_losses(["bce", "dice"])
    panel.loss_rows[0][1].value = "gamma=1"
    assert panel.compare() is None
    assert "unknown parameter(s) 'gamma' for loss 'bce'" in panel.compare_status.value
    assert [kind for kind, _ in messages] == ["error"] * 3
