"""``losslens demo``: napari with the sample and the Loss Lens widget, or a screenshot of it.

napari and Qt are imported when the demo runs, never when this module is imported, so that
``weights`` and ``loss`` work on a machine without a screen.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

from . import batch
from ._common import EXIT_FAILED, EXIT_OK, CliError, Formatter, error

__all__ = ["add_parser", "run"]

SCREENSHOT_SUFFIXES = (".png", ".jpg", ".jpeg", ".tif", ".tiff", ".bmp")


def add_parser(sub) -> argparse.ArgumentParser:
    """Add ``demo`` to the subcommands ``sub``; return its parser."""
    d = sub.add_parser(
        "demo",
        help="open napari with the sample and the Loss Lens widget",
        description=(
            "Open napari with the touching_nuclei sample and the Loss Lens widget docked and\n"
            "computed. With --screenshot, render that window to a file (headless: a private\n"
            "Xvfb is started when there is no display) and exit."
        ),
        formatter_class=Formatter,
    )
    d.add_argument(
        "--screenshot",
        metavar="FILE.png",
        help="write a screenshot of the window to FILE.png and exit instead of "
        "opening the window (default: open the window)",
    )
    d.add_argument(
        "--width", type=int, default=1400, help="window width in pixels (default: %(default)s)"
    )
    d.add_argument(
        "--height", type=int, default=900, help="window height in pixels (default: %(default)s)"
    )
    d.add_argument(
        "--overwrite", action="store_true", help="replace an existing screenshot (default: off)"
    )
    d.set_defaults(run=run, subparser=d)
    return d


@contextlib.contextmanager
def _display_for_screenshot():
    """A display to render on: the current one, or a private Xvfb started for the run."""
    if sys.platform != "linux" or os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        yield
        return
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise CliError(
            "no display to render on and no Xvfb found: install xvfb "
            "(apt-get install xvfb) or run under xvfb-run"
        )
    read_fd, write_fd = os.pipe()
    proc = subprocess.Popen(
        [xvfb, "-displayfd", str(write_fd), "-screen", "0", "1400x1000x24", "-nolisten", "tcp"],
        pass_fds=(write_fd,),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    os.close(write_fd)
    try:
        with os.fdopen(read_fd) as fh:
            number = fh.readline().strip()
        if not number:
            raise CliError("Xvfb did not start")
        os.environ["DISPLAY"] = f":{number}"
        yield
    finally:
        os.environ.pop("DISPLAY", None)
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=5)


def _wait_for_compute(widget, started, timeout: float = 120.0) -> None:
    """Process Qt events until the widget's computation is finished (or ``timeout``)."""
    # Qt is imported only when the demo runs
    from qtpy.QtCore import QCoreApplication

    worker = started if hasattr(started, "finished") else None
    for name in ("worker", "_worker"):
        if worker is None:
            worker = getattr(widget, name, None)
    deadline = time.perf_counter() + timeout
    app = QCoreApplication.instance()
    while time.perf_counter() < deadline:
        app.processEvents()
        busy = worker is not None and getattr(worker, "is_running", False)
        busy = busy or bool(getattr(widget, "busy", False))
        if not busy:
            break
        time.sleep(0.02)
    for _ in range(20):  # let the layers and the dock settle before a screenshot
        app.processEvents()
        time.sleep(0.01)


def run(args: argparse.Namespace, parser: argparse.ArgumentParser) -> int:
    """Run ``losslens demo``; return the exit status."""
    shot = Path(args.screenshot) if args.screenshot else None
    if shot is not None:
        if shot.suffix.lower() not in SCREENSHOT_SUFFIXES:
            parser.error(f"--screenshot {shot}: use a .png (or .jpg, .tif, .bmp) file name")
        if not shot.parent.is_dir():
            parser.error(f"--screenshot {shot}: the folder {shot.parent} does not exist")
        if shot.exists() and not args.overwrite:
            parser.error(f"--screenshot {shot}: exists; pass --overwrite to replace it")
    try:
        with _display_for_screenshot() if shot is not None else contextlib.nullcontext():
            return _run_demo(shot, args)
    except CliError as err:
        error(f"demo: {err}")
        return EXIT_FAILED


def _run_demo(shot: Path | None, args: argparse.Namespace) -> int:
    try:
        import napari  # optional ([napari] extra), imported only when the demo runs
    except ImportError as err:
        raise CliError(
            f"the demo needs napari: pip install 'napari-losslens[napari]' ({err})"
        ) from None

    viewer = napari.Viewer(title="Loss Lens demo", show=True)
    try:
        viewer.window.resize(args.width, args.height)
        viewer.open_sample("napari-losslens", "touching_nuclei")
        _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
        started = widget.compute()  # synchronous; a background worker is waited for too
        if started is None and getattr(widget, "last_message", ""):
            raise CliError(f"the Loss Lens widget could not compute: {widget.last_message}")
        _wait_for_compute(widget, started)
        if shot is None:
            napari.run()
            return EXIT_OK

        def write(tmp: Path) -> None:
            viewer.screenshot(str(tmp), canvas_only=False, flash=False)

        batch.atomic_write(shot, write, args.overwrite)
        print(f"screenshot written to {shot}")
        return EXIT_OK
    finally:
        if shot is not None:
            viewer.close()
