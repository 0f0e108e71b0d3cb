"""``losslens weights``: files in, weight maps out, equal to the core's."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import tifffile

from napari_losslens.cli import main
from napari_losslens.core import unet_weight_map

from ._helpers import assert_help_documents_every_option, subparser, write_labels


def _run(*argv):
    return main(["weights", "-q", *map(str, argv)])


def test_outputs_equal_core_for_tiff_and_npy(tmp_path, capsys):
    a = write_labels(tmp_path / "a.tif", seed=1)
    b = write_labels(tmp_path / "b.npy", seed=2)
    out = tmp_path / "out"
    assert _run(tmp_path / "a.tif", tmp_path / "b.npy", "-o", out) == 0
    assert sorted(p.name for p in out.iterdir()) == ["a.tif", "b.tif"]
    for name, lab in (("a.tif", a), ("b.tif", b)):
        got = tifffile.imread(out / name)
        assert got.dtype == np.float32
        np.testing.assert_array_equal(got, unet_weight_map(lab, device="cpu"))
    summary = capsys.readouterr().out
    assert "2 weight map(s) written" in summary and "0 failed" in summary


def test_every_option_reaches_core(tmp_path):
    lab = write_labels(tmp_path / "a.tif", seed=3)
    out = tmp_path / "out"
    argv = ["--w0", "3", "--sigma", "2.5", "--class-weights", "balanced", "--spacing", "1,2"]
    argv += ["--separate-touching", "--everywhere", "--device", "cpu"]
    assert _run(tmp_path / "a.tif", "-o", out, *argv) == 0
    want = unet_weight_map(
        lab,
        w0=3,
        sigma=2.5,
        class_weights="balanced",
        spacing=(1, 2),
        separate_touching=True,
        background_only=False,
        device="cpu",
    )
    np.testing.assert_array_equal(tifffile.imread(out / "a.tif"), want)


def test_class_weight_pair_and_3d(tmp_path):
    lab = write_labels(tmp_path / "s.tif", shape=(6, 24, 28), n_cells=6, radius=6, seed=4)
    out = tmp_path / "out"
    argv = ["--class-weights", "0.5,2", "--spacing", "3,1,1"]
    assert _run(tmp_path / "s.tif", "-o", out, *argv) == 0
    want = unet_weight_map(lab, class_weights=(0.5, 2), spacing=(3, 1, 1), device="cpu")
    got = tifffile.imread(out / "s.tif")
    assert got.shape == lab.shape
    np.testing.assert_array_equal(got, want)


def test_existing_output_is_refused_without_overwrite(tmp_path, capsys):
    lab = write_labels(tmp_path / "a.tif")
    out = tmp_path / "out"
    out.mkdir()
    tifffile.imwrite(out / "a.tif", np.zeros((2, 2), np.float32))
    assert _run(tmp_path / "a.tif", "-o", out) == 1
    err = capsys.readouterr().err
    assert "a.tif" in err and "--overwrite" in err
    assert tifffile.imread(out / "a.tif").shape == (2, 2)  # untouched
    assert _run(tmp_path / "a.tif", "-o", out, "--overwrite") == 0
    np.testing.assert_array_equal(tifffile.imread(out / "a.tif"), unet_weight_map(lab))


def test_bad_files_among_good_ones(tmp_path, capsys):
    write_labels(tmp_path / "good1.tif", seed=1)
    write_labels(tmp_path / "good2.npy", seed=2)
    (tmp_path / "corrupt.tif").write_bytes(b"this is not a tiff file")
    (tmp_path / "broken.npy").write_bytes(b"\x93NUMPY garbage")
    np.save(tmp_path / "fractional.npy", np.full((8, 8), 0.5))
    np.save(tmp_path / "fourd.npy", np.zeros((2, 2, 2, 2), np.uint8))
    (tmp_path / "picture.png").write_bytes(b"png")
    names = ["good1.tif", "corrupt.tif", "missing.tif", "broken.npy", "fractional.npy"]
    names += ["fourd.npy", "picture.png", "good2.npy"]
    out = tmp_path / "out"
    assert _run(*(tmp_path / n for n in names), "-o", out) == 1
    assert sorted(p.name for p in out.iterdir()) == ["good1.tif", "good2.tif"]
    captured = capsys.readouterr()
    lines = [ln for ln in captured.err.splitlines() if ln.startswith("losslens: error:")]
    assert len(lines) == 6
    for name, why in [
        ("corrupt.tif", "TIFF"),
        ("missing.tif", "no such file"),
        ("broken.npy", ".npy"),
        ("fractional.npy", "integer"),
        ("fourd.npy", "2D or 3D"),
        ("picture.png", "unsupported file type"),
    ]:
        (line,) = [ln for ln in lines if name in ln]
        assert why in line, line
    assert "2 weight map(s) written" in captured.out and "6 failed" in captured.out


def test_no_partial_file_when_writing_fails(tmp_path, monkeypatch, capsys):
    write_labels(tmp_path / "a.tif")
    out = tmp_path / "out"

    def broken_imwrite(fh, *args, **kwargs):
        fh.write(b"II*\x00 half a file")
        raise OSError("disk full")

    monkeypatch.setattr(tifffile, "imwrite", broken_imwrite)
    assert _run(tmp_path / "a.tif", "-o", out) == 1
    assert list(out.iterdir()) == []
    assert "disk full" in capsys.readouterr().err


def test_same_output_name_twice_and_input_replacement(tmp_path, capsys):
    (tmp_path / "x").mkdir()
    write_labels(tmp_path / "a.tif", seed=1)
    write_labels(tmp_path / "x" / "a.npy", seed=2)
    assert _run(tmp_path / "a.tif", tmp_path / "x" / "a.npy", "-o", tmp_path / "out") == 1
    assert "same output name" in capsys.readouterr().err
    # writing into the input's own folder would replace it: refused even with --overwrite
    assert _run(tmp_path / "a.tif", "-o", tmp_path, "--overwrite") == 1
    assert "would replace the input" in capsys.readouterr().err


@pytest.mark.parametrize(
    "argv, message",
    [
        (["--w0", "-1"], "w0"),
        (["--sigma", "0"], "sigma"),
        (["--sigma", "abc"], "number"),
        (["--class-weights", "1,2,3"], "BG,FG"),
        (["--spacing", "0,1"], "positive"),
        (["--device", "cuda:99"], "not available"),
        (["--device", "tpu"], "device"),
        (["--background-only", "--everywhere"], "not allowed"),
    ],
)
def test_usage_errors_exit_2_and_write_nothing(tmp_path, capsys, argv, message):
    write_labels(tmp_path / "a.tif")
    out = tmp_path / "out"
    assert _run(tmp_path / "a.tif", "-o", out, *argv) == 2
    assert message in capsys.readouterr().err
    assert not out.exists() or list(out.iterdir()) == []


def test_outdir_that_is_a_file_is_a_usage_error(tmp_path, capsys):
    write_labels(tmp_path / "a.tif")
    (tmp_path / "f").write_text("")
    assert _run(tmp_path / "a.tif", "-o", tmp_path / "f") == 2
    assert "not a folder" in capsys.readouterr().err


def test_help_documents_every_option_with_defaults(capsys):
    assert main(["weights", "--help"]) == 0
    text = capsys.readouterr().out
    assert_help_documents_every_option(text, subparser("weights"))
    assert "(default: 10.0)" in text and "(default: 5.0)" in text


def test_top_level_help_and_version(capsys):
    assert main(["--help"]) == 0
    text = capsys.readouterr().out
    for command in ("weights", "loss", "demo"):
        assert command in text
    assert main(["--version"]) == 0
    assert capsys.readouterr().out.startswith("losslens ")
    assert main([]) == 2


_GUI_MODULES = ("napari", "qtpy", "PyQt5", "PyQt6", "PySide2", "PySide6", "vispy", "magicgui")


def test_installed_script_end_to_end_without_gui_imports(tmp_path):
    """The real ``losslens`` script: a good and a bad file, and no napari or Qt imported."""
    script = Path(sys.executable).with_name("losslens")
    if not script.exists():
        pytest.skip("the losslens script is not installed in this environment")
    lab = write_labels(tmp_path / "a.npy")
    (tmp_path / "bad.tif").write_bytes(b"nope")
    out = tmp_path / "out"
    argv = [str(script), "weights", str(tmp_path / "a.npy"), str(tmp_path / "bad.tif")]
    # PYTHONPROFILEIMPORTTIME makes Python list every module it imports on stderr
    env = {**os.environ, "PYTHONPROFILEIMPORTTIME": "1"}
    proc = subprocess.run(
        [*argv, "-o", str(out), "--w0", "5"], capture_output=True, text=True, timeout=120, env=env
    )
    assert proc.returncode == 1
    imported = {
        line.rsplit("|", 1)[-1].strip().split(".")[0]
        for line in proc.stderr.splitlines()
        if line.startswith("import time:")
    }
    assert "napari_losslens" in imported and "torch" in imported  # the listing works
    assert imported.isdisjoint(_GUI_MODULES), sorted(imported & set(_GUI_MODULES))
    messages = [ln for ln in proc.stderr.splitlines() if not ln.startswith("import time:")]
    assert any("bad.tif" in ln for ln in messages) and "1 failed" in proc.stdout
    assert any("weights" in ln for ln in messages)  # the progress bar
    np.testing.assert_array_equal(tifffile.imread(out / "a.tif"), unet_weight_map(lab, w0=5))
