"""The plugin is discovered through npe2, and its widget and samples open from napari."""

from __future__ import annotations

import importlib.util

import npe2
import pytest

from napari_losslens._widget import LossLensWidget

HAS_STARDIST = importlib.util.find_spec("stardist") is not None


def test_manifest_from_distribution():
    manifest = npe2.PluginManifest.from_distribution("napari-losslens")
    assert manifest.name == "napari-losslens"
    widgets = {w.display_name: w for w in manifest.contributions.widgets}
    assert "Loss Lens" in widgets
    samples = {s.key: s.display_name for s in manifest.contributions.sample_data}
    assert samples["touching_nuclei"] == "Touching nuclei (synthetic)"
    assert "dsb_nuclei" in samples


def test_dock_widget_and_sample_from_napari(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-losslens", "touching_nuclei")
    assert [layer.name for layer in viewer.layers] == ["image", "prediction", "ground truth"]
    _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
    assert isinstance(widget, LossLensWidget)
    assert widget.labels_layer.value is viewer.layers["ground truth"]
    assert widget.compute() is not None
    assert "ground truth loss map" in viewer.layers


@pytest.mark.skipif(not HAS_STARDIST, reason="stardist (the dsb extra) is not installed")
def test_dsb_sample_opens(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.open_sample("napari-losslens", "dsb_nuclei")
    gt = viewer.layers["ground truth"]
    assert gt.data.shape == (512, 512)
    assert len(set(gt.data.ravel().tolist()) - {0}) == 125
    pred = viewer.layers["prediction"].data
    assert pred.min() >= 0 and pred.max() <= 1
