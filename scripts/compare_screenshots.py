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
its own (see ``scripts/screenshots.py``, whose helpers it uses).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

from screenshots import ROOT, _ensure_display, _save


def _settle(app, steps: int = 5) -> None:
    for _ in range(steps):
        app.processEvents()
        time.sleep(0.1)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=ROOT / "docs" / "images")
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    xvfb = _ensure_display()
    try:
        import napari
        from qtpy.QtWidgets import QApplication

        import napari_losslens
        from napari_losslens._compare_layers import hide_grid
        from napari_losslens._sample_data import make_prediction

        viewer = napari.Viewer(show=True, title="napari — Loss Lens: compare")
        viewer.window._qt_window.resize(1500, 1000)
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
        _settle(QApplication)
        viewer.reset_view()
        _settle(QApplication)
        _save(
            viewer.screenshot(canvas_only=True, flash=False),
            args.out / "compare-losses.png",
            width=900,
        )
        hide_grid(viewer, "nuclei")
        napari_losslens.compare(viewer, "nuclei", ["model A", "model B"], losses=["bce"])
        _settle(QApplication)
        viewer.reset_view()
        _settle(QApplication)
        _save(
            viewer.screenshot(canvas_only=True, flash=False),
            args.out / "compare-models.png",
            width=900,
        )
        _save(
            viewer.screenshot(canvas_only=False, flash=False),
            args.out / "compare-models-window.png",
            width=1200,
        )
        viewer.close()
    finally:
        if xvfb is not None:
            xvfb.terminate()
            xvfb.wait(timeout=10)


if __name__ == "__main__":
    main()
