"""Smoke test of napari-losslens as a user installs it: the wheel, without extras, next to napari.

Run by ``scripts/setup-and-test.sh`` with the python of a fresh virtual environment that holds
only torch, napari (with its Qt binding) and the wheel built from this checkout, from a
folder outside the checkout so that nothing is imported from ``src/``. It checks what the
plugin manager's install must give, and fails with a message on the first thing missing:

1. the installed distribution: imported from site-packages, carries the license, declares
   no Qt binding, and ``napari_losslens.core`` imports no napari or Qt;
2. in napari: the touching-nuclei sample opens, the *Loss Lens* widget docks through npe2
   (``add_plugin_dock_widget``), computes, its output layers appear and its histogram is
   drawn; the Data Science Bowl sample either opens (stardist present) or says exactly
   what to install;
3. the ``losslens`` command: ``weights`` and ``loss`` on TIFF files, checked against the
   core (``losslens demo`` is step 2 behind a command line; tests/cli covers it).

Usage:  python scripts/smoke_installed.py WORKDIR   (its files go to a new folder in WORKDIR)
"""

from __future__ import annotations

import csv
import importlib.metadata as md
import json
import re
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import napari
import numpy as np
import tifffile
from qtpy.QtCore import QCoreApplication

import napari_losslens
from napari_losslens._sample_data import make_prediction, make_touching_nuclei
from napari_losslens.core import loss_value, unet_weight_map

DIST = "napari-losslens"
QT_BINDINGS = {"pyqt5", "pyqt6", "pyside2", "pyside6"}
GUI_MODULES = {"napari", "PyQt5", "PyQt6", "PySide2", "PySide6", "qtpy", "magicgui", "vispy"}


class SmokeError(RuntimeError):
    """One thing the installed package does not do."""


def check(condition: bool, message: str) -> None:
    if not condition:
        raise SmokeError(message)


def step(title: str) -> None:
    print(f"-- {title}", flush=True)


def check_distribution() -> None:
    """Installed as a wheel (not editable, not from src/), with its license and metadata."""
    dist = md.distribution(DIST)
    location = Path(napari_losslens.__file__).resolve()
    site = Path(dist.locate_file("")).resolve()
    check(
        site in location.parents,
        f"napari_losslens was imported from {location}, not from the installed wheel in {site}",
    )
    check("src" not in location.parts, f"napari_losslens comes from a source tree: {location}")
    meta = dist.metadata
    check(
        meta["License-Expression"] == "BSD-3-Clause",
        f"License-Expression: expected BSD-3-Clause, got {meta['License-Expression']!r}",
    )
    licenses = [f for f in dist.files or () if f.name == "LICENSE"]
    check(bool(licenses), "the wheel carries no LICENSE file")
    text = licenses[0].read_text()
    check(
        "Copyright (c) 2026, napari-losslens developers" in text,
        "the LICENSE in the wheel lacks the copyright line",
    )
    manifest = [f for f in dist.files or () if f.name == "napari.yaml"]
    check(bool(manifest), "the wheel carries no napari.yaml (the npe2 manifest)")
    plain = [r for r in dist.requires or () if "extra ==" not in r]
    names = {re.split(r"[\s\[<>=!~;]", r, maxsplit=1)[0].lower() for r in plain}
    check(not names & QT_BINDINGS, f"a Qt binding among the plain dependencies: {names}")
    print(f"   {DIST} {dist.version} from {location.parent}")


def check_core_is_gui_free() -> None:
    code = (
        "import sys, napari_losslens.core as c; c.unet_weight_map([[0, 1], [1, 0]]);"
        "print('\\n'.join(sys.modules))"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    ).stdout
    loaded = {m.split(".")[0] for m in out.split()} & GUI_MODULES
    check(not loaded, f"napari_losslens.core imported GUI modules: {sorted(loaded)}")


def _process_events(seconds: float) -> None:
    app = QCoreApplication.instance()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        app.processEvents()
        time.sleep(0.01)


def check_napari() -> None:
    """A sample, the widget docked through npe2, a computation and its layers."""
    viewer = napari.Viewer(show=False)
    try:
        layers = viewer.open_sample(DIST, "touching_nuclei")
        names = [layer.name for layer in layers]
        check(len(layers) == 3, f"touching_nuclei: expected 3 layers, got {names}")
        kinds = sorted(type(layer).__name__ for layer in layers)
        check(kinds == ["Image", "Image", "Labels"], f"touching_nuclei layers: {kinds}")

        dock, widget = viewer.window.add_plugin_dock_widget(DIST, "Loss Lens")
        check(dock is not None, "the Loss Lens dock widget was not added")
        before = {layer.name for layer in viewer.layers}
        result = widget.compute()
        check(
            result is not None,
            f"the widget could not compute: {getattr(widget, 'last_message', '')}",
        )
        _process_events(1.0)  # the histogram is drawn on a timer after the layers
        owned = [layer for layer in viewer.layers if "napari_losslens" in layer.metadata]
        added = {layer.name for layer in viewer.layers} - before
        check(bool(owned) and bool(added), f"no output layers appeared: {viewer.layers}")
        for layer in owned:
            if not isinstance(layer, napari.layers.Image | napari.layers.Labels):
                continue  # hot-spots are points
            data = np.asarray(layer.data)
            check(data.shape == layers[0].data.shape, f"{layer.name}: shape {data.shape}")
            check(bool(np.isfinite(data).all()), f"{layer.name}: non-finite values")
        check(
            "matplotlib.backends.backend_qtagg" in sys.modules,
            "the widget's histogram was not drawn (matplotlib's Qt canvas never imported)",
        )
        print(f"   layers: {sorted(added)}; loss value {result.value:.4g}")

        try:
            dsb = viewer.open_sample(DIST, "dsb_nuclei")
        except Exception as err:  # napari wraps the sample's error
            message = f"{err} {err.__cause__ or ''}"
            check(
                'pip install "napari-losslens[dsb]"' in message,
                f"dsb_nuclei without stardist: the error does not say what to install: {message}",
            )
            print("   dsb_nuclei: not installed, says: pip install 'napari-losslens[dsb]'")
        else:
            check(len(dsb) == 3, f"dsb_nuclei: expected 3 layers, got {len(dsb)}")
            print("   dsb_nuclei: opened")
    finally:
        viewer.close()


def losslens(*args: str, cwd: Path) -> str:
    exe = shutil.which("losslens", path=str(Path(sys.executable).parent))
    check(exe is not None, f"no losslens command next to {sys.executable}")
    proc = subprocess.run([exe, *args], cwd=cwd, capture_output=True, text=True, timeout=600)
    check(
        proc.returncode == 0,
        f"losslens {' '.join(args)} exited {proc.returncode}:\n{proc.stdout}\n{proc.stderr}",
    )
    return proc.stdout


def check_command(work: Path) -> None:
    """``losslens weights`` / ``loss`` on TIFF files, held to the core."""
    _, labels = make_touching_nuclei((128, 160))
    prediction = make_prediction(labels)
    (work / "labels").mkdir()
    (work / "pred").mkdir()
    tifffile.imwrite(work / "labels" / "a.tif", labels)
    tifffile.imwrite(work / "pred" / "a.tif", prediction)

    losslens("weights", "labels/a.tif", "-o", "weights", "--w0", "10", "--sigma", "5", cwd=work)
    got = tifffile.imread(work / "weights" / "a.tif")
    want = unet_weight_map(labels, w0=10, sigma=5)
    check(got.shape == labels.shape, f"losslens weights: shape {got.shape}")
    check(bool(np.allclose(got, want, atol=1e-5)), "losslens weights differs from the core")

    out = work / "scores.csv"
    losslens(
        "loss", "--prediction", "pred/a.tif", "--target", "labels/a.tif",
        "--loss", "dice", "--csv", str(out), cwd=work,
    )  # fmt: skip
    with out.open(newline="") as f:
        rows = list(csv.DictReader(f))
    want_value = loss_value(prediction, labels, "dice")
    check(len(rows) == 1, f"losslens loss: expected one CSV row, got {rows}")
    got_value = float(rows[0]["value"])
    check(abs(got_value - want_value) < 1e-6, f"losslens loss: {got_value} != core {want_value}")
    print("   losslens weights and loss: ok")


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__.strip().splitlines()[-1], file=sys.stderr)
        return 2
    root = Path(argv[0]).resolve()
    root.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix="smoke-", dir=root))  # fresh on every run
    started = time.perf_counter()
    try:
        step("the installed distribution")
        check_distribution()
        step("the core without napari or Qt")
        check_core_is_gui_free()
        step("napari: sample, widget through npe2, compute, layers")
        check_napari()
        step("the losslens command")
        check_command(work)
    except SmokeError as err:
        print(f"SMOKE TEST FAILED: {err}", file=sys.stderr)
        return 1
    report = {"seconds": round(time.perf_counter() - started, 1), "python": sys.version}
    print(f"smoke test passed {json.dumps(report)}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
