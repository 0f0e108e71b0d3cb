"""Headless screenshots of the Loss Lens widget on the touching-nuclei sample, for the docs.

Writes into ``docs/images/`` (or ``--out``):

- ``widget.png``: the whole napari window as ``losslens demo`` shows it (same size, the
  widget docked, one computation with the default outputs, the layers as the widget leaves
  them);
- ``widget-loss-map.png``: the canvas with the U-Net weighted cross-entropy map and hot-spots;
- ``widget-weight-map.png``: the canvas with the U-Net weight map (w0 = 10, σ = 5);
- ``widget-dock-lower.png``: the dock scrolled to its end (hot-spot tour, status line,
  histograms, compare section), as the user scrolls to it in that window.

Run ``python scripts/screenshots.py``. Without a display it starts an Xvfb server of its own
(and stops it at the end). Images are palette-quantised PNGs, well under 400 KB each
(``_shots.py`` holds the set-up the screenshot scripts share).
"""

from __future__ import annotations

from _shots import display, open_viewer, out_parser, settle, shoot, shoot_widget

#: The window size of ``losslens demo`` (its --width and --height defaults).
DEMO_WIDTH, DEMO_HEIGHT = 1400, 900


def main(argv: list[str] | None = None) -> None:
    args = out_parser(__doc__).parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    with display():
        # what `losslens demo` shows: its window size, the sample, the docked widget and
        # one computation with the default outputs, nothing hidden or restyled by hand
        viewer = open_viewer("napari — Loss Lens", DEMO_WIDTH, DEMO_HEIGHT)
        viewer.open_sample("napari-losslens", "touching_nuclei")
        _, widget = viewer.window.add_plugin_dock_widget("napari-losslens", "Loss Lens")
        widget.compute()
        layers = widget.layers
        settle()
        widget._presenter.update_histogram(widget.last_result)
        settle()
        shoot(viewer, args.out / "widget.png", DEMO_WIDTH, canvas_only=False)
        shoot(viewer, args.out / "widget-loss-map.png", 700)
        scroll = widget.root_native_widget  # the dock's scroll area
        bar = scroll.verticalScrollBar()
        bar.setValue(bar.maximum())
        settle()
        shoot_widget(scroll, args.out / "widget-dock-lower.png")
        bar.setValue(0)
        layers["weight_map"].visible = True
        layers["loss_map"].visible = False
        layers["hot_spots"].visible = False
        settle(1)
        shoot(viewer, args.out / "widget-weight-map.png", 700)
        viewer.close()


if __name__ == "__main__":
    main()
