"""The weight map, what a w0/σ slider changes, is shown before the rest of a computation.

A single frame's weight map travels with the :class:`Progress` that follows its step
(``ready``); the widget writes it into its layer at once, and the final result does not
write it again (while a weight map written by a superseded computation is replaced).
"""

from __future__ import annotations

import threading

import numpy as np
import pytest

from napari_losslens import core
from napari_losslens._compute import ComputeRequest, WeightParams, run_steps

DEFAULT = ("loss_map", "weight_map", "object_stats", "hot_spots")


def _labels(frames: int | None = None):
    lab = np.zeros((24, 24), np.int32)
    lab[4:10, 4:10], lab[10:16, 4:10] = 1, 2
    return lab if frames is None else np.stack([lab] * frames)


def test_the_weight_map_is_ready_before_the_loss(drive):
    lab = _labels()
    pred = np.where(lab > 0, 0.8, 0.2).astype(np.float32)
    request = ComputeRequest(
        lab, pred, loss="unet_ce", outputs=DEFAULT, weights=WeightParams(w0=7.0, sigma=3.0)
    )
    seen, result = drive(run_steps(request))
    carrying = [p for p in seen if p.ready]
    # the weight map before the loss is computed, the loss map before the statistics
    assert [p.step for p in carrying] == ["loss", "overlap"]
    ready = carrying[0].ready
    assert set(ready) == {"weight_map"}
    assert ready["weight_map"] is result.arrays["weight_map"]  # the final array itself
    np.testing.assert_allclose(
        ready["weight_map"], core.unet_weight_map(lab, w0=7.0, sigma=3.0), atol=1e-4
    )
    assert set(carrying[1].ready) == {"loss_map"}
    assert carrying[1].ready["loss_map"] is result.arrays["loss_map"]
    expected = core.loss_map(pred, lab, "unet_ce", w0=7.0, sigma=3.0)
    np.testing.assert_allclose(carrying[1].ready["loss_map"], expected, rtol=1e-5, atol=1e-6)
    assert all(p.region == () for p in seen)
    assert not any(p.signed for p in seen)  # a pixel loss's map


def test_a_region_loss_map_is_ready_early_and_signed(drive):
    lab = _labels()
    pred = np.where(lab > 0, 0.8, 0.2).astype(np.float32)
    request = ComputeRequest(lab, pred, loss="dice", outputs=("loss_map", "hot_spots"))
    seen, result = drive(run_steps(request))
    carrying = [p for p in seen if p.ready]
    assert [p.step for p in carrying] == ["hot-spots"]
    assert carrying[0].ready["loss_map"] is result.arrays["loss_map"]
    assert result.signed and all(p.signed for p in seen)


@pytest.mark.parametrize(
    ("outputs", "frames"), [(("object_stats", "hot_spots"), None), (DEFAULT, 3)]
)
def test_nothing_is_ready_early_unless_a_single_map_is_asked(outputs, frames, drive):
    lab = _labels(frames)
    pred = np.where(lab > 0, 0.8, 0.2).astype(np.float32)
    kw = {"stack_mode": "frames"} if frames else {}
    request = ComputeRequest(lab, pred, loss="unet_ce", outputs=outputs, **kw)
    seen, _ = drive(run_steps(request))
    assert all(p.ready is None for p in seen)


def test_live_weight_map_is_drawn_before_the_loss_map_and_once(
    widget, sample_viewer, qtbot, monkeypatch
):
    gt = sample_viewer.layers["ground truth"]
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    weight, loss = widget.layers["weight_map"], widget.layers["loss_map"]
    events: list[str] = []
    drawn = threading.Event()
    weight.events.data.connect(lambda *_: (events.append("weight_map"), drawn.set()))
    loss.events.data.connect(lambda *_: events.append("loss_map"))
    shown_before_loss: list[bool] = []
    real = core.loss_map

    def loss_map(*args, **kwargs):  # in the worker: is the new weight map shown yet?
        shown_before_loss.append(drawn.wait(10.0))
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "loss_map", loss_map)
    labels_before = np.array(gt.data, copy=True)
    widget.live.value = True
    widget.w0.value = 4.0
    qtbot.waitUntil(lambda: "loss_map" in events and not widget.workers, timeout=30_000)
    assert shown_before_loss == [True]
    assert events == ["weight_map", "loss_map"]  # first, and not written again
    assert widget.layers["weight_map"] is weight
    np.testing.assert_allclose(weight.data, core.unet_weight_map(gt.data, w0=4.0), atol=1e-3)
    assert weight.data is widget.last_result.arrays["weight_map"]
    np.testing.assert_array_equal(gt.data, labels_before)


def test_a_superseded_early_weight_map_is_replaced(widget, sample_viewer):
    gt = sample_viewer.layers["ground truth"]
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    layer = widget.layers["weight_map"]
    # a computation that was superseded after its weight map was shown
    inputs, _, _ = widget.read_request()
    stale = np.full(layer.data.shape, 42.0, np.float32)
    widget._presenter.apply_ready(inputs, {"weight_map": stale}, ())
    assert layer.data is stale
    # the same parameters again: the memo gives back the very weight map shown before
    result = widget.compute()
    assert "weight map" in result.reused
    assert layer.data is result.arrays["weight_map"]
    np.testing.assert_allclose(layer.data, core.unet_weight_map(gt.data), atol=1e-3)


def test_the_worker_goes_on_once_the_weight_map_is_shown(
    widget, sample_viewer, qtbot, monkeypatch
):
    widget.loss.value = "unet_ce"
    widget.outputs.value = DEFAULT
    widget.compute()
    drawn = threading.Event()
    widget.layers["weight_map"].events.data.connect(lambda *_: drawn.set())
    shown_before_loss: list[bool] = []
    real = core.loss_map

    def loss_map(*args, **kwargs):  # in the worker, which does not wait here
        shown_before_loss.append(drawn.is_set())
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "loss_map", loss_map)
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)
    widget.w0.value = 4.0
    qtbot.waitUntil(lambda: bool(shown_before_loss) and not widget.workers, timeout=30_000)
    # the main thread showed the weight map before the loss took the CPU
    assert shown_before_loss == [True]
    np.testing.assert_allclose(
        widget.layers["loss_map"].data,
        real(
            sample_viewer.layers["prediction"].data,
            sample_viewer.layers["ground truth"].data,
            "unet_ce",
            w0=4.0,
        ),
        rtol=1e-4,
        atol=1e-3,
    )


@pytest.mark.parametrize("loss", ["unet_ce", "dice"])
def test_live_loss_map_is_drawn_before_the_statistics_and_once(
    widget, sample_viewer, qtbot, monkeypatch, loss
):
    """What a user sees change (the weight map is hidden by default) comes before the
    statistics and the hot-spots, drawn the way the final result wants it."""
    gt, pred = sample_viewer.layers["ground truth"], sample_viewer.layers["prediction"]
    widget.loss.value = loss
    widget.outputs.value = DEFAULT
    widget.compute()
    layer = widget.layers["loss_map"]
    writes: list[np.ndarray] = []
    drawn = threading.Event()
    layer.events.data.connect(lambda *_: (writes.append(layer.data), drawn.set()))
    shown_before: dict[str, bool] = {}
    real_stats, real_spots = core.object_stats, core.hot_spots

    def object_stats(*args, **kwargs):  # in the worker, which waited for the main thread
        shown_before["statistics"] = drawn.is_set()
        return real_stats(*args, **kwargs)

    def hot_spots(*args, **kwargs):
        shown_before["hot-spots"] = drawn.is_set()
        return real_spots(*args, **kwargs)

    monkeypatch.setattr(core, "object_stats", object_stats)
    monkeypatch.setattr(core, "hot_spots", hot_spots)
    widget.live.value = True
    qtbot.waitUntil(lambda: not widget.workers, timeout=30_000)  # turning live on computes
    writes.clear()
    drawn.clear()
    if loss == "unet_ce":
        widget.w0.value = 4.0
    else:  # w0 does not change Dice: its own smoothing term does
        widget._param_widgets["dice"]["smooth"].value = "0.5"
    qtbot.waitUntil(lambda: bool(writes) and not widget.workers, timeout=30_000)
    qtbot.wait(100)
    assert shown_before == {"statistics": True, "hot-spots": True}
    assert len(writes) == 1  # the result does not write it again
    assert layer.data is widget.last_result.arrays["loss_map"]
    params = {"w0": 4.0} if loss == "unet_ce" else {"smooth": 0.5}
    expected = core.loss_map(pred.data, gt.data, loss, **params)
    np.testing.assert_allclose(layer.data, expected, rtol=1e-4, atol=1e-6)
    signed = loss == "dice"
    assert (layer.colormap.name == "losslens diverging") == signed
    if signed:  # centred on 0
        lo, hi = layer.contrast_limits
        assert lo == pytest.approx(-hi)
