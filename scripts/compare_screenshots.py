"""Headless screenshots of the comparison view (``napari_losslens.compare``), for the docs.

Writes into ``docs/images/`` (or ``--out``):

- ``compare-losses.png``: four losses side by side in napari's grid mode on the
  touching-nuclei sample (``bce``, ``focal``, ``dice`` and ``lovasz_hinge``), each map
  divided by its total;
- ``compare-models.png``: one loss for two predictions (model A: the sample's prediction;
  model B: the same generator with another seed), and the difference A − B;
- ``compare-models-window.png``: the whole window for the two models, the labels layer
  selected so that hovering shows the per-object change.

Run ``python scripts/compare_screenshots.py``. Without a display it starts an Xvfb server of
its own (the set-up in ``scripts/_shots.py``, shared with ``scripts/screenshots.py``).
"""

from __future__ import annotations

from _shots import display, open_viewer, out_parser, settle, shoot

import napari_losslens
from napari_losslens._compare_layers import hide_grid
from napari_losslens._sample_data import make_prediction


def main(argv: list[str] | None = None) -> None:
    args = out_parser(__doc__).parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with display():
        viewer = open_viewer("napari — Loss Lens: compare", 1500, 1000)
        viewer.open_sample("napari-losslens", "touching_nuclei")
        labels = viewer.layers["ground truth"]
        crop = (slice(96, 288), slice(128, 320))  # a 192-pixel window, so pixels show
        viewer.add_labels(labels.data[crop], name="nuclei")
        viewer.add_image(viewer.layers["prediction"].data[crop], name="model A")
        viewer.add_image(make_prediction(labels.data, seed=8)[crop], name="model B")
        for name in ("image", "prediction", "ground truth"):
            viewer.layers.remove(name)
        losses = ["bce", ("focal", {"gamma": 2.0}), "dice", "lovasz_hinge"]
        napari_losslens.compare(viewer, "nuclei", "model A", losses=losses)
        viewer.layers["nuclei"].visible = False  # the four panes only
        settle()
        viewer.reset_view()
        settle()
        shoot(viewer, args.out / "compare-losses.png", 900)
        hide_grid(viewer, "nuclei")
        napari_losslens.compare(viewer, "nuclei", ["model A", "model B"], losses=["bce"])
        settle()
        viewer.reset_view()
        settle()
        shoot(viewer, args.out / "compare-models.png", 900)
        shoot(viewer, args.out / "compare-models-window.png", 1200, canvas_only=False)
        viewer.close()


if __name__ == "__main__":
    main()
