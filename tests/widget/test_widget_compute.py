"""The widget computes on the sample and its layers equal the core results."""

from __future__ import annotations

import numpy as np

from napari_losslens import core
from napari_losslens._layers import OWNER


def test_picks_sample_layers(widget, sample_viewer):
    assert widget.labels_layer.value is sample_viewer.layers["ground truth"]
    assert widget.prediction_layer.value is sample_viewer.layers["prediction"]
    assert widget.image_layer.value is sample_viewer.layers["image"]


def test_compute_matches_core(widget, sample_viewer):
    widget.loss.value = "unet_ce"
    widget.w0.value = 8.0
    widget.sigma.value = 4.0
    widget.outputs.value = ("loss_map", "weight_map", "errors", "object_stats")
    result = widget.compute()
    assert result is not None
    lab = sample_viewer.layers["ground truth"].data
    pred = sample_viewer.layers["prediction"].data
    w_ref = core.unet_weight_map(lab, w0=8.0, sigma=4.0, device="cpu")
    l_ref = core.loss_map(pred, lab, "unet_ce", w0=8.0, sigma=4.0, device="cpu")
    layers = widget.layers
    np.testing.assert_allclose(layers["weight_map"].data, w_ref, atol=1e-4 * 8)
    np.testing.assert_allclose(layers["loss_map"].data, l_ref, rtol=1e-4, atol=1e-3)
    assert result.value == np.float64(result.value)
    assert abs(result.value - core.loss_value(pred, lab, "unet_ce", w0=8.0, sigma=4.0)) < 1e-4
    np.testing.assert_array_equal(layers["errors"].data, core.error_map(lab, pred))
    for role, layer in layers.items():
        if role != "object_stats":
            assert layer.metadata[OWNER]["role"] == role
            assert layer.metadata[OWNER]["source"] == "ground truth"
    assert "unet_ce" not in widget.status.value  # the title, not the key
    assert "cpu" in widget.status.value and "ms" in widget.status.value


def test_object_stats_in_features(widget, sample_viewer):
    widget.outputs.value = ("loss_map", "object_stats")
    widget.compute()
    gt = sample_viewer.layers["ground truth"]
    feats = gt.features
    ref = core.object_stats(
        gt.data, widget.layers["loss_map"].data, sample_viewer.layers["prediction"].data
    )
    np.testing.assert_array_equal(feats["index"].to_numpy(), ref["index"])
    np.testing.assert_allclose(feats["mean_loss"].to_numpy(), ref["mean_loss"])
    np.testing.assert_allclose(feats["dice"].to_numpy(), ref["dice"])


def test_region_loss_gives_signed_map(widget, sample_viewer):
    widget.loss.value = "dice"
    widget.outputs.value = ("loss_map",)
    widget.compute()
    layer = widget.layers["loss_map"]
    lo, hi = layer.contrast_limits
    assert lo == -hi < 0
    lab = sample_viewer.layers["ground truth"].data
    pred = sample_viewer.layers["prediction"].data
    np.testing.assert_allclose(layer.data, core.loss_map(pred, lab, "dice"), rtol=1e-5)
