"""The command line speaks command line: errors name options, not Python keyword
arguments; error and warning lines never land inside a progress bar."""

from __future__ import annotations

import os
import re
import subprocess
import sys

import numpy as np
import pytest

from napari_losslens.cli import main
from napari_losslens.cli.options import speak_options

from ._helpers import write_labels, write_prediction

# a Python keyword argument of core, as it would appear in a message: a bare name that is
# not part of an option (--w0, --class-weights) or of "--param NAME"
_KEYWORD = r"(?<![-\w])(?<!--param ){}(?![-\w])"


def _no_keyword(text: str, *names: str) -> bool:
    return not any(re.search(_KEYWORD.format(re.escape(n)), text) for n in names)


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["--w0", "-1"], "--w0"),
        (["--sigma", "0"], "--sigma"),
        (["--class-weights", "-1,2"], "--class-weights"),
        (["--device", "tpu"], "--device tpu"),
    ],
)
def test_weights_usage_errors_name_the_option(tmp_path, capsys, argv, option):
    write_labels(tmp_path / "a.tif")
    assert main(["weights", "-q", str(tmp_path / "a.tif"), "-o", str(tmp_path / "o"), *argv]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert option in err
    assert _no_keyword(err, "w0", "sigma", "class_weights", "device", "None"), err


def test_a_spacing_of_the_wrong_length_names_the_option_per_file(tmp_path, capsys):
    write_labels(tmp_path / "a.tif")
    argv = ["weights", "-q", str(tmp_path / "a.tif"), "-o", str(tmp_path / "o")]
    assert main([*argv, "--spacing", "1,1,1"]) == 1
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert "a.tif: --spacing" in line and _no_keyword(line, "spacing"), line


def test_loss_errors_name_from_logits_and_param(tmp_path, capsys):
    lab = write_labels(tmp_path / "t.tif", seed=1)
    np.save(tmp_path / "logits.npy", np.linspace(-4, 4, lab.size).reshape(lab.shape))
    argv = ["loss", "-q", "--prediction", str(tmp_path / "logits.npy")]
    argv += ["--target", str(tmp_path / "t.tif")]
    assert main(argv) == 1
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert "--from-logits" in line and _no_keyword(line, "from_logits"), line
    assert main([*argv, "--from-logits"]) == 0
    capsys.readouterr()
    assert main([*argv, "--from-logits", "--loss", "weighted_bce", "--param", "beta=-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--param beta" in err and _no_keyword(err, "beta"), err


def test_loss_mask_of_the_wrong_shape_names_the_option(tmp_path, capsys):
    lab = write_labels(tmp_path / "t.tif", seed=2)
    write_prediction(tmp_path / "p.tif", lab)
    np.save(tmp_path / "m.npy", np.ones((3, 3), np.uint8))
    argv = ["loss", "-q", "--prediction", str(tmp_path / "p.tif")]
    argv += ["--target", str(tmp_path / "t.tif"), "--mask", str(tmp_path / "m.npy")]
    assert main(argv) == 1
    (line,) = [ln for ln in capsys.readouterr().err.splitlines() if "error" in ln]
    assert "--mask" in line and _no_keyword(line, "mask"), line


@pytest.mark.parametrize(
    ("message", "spoken"),
    [
        ("w0 and sigma must be numbers, got 'a'", "--w0 and --sigma must be numbers, got 'a'"),
        ("pass from_logits=True if these are logits", "pass --from-logits if these are logits"),
        ("use device='cpu' or device=None", "use --device cpu or --device none"),
        ("mask out ignored pixels with mask=", "mask out ignored pixels with --mask"),
        ("mask and target must agree", "--mask and target must agree"),
        (
            "class_weights must be None, 'balanced' or a pair",
            "--class-weights must be 'balanced' or a pair",
        ),
        ("the sigma of the map", "the sigma of the map"),  # prose keeps its words
    ],
)
def test_speak_options(message, spoken):
    options = {
        "w0": "--w0",
        "sigma": "--sigma",
        "from_logits": "--from-logits",
        "device": "--device",
        "mask": "--mask",
        "class_weights": "--class-weights",
    }
    assert speak_options(message, options) == spoken


def test_class_weights_help_shows_the_accepted_forms(capsys):
    assert main(["weights", "--help"]) == 0
    text = " ".join(capsys.readouterr().out.split())
    help_line = text.rsplit("--class-weights {none,balanced,BG,FG}", 1)[1].split("--spacing")[0]
    for form in ("'none'", "'balanced'", "'BG,FG'", "0.5,2"):
        assert form in help_line, help_line
    assert main(["weights", "x.tif", "-o", "o", "--class-weights", "1"]) == 2
    assert "'none', 'balanced' or two numbers 'BG,FG' (e.g. 0.5,2)" in capsys.readouterr().err


CHILD = "import sys; from napari_losslens.cli import main; sys.exit(main(sys.argv[1:]))"


def test_errors_and_warnings_never_land_inside_the_progress_bar(tmp_path):
    write_labels(tmp_path / "a.tif", seed=3)
    # tifffile logs a warning for this one (an IFD with no entries), then it fails
    (tmp_path / "b.tif").write_bytes(b"II*\x00\x08\x00\x00\x00" + b"\x00" * 8)
    (tmp_path / "c.tif").write_text("not a tiff")
    write_labels(tmp_path / "d.tif", seed=4)
    names = [str(tmp_path / n) for n in ("a.tif", "b.tif", "c.tif", "d.tif")]
    cmd = [sys.executable, "-c", CHILD, "weights", *names, "-o", str(tmp_path / "out")]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONWARNINGS"}
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=300, env=env)
    assert proc.returncode == 1
    assert "weights" in proc.stderr and "|" in proc.stderr  # the bar was drawn
    messages = 0
    for line in proc.stderr.split("\n"):
        shown = line.rsplit("\r", 1)[-1]  # what a terminal shows of this line
        if "error" in line or "warning" in line or "tifffile" in line:
            assert shown.startswith("losslens: "), repr(line)
            messages += 1
    assert messages >= 3  # two errors, and tifffile's warning
