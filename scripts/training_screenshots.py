"""Headless screenshots of a training recording in napari, early and late, for the docs.

Writes into ``docs/images/`` (or ``--out``):

- ``training-early.png``: the napari window on the demo's recording at step 0 (untrained);
- ``training-late.png``: the same at the last recorded step;
- ``training-widget.png``: the recording panel of the Loss Lens widget, docked on its own,
  touring to an object that stayed wrong, with its loss over the steps.

The recording is made by :func:`napari_losslens.training.demo.train_demo` (``unet_ce``, 200
steps, as for the docs) in a temporary folder, unless ``--recording`` names an existing one. Run
``python scripts/training_screenshots.py``; without a display it starts an Xvfb server of its
own (see ``scripts/screenshots.py``, whose helpers it uses). ``--only steps`` or ``--only
widget`` makes one kind of picture.
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

from screenshots import ROOT, _ensure_display, _save

from napari_losslens.training.demo import train_demo


def _settle() -> None:
    from qtpy.QtWidgets import QApplication

    for _ in range(5):
        QApplication.processEvents()
        time.sleep(0.1)


def _shoot(recording: Path, out: Path) -> None:
    import napari

    viewer = napari.Viewer(show=True, title="napari — Loss Lens: watching training")
    viewer.window._qt_window.resize(1300, 850)
    layers = viewer.open(str(recording), plugin="napari-losslens")
    sample = layers[0].metadata["napari_losslens_recording"]["sample"]
    for layer in layers:
        layer.visible = layer.name in (f"{sample} image", f"{sample} loss_map")
    viewer.layers[f"{sample} image"].contrast_limits = (0.0, 1.6)  # dimmer: the map stands out
    viewer.layers.selection.active = viewer.layers[f"{sample} loss_map"]
    viewer.reset_view()
    last = viewer.layers[f"{sample} loss_map"].data.shape[0] - 1
    for step, name in ((0, "training-early.png"), (last, "training-late.png")):
        viewer.dims.set_current_step(0, step)
        _settle()
        _save(viewer.screenshot(canvas_only=False, flash=False), out / name, width=1000)
    viewer.close()


def _shoot_widget(recording: Path, out: Path) -> None:
    import napari

    from napari_losslens._widget._recording import RecordingPanel

    viewer = napari.Viewer(show=True, title="napari — Loss Lens: the objects that stay wrong")
    viewer.window._qt_window.resize(1300, 850)
    layers = viewer.open(str(recording), plugin="napari-losslens")
    sample = layers[0].metadata["napari_losslens_recording"]["sample"]
    for layer in layers:
        layer.visible = layer.name in (f"{sample} image", f"{sample} loss_map", f"{sample} target")
    viewer.layers[f"{sample} image"].contrast_limits = (0.0, 1.6)
    target = viewer.layers[f"{sample} target"]
    target.contour = 1
    target.opacity = 0.8
    panel = RecordingPanel(viewer)
    viewer.window.add_dock_widget(panel, name="Loss Lens recording", area="right")
    deadline = time.monotonic() + 60
    while (panel.loading or not panel.ranking) and time.monotonic() < deadline:
        _settle()
    viewer.dims.set_current_step(0, viewer.layers[f"{sample} loss_map"].data.shape[0] - 1)
    # the worst object big enough to be seen (the very worst ones are often slivers cut by
    # the image's border)
    panel.goto_object(next((i for i, o in enumerate(panel.ranking) if o.area >= 150), 0))
    target.show_selected_label = True  # the toured object's outline only
    viewer.layers.selection.active = target
    _settle()
    _save(
        viewer.screenshot(canvas_only=False, flash=False), out / "training-widget.png", width=1000
    )
    viewer.close()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    parser.add_argument("--recording", type=Path, help="an existing *.losslens.zarr")
    parser.add_argument("--steps", type=int, default=200, help="demo steps (default: 200)")
    parser.add_argument(
        "--only", choices=("steps", "widget"), help="only the early/late steps, or the widget"
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as tmp:
        recording = args.recording
        if recording is None:
            (result,) = train_demo(steps=args.steps, losses=("unet_ce",), out=tmp)
            recording = result.path
        xvfb = _ensure_display()
        try:
            if args.only in (None, "steps"):
                _shoot(recording, args.out)
            if args.only in (None, "widget"):
                _shoot_widget(recording, args.out)
        finally:
            if xvfb is not None:
                xvfb.terminate()
                xvfb.wait(timeout=10)


if __name__ == "__main__":
    main()
