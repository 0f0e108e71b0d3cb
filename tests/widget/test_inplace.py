"""Recomputing updates the plugin's layers in place and never touches a user's layer."""

from __future__ import annotations

import numpy as np

from napari_losslens import core


def test_recompute_updates_same_layers(widget, sample_viewer):
    widget.outputs.value = ("loss_map", "weight_map", "hot_spots", "errors")
    widget.compute()
    first = dict(widget.layers)
    n_layers = len(sample_viewer.layers)
    widget.sigma.value = 3.0
    widget.compute()
    assert len(sample_viewer.layers) == n_layers
    for role, layer in first.items():
        assert widget.layers[role] is layer
    lab = sample_viewer.layers["ground truth"].data
    np.testing.assert_allclose(
        first["weight_map"].data, core.unet_weight_map(lab, sigma=3.0), atol=1e-3
    )
    assert tuple(first["weight_map"].scale) == tuple(sample_viewer.layers["ground truth"].scale)


def test_user_layer_with_the_same_name_is_untouched(widget, sample_viewer):
    user = sample_viewer.add_image(np.ones((512, 512), np.float32), name="ground truth loss map")
    widget.outputs.value = ("loss_map",)
    widget.compute()
    widget.compute()
    np.testing.assert_array_equal(user.data, 1.0)
    assert user.name == "ground truth loss map"
    assert widget.layers["loss_map"] is not user
    owned = [layer for layer in sample_viewer.layers if "napari_losslens" in layer.metadata]
    assert len(owned) == 1


def test_inputs_are_not_modified(widget, sample_viewer):
    before = {layer.name: np.array(layer.data, copy=True) for layer in sample_viewer.layers}
    widget.outputs.value = ("loss_map", "weight_map", "errors", "object_stats", "hot_spots")
    widget.separate_touching.value = True
    widget.compute()
    for name, data in before.items():
        np.testing.assert_array_equal(sample_viewer.layers[name].data, data)


def test_scale_and_translate_are_copied(widget, sample_viewer):
    gt = sample_viewer.layers["ground truth"]
    for name in ("image", "prediction", "ground truth"):
        sample_viewer.layers[name].scale = (0.5, 0.5)
        sample_viewer.layers[name].translate = (10.0, 20.0)
    widget.outputs.value = ("loss_map", "weight_map")
    widget.sigma.value = 2.5  # world units: 5 pixels
    widget.compute()
    layer = widget.layers["weight_map"]
    assert tuple(layer.scale) == (0.5, 0.5) and tuple(layer.translate) == (10.0, 20.0)
    ref = core.unet_weight_map(gt.data, sigma=2.5, spacing=(0.5, 0.5))
    np.testing.assert_allclose(layer.data, ref, atol=1e-3)
