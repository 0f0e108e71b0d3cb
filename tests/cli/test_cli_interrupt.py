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
