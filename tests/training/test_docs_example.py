"""The training-loop snippet of docs/training.md runs, and records what the page says."""

from __future__ import annotations

import re
import runpy
from pathlib import Path

import numpy as np

from napari_losslens.training import Recording

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "docs" / "examples" / "watch_training.py"


def test_the_page_includes_the_snippet():
    page = (ROOT / "docs" / "training.md").read_text()
    assert '--8<-- "docs/examples/watch_training.py:loop"' in page
    snippet = re.search(
        r"# --8<-- \[start:loop\]\n(.*?)# --8<-- \[end:loop\]", EXAMPLE.read_text(), re.S
    ).group(1)
    assert "LossRecorder(" in snippet and "recorder.record(" in snippet
    assert len(snippet.strip().splitlines()) <= 10  # "ten lines in your own loop"


def test_the_example_records_every_tenth_step(tmp_path):
    module = runpy.run_path(str(EXAMPLE), run_name="example")
    path = module["main"](steps=11, out=tmp_path)
    rec = Recording(path)
    assert rec.loss == "unet_ce"
    assert rec.steps == [0, 10]
    assert rec.samples == ["sample_0"]
    pred = rec.read("sample_0", "prediction")
    assert pred.shape == (2, 128, 128)
    assert np.all((pred >= 0) & (pred <= 1))
