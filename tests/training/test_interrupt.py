"""A run cut off at any moment leaves a store that opens with every complete step."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import numpy as np
import pytest

from napari_losslens.training import LossRecorder, Recording
from napari_losslens.training import recorder as recorder_module

from .helpers import blobs, prediction_at

SRC = Path(__file__).resolve().parents[2] / "src"


class Killed(BaseException):
    """Stands for the process dying at this point (not an Exception: nothing catches it)."""


def _record_two(path, **kw):
    image, target = blobs()
    targets = np.stack([target, target[:, ::-1].copy()])
    images = np.stack([image, image[:, ::-1].copy()])
    rec = LossRecorder(path, loss="bce", background=False, names=["a", "b"], **kw)
    for s in range(2):
        rec.record(s, images, np.stack([prediction_at(t, s) for t in targets]), targets)
    return rec, images, targets


def _check_complete(path, targets, steps):
    r = Recording(path)
    assert r.steps == steps
    for i, name in enumerate(r.samples):
        pred = r.read(name, "prediction")
        assert pred.shape[0] == len(steps)
        for t, s in enumerate(steps):
            np.testing.assert_allclose(pred[t], prediction_at(targets[i], s))
        assert np.all(np.isfinite(r.read(name, "objects/mean_loss")))
        assert np.all(np.isfinite(r.read(name, "loss")))


def test_cut_before_the_commit(tmp_path, monkeypatch):
    path = tmp_path / "run.losslens.zarr"
    rec, images, targets = _record_two(path)

    def die(self, **changes):
        raise Killed

    monkeypatch.setattr(recorder_module.LossRecorder, "_commit", die)
    preds = np.stack([prediction_at(t, 2) for t in targets])
    with pytest.raises(Killed):
        rec.record(2, images, preds, targets)  # every array of step 2 written, not committed
    monkeypatch.undo()
    _check_complete(path, targets, [0, 1])
    # resumed: step 2 is recorded again, over the uncommitted rows
    with LossRecorder(path, loss="bce", background=False, names=["a", "b"]) as rec:
        rec.record(2, images, preds, targets)
    _check_complete(path, targets, [0, 1, 2])


def test_cut_between_two_samples(tmp_path, monkeypatch):
    path = tmp_path / "run.losslens.zarr"
    rec, images, targets = _record_two(path)
    write = recorder_module.LossRecorder._write_sample

    def die_on_second(self, i, *args):
        if i == 1:
            raise Killed
        return write(self, i, *args)

    monkeypatch.setattr(recorder_module.LossRecorder, "_write_sample", die_on_second)
    with pytest.raises(Killed):
        rec.record(2, images, np.stack([prediction_at(t, 9) for t in targets]), targets)
    monkeypatch.undo()
    _check_complete(path, targets, [0, 1])


def test_cut_while_growing_the_arrays(tmp_path, monkeypatch):
    """Killed right after the arrays grew (a metadata rewrite) and before the rows."""
    path = tmp_path / "run.losslens.zarr"
    image, target = blobs()
    rec = LossRecorder(path, loss="bce", background=False)
    for s in range(16):  # the initial capacity
        rec.record(s, image, prediction_at(target, s), target)
    monkeypatch.setattr(
        recorder_module, "object_stats", lambda *a, **k: (_ for _ in ()).throw(Killed)
    )
    with pytest.raises(Killed):
        rec.record(16, image, prediction_at(target, 16), target)
    monkeypatch.undo()
    _check_complete(path, [target], list(range(16)))


SCRIPT = textwrap.dedent(
    """
    import sys
    import numpy as np
    sys.path.insert(0, {tests!r})
    from training.helpers import blobs, prediction_at
    from napari_losslens.training import LossRecorder

    image, target = blobs((96, 96))
    rec = LossRecorder({path!r}, loss="unet_ce", outputs=("loss_map", "error_map"))
    step = 0
    while True:
        rec.record(step, image, prediction_at(target, step), target)
        step += 1
    """
)


def test_sigkill_at_a_random_moment(tmp_path):
    """A real kill -9 of a process recording as fast as it can: the store still opens."""
    path = tmp_path / "run.losslens.zarr"
    tests = str(Path(__file__).resolve().parents[1])
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(SRC), tests])}
    proc = subprocess.Popen(
        [sys.executable, "-c", SCRIPT.format(tests=tests, path=str(path))], env=env
    )
    try:
        deadline = time.monotonic() + 120
        seen = 0
        while seen < 6 and time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.2)
            try:
                seen = len(Recording(path).steps)
            except (FileNotFoundError, ValueError):
                seen = 0
        assert seen >= 6, "the recording process did not write 6 steps"
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait()
    r = Recording(path)
    steps = r.steps
    assert steps == list(range(len(steps))) and len(steps) >= 6
    _, target = blobs((96, 96))
    _check_complete(path, [target], steps)
    # and the run resumes where it stopped
    image, _ = blobs((96, 96))
    with LossRecorder(path, loss="unet_ce", outputs=("loss_map", "error_map")) as rec:
        nxt = steps[-1] + 1
        rec.record(nxt, image, prediction_at(target, nxt), target)
    _check_complete(path, [target], [*steps, nxt])
