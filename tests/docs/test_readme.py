"""The README works on the package index and the napari hub: its code runs, its links resolve.

Both sites show the README out of the repository's context, so every image and link must be
an absolute URL, and each one into this repository must name a file that exists.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
README = (ROOT / "README.md").read_text()
RAW = "https://raw.githubusercontent.com/napari-losslens/napari-losslens/main/"
BLOB = "https://github.com/napari-losslens/napari-losslens/blob/main/"
LINK = re.compile(r"!?\[[^\]]*\]\(([^)\s]+)\)")


def _blocks(text: str, language: str) -> list[str]:
    return re.findall(rf"^```{language}\n(.*?)^```", text, flags=re.S | re.M)


def test_python_snippet_runs_as_written(capsys):
    (code,) = _blocks(README, "python")
    namespace: dict = {"__name__": "__readme__"}
    exec(compile(code, "README.md", "exec"), namespace)
    out = capsys.readouterr().out
    # U-Net weight, independent: w = wc + w0 exp(-(d1 + d2)^2 / (2 sigma^2)); in the gap
    # between cells 1 and 2 at column 31, d1 = 1 (cell 2) and d2 = 2 (cell 1); wc = 1
    gap = 1 + 10 * math.exp(-((1 + 2) ** 2) / (2 * 5**2))
    assert f"weight {gap:.2f} in the gap, 1.00 far away" in out
    # torch in, torch out: the gradient reached the logits
    assert namespace["logits"].grad is not None
    assert namespace["logits"].grad.abs().sum() > 0
    assert namespace["m"].shape == namespace["labels"].shape


def test_links_and_images_are_absolute_and_exist():
    targets = LINK.findall(README)
    assert any(t.startswith(RAW) for t in targets), "no image found: the pattern is stale"
    for target in targets:
        assert target.startswith("https://"), f"relative link in README.md: {target}"
        for prefix in (RAW, BLOB):
            if target.startswith(prefix):
                path = ROOT / target[len(prefix) :].split("#")[0]
                assert path.is_file(), f"README.md links to a missing file: {target}"


def _torch_lines(text: str) -> list[str]:
    return [
        line
        for block in _blocks(text, "bash")
        for line in block.splitlines()
        if line.startswith("pip install torch")
    ]


def test_docs_install_torch_as_the_readme_does():
    (readme_line,) = _torch_lines(README)
    for page in ("install.md", "getting-started.md", "index.md"):
        lines = _torch_lines((ROOT / "docs" / page).read_text())
        assert lines == [readme_line], page


def test_readme_install_lines_match_the_docs():
    """The plain and [all] install lines are the same words on every page that shows them."""
    readme = [line for b in _blocks(README, "bash") for line in b.splitlines()]
    wanted = [line for line in readme if line.startswith("pip install ")]
    assert any('"napari-losslens[all]"' in line for line in wanted)
    for page in ("getting-started.md", "index.md"):
        text = (ROOT / "docs" / page).read_text()
        for line in wanted:
            assert line in text, (page, line)
