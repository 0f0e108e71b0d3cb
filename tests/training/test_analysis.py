"""Reading a recording: the table at a step, an object's history, the objects that stay wrong."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import ndimage as ndi

from napari_losslens.core import loss_map, object_stats
from napari_losslens.training import (
    LossRecorder,
    Recording,
    object_history,
    objects_that_stay_wrong,
    table_at_step,
)
from napari_losslens.training.analysis import loss_curve

from .helpers import blobs, prediction_at

STEPS = [0, 2, 3, 7]  # irregular: the trapezoid weights differ


@pytest.fixture
def recording(tmp_path):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="bce", background=False) as rec:
        for s in STEPS:
            rec.record(s, image, prediction_at(target, s), target)
    return Recording(path), target


def test_table_at_step_is_object_stats_of_that_step(recording):
    rec, target = recording
    for s in STEPS:
        pred = prediction_at(target, s)
        expected = object_stats(target, loss_map(pred, target, "bce"), pred)
        table = table_at_step(rec, "sample_0", s)
        assert set(table) == {"index", "area", "mean_loss", "total_loss", "dice", "iou"}
        for col, values in expected.items():
            np.testing.assert_allclose(table[col], values, rtol=1e-5)
    last = table_at_step(rec.path, "sample_0")  # a path works too; default: the last step
    np.testing.assert_array_equal(last["dice"], table_at_step(rec, "sample_0", 7)["dice"])


def test_unrecorded_step_names_the_nearest(recording):
    rec, _ = recording
    with pytest.raises(
        ValueError, match=r"step 5 was not recorded; the nearest recorded: \[3, 7\]"
    ):
        table_at_step(rec, "sample_0", 5)
    with pytest.raises(KeyError, match="no sample 'other'"):
        table_at_step(rec, "other", 0)


def test_object_history(recording):
    rec, target = recording
    steps, ids, values = object_history(rec, "sample_0", [3, 1], column="dice")
    assert steps.tolist() == STEPS
    assert ids.tolist() == [3, 1]
    for t, s in enumerate(STEPS):
        table = table_at_step(rec, "sample_0", s)
        assert values[t].tolist() == [table["dice"][2], table["dice"][0]]
    _, all_ids, all_values = object_history(rec, "sample_0")
    assert all_ids.tolist() == [1, 2, 3] and all_values.shape == (4, 3)
    with pytest.raises(ValueError, match=r"no object\(s\) \[9\] in sample 'sample_0'"):
        object_history(rec, "sample_0", [1, 9])
    with pytest.raises(ValueError, match="column must be one of"):
        object_history(rec, "sample_0", column="area")


def test_loss_curve(recording):
    rec, target = recording
    steps, loss = loss_curve(rec, "sample_0")
    assert steps.tolist() == STEPS
    for t, s in enumerate(STEPS):
        assert loss[t] == pytest.approx(loss_map(prediction_at(target, s), target, "bce").mean())


def test_objects_that_stay_wrong(recording):
    rec, target = recording
    _, ids, loss = object_history(rec, "sample_0")
    # the trapezoid rule, written out step by step
    score = {
        int(i): sum(
            (STEPS[j + 1] - STEPS[j]) * (loss[j, k] + loss[j + 1, k]) / 2
            for j in range(len(STEPS) - 1)
        )
        for k, i in enumerate(ids)
    }
    ranked = objects_that_stay_wrong(rec, "sample_0", k=2)
    assert [o.id for o in ranked] == sorted(score, key=lambda i: -score[i])[:2]
    assert ranked[0].id == 3  # the object that is never found
    assert ranked[0].rank == 1 and ranked[1].rank == 2
    assert ranked[0].score == pytest.approx(score[3])
    assert ranked[0].final_dice == 0.0
    obj = target == 3
    assert ranked[0].area == obj.sum()
    np.testing.assert_allclose(ranked[0].centroid, ndi.center_of_mass(obj))
    ys, xs = np.nonzero(obj)
    assert ranked[0].bbox == ((ys.min(), xs.min()), (ys.max() + 1, xs.max() + 1))
    by_dice = objects_that_stay_wrong(rec, "sample_0", k=3, by="dice")
    assert by_dice[0].id == 3
    with pytest.raises(ValueError, match="k must be an integer >= 1, got 0"):
        objects_that_stay_wrong(rec, "sample_0", k=0)
    with pytest.raises(ValueError, match="by must be 'loss' or 'dice'"):
        objects_that_stay_wrong(rec, "sample_0", by="iou")


def test_a_single_step_scores_its_loss(tmp_path):
    image, target = blobs()
    path = tmp_path / "one.losslens.zarr"
    with LossRecorder(path, loss="bce") as rec:
        rec.record(0, image, prediction_at(target, 0), target)
    ranked = objects_that_stay_wrong(path, "sample_0", k=3)
    table = table_at_step(path, "sample_0", 0)
    assert sorted(o.score for o in ranked) == sorted(table["mean_loss"].tolist())


def test_region_loss_ranks_by_magnitude(tmp_path):
    """Dice's map is a signed gradient: an object is wrong however the sign points."""
    image, target = blobs()
    path = tmp_path / "dice.losslens.zarr"
    with LossRecorder(path, loss="dice") as rec:
        for s in (0, 1):
            rec.record(s, image, prediction_at(target, s), target)
    _, ids, loss = object_history(path, "sample_0")
    score = np.abs(loss).sum(axis=0) / 2  # one step apart
    ranked = objects_that_stay_wrong(path, "sample_0", k=3)
    np.testing.assert_allclose([o.score for o in ranked], np.sort(score)[::-1])


def test_nothing_recorded_yet(tmp_path):
    path = tmp_path / "empty.losslens.zarr"
    LossRecorder(path, loss="bce").close()
    with pytest.raises(ValueError, match="no recorded step yet"):
        table_at_step(path, "sample_0")
    with pytest.raises(TypeError, match="recording must be a Recording or a path, got int"):
        table_at_step(3, "sample_0")
