"""An interrupted batch (SIGINT, SIGTERM) stops cleanly, and ``--skip-existing`` finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import tifffile

from napari_losslens.cli import main
from napari_losslens.core import unet_weight_map

from ._helpers import write_labels

pytestmark = pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")

# The child restores Python's Ctrl-C handler: a process started in the background by a
# non-interactive shell (as CI runners do) inherits SIGINT ignored.
CHILD = (
    "import signal, sys; signal.signal(signal.SIGINT, signal.default_int_handler); "
    "from napari_losslens.cli import main; sys.exit(main(sys.argv[1:]))"
)


def _read(path):
    if path.suffix == ".zarr":
        zarr = pytest.importorskip("zarr")
        return zarr.open_array(str(path), mode="r")[...]
    return tifffile.imread(path)


def _wait_mid_batch(proc, out, first, second, timeout=60.0):
    """Until ``first`` is in place and ``second`` is being written (its temporary exists)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        names = os.listdir(out) if out.exists() else []
        if first in names and any(n.startswith(f".{second}.") for n in names):
            return
        time.sleep(0.01)
    proc.kill()
    raise AssertionError(f"the batch never got to {second}: {proc.communicate()}")


@pytest.mark.parametrize(
    ("sig", "argv", "suffix"),
    [
        (signal.SIGINT, [], ".tif"),
        (signal.SIGTERM, ["--chunks", "24", "--format", "zarr"], ".zarr"),
    ],
    ids=["sigint-tiff", "sigterm-chunked-zarr"],
)
def test_interrupted_batch_keeps_finished_files_and_a_rerun_finishes(
    tmp_path, capsys, sig, argv, suffix
):
    if "--chunks" in argv:
        pytest.importorskip("dask.array")
        pytest.importorskip("zarr")
    labels = {
        f"l{i}": write_labels(tmp_path / f"l{i}.tif", shape=(40, 48), n_cells=5, seed=i)
        for i in range(4)
    }
    inputs = [str(tmp_path / f"{name}.tif") for name in labels]
    out = tmp_path / "out"
    # test hook: each output waits 0.5 s as a temporary before it is renamed into place
    env = {**os.environ, "LOSSLENS_TEST_DELAY": "0.5"}
    cmd = [sys.executable, "-c", CHILD, "weights", "-q", *inputs, "-o", str(out), *argv]
    proc = subprocess.Popen(
        cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env
    )
    _wait_mid_batch(proc, out, "l0" + suffix, "l1")
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=60)

    assert proc.returncode == 128 + sig, stderr
    # the finished file is kept, the one in progress is gone with its temporary
    assert sorted(os.listdir(out)) == ["l0" + suffix]
    assert f"interrupted by {signal.Signals(sig).name}: 1 of 4 done" in stderr
    not_done = stderr.split("not done", 1)[1]
    assert all(path in not_done for path in inputs[1:]) and inputs[0] not in not_done
    assert "1 weight map(s) written" in stdout

    # the same command with --skip-existing does the rest
    assert main(["weights", "-q", *inputs, "-o", str(out), *argv, "--skip-existing"]) == 0
    assert "3 weight map(s) written" in capsys.readouterr().out
    assert sorted(os.listdir(out)) == [f"l{i}{suffix}" for i in range(4)]
    for name, lab in labels.items():
        got = _read(out / f"{name}{suffix}")
        np.testing.assert_allclose(got, unet_weight_map(lab, device="cpu"), rtol=0, atol=1e-4)


def test_interrupted_loss_batch_reports_the_rows_done_and_a_rerun_completes_the_csv(
    tmp_path, capsys, monkeypatch
):
    import napari_losslens.cli.batch as cli_batch

    preds, targets = [], []
    for i in range(3):
        lab = write_labels(tmp_path / f"t{i}.tif", shape=(30, 30), n_cells=3, seed=40 + i)
        p = np.clip(0.7 * (lab > 0) + 0.2, 0, 1).astype(np.float32)
        np.save(tmp_path / f"p{i}.npy", p)
        preds.append(str(tmp_path / f"p{i}.npy"))
        targets.append(str(tmp_path / f"t{i}.tif"))
    maps, table = tmp_path / "maps", tmp_path / "scores.csv"
    argv = ["loss", "-q", "--prediction", *preds, "--target", *targets, "-o", str(maps)]
    argv += ["--csv", str(table)]
    real_write = cli_batch.write_output
    calls = []

    def write_then_ctrl_c(path, *args):  # Ctrl-C while the second map is being written
        calls.append(path)
        if len(calls) == 2:
            raise KeyboardInterrupt
        return real_write(path, *args)

    monkeypatch.setattr(cli_batch, "write_output", write_then_ctrl_c)
    assert main(argv) == 130
    err = capsys.readouterr().err
    assert "interrupted by SIGINT: 1 of 3 done" in err
    assert preds[1] in err.split("not done", 1)[1] and preds[2] in err.split("not done", 1)[1]
    assert len(table.read_text().splitlines()) == 2  # the header and the pair done
    assert sorted(p.name for p in maps.iterdir()) == ["p0.tif"]

    monkeypatch.setattr(cli_batch, "write_output", real_write)
    assert main([*argv, "--skip-existing"]) == 0
    lines = table.read_text().splitlines()
    assert [line.split(",")[0] for line in lines[1:]] == preds
    assert sorted(p.name for p in maps.iterdir()) == ["p0.tif", "p1.tif", "p2.tif"]


@pytest.mark.parametrize("command", ["loss", "weights"])
def test_ctrl_c_while_the_engine_starts_reports_every_file_not_done(
    tmp_path, capsys, monkeypatch, command
):
    import napari_losslens.cli.engine as cli_engine

    targets = [tmp_path / f"t{i}.tif" for i in range(2)]
    for i, t in enumerate(targets):
        write_labels(t, shape=(20, 20), n_cells=2, seed=60 + i)
    closed = []

    def ctrl_c(self):
        raise KeyboardInterrupt

    monkeypatch.setattr(cli_engine.Engine, "start", ctrl_c)
    monkeypatch.setattr(cli_engine.Engine, "close", lambda self: closed.append(True))
    out = tmp_path / "out"
    if command == "loss":
        argv = ["loss", "--prediction", *map(str, targets), "--target", *map(str, targets)]
    else:
        argv = ["weights", *map(str, targets)]
    assert main([*argv, "-o", str(out)]) == 130
    err = capsys.readouterr().err
    assert "interrupted by SIGINT: 0 of 2 done" in err
    not_done = err.split("not done", 1)[1]
    assert all(str(t) in not_done for t in targets)
    assert closed == [True]  # the engine is closed all the same
    assert not out.exists() or not any(out.iterdir())
