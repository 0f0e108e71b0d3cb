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
    for name in ("loss_map", "weight_map_from_distances", "object_stats", "hot_spots"):
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
    assert set(second.reused) == {"loss", "error map", "statistics", "hot-spots"}
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
    assert second.reused == ("error map",)  # labels and prediction did not change
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
