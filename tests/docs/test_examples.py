"""The runnable examples of the documentation run, and do what the docs say."""

from __future__ import annotations

import runpy
from pathlib import Path

EXAMPLES = Path(__file__).resolve().parents[2] / "docs" / "examples"


def test_train_step_runs_as_a_script_and_lowers_the_loss(capsys):
    runpy.run_path(str(EXAMPLES / "train_step.py"), run_name="__main__")
    lines = capsys.readouterr().out.strip().splitlines()
    assert lines[0].startswith("step   0") and lines[-1].startswith("step  29")
    first, last = (float(line.split()[-1]) for line in (lines[0], lines[-1]))
    assert last < 0.5 * first
