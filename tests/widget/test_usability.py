"""A widget a user can live with: worker errors, layout, colours, renamed and removed
layers, stacks, and the smaller points (issue 12)."""

from __future__ import annotations

import sys
import time

import numpy as np
import pytest
from magicgui.widgets import LineEdit
from qtpy.QtCore import QThreadPool
from qtpy.QtWidgets import QApplication, QScrollArea

from napari_losslens import _layers, core
from napari_losslens._compute import InputError
from napari_losslens._layers import OWNER, find_owned
from napari_losslens._widget import LossLensWidget


def _idle(widget, qtbot) -> None:
    qtbot.waitUntil(
        lambda: not widget.workers and QThreadPool.globalInstance().activeThreadCount() == 0,
        timeout=20_000,
    )
    qtbot.wait(30)


# -------------------------------------------------------------------- worker errors


@pytest.mark.qt_no_exception_capture
def test_worker_error_gives_one_notification_and_reaches_no_excepthook(
    make_napari_viewer, qtbot, messages, monkeypatch
):
    """With Python's own excepthook (a plain script) a re-raised worker error aborts the
    process under PyQt6; it must not get there, nor to napari's notification manager."""
    from napari.utils.notifications import notification_manager

    hooked, relayed = [], []
    monkeypatch.setattr(sys, "excepthook", lambda *exc: hooked.append(exc))
    monkeypatch.setattr(notification_manager, "receive_error", lambda *a: relayed.append(a))
    viewer = make_napari_viewer()
    lab = np.zeros((16, 16), np.int32)
    lab[2:5, 2:5] = -2  # checked in the worker, not on the main thread
    viewer.add_labels(lab, name="gt")
    viewer.add_image(np.full((16, 16), 0.5, np.float32), name="pred")
    widget = LossLensWidget(viewer)
    widget.outputs.value = ("loss_map",)
    widget.compute_button.clicked.emit()
    assert widget.worker is not None  # the error happens in a worker, not in the click
    # (a worker that errors within milliseconds can finish before waitSignal connects)
    qtbot.waitUntil(lambda: not widget.workers, timeout=20_000)
    _idle(widget, qtbot)
    assert hooked == [] and relayed == []
    assert [kind for kind, _ in messages] == ["error"]
    assert "negative ids" in messages[0][1]
    assert widget.status.value.startswith("⚠")


# --------------------------------------------------------------------------- layout


@pytest.fixture
def laptop(make_napari_viewer, qtbot):
    """A shown 1366x768 viewer with the sample and the widget docked."""
    from napari_losslens._sample_data import touching_nuclei

    viewer = make_napari_viewer(show=True)
    for data, kwargs, kind in touching_nuclei():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    viewer.window._qt_window.resize(1366, 768)
    dock, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
    qtbot.wait(200)  # docked, polished and fitted
    return viewer, dock, widget


def _canvas_share(viewer) -> float:
    QApplication.processEvents()
    canvas = viewer.window._qt_viewer.canvas.native
    return canvas.width() / viewer.window._qt_window.width()


def test_long_messages_never_squeeze_the_canvas(laptop, messages):
    viewer, _, widget = laptop
    assert _canvas_share(viewer) >= 0.5
    long_path = "/data/" + "very_long_folder_name_" * 20 + "labels.tif"
    for text in (
        "Ground truth (512, 512) and prediction (256, 256) differ in shape: " * 6,
        f"Loss Lens: could not read {long_path}",
    ):
        widget._presenter.fail(InputError(text))
        assert _canvas_share(viewer) >= 0.5, text
    assert widget.compute() is not None
    assert _canvas_share(viewer) >= 0.5


def test_dock_fits_a_laptop_screen_and_scrolls(laptop):
    viewer, dock, widget = laptop
    assert isinstance(widget.native, QScrollArea)  # what napari docks
    assert dock.widget() is widget.native
    for loss in ("unet_ce", "focal_tversky", "exp_log"):  # the tallest parameter sets
        widget.loss.value = loss
        QApplication.processEvents()
        assert dock.minimumSizeHint().height() <= 700, loss
        assert viewer.window._qt_window.height() <= 768
    bar = widget.native.verticalScrollBar()
    assert bar.maximum() > 0  # the controls are taller than the dock: it scrolls


# -------------------------------------------------------------------------- colours


def _look(layer):
    return (layer.colormap.name, layer.blending, round(float(layer.opacity), 3))


DIVERGING = ("losslens diverging", "translucent", 0.8)
INFERNO = ("inferno", "additive", 1.0)


@pytest.mark.parametrize(
    ("sequence", "looks"),
    [
        (("bce", "dice", "bce"), (INFERNO, DIVERGING, INFERNO)),
        (("dice", "focal", "tversky"), (DIVERGING, INFERNO, DIVERGING)),
        (("bce", "boundary", "unet_ce"), (INFERNO, DIVERGING, INFERNO)),
    ],
)
def test_every_loss_switch_sets_colormap_blending_and_limits(widget, sequence, looks):
    widget.outputs.value = ("loss_map",)
    for loss, look in zip(sequence, looks, strict=True):
        widget.loss.value = loss
        widget.compute()
        layer = widget.layers["loss_map"]
        assert _look(layer) == look, loss
        lo, hi = layer.contrast_limits
        if look == DIVERGING:  # a map that can be negative: centred on 0
            assert lo == -hi < 0, loss
            assert hi >= np.percentile(np.abs(layer.data), 99), loss
        else:
            assert lo == 0.0 and hi == pytest.approx(np.percentile(layer.data, 99.5), 0.05)


def test_signed_pixel_loss_shows_its_negative_half(widget, sample_viewer):
    widget.loss.value = "boundary"
    widget.outputs.value = ("loss_map",)
    widget.compute()
    layer = widget.layers["loss_map"]
    assert layer.data.min() < 0  # the map is signed, mostly negative on the nuclei
    lo, hi = layer.contrast_limits
    assert lo == -hi and lo < np.percentile(layer.data, 5)


def test_region_loss_statistics_are_labelled_as_gradients(widget, sample_viewer):
    gt = sample_viewer.layers["ground truth"]
    pred = sample_viewer.layers["prediction"].data
    widget.loss.value = "dice"
    widget.outputs.value = ("loss_map", "object_stats")
    result = widget.compute()
    feats = gt.features
    assert "mean_loss" not in feats and "total_loss" not in feats
    ref = core.object_stats(gt.data, np.abs(core.loss_map(pred, gt.data, "dice")), pred)
    np.testing.assert_allclose(feats["mean_abs_gradient"], ref["mean_loss"], rtol=1e-5)
    np.testing.assert_allclose(feats["total_abs_gradient"], ref["total_loss"], rtol=1e-5)
    widget._presenter.update_histogram(result)
    histograms = widget._presenter.histograms
    titles = [histograms.map_plot.title, histograms.object_plot.title]
    assert titles == ["gradient ∂L/∂p per pixel", "mean |∂L/∂p| per object"]
    widget.loss.value = "bce"  # back to a pixel loss: loss columns, no gradient columns
    widget.compute()
    assert "mean_loss" in gt.features and "mean_abs_gradient" not in gt.features


# ------------------------------------------------------------- renamed, removed layers


def test_renamed_ground_truth_keeps_its_outputs(widget, sample_viewer):
    widget.outputs.value = ("loss_map", "weight_map", "errors", "hot_spots")
    widget.compute()
    first = dict(widget.layers)
    n_layers = len(sample_viewer.layers)
    gt = sample_viewer.layers["ground truth"]
    gt.name = "nuclei"
    assert widget.compute() is not None
    assert len(sample_viewer.layers) == n_layers  # no orphaned second set
    for role, layer in first.items():
        assert widget.layers[role] is layer
        assert layer.name == f"nuclei {_layers.ROLES[role]}"
        assert layer.metadata[OWNER]["source"] == "nuclei"
        assert layer.metadata[OWNER]["source_id"] == str(gt.unique_id)
    assert find_owned(sample_viewer, "loss_map", gt) is first["loss_map"]


def test_live_mode_after_removing_the_ground_truth_says_it_in_the_status(
    widget, sample_viewer, qtbot, messages
):
    sample_viewer.add_labels(np.zeros((64, 64), np.int32), name="other labels")
    widget.labels_layer.value = sample_viewer.layers["ground truth"]
    widget.outputs.value = ("weight_map",)
    widget.compute()
    widget.live.value = True
    sample_viewer.layers.remove("ground truth")  # the picker falls back to "other labels"
    for w0 in (3.0, 4.0, 5.0):
        widget.w0.value = w0
        qtbot.wait(60)
    _idle(widget, qtbot)
    assert messages == []  # no pop-up on every move
    assert widget.status.value.startswith("⚠") and "shape" in widget.status.value


# --------------------------------------------------------------------------- stacks


def test_time_stack_defaults_to_frames_with_a_hint(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((3, 32, 32), np.int32)
    labels[:, 5:12, 5:12] = 1
    viewer.add_labels(labels, name="gt", axis_labels=("t", "y", "x"))
    viewer.add_image(np.where(labels > 0, 0.8, 0.2).astype(np.float32), name="prediction")
    widget = LossLensWidget(viewer)
    assert widget.stack_mode.value == "frames"
    assert not widget.stack_hint.native.isHidden() and "'t'" in widget.stack_hint.value


def test_unlabelled_stack_is_a_volume_with_a_hint(make_napari_viewer):
    viewer = make_napari_viewer()
    labels = np.zeros((3, 32, 32), np.int32)
    viewer.add_labels(labels, name="gt")
    viewer.add_image(np.zeros((3, 32, 32), np.float32), name="prediction")
    widget = LossLensWidget(viewer)
    assert widget.stack_mode.value == "volume"
    assert "independent 2D frames" in widget.stack_hint.value


# ---------------------------------------------------------------------- small points


def test_status_reports_the_time_until_the_layers_are_drawn(widget, monkeypatch):
    real = _layers.apply_result

    def slow_drawing(*args, **kwargs):
        time.sleep(0.3)
        return real(*args, **kwargs)

    monkeypatch.setattr(_layers, "apply_result", slow_drawing)
    widget.compute()
    assert "shown in " in widget.status.value, widget.status.value
    shown = float(widget.status.value.split("shown in ")[1].split(" ms")[0])
    assert shown >= 300  # the drawing is counted, not only the computation


def test_new_layers_keep_the_overlay_readable(widget, sample_viewer):
    widget.outputs.value = _layers.ROLES.keys() - {"d1", "d2"} | {"distances", "object_stats"}
    widget.compute()
    assert {"gradient_map", "weight_map", "d1", "d2", "errors"} <= set(widget.layers)
    visible = {role for role, layer in widget.layers.items() if layer.visible}
    assert visible == {"loss_map", "hot_spots", "object_stats"}  # the labels stay shown
    widget.layers["weight_map"].visible = True  # the user's choice is kept
    widget.w0.value = 4.0
    widget.compute()
    assert widget.layers["weight_map"].visible


def test_histograms_appear_with_the_first_result(widget, qtbot):
    histograms = widget._presenter.histograms
    assert histograms.isHidden()  # no empty 0-1 axes before anything is computed
    result = widget.compute()
    widget._presenter.update_histogram(result)
    assert not histograms.isHidden()
    per_pixel, per_object = histograms.map_plot, histograms.object_plot
    assert per_pixel.title == "loss per pixel" and per_pixel.log
    assert per_object.title == "mean loss per object" and not per_object.log
    # the bars are the numpy histograms of the result: every finite pixel of the loss map
    lm = result.arrays["loss_map"]
    counts, edges = np.histogram(lm[np.isfinite(lm)], bins=80)
    np.testing.assert_array_equal(per_pixel.counts, counts)
    np.testing.assert_allclose(per_pixel.edges, edges)
    assert per_pixel.counts.sum() == lm.size
    values = result.stats["mean_loss"]
    assert values.max() > 10 * values.min() > 0  # heavy-tailed: bins even in log10
    assert per_object.xlabel == "log10"
    counts, edges = np.histogram(np.log10(values), bins=30)
    np.testing.assert_array_equal(per_object.counts, counts)
    np.testing.assert_allclose(per_object.edges, edges)
    assert per_object.counts.sum() == len(values)


def test_one_kind_of_control_per_parameter_name(widget):
    kinds: dict[str, set] = {}
    for controls in widget._param_widgets.values():
        for name, control in controls.items():
            kinds.setdefault(name, set()).add(type(control))
    assert {name: len(k) for name, k in kinds.items() if len(k) > 1} == {}
    assert isinstance(widget.exp_log_params.exp_log_smooth, LineEdit)  # default 1.0
    widget.loss.value = "exp_log"
    assert widget.loss_params()["smooth"] == 1.0


def test_logits_message_names_the_check_box(make_napari_viewer, messages):
    viewer = make_napari_viewer()
    viewer.add_labels(np.ones((8, 8), np.int32), name="gt")
    viewer.add_image(np.full((8, 8), 3.0, np.float32), name="pred")
    widget = LossLensWidget(viewer)
    widget.compute()
    assert "tick 'prediction holds logits'" in messages[-1][1]
    assert widget.from_logits.text == "prediction holds logits"


def test_image_picker_never_holds_the_prediction(make_napari_viewer):
    viewer = make_napari_viewer()
    viewer.add_labels(np.zeros((8, 8), np.int32), name="gt")
    a = viewer.add_image(np.zeros((8, 8), np.float32), name="prediction")
    b = viewer.add_image(np.zeros((8, 8), np.float32), name="raw")
    widget = LossLensWidget(viewer)
    assert (widget.prediction_layer.value, widget.image_layer.value) == (a, b)
    widget.prediction_layer.value = b  # the user picks the other one as the prediction
    assert widget.image_layer.value is a
    viewer.layers.remove(a)  # only the prediction is left: no image
    assert widget.prediction_layer.value is b and widget.image_layer.value is None


def test_fresh_output_layer_is_in_the_first_screenshot(laptop):
    viewer, _, widget = laptop
    viewer.layers["ground truth"].visible = False
    viewer.layers["image"].visible = False
    viewer.layers["prediction"].visible = False
    widget.outputs.value = ("loss_map",)
    widget.compute()
    with_map = viewer.screenshot(canvas_only=True, flash=False)
    widget.layers["loss_map"].visible = False
    without = viewer.screenshot(canvas_only=True, flash=False)
    assert np.abs(with_map.astype(int) - without.astype(int)).sum() > 0


def test_kernels_are_warmed_when_the_widget_is_made(widget):
    from napari_losslens._widget import widget as module

    assert module._warm_up_started.is_set()
    assert module.warm_up_in_background() is None  # once per process
