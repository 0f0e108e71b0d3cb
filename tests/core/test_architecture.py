"""The core's layers run one way (import-linter) and no import hides in a function body."""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import napari_losslens.core as core

ROOT = Path(__file__).resolve().parents[2]
CORE = Path(core.__file__).parent

# imports allowed inside a function: optional or heavy dependencies, never package modules
# that would form a cycle (each such import carries a comment saying why)
LAZY_OK = {"dask", "dask.array", "_two_nearest_numba"}


def _function_imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    found = []
    for fn in ast.walk(tree):
        if not isinstance(fn, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        for node in ast.walk(fn):
            if isinstance(node, ast.Import):
                found += [(node.lineno, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                found.append((node.lineno, node.module or "."))
    return sorted(set(found))  # a nested function is walked with its parent too


def test_no_import_in_a_function_body_except_optional_dependencies():
    bad = [
        f"{p.relative_to(CORE)}:{line} imports {name}"
        for p in sorted(CORE.rglob("*.py"))
        for line, name in _function_imports(p)
        if name not in LAZY_OK
    ]
    assert not bad, bad


def test_the_function_import_check_sees_imports(tmp_path):
    """The check above would catch the old deferred imports (it is not vacuous)."""
    f = tmp_path / "m.py"
    f.write_text(
        "import torch\n"
        "def get_loss(name):\n"
        "    from . import losses\n"
        "    import dask\n"
        "    class C:\n"
        "        def m(self):\n"
        "            from .registry import get_loss\n",
        encoding="utf-8",
    )
    assert _function_imports(f) == [(3, "."), (4, "dask"), (7, "registry")]


def test_no_module_registers_losses_by_a_bottom_import():
    for p in sorted(CORE.rglob("*.py")):
        tree = ast.parse(p.read_text(encoding="utf-8"))
        body = tree.body
        first_def = min(
            (i for i, n in enumerate(body) if isinstance(n, (ast.FunctionDef, ast.ClassDef))),
            default=len(body),
        )
        late = [n for n in body[first_def:] if isinstance(n, (ast.Import, ast.ImportFrom))]
        assert not late, f"{p.relative_to(CORE)} imports after its definitions"


def test_registry_knows_no_loss():
    text = (CORE / "registry.py").read_text(encoding="utf-8")
    tree = ast.parse(text)
    imported = {
        n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) and n.level > 0
    } | {a.name for n in ast.walk(tree) if isinstance(n, ast.ImportFrom) for a in n.names}
    assert "losses" not in imported


def test_import_contracts_hold():
    """``lint-imports`` with the contracts of pyproject.toml (layers inside core, no GUI)."""
    pytest.importorskip("importlinter")
    exe = shutil.which("lint-imports") or str(Path(sys.executable).parent / "lint-imports")
    if not Path(exe).exists():
        pytest.skip("lint-imports is not installed")
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    proc = subprocess.run(
        [exe, "--no-cache"], cwd=ROOT, capture_output=True, text=True, env=env, timeout=300
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    assert "broken" in proc.stdout and " 0 broken" in proc.stdout
