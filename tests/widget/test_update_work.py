"""What one live update costs the main thread: only what changed is written or drawn.

The histograms are redrawn once per burst of results (with the newest), never while a newer
result is on its way, and not at all for outputs that did not change; an output layer's
place is not set again when it did not move; the hot-spots layer gets each of its data and
features once, and only what changed; a lone live change starts computing at once.
"""

from __future__ import annotations

import dataclasses

import numpy as np

from napari_losslens import _layers, core

DEFAULT = ("loss_map", "weight_map", "object_stats", "hot_spots")


def _count(emitter) -> list:
    seen: list = []
    emitter.connect(lambda *_: seen.append(1))
    return seen


def test_a_burst_of_results_redraws_the_histograms_once_with_the_newest(widget, qtbot):
    histograms = widget._presenter.histograms
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    widget.w0.value = 4.0
    newest = widget.compute()  # no event loop in between: one redraw is due, not two
    qtbot.waitUntil(lambda: histograms.updates > 0, timeout=5_000)
    qtbot.wait(3 * widget.HISTOGRAM_DELAY_MS)  # anything else due would have run now
    assert histograms.updates == 1
    lm = newest.arrays["loss_map"]
    counts, edges = np.histogram(lm[np.isfinite(lm)], bins=histograms.MAP_BINS)
    np.testing.assert_array_equal(histograms.map_plot.counts, counts)
    np.testing.assert_allclose(histograms.map_plot.edges, edges)
    per_object = np.log10(newest.stats["mean_loss"])  # heavy-tailed on this sample
    counts, _ = np.histogram(per_object, bins=histograms.OBJECT_BINS)
    np.testing.assert_array_equal(histograms.object_plot.counts, counts)


def test_the_histograms_wait_while_a_newer_result_is_on_its_way(widget, qtbot, monkeypatch):
    presenter = widget._presenter
    histograms = presenter.histograms
    busy = [True]
    monkeypatch.setattr(presenter, "_busy", lambda: busy[0])
    widget.outputs.value = ("loss_map",)
    result = widget.compute()
    qtbot.wait(3 * widget.HISTOGRAM_DELAY_MS)
    assert histograms.updates == 0 and histograms.isHidden()
    busy[0] = False  # the burst is over: the result shown is drawn
    qtbot.waitUntil(lambda: histograms.updates == 1, timeout=5_000)
    lm = result.arrays["loss_map"]
    counts, _ = np.histogram(lm[np.isfinite(lm)], bins=histograms.MAP_BINS)
    np.testing.assert_array_equal(histograms.map_plot.counts, counts)


def test_outputs_that_did_not_change_are_not_redrawn(widget, qtbot, monkeypatch):
    presenter = widget._presenter
    histograms = presenter.histograms
    calls: list = []
    real = presenter.update_histogram
    monkeypatch.setattr(presenter, "update_histogram", lambda r: (calls.append(r), real(r)))
    widget.loss.value = "bce"  # its loss map does not depend on w0 or σ
    widget.outputs.value = DEFAULT
    first = widget.compute()
    qtbot.waitUntil(lambda: len(calls) == 1, timeout=5_000)
    widget.w0.value = 4.0
    second = widget.compute()
    qtbot.waitUntil(lambda: len(calls) == 2, timeout=5_000)
    assert second.arrays["loss_map"] is first.arrays["loss_map"]  # from the step memo
    assert second.stats is first.stats
    assert histograms.updates == 1


def test_the_weight_map_alone_draws_no_histogram(widget, qtbot):
    histograms = widget._presenter.histograms
    widget.outputs.value = ("weight_map",)
    result = widget.compute()
    widget._presenter.update_histogram(result)
    qtbot.wait(10)
    assert histograms.isHidden()
    assert histograms.updates == 0
    assert histograms.map_plot.paints == histograms.object_plot.paints == 0


def test_the_histograms_are_painted(widget, qtbot):
    histograms = widget._presenter.histograms
    widget.outputs.value = ("loss_map",)
    widget._presenter.update_histogram(widget.compute())
    plot = histograms.map_plot
    plot.resize(200, 100)
    image = plot.grab().toImage()  # renders through paintEvent
    assert plot.paints >= 1
    orange = plot.color.rgb()
    bar = sum(
        image.pixel(x, y) == orange for x in range(image.width()) for y in range(image.height())
    )
    assert bar > 100  # the bars cover a good part of the plot, in their colour


def test_an_output_that_did_not_move_is_not_placed_again(widget, sample_viewer):
    gt = sample_viewer.layers["ground truth"]
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    outputs = [widget.layers[r] for r in ("loss_map", "weight_map", "hot_spots")]
    placed = [_count(e) for layer in outputs for e in (layer.events.scale, layer.events.translate)]
    widget.w0.value = 4.0
    widget.compute()
    assert all(not seen for seen in placed)  # each set would recompute the viewer's dims
    gt.scale, gt.translate = (0.5, 0.5), (3.0, 4.0)  # the source moved: its outputs follow
    widget.compute()
    for layer in outputs:
        np.testing.assert_array_equal(layer.scale, (0.5, 0.5))
        np.testing.assert_array_equal(layer.translate, (3.0, 4.0))


def test_hot_spots_that_stay_put_keep_their_points_and_get_new_values(widget, sample_viewer):
    gt = sample_viewer.layers["ground truth"]
    widget.outputs.value = ("loss_map", "hot_spots")
    result = widget.compute()
    layer = widget.layers["hot_spots"]
    coords = np.array(layer.data, copy=True)
    data_events, feature_events = _count(layer.events.data), _count(layer.events.features)
    # the same places with other values (as when w0 moves and the worst places stay)
    spots = [dataclasses.replace(s, peak=2 * s.peak, mean=s.mean + 1) for s in result.hot_spots]
    assert _layers._upsert_hot_spots(sample_viewer, gt, spots, ()) is layer
    assert not data_events  # the points were not rewritten
    assert len(feature_events) == 1
    np.testing.assert_array_equal(layer.data, coords)
    np.testing.assert_allclose(layer.features["peak"], [s.peak for s in spots])
    np.testing.assert_allclose(layer.features["mean"], [s.mean for s in spots])
    assert list(layer.text.values) == [str(s.rank) for s in spots]
    # the same spots again: nothing is written
    _layers._upsert_hot_spots(sample_viewer, gt, spots, ())
    assert not data_events and len(feature_events) == 1
    # spots that moved: points and values, once each
    moved = [dataclasses.replace(s, peak_position=(1 + i, 2 + i)) for i, s in enumerate(spots[:3])]
    _layers._upsert_hot_spots(sample_viewer, gt, moved, ())
    np.testing.assert_array_equal(layer.data, [[1 + i, 2 + i] for i in range(3)])
    np.testing.assert_allclose(layer.features["peak"], [s.peak for s in moved])
    assert list(layer.text.values) == ["1", "2", "3"]


def test_live_layers_get_the_limits_of_their_new_data(widget, sample_viewer, qtbot):
    gt = sample_viewer.layers["ground truth"]
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    widget.w0.value = 25.0
    qtbot.waitUntil(
        lambda: not widget.workers and widget.last_result.arrays["weight_map"].max() > 20,
        timeout=30_000,
    )
    assert not widget.layers["weight_map"].visible  # hidden by default: set when shown
    widget.layers["weight_map"].visible = True
    for role in ("weight_map", "loss_map"):
        layer = widget.layers[role]
        look = _layers.display(role, layer.data, False)
        np.testing.assert_allclose(layer.contrast_limits, look["contrast_limits"], rtol=1e-6)
        np.testing.assert_allclose(layer.contrast_limits_range, look["contrast_limits"])
    ref = core.unet_weight_map(gt.data, w0=25.0)
    np.testing.assert_allclose(widget.layers["weight_map"].data, ref, atol=1e-3)


def test_a_lone_live_change_starts_computing_at_once(widget, qtbot):
    widget.outputs.value = ("weight_map",)
    widget.compute()
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    qtbot.wait(100)  # past the debounce window of the change that turned live on
    widget.sigma.value = 3.0
    assert widget.worker is not None  # started by the change itself, no debounce wait
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    assert widget.last_result.arrays["weight_map"] is widget.layers["weight_map"].data


def test_a_live_update_leaves_the_status_line_alone_until_done(widget, qtbot):
    widget.outputs.value = ("weight_map",)
    widget.compute()
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    qtbot.wait(100)  # past the debounce window of the change that turned live on
    before = widget.status.value
    assert "shown in" in before
    widget.sigma.value = 3.0  # starts at once (see above)
    assert widget.worker is not None
    assert widget.status.value == before  # no "computing…": each rewrite relayouts the dock
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    assert "shown in" in widget.status.value
    widget.live.value = False
    widget.compute_button.clicked.emit()  # a click says that it computes
    assert widget.worker is not None and widget.status.value == "computing…"
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    assert "shown in" in widget.status.value


def test_a_hidden_output_gets_its_look_when_shown_again(widget, sample_viewer, qtbot):
    """Setting a hidden layer's contrast limits repaints the canvas: a hidden output gets
    its new data at once, and its colormap and limits only once it is shown."""
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    layer = widget.layers["weight_map"]
    assert not layer.visible
    limits_before = tuple(layer.contrast_limits)
    sets: list[str] = []
    layer.events.contrast_limits.connect(lambda *_: sets.append("limits"))
    layer.events.colormap.connect(lambda *_: sets.append("colormap"))
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    widget.w0.value = 40.0
    qtbot.waitUntil(
        lambda: not widget.workers and widget.last_result.arrays["weight_map"].max() > 30,
        timeout=30_000,
    )
    assert layer.data is widget.last_result.arrays["weight_map"]  # the data at once
    assert sets == [] and tuple(layer.contrast_limits) == limits_before
    layer.visible = True  # shown: drawn as its newest data wants
    look = _layers.display("weight_map", layer.data, False)
    np.testing.assert_allclose(layer.contrast_limits, look["contrast_limits"], rtol=1e-6)
    assert layer.colormap.name == look["colormap"]
    assert "limits" in sets
    # shown layers get their look at once again
    sets.clear()
    widget.w0.value = 10.0
    qtbot.waitUntil(
        lambda: not widget.workers and widget.last_result.arrays["weight_map"].max() < 30,
        timeout=30_000,
    )
    look = _layers.display("weight_map", layer.data, False)
    np.testing.assert_allclose(layer.contrast_limits, look["contrast_limits"], rtol=1e-6)
    # hidden again, then shown: the newest look, not the one from before it was hidden
    layer.visible = False
    widget.w0.value = 30.0
    qtbot.waitUntil(
        lambda: not widget.workers and widget.last_result.arrays["weight_map"].max() > 25,
        timeout=30_000,
    )
    layer.visible = True
    look = _layers.display("weight_map", layer.data, False)
    np.testing.assert_allclose(layer.contrast_limits, look["contrast_limits"], rtol=1e-6)
