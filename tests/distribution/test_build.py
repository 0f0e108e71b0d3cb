"""A wheel built from a `v0.1.0` tag is a clean 0.1.0 release that carries its license.

The checkout's files are committed into a throwaway git repository (the shared repository's
tags are never touched), tagged there, and built with `python -m build --no-isolation` (the
`release` extra holds the build backend, so no download is needed).
"""

from __future__ import annotations

import email
import shutil
import subprocess
import sys
import tomllib
import zipfile
from pathlib import Path

import pytest
from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
GIT = ["git", "-c", "user.name=test", "-c", "user.email=test@example.invalid"]


def _git(*args: str, cwd: Path) -> str:
    return subprocess.run(
        [*GIT, *args], cwd=cwd, check=True, capture_output=True, text=True
    ).stdout


@pytest.fixture(scope="module")
def tagged_wheel(tmp_path_factory) -> Path:
    """The wheel of the working tree's tracked files, committed and tagged v0.1.0 elsewhere."""
    if shutil.which("git") is None:
        pytest.skip("git is not installed")
    repo = tmp_path_factory.mktemp("tagged")
    for name in _git("ls-files", "-z", cwd=ROOT).split("\0"):
        src = ROOT / name
        if not name or not (src.is_file() or src.is_symlink()):
            continue  # deleted in the working tree
        dest = repo / name
        dest.parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(src, dest, follow_symlinks=False)
    _git("init", "-q", cwd=repo)
    _git("add", "-A", cwd=repo)
    _git("commit", "-q", "-m", "release", cwd=repo)
    _git("tag", "-a", "v0.1.0", "-m", "napari-losslens 0.1.0", cwd=repo)
    out = repo / "dist"
    subprocess.run(
        [sys.executable, "-m", "build", "--wheel", "--no-isolation", "--outdir", str(out)],
        cwd=repo,
        check=True,
        capture_output=True,
    )
    (wheel,) = out.glob("*.whl")
    return wheel


def test_tag_gives_a_clean_version(tagged_wheel):
    assert tagged_wheel.name == "napari_losslens-0.1.0-py3-none-any.whl"


def test_wheel_carries_license_manifest_and_metadata(tagged_wheel):
    with zipfile.ZipFile(tagged_wheel) as whl:
        names = set(whl.namelist())
        info = "napari_losslens-0.1.0.dist-info/"
        assert info + "licenses/LICENSE" in names
        license_text = whl.read(info + "licenses/LICENSE").decode()
        manifest = whl.read("napari_losslens/napari.yaml").decode()  # a file, not a link
        meta = email.message_from_bytes(whl.read(info + "METADATA"))
        entry_points = whl.read(info + "entry_points.txt").decode()
    assert license_text == (ROOT / "LICENSE").read_text()
    assert manifest == (ROOT / "napari.yaml").read_text()
    assert meta["Version"] == "0.1.0"
    assert meta["License-Expression"] == "BSD-3-Clause"
    assert meta.get_all("License-File") == ["LICENSE"]
    assert meta["Requires-Python"] == PROJECT["requires-python"]
    assert meta["Author-email"].startswith("napari-losslens developers <")
    urls = dict(u.split(", ", 1) for u in meta.get_all("Project-URL"))
    assert urls == PROJECT["urls"]
    plain = sorted(str(Requirement(r)) for r in meta.get_all("Requires-Dist") if "extra" not in r)
    assert plain == sorted(str(Requirement(r)) for r in PROJECT["dependencies"])
    assert "losslens = napari_losslens.cli:main" in entry_points
    assert "napari-losslens = napari_losslens:napari.yaml" in entry_points
    assert not any(n.startswith(("tests/", "docs/", "scripts/")) for n in names)
