"""The comparison computation (no napari): maps, normalisation, limits, per-object changes."""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens._compare import (
    MAX_PANES,
    LossSpec,
    compare_arrays,
    normalize,
    parse_losses,
    per_object_changes,
)
from napari_losslens.core import loss_map, loss_value


@pytest.fixture
def scene():
    lab = np.zeros((30, 32), np.int32)
    lab[3:11, 4:12] = 1
    lab[15:25, 16:27] = 2
    lab[4:9, 20:28] = 3
    rng = np.random.default_rng(0)
    a = np.clip(0.75 * (lab > 0) + 0.25 * rng.random(lab.shape), 0.0, 1.0)
    b = a.copy()
    b[15:25, 16:27] = 0.1  # model B misses object 2
    b[3:11, 4:12] = 0.97  # ... and is surer of object 1
    return lab, a, b


def test_parse_losses_accepts_names_pairs_and_specs():
    specs = parse_losses(["bce", ("focal", {"gamma": 1}), LossSpec("dice", {"smooth": 1.0})])
    assert [s.name for s in specs] == ["bce", "focal", "dice"]
    assert specs[1].params == {"gamma": 1.0}
    assert [s.title for s in specs] == ["bce", "focal (gamma=1)", "dice (smooth=1)"]
    assert parse_losses("bce") == (LossSpec("bce", {}),)
    assert parse_losses(("focal", {"gamma": 0.5}))[0].params == {"gamma": 0.5}


@pytest.mark.parametrize(
    ("losses", "err", "match"),
    [
        (["nope"], ValueError, r"unknown loss 'nope'"),
        ([("focal", {"gama": 1})], TypeError, r"unknown parameter\(s\) 'gama' for loss 'focal'"),
        ([("focal", {"gamma": -1})], ValueError, r"'gamma' of loss 'focal' must be >= 0.0"),
        ([("focal", 2)], TypeError, r"the parameters of loss 'focal' must be a dict, got int"),
        ([3], TypeError, r"each loss must be a name or a \(name, params\) pair, got 3"),
        ([], ValueError, r"at least one loss"),
        (["bce"] * (MAX_PANES + 1), ValueError, rf"at most {MAX_PANES} losses.*got 7"),
        (7, TypeError, r"losses must be a list of loss names.*got int"),
    ],
)
def test_parse_losses_errors(losses, err, match):
    with pytest.raises(err, match=match):
        parse_losses(losses)


def test_normalize_divides_by_the_absolute_total():
    m, s = normalize(np.array([[1.0, -3.0], [0.0, 4.0]]))
    assert s == 8.0
    np.testing.assert_allclose(m, [[0.125, -0.375], [0.0, 0.5]])
    zeros, one = normalize(np.zeros((2, 2)))
    assert one == 1.0 and not zeros.any()


def test_losses_mode_maps_are_the_core_maps_normalised(scene):
    lab, a, _ = scene
    snapshot = (lab.copy(), a.copy())
    c = compare_arrays(lab, [a], ["bce", ("focal", {"gamma": 1.0}), "dice"])
    assert c.mode == "losses" and c.difference is None and c.table is None
    assert [p.title for p in c.panes] == ["bce", "focal (gamma=1)", "dice"]
    for pane, (name, kw) in zip(
        c.panes, [("bce", {}), ("focal", {"gamma": 1.0}), ("dice", {})], strict=True
    ):
        raw = loss_map(a, lab, name, **kw)
        np.testing.assert_allclose(pane.raw, raw, rtol=1e-6)
        np.testing.assert_allclose(pane.normalized, raw / np.abs(raw).sum(), rtol=1e-5)
        assert np.abs(pane.normalized).sum() == pytest.approx(1.0, rel=1e-5)
        assert pane.value == pytest.approx(loss_value(a, lab, name, **kw), rel=1e-6)
    assert [p.kind for p in c.panes] == ["pixel", "pixel", "region"]
    # one shared range per kind: [0, h] for losses, [-h, h] for gradients
    lo, hi = c.limits["pixel"]
    both = np.concatenate([c.panes[0].normalized.ravel(), c.panes[1].normalized.ravel()])
    assert lo == 0.0 and hi == pytest.approx(np.percentile(both, 99.5), rel=1e-5)
    assert c.limits["region"][0] == -c.limits["region"][1] > -np.inf
    assert c.pane_limits(c.panes[2]) == c.limits["region"]
    assert c.hot_spots and c.hot_spots[0].rank == 1
    np.testing.assert_array_equal(lab, snapshot[0])  # inputs untouched
    np.testing.assert_array_equal(a, snapshot[1])


def test_models_mode_difference_and_per_object_changes(scene):
    lab, a, b = scene
    c = compare_arrays(lab, [a, b], ["bce"])
    assert c.mode == "models" and [p.title for p in c.panes] == ["A: bce", "B: bce"]
    np.testing.assert_allclose(
        c.difference, loss_map(a, lab, "bce") - loss_map(b, lab, "bce"), rtol=1e-5, atol=1e-6
    )
    assert c.limits["difference"][0] == -c.limits["difference"][1]
    t = c.table
    assert t["index"].tolist() == [1, 2, 3]
    # object 2 missed by B: Dice 1 -> 0, loss up; object 1 surer: loss down, Dice same
    row = {k: v[1] for k, v in t.items()}
    assert row["dice_a"] == 1.0 and row["dice_b"] == 0.0 and row["verdict"] == "worse"
    assert row["loss_change"] > 0 and row["iou_change"] == -1.0
    obj = lab == 1
    want = loss_map(b, lab, "bce")[obj].mean() - loss_map(a, lab, "bce")[obj].mean()
    assert t["loss_change"][0] == pytest.approx(want, rel=1e-5)
    assert t["verdict"][0] == "same" and t["verdict"][2] == "same"
    assert t["area"].tolist() == [64, 110, 40]
    # the hot-spots follow the difference: the worst is on object 2
    y, x = c.hot_spots[0].peak_position
    assert lab[y, x] == 2


def test_per_object_changes_better_and_worse():
    lab = np.array([[1, 1, 0, 2, 2]])
    pa = np.array([[0.9, 0.9, 0.0, 0.1, 0.1]])
    pb = np.array([[0.1, 0.1, 0.0, 0.9, 0.9]])
    t = per_object_changes(lab, pa, pb, pa, pb)
    assert t["verdict"].tolist() == ["worse", "better"]
    assert t["dice_change"].tolist() == [-1.0, 1.0]


def test_spacing_reaches_distance_losses(scene):
    lab, a, _ = scene
    c = compare_arrays(lab, [a], ["bce", "boundary"], spacing=(2.0, 0.5))
    np.testing.assert_allclose(
        c.panes[1].raw, loss_map(a, lab, "boundary", spacing=(2.0, 0.5)), rtol=1e-6
    )


@pytest.mark.parametrize(
    ("preds", "losses", "match"),
    [
        (1, ["bce"], r"comparing losses needs 2 to 6 of them.*got 1"),
        (2, ["bce", "dice"], r"comparing two predictions takes exactly one loss, got 2"),
        (3, ["bce"], r"predictions must be one array or a list of two.*got 3"),
    ],
)
def test_mode_errors(scene, preds, losses, match):
    lab, a, _ = scene
    with pytest.raises(ValueError, match=match):
        compare_arrays(lab, [a] * preds, losses)


def test_shape_mismatch_names_the_prediction(scene):
    lab, a, _ = scene
    with pytest.raises(ValueError, match=r"prediction B must have the labels' shape"):
        compare_arrays(lab, [a, a[:-1]], ["bce"])
