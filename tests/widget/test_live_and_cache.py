"""Live mode reacts to a slider; painting the labels invalidates the distance cache."""

from __future__ import annotations

import numpy as np

from napari_losslens import core


def test_live_mode_reacts_to_sigma(widget, sample_viewer, qtbot):
    widget.outputs.value = ("weight_map",)
    widget.compute()
    layer = widget.layers["weight_map"]
    before = np.array(layer.data, copy=True)
    widget.live.value = True
    widget.sigma.value = 2.0
    qtbot.waitUntil(lambda: not np.array_equal(layer.data, before), timeout=10_000)
    lab = sample_viewer.layers["ground truth"].data
    qtbot.waitUntil(
        lambda: np.allclose(layer.data, core.unet_weight_map(lab, sigma=2.0), atol=1e-3),
        timeout=10_000,
    )
    assert widget.layers["weight_map"] is layer


def test_parameter_change_reuses_distances(widget):
    widget.outputs.value = ("weight_map",)
    widget.compute()
    misses = widget.cache.misses
    for w0 in (5.0, 6.0, 7.0):
        widget.w0.value = w0
        widget.compute()
    widget.class_weights.value = "balanced"
    widget.compute()
    assert widget.cache.misses == misses
    assert widget.cache.hits >= 4


def test_painting_invalidates_the_cache(widget, sample_viewer):
    widget.outputs.value = ("weight_map",)
    widget.compute()
    assert len(widget.cache) == 1
    gt = sample_viewer.layers["ground truth"]
    new_id = int(gt.data.max()) + 1
    gt.paint((20, 20), new_id, refresh=True)
    assert len(widget.cache) == 0
    misses = widget.cache.misses
    widget.compute()
    assert widget.cache.misses == misses + 1
    np.testing.assert_allclose(
        widget.layers["weight_map"].data, core.unet_weight_map(gt.data), atol=1e-3
    )
