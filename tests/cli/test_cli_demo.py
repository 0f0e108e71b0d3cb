"""``losslens demo``: the sample with the widget docked, rendered headless to a file."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import numpy as np
import pytest

from napari_losslens.cli import main

from ._helpers import assert_help_documents_every_option, subparser


def test_help_documents_every_option(capsys):
    assert main(["demo", "--help"]) == 0
    assert_help_documents_every_option(capsys.readouterr().out, subparser("demo"))


def test_existing_screenshot_is_refused_before_napari_starts(tmp_path, capsys):
    shot = tmp_path / "shot.png"
    shot.write_bytes(b"keep me")
    assert main(["demo", "--screenshot", str(shot)]) == 2
    assert "--overwrite" in capsys.readouterr().err
    assert shot.read_bytes() == b"keep me"


@pytest.mark.parametrize(
    "name, message", [("shot.txt", ".png"), ("missing/shot.png", "does not exist")]
)
def test_bad_screenshot_path_is_a_usage_error(tmp_path, capsys, name, message):
    assert main(["demo", "--screenshot", str(tmp_path / name)]) == 2
    assert message in capsys.readouterr().err


@pytest.mark.slow
def test_screenshot_renders_the_computed_widget_headless(tmp_path):
    pytest.importorskip("napari_losslens._widget")
    pytest.importorskip("napari_losslens._sample_data")
    iio = pytest.importorskip("imageio.v3")
    env = dict(os.environ)
    if shutil.which("Xvfb"):
        # no display at all: the demo must start its own Xvfb, as on a headless server
        env.pop("DISPLAY", None)
        env.pop("WAYLAND_DISPLAY", None)
    shot = tmp_path / "demo.png"
    argv = [sys.executable, "-m", "napari_losslens.cli", "demo", "--screenshot", str(shot)]
    proc = subprocess.run(
        [*argv, "--width", "1200", "--height", "800"],
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "screenshot written" in proc.stdout
    assert [p.name for p in tmp_path.iterdir()] == ["demo.png"]  # no temporary files left
    img = iio.imread(shot)
    assert img.ndim == 3 and img.shape[0] >= 600 and img.shape[1] >= 900
    assert np.asarray(img[..., :3]).std() > 10  # not a blank window
