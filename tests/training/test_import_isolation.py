"""A training script imports the recorder without napari or Qt (and zarr only when used)."""

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


def test_training_imports_no_gui(tmp_path):
    path = tmp_path / "run.losslens.zarr"
    mods = _modules_after(
        "import numpy as np\n"
        "from napari_losslens.training import LossRecorder, Recording\n"
        f"with LossRecorder({str(path)!r}, loss='bce') as r:\n"
        "    r.record(0, np.zeros((8, 8)), np.full((8, 8), 0.5), np.eye(8, dtype=int))\n"
        f"Recording({str(path)!r}).read('sample_0', 'loss_map')"
    )
    assert "zarr" in mods
    assert not mods & set(GUI), mods & set(GUI)


def test_zarr_is_imported_only_when_a_store_is_opened():
    assert "zarr" not in _modules_after("import napari_losslens.training")
