"""The console API: same layers as the widget, in-place updates, names and arrays as inputs."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import napari_losslens
from napari_losslens import core
from napari_losslens._layers import OWNER


def test_import_is_gui_free():
    code = (
        "import sys, napari_losslens as n; n.inspect; n.show; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt6', "
        "'magicgui')]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr


def test_inspect_layers_equal_the_widget(sample_viewer):
    outputs = ("loss_map", "weight_map", "errors", "hot_spots")
    r = napari_losslens.inspect(
        sample_viewer,
        "ground truth",
        "prediction",
        loss="unet_ce",
        outputs=outputs,
        w0=7.0,
        sigma=3.0,
    )
    snapshot = {role: np.array(layer.data, copy=True) for role, layer in r.layers.items()}
    widget = napari_losslens.show(sample_viewer)
    assert napari_losslens.show(sample_viewer) is widget  # the open one is returned
    widget.loss.value = "unet_ce"
    widget.w0.value = 7.0
    widget.sigma.value = 3.0
    widget.outputs.value = outputs
    n_layers = len(sample_viewer.layers)
    result = widget.compute()
    assert len(sample_viewer.layers) == n_layers  # the widget updated the API's layers
    for role, layer in r.layers.items():
        assert widget.layers[role] is layer
        np.testing.assert_allclose(layer.data, snapshot[role], rtol=1e-6, atol=1e-6)
        assert layer.metadata[OWNER]["role"] == role
    assert result.value == pytest.approx(r.value)
    lab = sample_viewer.layers["ground truth"].data
    pred = sample_viewer.layers["prediction"].data
    ref = core.loss_map(pred, lab, "unet_ce", w0=7.0, sigma=3.0)
    np.testing.assert_allclose(r.arrays["loss_map"], ref, rtol=1e-4, atol=1e-3)


def test_inspect_arrays_become_layers_updated_in_place(make_napari_viewer):
    viewer = make_napari_viewer()
    lab = np.zeros((40, 40), np.int32)
    lab[5:15, 5:15] = 1
    lab[15:25, 5:15] = 2
    pred = np.where(lab > 0, 0.8, 0.1).astype(np.float32)
    r1 = napari_losslens.inspect(viewer, lab, pred, outputs=("loss_map", "object_stats"))
    assert viewer.layers["labels"].metadata[OWNER]["role"] == "input:labels"
    assert r1.value == pytest.approx(core.loss_value(pred, lab))
    assert r1.layers["object_stats"].features["index"].tolist() == [1, 2]
    n_layers = len(viewer.layers)
    r2 = napari_losslens.inspect(viewer, lab, pred * 0.5, outputs=("loss_map", "object_stats"))
    assert len(viewer.layers) == n_layers
    assert r2.layers["loss_map"] is r1.layers["loss_map"]
    np.testing.assert_allclose(r2.layers["loss_map"].data, core.loss_map(pred * 0.5, lab))


def test_inspect_errors(make_napari_viewer):
    viewer = make_napari_viewer()
    lab = np.ones((8, 8), np.int32)
    with pytest.raises(ValueError, match="no layer named 'nope'"):
        napari_losslens.inspect(viewer, "nope", np.zeros((8, 8)))
    with pytest.raises(TypeError, match="unknown parameter"):
        napari_losslens.inspect(viewer, lab, np.zeros((8, 8)), loss="bce", gamma=2)
    with pytest.raises(ValueError, match="same shape"):
        napari_losslens.inspect(viewer, lab, np.zeros((8, 9)))


def test_inspect_reuses_the_layers_distance_cache(sample_viewer):
    from napari_losslens._layers import distance_cache
    from napari_losslens._widget import LossLensWidget

    gt = sample_viewer.layers["ground truth"]
    pred = sample_viewer.layers["prediction"].data
    outputs = ("loss_map", "weight_map")
    napari_losslens.inspect(sample_viewer, gt, "prediction", loss="unet_ce", outputs=outputs)
    cache = distance_cache(gt)
    misses, hits = cache.misses, cache.hits
    assert misses == 1
    r = napari_losslens.inspect(
        sample_viewer, gt, "prediction", loss="unet_ce", outputs=outputs, w0=6.0, sigma=3.0
    )
    assert (cache.misses, cache.hits) == (misses, hits + 1)  # only w0 and σ moved
    np.testing.assert_allclose(
        r.arrays["weight_map"], core.unet_weight_map(gt.data, w0=6.0, sigma=3.0), atol=1e-3
    )
    ref = core.loss_map(pred, gt.data, "unet_ce", w0=6.0, sigma=3.0)
    np.testing.assert_allclose(r.arrays["loss_map"], ref, rtol=1e-4, atol=1e-3)
    assert LossLensWidget(sample_viewer).cache is cache  # the widget uses the same one
    gt.paint((20, 20), int(gt.data.max()) + 1, refresh=True)  # an edit empties it
    assert len(cache) == 0
    r = napari_losslens.inspect(sample_viewer, gt, "prediction", outputs=("weight_map",))
    assert cache.misses == misses + 1
    np.testing.assert_allclose(r.arrays["weight_map"], core.unet_weight_map(gt.data), atol=1e-3)


def test_inspect_with_the_same_array_keeps_the_cache(make_napari_viewer):
    from napari_losslens._layers import distance_cache

    viewer = make_napari_viewer()
    lab = np.zeros((40, 40), np.int32)
    lab[5:15, 5:15] = 1
    lab[15:25, 5:15] = 2
    pred = np.where(lab > 0, 0.8, 0.1).astype(np.float32)
    napari_losslens.inspect(viewer, lab, pred, outputs="weight_map")
    cache = distance_cache(viewer.layers["labels"])
    r = napari_losslens.inspect(viewer, lab.copy(), pred, outputs="weight_map", w0=5.0)
    assert (cache.misses, cache.hits) == (1, 1)
    np.testing.assert_allclose(r.arrays["weight_map"], core.unet_weight_map(lab, w0=5.0), 1e-5)
    lab[30:35, 30:35] = 3  # a different array: the layer is updated, the cache starts over
    r = napari_losslens.inspect(viewer, lab, pred, outputs="weight_map")
    assert cache.misses == 2
    np.testing.assert_allclose(r.arrays["weight_map"], core.unet_weight_map(lab), 1e-5, 1e-3)


def test_inspect_takes_big_endian_arrays(make_napari_viewer):
    """Big-endian labels and prediction (as some TIFF readers give) give the same maps as
    native ones, and the arrays passed in are left untouched."""
    viewer = make_napari_viewer()
    labels = np.zeros((24, 24), np.int32)
    labels[3:10, 3:10], labels[3:10, 11:18], labels[14:21, 5:20] = 1, 2, 3
    prob = np.where(labels > 0, 0.8, 0.3).astype(np.float32)
    big_labels, big_prob = labels.astype(">i4"), prob.astype(">f4")
    before = big_labels.copy(), big_prob.copy()
    r = napari_losslens.inspect(
        viewer, big_labels, big_prob, loss="unet_ce", outputs=("loss_map", "weight_map")
    )
    np.testing.assert_allclose(
        r.layers["weight_map"].data, core.unet_weight_map(labels), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_allclose(
        r.layers["loss_map"].data, core.loss_map(prob, labels, "unet_ce"), rtol=1e-5, atol=1e-5
    )
    np.testing.assert_array_equal(big_labels, before[0])
    np.testing.assert_array_equal(big_prob, before[1])
