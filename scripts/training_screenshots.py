"""Headless screenshots of a training recording in napari, early and late, for the docs.

Writes into ``docs/images/`` (or ``--out``):

- ``training-early.png``: the napari window on the demo's recording at step 0 (untrained);
- ``training-late.png``: the same at the last recorded step;
- ``training-widget.png``: the recording panel of the Loss Lens widget, docked on its own,
  touring to an object that stayed wrong, with its loss over the steps.

The recording is made by :func:`napari_losslens.training.demo.train_demo` (``unet_ce``, 200
steps, as for the docs) in a temporary folder, unless ``--recording`` names an existing one. Run
``python scripts/training_screenshots.py``; without a display it starts an Xvfb server of its
own (the set-up in ``scripts/_shots.py``, shared with ``scripts/screenshots.py``).
``--only steps`` or ``--only widget`` makes one kind of picture.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path

from _shots import display, open_viewer, out_parser, settle, shoot

from napari_losslens._widget._recording import RecordingPanel
from napari_losslens.training.demo import train_demo


def _shoot_steps(recording: Path, out: Path) -> None:
    viewer = open_viewer("napari — Loss Lens: watching training", 1300, 850)
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
        settle()
        shoot(viewer, out / name, 1000, canvas_only=False)
    viewer.close()


def _shoot_widget(recording: Path, out: Path) -> None:
    viewer = open_viewer("napari — Loss Lens: the objects that stay wrong", 1300, 850)
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
        settle()
    viewer.dims.set_current_step(0, viewer.layers[f"{sample} loss_map"].data.shape[0] - 1)
    # the worst object big enough to be seen (the very worst ones are often slivers cut by
    # the image's border)
    panel.goto_object(next((i for i, o in enumerate(panel.ranking) if o.area >= 150), 0))
    target.show_selected_label = True  # the toured object's outline only
    viewer.layers.selection.active = target
    settle()
    shoot(viewer, out / "training-widget.png", 1000, canvas_only=False)
    viewer.close()


def main(argv: list[str] | None = None) -> None:
    parser = out_parser(__doc__)
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
        with display():
            if args.only in (None, "steps"):
                _shoot_steps(recording, args.out)
            if args.only in (None, "widget"):
                _shoot_widget(recording, args.out)


if __name__ == "__main__":
    main()
