"""The command line never overwrites an input, refuses colliding outputs before the first
write, and cleans up the temporary files a killed run left behind."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_losslens.cli import main, outputs
from napari_losslens.core import loss_map, unet_weight_map

from ._helpers import write_labels, write_prediction


def _weights(*argv):
    return main(["weights", "-q", *map(str, argv)])


def _loss(*argv):
    return main(["loss", "-q", *map(str, argv)])


def _snapshot(*paths):
    """The bytes of every file under ``paths`` (files or folders), to prove nothing changed."""
    found = {}
    for path in paths:
        if path.is_dir():
            for root, _, files in os.walk(path):
                for name in files:
                    f = os.path.join(root, name)
                    found[f] = Path(f).read_bytes()
        else:
            found[str(path)] = path.read_bytes()
    return found


def _errors(err: str) -> list[str]:
    return [ln for ln in err.splitlines() if ln.startswith("losslens: error:")]


@pytest.fixture
def pair(tmp_path):
    d = tmp_path / "d"
    d.mkdir()
    lab = write_labels(d / "t.tif", shape=(30, 34), n_cells=3, seed=1)
    write_prediction(d / "p.tif", lab, seed=1)
    return d


@pytest.mark.parametrize(
    "csv_name",
    ["d/t.tif", "d/p.tif", "d/sub/../t.tif", "link-to-target.csv", "d/hard.csv"],
    ids=["target", "prediction", "dotdot", "symlink", "hardlink"],
)
def test_csv_never_replaces_an_input_even_with_overwrite(pair, tmp_path, capsys, csv_name):
    (pair / "sub").mkdir()
    (tmp_path / "link-to-target.csv").symlink_to(pair / "t.tif")
    os.link(pair / "t.tif", pair / "hard.csv")
    before = _snapshot(pair)
    argv = ["--prediction", pair / "p.tif", "--target", pair / "t.tif"]
    assert _loss(*argv, "--csv", tmp_path / csv_name, "--overwrite") == 1
    err = capsys.readouterr().err
    assert "would replace the input" in err and "--csv" in err
    assert _snapshot(pair) == before


def test_a_map_never_replaces_an_input_of_another_pair(tmp_path, capsys):
    (tmp_path / "p").mkdir()
    maps = tmp_path / "maps"
    maps.mkdir()
    t0 = write_labels(tmp_path / "t0.tif", shape=(30, 30), n_cells=3, seed=2)
    write_labels(maps / "a.tif", shape=(30, 30), n_cells=3, seed=3)  # pair 2's target
    write_prediction(tmp_path / "p" / "a.tif", t0)
    write_prediction(tmp_path / "p" / "b.tif", t0)
    before = _snapshot(tmp_path)
    argv = ["--prediction", tmp_path / "p" / "a.tif", tmp_path / "p" / "b.tif"]
    argv += ["--target", tmp_path / "t0.tif", maps / "a.tif", "-o", maps, "--overwrite"]
    assert _loss(*argv) == 1
    err = capsys.readouterr().err
    assert f"the output {maps / 'a.tif'} would replace the input {maps / 'a.tif'}" in err
    assert "nothing written" in err
    assert _snapshot(tmp_path) == before  # not even the other pair's map


def test_weights_output_that_is_another_input_refuses_the_run(tmp_path, capsys):
    out = tmp_path / "out"
    out.mkdir()
    write_labels(tmp_path / "a.tif", seed=4)
    write_labels(out / "a.tif", seed=5)  # also an input: a's output would replace it
    write_labels(tmp_path / "c.tif", seed=6)
    before = _snapshot(tmp_path)
    argv = [tmp_path / "a.tif", out / "a.tif", tmp_path / "c.tif", "-o", out, "--overwrite"]
    assert _weights(*argv) == 1
    assert "would replace the input" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before
    assert sorted(p.name for p in out.iterdir()) == ["a.tif"]


def test_output_folder_reached_through_a_symlink_or_dotdot(tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    write_labels(src / "a.tif", seed=7)
    (tmp_path / "link").symlink_to(src)
    before = _snapshot(src)
    for outdir in (tmp_path / "link", tmp_path / "src" / ".." / "src"):
        assert _weights(src / "a.tif", "-o", outdir, "--overwrite") == 1
        assert "would replace the input" in capsys.readouterr().err
    assert _snapshot(src) == before


def test_colliding_outputs_are_refused_before_the_first_write(tmp_path, capsys):
    write_labels(tmp_path / "a.npy", seed=8)
    write_labels(tmp_path / "a.tif", seed=9)
    write_labels(tmp_path / "b.tif", seed=10)
    out = tmp_path / "out"
    assert _weights(tmp_path / "b.tif", tmp_path / "a.npy", tmp_path / "a.tif", "-o", out) == 1
    (line, summary) = _errors(capsys.readouterr().err)
    assert f"same output name as {tmp_path / 'a.npy'}: both would write {out / 'a.tif'}" in line
    assert "nothing written: 1 output(s) refused" in summary
    assert list(out.iterdir()) == []  # not even b.tif, which collides with nothing


def test_outputs_that_differ_in_case_collide_where_case_folds(tmp_path, capsys, monkeypatch):
    (tmp_path / "x").mkdir()
    write_labels(tmp_path / "x" / "A.tif", seed=11)
    write_labels(tmp_path / "a.tif", seed=12)
    out = tmp_path / "out"
    argv = [tmp_path / "x" / "A.tif", tmp_path / "a.tif", "-o", out]
    if outputs._folds_case(str(tmp_path)):  # pragma: no cover - macOS, Windows
        assert _weights(*argv) == 1
    else:
        # here A.tif and a.tif are two files: both are written
        assert _weights(*argv) == 0
        assert sorted(p.name for p in out.iterdir()) == ["A.tif", "a.tif"]
        for p in out.iterdir():
            p.unlink()
        # on a filesystem that folds case they would be one file: refused
        outputs._folds_case.cache_clear()
        monkeypatch.setattr(outputs, "_folds_case", lambda folder: True)
        assert _weights(*argv) == 1
        assert list(out.iterdir()) == []
    assert "same output name" in capsys.readouterr().err


def test_the_case_folding_probe_agrees_with_the_filesystem(tmp_path):
    (tmp_path / "Probe").write_text("x")
    folds = (tmp_path / "probe").exists()
    outputs._folds_case.cache_clear()
    assert outputs._folds_case(str(tmp_path)) is folds
    assert sorted(os.listdir(tmp_path)) == ["Probe"]  # the probe file is gone


def test_zarr_output_folder_holding_an_input_is_not_replaced(tmp_path, capsys):
    pytest.importorskip("zarr")
    out = tmp_path / "out"
    (out / "a.zarr").mkdir(parents=True)
    write_labels(tmp_path / "a.tif", seed=13)
    write_labels(out / "a.zarr" / "b.tif", seed=14)  # an input inside a's output folder
    before = _snapshot(tmp_path)
    argv = [tmp_path / "a.tif", out / "a.zarr" / "b.tif", "-o", out, "--format", "zarr"]
    assert _weights(*argv, "--overwrite") == 1
    assert "would replace a folder that holds the input" in capsys.readouterr().err
    assert _snapshot(tmp_path) == before


def test_an_array_parameter_file_is_an_input_too(pair, tmp_path, capsys):
    w = tmp_path / "w.tif"
    tifffile.imwrite(w, np.ones((30, 34), np.float32))
    before = _snapshot(w)
    argv = ["--prediction", pair / "p.tif", "--target", pair / "t.tif", "--loss", "unet_ce"]
    assert _loss(*argv, "--param", f"weight_map={w}", "-o", w, "--overwrite") == 1
    assert "would replace the input" in capsys.readouterr().err
    assert _snapshot(w) == before


def test_overwrite_still_replaces_earlier_outputs(pair, tmp_path):
    argv = ["--prediction", pair / "p.tif", "--target", pair / "t.tif", "-o", tmp_path / "m.tif"]
    tifffile.imwrite(tmp_path / "m.tif", np.zeros((2, 2), np.float32))
    assert _loss(*argv, "--csv", tmp_path / "s.csv", "--overwrite") == 0
    pred, lab = tifffile.imread(pair / "p.tif"), tifffile.imread(pair / "t.tif")
    np.testing.assert_array_equal(tifffile.imread(tmp_path / "m.tif"), loss_map(pred, lab))


CHILD = "import sys; from napari_losslens.cli import main; sys.exit(main(sys.argv[1:]))"


@pytest.mark.skipif(sys.platform == "win32", reason="POSIX signals")
def test_temporary_files_of_a_killed_run_are_cleaned_by_the_next_run(tmp_path, capsys):
    labels = [write_labels(tmp_path / f"l{i}.tif", shape=(30, 30), seed=i) for i in (0, 1)]
    inputs = [str(tmp_path / f"l{i}.tif") for i in (0, 1)]
    out = tmp_path / "out"
    out.mkdir()
    # a temporary file of a run that is still going (this process) is left alone
    alive = out / f".x.{os.getpid()}-0123abcd.tmp.tif"
    alive.write_bytes(b"in progress")
    # test hook: each output waits 30 s as a temporary: the child is killed in that time
    env = {**os.environ, "LOSSLENS_TEST_DELAY": "30"}
    cmd = [sys.executable, "-c", CHILD, "weights", "-q", *inputs, "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env)
    deadline = time.monotonic() + 120
    while not any(n.startswith(".l0.") for n in os.listdir(out)):
        assert proc.poll() is None and time.monotonic() < deadline, proc.communicate()
        time.sleep(0.02)
    proc.send_signal(signal.SIGKILL)  # no cleanup possible
    proc.communicate(timeout=60)
    left = [n for n in os.listdir(out) if n.startswith(".l0.")]
    assert len(left) == 1 and left[0].startswith(f".l0.{proc.pid}-")

    assert _weights(*inputs, "-o", out) == 0
    assert "removed 1 temporary file(s) left in" in capsys.readouterr().err
    assert sorted(os.listdir(out)) == [alive.name, "l0.tif", "l1.tif"]
    for i, lab in enumerate(labels):
        np.testing.assert_array_equal(tifffile.imread(out / f"l{i}.tif"), unet_weight_map(lab))
