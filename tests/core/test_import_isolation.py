"""The core imports no napari, Qt or magicgui; the package import stays GUI-free."""

from __future__ import annotations

import subprocess
import sys

GUI = ("napari", "PyQt6", "PyQt5", "PySide6", "qtpy", "magicgui", "vispy", "superqt")


def _modules_after(code: str) -> set[str]:
    out = subprocess.run(
        [sys.executable, "-c", code + "\nimport sys; print('\\n'.join(sys.modules))"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.split()
    return {m.split(".")[0] for m in out}


def test_core_imports_no_gui():
    mods = _modules_after("import napari_losslens.core as c; c.unet_weight_map([[0, 1]])")
    assert not mods & set(GUI), mods & set(GUI)


def test_package_import_is_gui_free_and_lazy():
    mods = _modules_after("import napari_losslens; napari_losslens.unet_weight_map")
    assert not mods & set(GUI)
    assert "torch" in mods  # the re-export resolved to core
    bare = _modules_after("import napari_losslens")
    assert "torch" not in bare  # nothing heavy at import time
