"""The documentation site builds with ``mkdocs build --strict`` (warnings fail it)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def test_mkdocs_build_strict(tmp_path):
    pytest.importorskip("mkdocs")
    pytest.importorskip("mkdocstrings_handlers.python")
    pytest.importorskip("material")
    site = tmp_path / "site"
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(site)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        env=env,
    )
    assert proc.returncode == 0, (proc.stdout + proc.stderr)[-4000:]
    # the API reference is generated from the docstrings
    api = (site / "api" / "index.html").read_text(encoding="utf-8")
    for name in ("unet_weight_map", "loss_map", "cell_distances", "SegmentationLoss"):
        assert name in api, name
    # the training example is included from its file, not copied by hand
    scripting = (site / "scripting" / "index.html").read_text(encoding="utf-8")
    assert "train_step" in scripting and "unet_weight_map" in scripting
    assert (site / "images" / "figures" / "weight-map-grid.png").is_file()
