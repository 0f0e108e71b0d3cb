"""Headless screenshots of the Loss Lens widget on the touching-nuclei sample, for the docs.

Writes into ``docs/images/`` (or ``--out``):

- ``widget.png``: the whole napari window as ``losslens demo`` shows it (same size, the
  widget docked, one computation with the default outputs, the layers as the widget leaves
  them);
- ``widget-loss-map.png``: the canvas with the U-Net weighted cross-entropy map and hot-spots;
- ``widget-weight-map.png``: the canvas with the U-Net weight map (w0 = 10, σ = 5).

Run ``python scripts/screenshots.py``. Without a display it starts an Xvfb server of its own
(and stops it at the end). Images are palette-quantised PNGs, well under 400 KB each.
"""

from __future__ import annotations

import argparse
import os
import shutil
import subprocess
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: The window size of ``losslens demo`` (its --width and --height defaults).
DEMO_WIDTH, DEMO_HEIGHT = 1400, 900


def _ensure_display() -> subprocess.Popen | None:
    """Start Xvfb when there is no display; return the process we started (or None)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("no display and no Xvfb: install xvfb or run under a display")
    display = ":97"
    proc = subprocess.Popen(
        [xvfb, display, "-screen", "0", "1600x1100x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    os.environ["DISPLAY"] = display
    return proc


def _save(rgba, path: Path, width: int | None = None) -> None:
    from PIL import Image

    img = Image.fromarray(rgba[..., :3])
    if width and img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img = img.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
    print(
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
        f"{path.stat().st_size // 1024} KB"
    )


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    xvfb = _ensure_display()
    try:
        import napari
        from qtpy.QtWidgets import QApplication

        # what `losslens demo` shows: its window size, the sample, the docked widget and
        # one computation with the default outputs, nothing hidden or restyled by hand
        viewer = napari.Viewer(show=True, title="napari — Loss Lens")
        viewer.window.resize(DEMO_WIDTH, DEMO_HEIGHT)
        viewer.open_sample("napari-losslens", "touching_nuclei")
        _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
        widget.compute()
        layers = widget.layers
        for _ in range(5):
            QApplication.processEvents()
            time.sleep(0.1)
        widget._presenter.update_histogram(widget.last_result)
        for _ in range(5):
            QApplication.processEvents()
            time.sleep(0.1)
        _save(
            viewer.screenshot(canvas_only=False, flash=False),
            args.out / "widget.png",
            width=DEMO_WIDTH,
        )
        _save(
            viewer.screenshot(canvas_only=True, flash=False),
            args.out / "widget-loss-map.png",
            width=700,
        )
        layers["weight_map"].visible = True
        layers["loss_map"].visible = False
        layers["hot_spots"].visible = False
        QApplication.processEvents()
        _save(
            viewer.screenshot(canvas_only=True, flash=False),
            args.out / "widget-weight-map.png",
            width=700,
        )
        viewer.close()
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)


if __name__ == "__main__":
    main()
