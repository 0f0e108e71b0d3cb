"""The widget's recording panel: the table at the slider's step, an object's loss curve
under the mouse, the tour of the objects that stay wrong, and the refresh of a growing store.

The recording is made with a BCE loss and a prediction that is constant inside each object,
so that an object's mean loss is known in closed form: -log p at every step.
"""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens._reader import RECORDING
from napari_losslens._widget import LossLensWidget
from napari_losslens._widget._recording import RecordingPanel
from napari_losslens.training import (
    LossRecorder,
    Recording,
    object_history,
    objects_that_stay_wrong,
    table_at_step,
)

SHAPE = (40, 60)
#: the objects' boxes (rows, cols), as slices of the target
BOXES = {
    1: (slice(4, 14), slice(4, 20)),
    2: (slice(20, 34), slice(6, 18)),
    3: (slice(10, 30), slice(30, 52)),
}
#: the prediction inside each object, at each training step: object 1 is learnt early,
#: object 2 stays wrong, object 3 is learnt late
P = {
    0: {1: 0.30, 2: 0.20, 3: 0.40},
    10: {1: 0.90, 2: 0.25, 3: 0.50},
    20: {1: 0.95, 2: 0.30, 3: 0.90},
    30: {1: 0.97, 2: 0.85, 3: 0.95},
    40: {1: 0.98, 2: 0.90, 3: 0.97},
}
BACKGROUND_P = 0.05


def _target() -> np.ndarray:
    target = np.zeros(SHAPE, np.int32)
    for label, box in BOXES.items():
        target[box] = label
    return target


def _prediction(step: int) -> np.ndarray:
    target = _target()
    pred = np.full(SHAPE, BACKGROUND_P, np.float32)
    for label, p in P[step].items():
        pred[target == label] = p
    return pred


def _record(path, steps):
    target = _target()
    image = (target > 0).astype(np.float32)
    with LossRecorder(path, loss="bce", names=["cells"]) as rec:
        for step in steps:
            rec.record(step, image, _prediction(step), target)


def _expected_mean_loss(step: int) -> np.ndarray:
    """The objects' mean BCE in increasing id: -log p (independent of the package)."""
    return np.array([-np.log(P[step][label]) for label in sorted(BOXES)])


@pytest.fixture
def recording(tmp_path):
    path = tmp_path / "run.losslens.zarr"
    _record(path, [0, 10, 20])
    return path


@pytest.fixture
def opened(make_napari_viewer, qtbot, recording):
    """A viewer with the recording open, and a loaded panel on it."""
    viewer = make_napari_viewer()
    viewer.open(str(recording), plugin="napari-losslens")
    panel = RecordingPanel(viewer)
    qtbot.waitUntil(lambda: bool(panel.ranking) and not panel.loading, timeout=10_000)
    return viewer, panel, recording


def _wait_loaded(qtbot, panel):
    qtbot.waitUntil(lambda: bool(panel.ranking) and not panel.loading, timeout=10_000)


def test_panel_is_hidden_without_a_recording_and_shown_with_one(
    make_napari_viewer, qtbot, recording
):
    viewer = make_napari_viewer()
    widget = LossLensWidget(viewer)
    panels = [w for w in widget if isinstance(w, RecordingPanel)]
    assert len(panels) == 1
    panel = panels[0]
    assert panel.native.isHidden()
    assert panel.recording_layer.choices == (None,)
    viewer.open(str(recording), plugin="napari-losslens")
    assert not panel.native.isHidden()
    assert panel.recording_layer.value is viewer.layers["cells target"]
    _wait_loaded(qtbot, panel)
    assert panel.recording.path == recording
    assert panel.sample == "cells"
    viewer.layers.remove("cells target")
    assert panel.native.isHidden()
    assert panel.recording is None


def test_features_are_the_table_at_the_slider_step(opened):
    viewer, panel, path = opened
    target = viewer.layers["cells target"]
    rec = Recording(path)
    for index in (0, 2, 1):
        viewer.dims.set_current_step(0, index)
        step = rec.steps[index]
        assert panel.step == step
        expected = table_at_step(rec, "cells", step)
        features = target.features
        assert list(features.columns) == list(expected)
        for column, values in expected.items():
            np.testing.assert_array_equal(features[column].to_numpy(), values)
        # and the values are the closed-form BCE of each object
        np.testing.assert_allclose(
            features["mean_loss"].to_numpy(), _expected_mean_loss(step), rtol=1e-5
        )
        np.testing.assert_array_equal(features["index"].to_numpy(), [1, 2, 3])
        np.testing.assert_array_equal(
            features["area"].to_numpy(), [int((_target() == k).sum()) for k in (1, 2, 3)]
        )


def test_the_ranking_is_the_objects_that_stay_wrong(opened):
    viewer, panel, path = opened
    expected = objects_that_stay_wrong(path, "cells", panel.wrong_k.value)
    assert [o.id for o in panel.ranking] == [o.id for o in expected]
    # independently: the trapezoid integral of -log p over steps 0, 10, 20
    score = {k: 5 * (-np.log(P[0][k]) - 2 * np.log(P[10][k]) - np.log(P[20][k])) for k in BOXES}
    assert [o.id for o in panel.ranking] == sorted(score, key=score.get, reverse=True)
    assert [o.id for o in panel.ranking] == [2, 3, 1]
    assert panel.wrong_list.choices == (0, 1, 2)
    labels = [panel.wrong_list.native.item(i).text() for i in range(3)]
    assert [label.split(":")[0] for label in labels] == [
        "1. object 2",
        "2. object 3",
        "3. object 1",
    ]


def test_fewer_objects_ranked_when_k_is_lowered(opened, qtbot):
    viewer, panel, path = opened
    panel.wrong_k.value = 2
    qtbot.waitUntil(lambda: len(panel.ranking) == 2 and not panel.loading, timeout=10_000)
    assert [o.id for o in panel.ranking] == [2, 3]
    assert panel.wrong_list.choices == (0, 1)


def test_next_and_previous_move_the_camera_to_the_objects(opened):
    viewer, panel, path = opened
    target = viewer.layers["cells target"]
    ranking = objects_that_stay_wrong(path, "cells", 10)
    panel.wrong_next.clicked.emit()
    assert panel.tour_index == 0
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], ranking[0].centroid)
    # the centroid of object 2, computed here: the middle of its box
    rows, cols = BOXES[2]
    np.testing.assert_allclose(
        viewer.scene.camera.center[-2:],
        ((rows.start + rows.stop - 1) / 2, (cols.start + cols.stop - 1) / 2),
    )
    assert target.selected_label == 2
    assert panel.curve_object == 2
    panel.wrong_next.clicked.emit()
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], ranking[1].centroid)
    panel.wrong_prev.clicked.emit()
    panel.wrong_prev.clicked.emit()  # wraps around to the last
    assert panel.tour_index == 2
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], ranking[2].centroid)
    assert panel.curve_object == ranking[2].id


def test_a_click_in_the_ranking_list_goes_to_that_object(opened):
    viewer, panel, path = opened
    ranking = objects_that_stay_wrong(path, "cells", 10)
    panel.wrong_list.value = [1]
    assert panel.tour_index == 1
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], ranking[1].centroid)


def test_hovering_an_object_draws_its_loss_over_the_steps(opened):
    viewer, panel, path = opened
    assert panel.curve_line is None
    viewer.cursor.position = (0, 15, 40)  # step axis, then inside object 3
    assert panel.curve_object == 3
    steps, ids, values = object_history(path, "cells", [3], column="mean_loss")
    line = panel.curve_line
    np.testing.assert_array_equal(line.get_xdata(), steps)
    np.testing.assert_array_equal(line.get_ydata(), values[:, 0])
    np.testing.assert_allclose(
        line.get_ydata(), [-np.log(P[s][3]) for s in (0, 10, 20)], rtol=1e-5
    )
    viewer.cursor.position = (0, 25, 10)  # object 2
    assert panel.curve_object == 2
    np.testing.assert_array_equal(
        panel.curve_line.get_ydata(), object_history(path, "cells", [2])[2][:, 0]
    )
    # off the objects the curve stays; the selected label then chooses it
    viewer.cursor.position = (0, 38, 2)
    assert panel.curve_object == 2
    viewer.layers["cells target"].selected_label = 3
    assert panel.curve_object == 3
    np.testing.assert_array_equal(
        panel.curve_line.get_ydata(), object_history(path, "cells", [3])[2][:, 0]
    )
    # a label that is no object of the target clears the plot
    viewer.layers["cells target"].selected_label = 7
    assert panel.curve_object is None
    assert panel.curve_line is None


def test_refresh_shows_steps_written_since_opening(opened, qtbot):
    viewer, panel, path = opened
    loss_map = viewer.layers["cells loss_map"]
    assert loss_map.data.shape[0] == 3
    _record(path, [30, 40])  # the training went on: same settings, appended
    panel.refresh_button.clicked.emit()
    qtbot.waitUntil(lambda: len(panel.recording.steps) == 5 and not panel.loading, timeout=10_000)
    assert loss_map.data.shape[0] == 5
    assert loss_map.metadata[RECORDING]["steps"] == [0, 10, 20, 30, 40]
    assert viewer.dims.range[0].stop == 4  # the step slider reaches the new steps
    expected = objects_that_stay_wrong(path, "cells", 10)
    assert [o.id for o in panel.ranking] == [o.id for o in expected]
    viewer.dims.set_current_step(0, 4)
    assert panel.step == 40
    np.testing.assert_allclose(
        viewer.layers["cells target"].features["mean_loss"].to_numpy(),
        _expected_mean_loss(40),
        rtol=1e-5,
    )
    viewer.cursor.position = (4, 15, 40)
    np.testing.assert_array_equal(panel.curve_line.get_xdata(), [0, 10, 20, 30, 40])


def test_the_panel_lets_go_of_the_viewer_when_destroyed(make_napari_viewer, qtbot, recording):
    viewer = make_napari_viewer()
    viewer.open(str(recording), plugin="napari-losslens")
    panel = RecordingPanel(viewer)
    _wait_loaded(qtbot, panel)
    target = viewer.layers["cells target"]
    before = target.features.copy()
    panel.native.deleteLater()
    qtbot.waitUntil(lambda: panel._generation > 1, timeout=5_000)
    viewer.dims.set_current_step(0, 2)  # no handler left: nothing raises, nothing changes
    viewer.cursor.position = (0, 15, 40)
    assert target.features.equals(before)


def test_a_refresh_of_a_store_that_is_gone_says_so(opened, messages):
    viewer, panel, path = opened
    moved = path.with_name("moved.losslens.zarr")
    path.rename(moved)
    assert panel.refresh() == {}
    assert panel.recording_info.value.startswith("⚠ Loss Lens: cannot refresh the recordings")
    assert str(path) in panel.recording_info.value
    assert [kind for kind, _ in messages] == ["error"]
    # what was shown stays
    assert [o.id for o in panel.ranking] == [2, 3, 1]


def test_a_3d_recording_tours_to_the_object_plane(make_napari_viewer, qtbot, tmp_path):
    target = np.zeros((8, 20, 30), np.int32)
    target[1:3, 2:8, 3:9] = 1  # learnt at once
    target[4:7, 10:18, 15:27] = 2  # stays wrong
    pred = np.where(target == 1, 0.95, np.where(target == 2, 0.3, 0.05)).astype(np.float32)
    path = tmp_path / "vol.losslens.zarr"
    with LossRecorder(path, loss="bce", ndim=3, names=["vol"]) as rec:
        for step in (0, 5):
            rec.record(step, (target > 0).astype(np.float32), pred, target)
    viewer = make_napari_viewer()
    viewer.open(str(path), plugin="napari-losslens")
    panel = RecordingPanel(viewer)
    _wait_loaded(qtbot, panel)
    assert [o.id for o in panel.ranking] == [2, 1]
    panel.goto_object(0)
    # the plane of object 2's centroid (z = 5) is shown, centred on its (y, x) centroid
    assert viewer.dims.point[1] == pytest.approx(5.0)
    np.testing.assert_allclose(viewer.scene.camera.center[-2:], (13.5, 20.5))
    viewer.cursor.position = (0, 2, 4, 5)  # step, z, y, x: inside object 1
    assert panel.curve_object == 1
    np.testing.assert_allclose(panel.curve_line.get_ydata(), [-np.log(0.95)] * 2, rtol=1e-5)
