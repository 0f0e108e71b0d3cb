"""Only what changed is recomputed: the step memo of the pipeline, and the layers it spares."""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens import core
from napari_losslens._compute import (
    ComputeRequest,
    DistanceCache,
    StepMemo,
    WeightParams,
    run,
)

OUTPUTS = ("loss_map", "weight_map", "errors", "object_stats", "hot_spots")


@pytest.fixture
def sample():
    from napari_losslens._sample_data import make_prediction, make_touching_nuclei

    image, labels = make_touching_nuclei((96, 96), seed=3)
    return image, labels, make_prediction(labels, seed=3)


@pytest.fixture
def counted(monkeypatch):
    """Count the calls of the core functions behind each step."""
    calls: dict[str, int] = {}
    names = ("loss_map", "weight_map_from_distances", "object_overlap", "object_stats")
    for name in (*names, "hot_spots"):
        real = getattr(core, name)

        def wrapper(*args, _real=real, _name=name, **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _real(*args, **kwargs)

        monkeypatch.setattr(core, name, wrapper)
    return calls


def _request(sample, loss, w0=10.0, sigma=5.0, **kw):
    image, labels, pred = sample
    return ComputeRequest(
        labels,
        pred,
        image=image,
        loss=loss,
        outputs=OUTPUTS,
        weights=WeightParams(w0=w0, sigma=sigma),
        cache_key="k",
        **kw,
    )


def _same(a, b):
    assert set(a.arrays) == set(b.arrays)
    for key in a.arrays:
        np.testing.assert_allclose(a.arrays[key], b.arrays[key], rtol=1e-6, atol=1e-7)
    assert a.value == pytest.approx(b.value)
    for key in b.stats:
        np.testing.assert_allclose(a.stats[key], b.stats[key], rtol=1e-6)
    assert [s.peak_position for s in a.hot_spots] == [s.peak_position for s in b.hot_spots]


@pytest.mark.parametrize("loss", ["unet_ce", "bce", "dice"])
def test_memo_gives_the_results_of_a_fresh_run(sample, loss):
    cache, memo = DistanceCache(), StepMemo()
    for w0, sigma, threshold in ((10, 5, None), (6, 5, None), (6, 3, None), (6, 3, 0.3)):
        request = _request(sample, loss, w0, sigma, threshold=threshold)
        _same(run(request, cache, memo), run(request))


def test_weight_move_recomputes_only_the_weight_map_for_a_loss_without_it(sample, counted):
    cache, memo = DistanceCache(), StepMemo()
    first = run(_request(sample, "bce"), cache, memo)
    before = dict(counted)
    second = run(_request(sample, "bce", w0=4.0), cache, memo)
    assert counted["weight_map_from_distances"] == before["weight_map_from_distances"] + 1
    for name in ("loss_map", "object_stats", "hot_spots"):
        assert counted[name] == before[name], name
    assert set(second.reused) == {"loss", "error map", "overlap", "statistics", "hot-spots"}
    assert second.arrays["loss_map"] is first.arrays["loss_map"]  # the very same objects
    assert second.stats is first.stats and second.hot_spots is first.hot_spots
    _, labels, _ = sample
    np.testing.assert_allclose(
        second.arrays["weight_map"], core.unet_weight_map(labels, w0=4.0), atol=1e-4
    )


def test_weight_move_recomputes_what_uses_the_weight_map(sample, counted):
    cache, memo = DistanceCache(), StepMemo()
    run(_request(sample, "unet_ce"), cache, memo)
    before = dict(counted)
    second = run(_request(sample, "unet_ce", sigma=3.0), cache, memo)
    for name in ("weight_map_from_distances", "loss_map", "object_stats", "hot_spots"):
        assert counted[name] == before[name] + 1, name
    assert second.reused == ("error map", "overlap")  # labels and prediction did not change
    _, labels, pred = sample
    ref = core.loss_map(pred, labels, "unet_ce", sigma=3.0)
    np.testing.assert_allclose(second.arrays["loss_map"], ref, rtol=1e-4, atol=1e-4)


def test_edited_labels_or_prediction_recompute_everything(sample):
    image, labels, pred = sample
    cache, memo = DistanceCache(), StepMemo()
    run(_request(sample, "bce"), cache, memo)
    edited = labels.copy()
    edited[:10, :10] = edited.max() + 1  # same array shape, new content
    result = run(_request((image, edited, pred), "bce"), cache, memo)
    assert result.reused == ()
    np.testing.assert_allclose(result.arrays["loss_map"], core.loss_map(pred, edited))
    result = run(_request((image, edited, pred * 0.5), "bce"), cache, memo)
    assert result.reused == ("weight map",)  # the weight map depends on the labels only
    np.testing.assert_allclose(result.arrays["loss_map"], core.loss_map(pred * 0.5, edited))


def test_a_weight_move_leaves_unchanged_layers_alone(widget, sample_viewer):
    gt = sample_viewer.layers["ground truth"]
    widget.loss.value = "bce"
    widget.outputs.value = ("loss_map", "weight_map", "object_stats", "hot_spots")
    widget.compute()
    loss_data, weight_data = widget.layers["loss_map"].data, widget.layers["weight_map"].data
    features, spots = gt.features, widget.layers["hot_spots"].data
    widget.w0.value = 3.0
    widget.compute()
    assert widget.layers["loss_map"].data is loss_data  # not redrawn
    assert gt.features is features
    assert widget.layers["hot_spots"].data is spots
    assert widget.layers["weight_map"].data is not weight_data
    np.testing.assert_allclose(
        widget.layers["weight_map"].data, core.unet_weight_map(gt.data, w0=3.0), atol=1e-3
    )


def _fresh_table(labels, loss_map, pred, threshold=0.5, image=None):
    """The per-object table the one-call way (loss and overlap columns together)."""
    return core.object_stats(labels, loss_map, pred, threshold=threshold, image=image)


def _same_table(got: dict, expected: dict) -> None:
    assert list(got) == list(expected)  # the same columns, in the same order
    for key in expected:
        np.testing.assert_array_equal(got[key], expected[key], err_msg=key)


@pytest.fixture
def stats_calls(monkeypatch):
    """The arguments of each core.object_stats call (to see whether it got a prediction)."""
    calls: list[tuple] = []
    real = core.object_stats

    def recording(*args, **kwargs):
        calls.append((args, kwargs))
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "object_stats", recording)
    return calls


@pytest.mark.parametrize("move", [{"w0": 4.0}, {"sigma": 3.0}])
def test_a_weight_move_does_not_recompute_the_prediction_components(
    sample, counted, stats_calls, move
):
    image, labels, pred = sample
    cache, memo = DistanceCache(), StepMemo()
    first = run(_request(sample, "unet_ce"), cache, memo)
    assert counted["object_overlap"] == 1
    second = run(_request(sample, "unet_ce", **move), cache, memo)
    assert counted["object_overlap"] == 1  # the components were not computed again
    assert counted["object_stats"] == 2  # the loss columns were (the loss map changed)
    assert all(len(args) < 3 and "prediction" not in kw for args, kw in stats_calls)
    assert {"overlap", "error map"} <= set(second.reused)
    assert "statistics" not in second.reused
    for result in (first, second):  # the table of a fresh one-call computation
        expected = _fresh_table(labels, result.arrays["loss_map"], pred, image=image)
        _same_table(result.stats, expected)
    # the loss map moved (the objects' rows need not: the border term weighs the background)
    assert not np.array_equal(second.arrays["loss_map"], first.arrays["loss_map"])


def test_a_prediction_labels_or_threshold_change_recomputes_the_components(sample, counted):
    image, labels, pred = sample
    cache, memo = DistanceCache(), StepMemo()
    run(_request(sample, "bce"), cache, memo)
    edited = labels.copy()
    edited[:12, :12] = edited.max() + 1
    changes = [
        ((image, labels, pred * 0.9), None),  # the prediction
        ((image, labels, pred * 0.9), 0.3),  # the threshold
        ((image, edited, pred * 0.9), 0.3),  # the labels
    ]
    for n, (data, threshold) in enumerate(changes, start=2):
        kept = [a.copy() for a in data]
        result = run(_request(data, "bce", threshold=threshold), cache, memo)
        assert counted["object_overlap"] == n
        assert "overlap" not in result.reused and "statistics" not in result.reused
        fresh = _fresh_table(
            data[1], result.arrays["loss_map"], data[2], 0.5 if threshold is None else threshold
        )
        _same_table(result.stats, {**fresh, "mean_intensity": result.stats["mean_intensity"]})
        np.testing.assert_allclose(
            result.stats["mean_intensity"],
            core.object_stats(data[1], image=image)["mean_intensity"],
        )
        for a, b in zip(data, kept, strict=True):  # the inputs are not changed
            np.testing.assert_array_equal(a, b)
    again = run(_request(changes[-1][0], "bce", threshold=0.3), cache, memo)
    assert counted["object_overlap"] == len(changes) + 1  # nothing changed: all reused
    assert "overlap" in again.reused and "statistics" in again.reused


def test_a_region_loss_table_takes_the_overlap_from_the_memo(sample, counted):
    """A region loss's table has |∂L/∂p| columns; the overlap columns are the same."""
    image, labels, pred = sample
    cache, memo = DistanceCache(), StepMemo()
    run(_request(sample, "dice"), cache, memo)
    result = run(_request(sample, "dice", loss_params={"smooth": 0.5}), cache, memo)
    assert counted["object_overlap"] == 1 and counted["object_stats"] == 2
    fresh = _fresh_table(labels, np.abs(result.arrays["loss_map"]), pred, image=image)
    assert list(result.stats) == [
        "index", "area", "mean_abs_gradient", "total_abs_gradient", "dice", "iou", "mean_intensity"
    ]  # fmt: skip
    renamed = {"mean_loss": "mean_abs_gradient", "total_loss": "total_abs_gradient"}
    _same_table(result.stats, {renamed.get(k, k): v for k, v in fresh.items()})


def test_a_live_weight_move_in_the_widget_keeps_the_components(
    widget, sample_viewer, qtbot, counted
):
    gt, pred = sample_viewer.layers["ground truth"], sample_viewer.layers["prediction"]
    widget.loss.value = "unet_ce"
    widget.outputs.value = ("loss_map", "weight_map", "object_stats", "hot_spots")
    widget.compute()
    assert counted["object_overlap"] == 1
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)  # turning live on computes
    before = widget.last_result
    widget.w0.value = 4.0
    qtbot.waitUntil(
        lambda: not widget.workers and widget.last_result is not before, timeout=30_000
    )
    assert counted["object_overlap"] == 1
    assert "overlap" in widget.last_result.reused
    assert "statistics" not in widget.last_result.reused
    loss = core.loss_map(pred.data, gt.data, "unet_ce", w0=4.0)
    np.testing.assert_allclose(widget.layers["loss_map"].data, loss, rtol=1e-4, atol=1e-6)
    expected = _fresh_table(gt.data, widget.layers["loss_map"].data, pred.data)
    for key in ("index", "area", "mean_loss", "dice", "iou"):
        np.testing.assert_allclose(gt.features[key].to_numpy(), expected[key], rtol=1e-12)
    widget.live.value = False
    pred.data = pred.data * 0.9  # a new prediction: its components are computed again
    widget.compute()
    assert counted["object_overlap"] == 2
    expected = _fresh_table(gt.data, widget.layers["loss_map"].data, pred.data)
    np.testing.assert_allclose(gt.features["dice"].to_numpy(), expected["dice"], rtol=1e-12)
