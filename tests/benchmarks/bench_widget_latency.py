"""Benchmark: the Loss Lens widget's latency, measured the way a user feels it.

Drives a real napari viewer (shown, under a virtual display when there is none) with the
512x512 touching-nuclei sample and the widget docked, in live mode with the U-Net weighted
cross-entropy, and measures the time from setting a slider value (w0 and σ in turn) to the
weight-map layer's data changing, and with the default outputs also to the loss-map layer's
data changing and to the hot-spots layer's points or values changing (the weight map is
hidden by default: the loss map and the hot-spots are what a user sees change):

- with the default outputs (loss map, weight map, per-object statistics, hot-spots);
- with the weight map alone;
- the cold first compute: a fresh process opens the viewer and the widget (the kernels warm
  up in the background meanwhile) and clicks Compute one second later, as a user would.

Run from the repository root (a benchmark, not a test; about a minute):

    python tests/benchmarks/bench_widget_latency.py
    python tests/benchmarks/bench_widget_latency.py --changes 40

Prints a Markdown table (median and max in ms) and the load average before and after; the
numbers depend on the machine and its load, so compare rows measured in one run. The live
rows start once the window has settled and the first result is drawn (a user looks before
moving a slider); the first paint of new layers is part of the cold row, not of theirs.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import time

DEFAULT_OUTPUTS = ("loss_map", "weight_map", "object_stats", "hot_spots")


def _ensure_display() -> subprocess.Popen | None:
    """Start Xvfb when there is no display; return the process started (or None)."""
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        return None
    xvfb = shutil.which("Xvfb")
    if xvfb is None:
        raise SystemExit("no display and no Xvfb: install xvfb or run under a display")
    display = f":{90 + os.getpid() % 9}"
    proc = subprocess.Popen(
        [xvfb, display, "-screen", "0", "1600x1000x24", "-nolisten", "tcp"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)
    os.environ["DISPLAY"] = display
    return proc


def _open():
    """A shown viewer with the sample and the docked widget, as ``losslens demo`` opens it."""
    import napari

    viewer = napari.Viewer(show=True, title="Loss Lens latency")
    viewer.window.resize(1400, 900)
    viewer.open_sample("napari-losslens", "touching_nuclei")
    _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
    widget.loss.value = "unet_ce"
    return viewer, widget


def _load() -> str:
    """The machine's load average (1, 5, 15 min): latencies depend on it."""
    return " ".join(f"{v:.2f}" for v in os.getloadavg())


def _process_until(condition, timeout: float = 30.0) -> bool:
    from qtpy.QtWidgets import QApplication

    deadline = time.perf_counter() + timeout
    while time.perf_counter() < deadline:
        QApplication.processEvents()
        if condition():
            return True
        time.sleep(0.001)
    return False


def _wait(seconds: float) -> None:
    _process_until(lambda: False, seconds)


def measure_live(widget, outputs, changes: int) -> dict[str, list[float]]:
    """ms from each slider change to each watched layer's change (live mode), by role.

    The weight map is watched always; with the loss map and the hot-spots among the
    ``outputs`` they are too (the loss map's data, the hot-spots' points or values: a
    w0/σ move often keeps the points and changes only their values). A change after which
    a watched layer did not change at all is left out of that role's list.
    """
    widget.live.value = False
    widget.outputs.value = outputs
    widget.w0.value, widget.sigma.value = 10.0, 5.0
    widget.compute()  # distances cached, layers made: what a user has after a first run
    events = {"weight_map": ("data",), "loss_map": ("data",), "hot_spots": ("data", "features")}
    changed: dict[str, list[float]] = {}
    for role, names in events.items():
        if role not in outputs:
            continue
        changed[role] = []
        for name in names:
            getattr(widget.layers[role].events, name).connect(
                lambda *_, times=changed[role]: times.append(time.perf_counter())
            )
    widget.live.value = True  # which computes once more
    _wait(1.0)  # the new layers' first paint (the hot-spot labels' glyphs: ~0.5 s) is over
    latencies: dict[str, list[float]] = {role: [] for role in changed}
    for i in range(changes):  # w0: 10 -> 10.5 -> 10 ..., σ: 5 -> 5.25 -> 5 ... in turn
        back = (i // 2) % 2 == 1
        for times in changed.values():
            times.clear()
        t0 = time.perf_counter()
        if i % 2:
            widget.sigma.value = 5.0 if back else 5.25
        else:
            widget.w0.value = 10.0 if back else 10.5
        if not _process_until(lambda: bool(changed["weight_map"])):
            raise SystemExit("the weight map did not change within 30 s")
        _process_until(lambda: not widget.workers, 30)
        _process_until(lambda: all(changed.values()), 1.0)  # the result's layer writes
        for role, times in changed.items():
            if times:
                latencies[role].append((times[0] - t0) * 1000)
        _wait(0.3)  # the histogram waits for a pause: let it draw, as between two moves
    widget.live.value = False
    return latencies


def cold_first_compute() -> float:
    """In this (fresh) process: open, wait a second, click Compute; ms to the layers."""
    viewer, widget = _open()
    _wait(1.0)
    t0 = time.perf_counter()
    widget.compute_button.clicked.emit()
    _process_until(lambda: "weight_map" in widget.layers, 120)
    ms = (time.perf_counter() - t0) * 1000
    viewer.close()
    return ms


#: The columns' layers: the weight map (the first columns), the loss map, the hot-spots.
_ROLES = ("weight_map", "loss_map", "hot_spots")


def _cells(latencies: list[float] | None, changes: int) -> tuple[str, str]:
    """Median and max (ms) of one role; "–" when not watched, and "(n of N)" when the
    layer did not change after every slider change."""
    if not latencies:
        return ("–", "–")
    seen = "" if len(latencies) == changes else f" ({len(latencies)} of {changes})"
    return (f"{statistics.median(latencies):.0f}{seen}", f"{max(latencies):.0f}")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--changes", type=int, default=20, help="slider changes per set")
    parser.add_argument("--cold", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    xvfb = _ensure_display()
    try:
        if args.cold:
            print(f"{cold_first_compute():.0f}")
            return
        load_before = _load()
        cold = subprocess.run(
            [sys.executable, __file__, "--cold"], capture_output=True, text=True, check=True
        )
        cold_ms = float(cold.stdout.strip().splitlines()[-1])
        viewer, widget = _open()
        _wait(2.0)  # the window settles (docking, layout, first paint), as a user looks first
        rows = []
        for name, outputs in (
            ("default outputs", DEFAULT_OUTPUTS),
            ("weight map alone", ("weight_map",)),
        ):
            lat = measure_live(widget, outputs, args.changes)
            rows.append((name, [_cells(lat.get(role), args.changes) for role in _ROLES]))
        viewer.close()
        print(f"512x512 sample, unet_ce, {args.changes} alternating w0/σ changes, live mode")
        print(f"load average (1, 5, 15 min): {load_before} before, {_load()} after")
        print()
        print(
            "| outputs | median (ms) | max (ms) | loss map: median (ms) | loss map: max (ms) "
            "| hot-spots: median (ms) | hot-spots: max (ms) |"
        )
        print("|---|---|---|---|---|---|---|")
        for name, cells in rows:
            print(f"| {name} | " + " | ".join(c for pair in cells for c in pair) + " |")
        print(f"| cold first compute (fresh process, Compute 1 s after opening) | {cold_ms:.0f} |")
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)


if __name__ == "__main__":
    main()
