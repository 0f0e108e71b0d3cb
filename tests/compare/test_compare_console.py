"""napari_losslens.compare with a real viewer: grid mode, one shared camera, in-place updates."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

import napari_losslens
from napari_losslens._compare_layers import compare_layers, focus_hot_spot, hide_grid
from napari_losslens._layers import OWNER
from napari_losslens.core import loss_map


def test_losses_side_by_side_in_grid_mode(sample_viewer):
    v = sample_viewer
    lab = v.layers["ground truth"].data.copy()
    pred = v.layers["prediction"].data.copy()
    visible_before = {layer.name: layer.visible for layer in v.layers}
    r = napari_losslens.compare(
        v, "ground truth", "prediction", losses=["bce", ("focal", {"gamma": 1}), "dice"]
    )
    assert r.mode == "losses" and r.table is None
    panes = r.layers["panes"]
    assert [p.name for p in panes] == [
        "compare 1: bce",
        "compare 2: focal (gamma=1)",
        "compare 3: dice",
    ]
    for i, layer in enumerate(panes):
        mark = layer.metadata[OWNER]
        assert (mark["role"], mark["source"], mark["pane"]) == ("compare", "ground truth", i)
        assert layer.visible
        assert layer.name_overlay.visible and layer.colorbar.visible  # titled panes
    # the maps are the core's, each divided by its absolute total
    want = loss_map(pred, lab, "focal", gamma=1.0)
    np.testing.assert_allclose(panes[1].data, want / np.abs(want).sum(), rtol=1e-4, atol=1e-9)
    assert r.maps["dice"] is r.comparison.panes[2].normalized
    assert tuple(panes[0].contrast_limits) == tuple(panes[1].contrast_limits)
    lo, hi = panes[2].contrast_limits
    assert lo == -hi and panes[2].colormap.name == "losslens diverging"
    # grid mode: the panes and the labels layer only; every viewbox follows viewer.camera
    grid = v.canvas.grid
    assert grid.enabled and grid.stride == 1
    shown = [layer.name for layer in v.layers if layer.visible]
    assert set(shown) == {"ground truth", *(p.name for p in panes)}
    assert grid.actual_shape(v.layers) == (2, 2)
    canvas = v.window._qt_viewer.canvas
    canvas._update_scenegraph()
    assert len(canvas.grid_cameras) == 4
    assert {id(c._camera) for c in canvas.grid_cameras} == {id(v.scene.camera)}
    v.scene.camera.zoom = 3.0
    v.scene.camera.center = (40.0, 60.0)
    for cam in canvas.grid_cameras:
        assert cam._camera.zoom == 3.0 and tuple(cam._camera.center)[-2:] == (40.0, 60.0)
    # stepping through hot-spots moves the one camera: every pane at once
    spot = r.comparison.hot_spots[1]
    focus_hot_spot(v, v.layers["ground truth"], r.comparison, 2)
    assert tuple(v.scene.camera.center)[-2:] == pytest.approx(
        tuple(map(float, spot.peak_position))
    )
    with pytest.raises(ValueError, match=r"rank must be between 1 and \d+, got 0"):
        focus_hot_spot(v, v.layers["ground truth"], r.comparison, 0)
    hide_grid(v, "ground truth")
    assert not grid.enabled
    for name, was in visible_before.items():
        assert v.layers[name].visible == was, name


def test_recompute_updates_layers_in_place_and_drops_extra_panes(sample_viewer):
    v = sample_viewer
    r1 = napari_losslens.compare(v, "ground truth", "prediction", losses=["bce", "dice", "mcc"])
    ids = [id(layer) for layer in r1.layers["panes"]]
    n = len(v.layers)
    r2 = napari_losslens.compare(
        v, "ground truth", "prediction", losses=["jaccard", "bce"], smooth=1.0
    )
    assert [id(layer) for layer in r2.layers["panes"]] == ids[:2]
    assert len(v.layers) == n - 1  # the third pane is gone, nothing duplicated
    assert [p.name for p in compare_layers(v)] == [
        "compare 1: jaccard (smooth=1)",
        "compare 2: bce",
    ]
    np.testing.assert_array_equal(r2.layers["panes"][1].data, r2.maps["bce"])


def test_two_models_difference_and_object_changes(make_napari_viewer):
    v = make_napari_viewer()
    lab = np.zeros((40, 44), np.int32)
    lab[4:14, 4:14] = 1
    lab[20:32, 22:36] = 2
    a = np.where(lab > 0, 0.9, 0.1)
    b = a.copy()
    b[20:32, 22:36] = 0.2  # model B loses object 2
    r = napari_losslens.compare(v, lab, [a, b], losses="bce")
    assert r.mode == "models"
    assert [p.name for p in r.layers["panes"]] == ["compare 1: A: bce", "compare 2: B: bce"]
    diff = r.layers["difference"]
    assert diff.name == "compare A − B: bce"
    np.testing.assert_allclose(
        diff.data, loss_map(a, lab, "bce") - loss_map(b, lab, "bce"), rtol=1e-5, atol=1e-6
    )
    lo, hi = diff.contrast_limits
    assert lo == -hi > -np.inf
    # the table, and the same rows in the labels layer's features (what hovering shows)
    t = r.table
    assert t["index"].tolist() == [1, 2]
    assert t["verdict"].tolist() == ["same", "worse"]
    labels_layer = r.layers["object_changes"]
    assert labels_layer.name == "labels"
    feats = labels_layer.features.set_index("index")
    assert feats.loc[2, "verdict"] == "worse" and feats.loc[2, "dice_change"] == -1.0
    assert [layer.name for layer in v.layers if layer.visible] == [
        "labels",
        "compare 1: A: bce",
        "compare 2: B: bce",
        "compare A − B: bce",
    ] or set(layer.name for layer in v.layers if layer.visible) == {
        "labels",
        "compare 1: A: bce",
        "compare 2: B: bce",
        "compare A − B: bce",
    }
    assert v.layers.selection.active is labels_layer
    # arrays again: the same input layers are reused, the outputs updated in place
    before = {id(layer) for layer in v.layers}
    b[4:14, 4:14] = 0.3
    r2 = napari_losslens.compare(v, lab, [a, b], losses="bce")
    assert {id(layer) for layer in v.layers} == before
    assert r2.table["verdict"].tolist() == ["worse", "worse"]


def test_console_errors(sample_viewer):
    v = sample_viewer
    with pytest.raises(TypeError, match=r"unknown parameter\(s\) 'gama': none of the losses"):
        napari_losslens.compare(v, "ground truth", "prediction", losses=["bce", "dice"], gama=1)
    with pytest.raises(ValueError, match=r"comparing losses needs 2 to 6"):
        napari_losslens.compare(v, "ground truth", "prediction", losses=["bce"])
    with pytest.raises(ValueError, match=r"no layer named 'nope'"):
        napari_losslens.compare(v, "ground truth", ["prediction", "nope"], losses=["bce"])
    with pytest.raises(ValueError, match=r"a list of two.*got 3"):
        napari_losslens.compare(v, "ground truth", ["prediction"] * 3, losses=["bce"])


def test_compare_is_exported_and_gui_free():
    assert "compare" in napari_losslens.__all__
    assert napari_losslens.compare is napari_losslens.api.compare
    code = (
        "import sys, napari_losslens as n; n.compare; n.CompareResult; "
        "bad = [m for m in sys.modules if m.split('.')[0] in ('napari', 'qtpy', 'PyQt6', "
        "'magicgui')]; print(bad); sys.exit(1 if bad else 0)"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.returncode == 0, done.stdout + done.stderr
