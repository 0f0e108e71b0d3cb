"""LossRecorder: the store's round trip, appending, refusals, and what a killed run leaves."""

from __future__ import annotations

import gc
import json
import weakref

import numpy as np
import pytest
import torch

import napari_losslens
from napari_losslens.core import gradient_map, loss_map, unet_weight_map
from napari_losslens.training import LossRecorder, Recording
from napari_losslens.training.recorder import LossRecorder as _Recorder

from .helpers import blobs, prediction_at


def _bce(p, y):
    """Binary cross-entropy by its definition (the independent reference)."""
    p = np.clip(p.astype(np.float64), np.finfo(np.float32).eps, 1 - np.finfo(np.float32).eps)
    y = (y > 0).astype(np.float64)
    return -(y * np.log(p) + (1 - y) * np.log(1 - p))


def _object_table(target, lmap, prob):
    """Per-object mean loss, Dice and IoU, object by object (squares that never merge)."""
    rows = {}
    for i in np.unique(target[target > 0]):
        obj = target == i
        pred = prob > 0.5
        inter = (obj & pred).sum()
        rows[int(i)] = (
            lmap[obj].mean(),
            2 * inter / (obj.sum() + pred[obj].sum() + 0.0),
            inter / (obj.sum() + 0.0),
        )
    return rows


@pytest.mark.parametrize("background", [True, False])
def test_round_trip_bce(tmp_path, background):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    preds = [prediction_at(target, s) for s in range(3)]
    with LossRecorder(
        path, loss="bce", outputs=("loss_map", "error_map"), background=background
    ) as rec:
        for step, pred in enumerate(preds):
            assert rec.record(step, image, pred, target) is True
    r = Recording(path)
    assert r.loss == "bce"
    assert r.steps == [0, 1, 2]
    assert r.samples == ["sample_0"]
    assert r.outputs == ["loss_map", "error_map"]
    assert r.attrs["version"] == napari_losslens.__version__
    np.testing.assert_array_equal(r.read("sample_0", "image"), image)
    np.testing.assert_array_equal(r.read("sample_0", "target"), target)
    stored = r.read("sample_0", "prediction")
    assert stored.shape == (3, *target.shape)
    for t, pred in enumerate(preds):
        np.testing.assert_allclose(stored[t], pred)
        lm = r.read("sample_0", "loss_map", t)
        np.testing.assert_allclose(lm, _bce(pred, target), rtol=1e-5)
        assert r.read("sample_0", "loss")[t] == pytest.approx(_bce(pred, target).mean(), rel=1e-5)
        expected = _object_table(target, _bce(pred, target), pred)
        ids = r.read("sample_0", "objects/index").tolist()
        assert ids == sorted(expected)
        for col, k in (("mean_loss", 0), ("dice", 1), ("iou", 2)):
            got = r.read("sample_0", f"objects/{col}", t)
            np.testing.assert_allclose(got, [expected[i][k] for i in ids], rtol=1e-5)
        errors = r.read("sample_0", "error_map", t)
        y, p = target > 0, pred > 0.5
        np.testing.assert_array_equal(errors == 3, y & ~p)
        np.testing.assert_array_equal(errors == 2, ~y & p)


def test_unet_ce_weight_map_once_and_per_step_maps(tmp_path):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    pred = prediction_at(target, 1)
    with LossRecorder(
        path,
        loss="unet_ce",
        outputs=("loss_map", "gradient_map", "weight_map"),
        w0=8.0,
        sigma=3.0,
    ) as rec:
        rec.record(0, image, pred, target)
    r = Recording(path)
    assert r.params["w0"] == 8.0 and r.params["sigma"] == 3.0
    w = unet_weight_map(target, w0=8.0, sigma=3.0)
    np.testing.assert_allclose(r.read("sample_0", "weight_map"), w, rtol=1e-6)
    assert not r.is_per_step("sample_0", "weight_map")
    np.testing.assert_allclose(
        r.read("sample_0", "loss_map", 0), w * _bce(pred, target), rtol=1e-5, atol=1e-7
    )
    np.testing.assert_allclose(
        r.read("sample_0", "gradient_map", 0),
        gradient_map(pred, target, "unet_ce", w0=8.0, sigma=3.0),
        rtol=1e-5,
        atol=1e-9,
    )


def test_torch_logits_batch_with_channel_axis(tmp_path):
    image, target = blobs()
    targets = np.stack([target, target[::-1].copy()])
    images = np.stack([image, image[::-1].copy()])[:, None]  # (N, 1, H, W)
    logits = torch.randn(2, 1, *target.shape, requires_grad=True)
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="bce", names=["a", "b"]) as rec:
        out = logits * 2.0  # a graph the recorder must not keep
        ref = weakref.ref(out)
        rec.record(0, torch.from_numpy(images), out, torch.from_numpy(targets), from_logits=True)
        del out
        gc.collect()
        assert ref() is None  # nothing of the caller's graph is held
    r = Recording(path)
    assert r.samples == ["a", "b"]
    for i, name in enumerate(("a", "b")):
        z = (2.0 * logits[i, 0]).detach().numpy()
        np.testing.assert_allclose(r.read(name, "prediction", 0), 1 / (1 + np.exp(-z)), rtol=1e-5)
        np.testing.assert_allclose(
            r.read(name, "loss_map", 0),
            loss_map(z, targets[i], "bce", from_logits=True),
            rtol=1e-5,
            atol=1e-7,
        )
        np.testing.assert_array_equal(r.read(name, "image"), images[i, 0])


def test_inputs_copied_and_not_mutated(tmp_path):
    image, target = blobs()
    pred = prediction_at(target, 2)
    before = (image.copy(), pred.copy(), target.copy())
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="bce", queue_size=4) as rec:
        rec.record(0, image, pred, target)
        pred[...] = 0.5  # the loop reuses its buffer before the writer is done
    np.testing.assert_array_equal(image, before[0])
    np.testing.assert_array_equal(target, before[2])
    np.testing.assert_allclose(Recording(path).read("sample_0", "prediction", 0), before[1])


def test_three_d_sample(tmp_path):
    target = np.zeros((6, 20, 24), np.int32)
    target[1:4, 3:10, 4:12] = 1
    target[2:5, 12:18, 14:22] = 2
    pred = prediction_at(target, 3)
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="bce", ndim=3) as rec:
        rec.record(0, target.astype(np.float32), pred, target)
    r = Recording(path)
    assert r.ndim == 3
    assert r.read("sample_0", "loss_map").shape == (1, 6, 20, 24)
    np.testing.assert_allclose(r.read("sample_0", "loss_map", 0), _bce(pred, target), rtol=1e-5)


def test_every_and_due(tmp_path):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="bce", every=3) as rec:
        done = [rec.record(s, image, prediction_at(target, s), target) for s in range(10)]
        assert rec.due(12) and not rec.due(13) and not rec.due(9)
    assert done == [s % 3 == 0 for s in range(10)]
    assert Recording(path).steps == [0, 3, 6, 9]


def test_reopen_appends_and_skips_old_steps(tmp_path):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="unet_ce", w0=5.0) as rec:
        for s in range(3):
            rec.record(s, image, prediction_at(target, s), target)
    with LossRecorder(path, loss="unet_ce", w0=5.0) as rec:  # resumed training
        assert rec.steps == [0, 1, 2]
        assert rec.record(1, image, prediction_at(target, 7), target) is False
        for s in range(3, 40):  # past the initial capacity: the arrays grow
            rec.record(s, image, prediction_at(target, s), target)
    r = Recording(path)
    assert r.steps == list(range(40))
    pred = r.read("sample_0", "prediction")
    assert pred.shape[0] == 40
    for s in (1, 2, 3, 39):
        np.testing.assert_allclose(pred[s], prediction_at(target, s))


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"loss": "bce"}, "loss: 'unet_ce' in the store, 'bce' now"),
        ({"loss": "unet_ce", "every": 2}, "every: 1 in the store, 2 now"),
        ({"loss": "unet_ce", "w0": 3.0}, "params: .*'w0': 10.0.*'w0': 3.0"),
        ({"loss": "unet_ce", "outputs": ("error_map",)}, "outputs: \\['loss_map'\\]"),
    ],
)
def test_other_settings_refused(tmp_path, kwargs, message):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="unet_ce") as rec:
        rec.record(0, image, prediction_at(target, 0), target)
    with pytest.raises(ValueError, match=rf"recorded with other settings .*{message}"):
        LossRecorder(path, **kwargs)
    assert Recording(path).steps == [0]


def test_other_validation_target_refused(tmp_path):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="bce") as rec:
        rec.record(0, image, prediction_at(target, 0), target)
    other = target.copy()
    other[0, 0] = 5
    with (
        LossRecorder(path, loss="bce") as rec,
        pytest.raises(ValueError, match=r"differs from the one in the store"),
    ):
        rec.record(1, image, prediction_at(target, 1), other)


def test_not_a_recording_refused(tmp_path):
    path = tmp_path / "run.losslens.zarr"
    path.mkdir()
    (path / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"not a napari-losslens recording"):
        LossRecorder(path, loss="bce")
    with pytest.raises(ValueError, match=r"must end in '.losslens.zarr', got 'run.zarr'"):
        LossRecorder(tmp_path / "run.zarr")


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"loss": "nope"}, ValueError, "unknown loss 'nope'"),
        ({"every": 0}, ValueError, "every must be an integer >= 1, got 0"),
        ({"outputs": ("loss_map", "d1")}, ValueError, "unknown output\\(s\\) \\['d1'\\]"),
        ({"loss": "bce", "outputs": ("weight_map",)}, ValueError, "'bce' has no weight map"),
        ({"ndim": 4}, ValueError, "ndim must be 2 or 3, got 4"),
        ({"threshold": 2}, ValueError, "threshold must be a number in \\[0, 1\\], got 2"),
        ({"weight_map": np.ones((2, 2))}, ValueError, "do not pass weight_map"),
        ({"w00": 1.0}, TypeError, "unknown parameter\\(s\\) 'w00'"),
        ({"names": ["a", "a"]}, ValueError, "sample names must be unique"),
        ({"names": ["a/b"]}, ValueError, "sample names must be .*got 'a/b'"),
    ],
)
def test_bad_settings(tmp_path, kwargs, error, message):
    with pytest.raises(error, match=message):
        LossRecorder(tmp_path / "run.losslens.zarr", **kwargs)
    assert not (tmp_path / "run.losslens.zarr").exists()


def test_bad_records(tmp_path):
    image, target = blobs()
    pred = prediction_at(target, 0)
    rec = LossRecorder(tmp_path / "run.losslens.zarr", loss="bce", background=False)
    with pytest.raises(ValueError, match=r"prediction must have the target's shape"):
        rec.record(0, image, pred[:-1], target)
    with pytest.raises(ValueError, match=r"target must have 2 .* or 3 .* dimensions"):
        rec.record(0, image, pred, target[None, None])
    with pytest.raises(ValueError, match=r"probabilities in \[0, 1\].*from_logits=True"):
        rec.record(0, image, pred * 3, target)
    with pytest.raises(ValueError, match=r"prediction must be finite"):
        rec.record(0, image, np.full_like(pred, np.nan), target)
    with pytest.raises(ValueError, match=r"image must have the target's shape"):
        rec.record(0, image[:, :-1], pred, target)
    with pytest.raises(TypeError, match=r"step must be an integer, got float"):
        rec.record(1.0, image, pred, target)
    with pytest.raises(ValueError, match=r"step must be >= 0, got -1"):
        rec.record(-1, image, pred, target)
    with pytest.raises(ValueError, match=r"2 sample names for a batch of 1"):
        LossRecorder(tmp_path / "b.losslens.zarr", loss="bce", names=["a", "b"]).record(
            0, image, pred, target
        )
    rec.close()
    with pytest.raises(ValueError, match=r"is closed"):
        rec.record(0, image, pred, target)
    rec.close()  # twice is fine


def test_close_writes_every_queued_step(tmp_path, monkeypatch):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    slow = _Recorder._write_sample

    def slower(self, *args):
        import time

        time.sleep(0.02)  # a writer slower than the loop: the queue fills, record waits
        return slow(self, *args)

    monkeypatch.setattr(_Recorder, "_write_sample", slower)
    rec = LossRecorder(path, loss="bce", queue_size=1)
    for s in range(12):
        rec.record(s, image, prediction_at(target, s), target)
    rec.close()
    assert Recording(path).steps == list(range(12))


def test_writer_error_raised_in_training_thread(tmp_path, monkeypatch):
    image, target = blobs()

    def broken(self, *args):
        raise OSError("disk full")

    monkeypatch.setattr(_Recorder, "_write_sample", broken)
    rec = LossRecorder(tmp_path / "run.losslens.zarr", loss="bce")
    rec.record(0, image, prediction_at(target, 0), target)
    with pytest.raises(OSError, match=r"disk full"):
        rec.flush()
    rec.close()


def test_attrs_are_plain_json(tmp_path):
    image, target = blobs()
    path = tmp_path / "run.losslens.zarr"
    with LossRecorder(path, loss="unet_ce", class_weights=(1.0, 2.0), spacing=(1.0, 0.5)) as rec:
        rec.record(0, image, prediction_at(target, 0), target)
    meta = json.loads((path / "zarr.json").read_text())["attributes"]["losslens"]
    assert meta["params"]["class_weights"] == [1.0, 2.0]
    assert meta["params"]["spacing"] == [1.0, 0.5]
    assert meta["steps"] == [0] and meta["samples"] == ["sample_0"]
