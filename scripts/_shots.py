"""What the screenshot scripts share: a display, a viewer, settling Qt, and small PNGs.

Used by ``screenshots.py`` (the widget), ``compare_screenshots.py`` (the comparison view) and
``training_screenshots.py`` (a training recording). Each script is run as
``python scripts/<name>.py``, which puts this folder on ``sys.path``; napari and Qt are
imported only once a display is there.

- :func:`display`: the current display, or an Xvfb server started for the run (``:97``,
  1600x1100) and stopped at the end;
- :func:`out_parser`: the scripts' ``--out`` folder (default ``docs/images``);
- :func:`open_viewer`: a shown napari viewer of a given title and window size;
- :func:`settle`: process Qt events for half a second, so that layers and docks are drawn;
- :func:`save`: an RGBA screenshot as a palette-quantised PNG (192 colours), scaled down to
  ``width``, well under 400 KB; :func:`shoot`: the viewer's canvas or window, saved so.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
from PIL import Image

__all__ = ["ROOT", "display", "open_viewer", "out_parser", "save", "settle", "shoot"]

ROOT = Path(__file__).resolve().parents[1]


@contextlib.contextmanager
def display() -> Iterator[None]:
    """Run the block with a display: the current one, or an Xvfb server of our own."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("no display and no Xvfb: install xvfb or run under a display")
    proc = subprocess.Popen(
        [xvfb, ":97", "-screen", "0", "1600x1100x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    os.environ["DISPLAY"] = ":97"
    try:
        yield
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def out_parser(doc: str) -> argparse.ArgumentParser:
    """A parser described by the first line of ``doc``, with ``--out`` (the images folder)."""
    parser = argparse.ArgumentParser(description=doc.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    return parser


def open_viewer(title: str, width: int, height: int):
    """A shown napari viewer titled ``title``, its window ``width`` x ``height`` pixels."""
    import napari  # a display must be there first (see display())

    viewer = napari.Viewer(show=True, title=title)
    viewer.window.resize(width, height)
    return viewer


def settle(steps: int = 5) -> None:
    """Process Qt events ``steps`` times, 0.1 s apart."""
    from qtpy.QtWidgets import QApplication  # as napari: after the display

    for _ in range(steps):
        QApplication.processEvents()
        time.sleep(0.1)


def save(rgba, path: Path, width: int | None = None) -> None:
    """Write ``rgba`` (a screenshot) to ``path`` as a palette PNG, at most ``width`` wide."""
    img = Image.fromarray(rgba[..., :3])
    if width and img.width > width:
        img = img.resize((width, round(img.height * width / img.width)), Image.LANCZOS)
    img = img.quantize(colors=192, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    img.save(path, optimize=True)
    print(
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
        f"{path.stat().st_size // 1024} KB"
    )


def shoot(viewer, path: Path, width: int, *, canvas_only: bool = True) -> None:
    """Save the viewer's canvas (or, with ``canvas_only=False``, its whole window)."""
    save(viewer.screenshot(canvas_only=canvas_only, flash=False), path, width=width)


def shoot_widget(widget, path: Path, width: int | None = None) -> None:
    """Save a Qt widget as it is drawn now (``grab()``), e.g. a scrolled part of a dock."""
    from qtpy.QtGui import QImage  # as napari: after the display

    image = widget.grab().toImage().convertToFormat(QImage.Format.Format_RGBA8888)
    ptr = image.constBits()
    ptr.setsize(image.sizeInBytes())
    rows = np.frombuffer(ptr, np.uint8).reshape(image.height(), image.bytesPerLine())
    rgba = rows[:, : image.width() * 4].reshape(image.height(), image.width(), 4)
    save(rgba, path, width=width)
