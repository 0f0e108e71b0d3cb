"""The widget's compare mode: several losses, or two models, side by side in grid mode.

:class:`ComparePanel` holds the controls of the comparison (the mode, up to
:data:`~napari_losslens._compare.MAX_PANES` losses each with its parameters typed as
``gamma=1, alpha=0.25``, model B's layer, the buttons) and runs it: the arrays are read from
the main controls' layers, :func:`~napari_losslens._compare.compare_arrays` runs in a thread
worker (a newer request replaces an older one, whose result is dropped), and the result goes
to the layers through :func:`~napari_losslens._compare_layers.show_comparison`, as
``napari_losslens.compare`` does. ``compare()`` runs synchronously, for scripts and tests.
"""

from __future__ import annotations

import ast
from typing import TYPE_CHECKING, Any

from magicgui.widgets import ComboBox, Container, Label, LineEdit, PushButton
from napari.qt.threading import thread_worker
from napari.utils import notifications
from qtpy.QtWidgets import QComboBox, QSizePolicy

from .. import core
from .._compare import MAX_PANES, Comparison, LossSpec, compare_arrays, parse_losses
from .._compare_layers import comparison_inputs, focus_hot_spot, hide_grid, show_comparison

if TYPE_CHECKING:  # pragma: no cover
    import napari

    from ._controls import LossLensControls

__all__ = ["ComparePanel", "parse_params"]

#: the choice of an empty loss row
NO_LOSS = "—"


def parse_params(text: str, loss: str) -> dict[str, Any]:
    """``"gamma=1, alpha=0.25"`` as ``{"gamma": 1, "alpha": 0.25}`` (values are literals).

    Raises:
        ValueError: an entry that is not ``name=value`` or a value that is not a literal.
    """
    out: dict[str, Any] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, sep, value = part.partition("=")
        if not sep or not name.strip().isidentifier():
            raise ValueError(
                f"parameters of {loss!r} must be written name=value, separated by commas; "
                f"got {part!r}"
            )
        try:
            out[name.strip()] = ast.literal_eval(value.strip())
        except (ValueError, SyntaxError):
            raise ValueError(
                f"parameter {name.strip()!r} of {loss!r}: {value.strip()!r} is not a value "
                "(type a number such as 1e-6, True or None)"
            ) from None
    return out


class ComparePanel(Container):
    """The compare-mode controls, and the comparison they ask for.

    Args:
        viewer: the napari viewer.
        controls: the widget's main controls (ground truth, prediction = model A, image,
            ``from_logits``, device, threshold, number of hot-spots).
    """

    def __init__(self, viewer: napari.viewer.Viewer, controls: LossLensControls):
        # no label column of its own: the widget's column is beside it already, and a
        # second one would widen the dock and squeeze the canvas (issue 12)
        super().__init__(name="compare", labels=False)
        self.margins = (0, 0, 0, 0)
        self._viewer = viewer
        self._controls = controls
        self._worker = None
        self._generation = 0
        self.comparison: Comparison | None = None
        self.layers: dict[str, Any] = {}
        self._spot = -1
        choices = [(NO_LOSS, NO_LOSS)] + [
            (info.title, key) for key, info in core.available_losses().items()
        ]
        self.compare_mode = ComboBox(
            name="compare_mode",
            label="compare",
            choices=[("2–6 losses, one prediction", "losses"), ("one loss, two models", "models")],
        )
        self.prediction_b = ComboBox(
            name="prediction_b",
            label="model B",
            choices=controls._prediction_choices,
            nullable=True,
            visible=False,
            tooltip="the second prediction (model A is the prediction above)",
        )
        self.loss_rows: list[tuple[ComboBox, LineEdit]] = []
        rows = []
        for i in range(MAX_PANES):
            box = ComboBox(
                name=f"compare_loss_{i}", label=" ", choices=choices, tooltip=f"loss {i + 1}"
            )
            params = LineEdit(
                name=f"compare_params_{i}",
                label=" ",
                value="",
                tooltip=f"parameters of loss {i + 1}, e.g. gamma=1, alpha=0.25 "
                "(empty: the defaults)",
            )
            params.native.setPlaceholderText("parameters")
            self.loss_rows.append((box, params))
            rows.append(
                Container(
                    name=f"compare_row_{i}",
                    label=f"loss {i + 1}",
                    widgets=[box, params],
                    layout="horizontal",
                    labels=False,
                )
            )
        self.compare_button = PushButton(name="compare_button", text="Compare side by side")
        self.compare_prev = PushButton(name="compare_prev", text="◀ hot-spot")
        self.compare_next = PushButton(name="compare_next", text="hot-spot ▶")
        self.compare_exit = PushButton(name="compare_exit", text="Leave grid mode")
        self.compare_status = Label(name="compare_status", value="", label=" ")
        self.extend(
            [
                self.compare_mode,
                self.prediction_b,
                *rows,
                self.compare_button,
                Container(
                    name="compare_buttons",
                    label=" ",
                    widgets=[self.compare_prev, self.compare_next],
                    layout="horizontal",
                    labels=False,
                ),
                self.compare_exit,  # on its own row: three buttons side by side are wide
                self.compare_status,
            ]
        )
        for box, params in self.loss_rows:
            # as wide as the dock gives, not as a loss's title or a text field's preferred
            # width: the panel must not widen the dock and squeeze the canvas (issue 12)
            box.native.setSizeAdjustPolicy(
                QComboBox.SizeAdjustPolicy.AdjustToMinimumContentsLengthWithIcon
            )
            box.native.setMinimumContentsLength(6)
            params.native.setMinimumWidth(50)
            params.native.setSizePolicy(QSizePolicy.Policy.Ignored, QSizePolicy.Policy.Fixed)
        self.compare_mode.changed.connect(self._on_mode_changed)
        self.compare_button.changed.connect(self.start)
        self.compare_next.changed.connect(lambda: self.goto_hot_spot(self._spot + 1))
        self.compare_prev.changed.connect(lambda: self.goto_hot_spot(self._spot - 1))
        self.compare_exit.changed.connect(self.leave_grid)

    # ----------------------------------------------------------------- reading

    def _on_mode_changed(self, mode: str) -> None:
        self.prediction_b.visible = mode == "models"

    def set_losses(self, losses) -> None:
        """Fill the loss rows from names or ``(name, params)`` pairs (the rest emptied)."""
        specs = parse_losses(losses)
        for i, (box, params) in enumerate(self.loss_rows):
            if i < len(specs):
                box.value = specs[i].name
                params.value = ", ".join(f"{k}={v!r}" for k, v in specs[i].params.items())
            else:
                box.value = NO_LOSS
                params.value = ""

    def specs(self) -> tuple[LossSpec, ...]:
        """The chosen losses and their parameters, validated.

        Raises:
            ValueError, TypeError: as :func:`~napari_losslens._compare.parse_losses`, or a
                parameter line that does not parse.
        """
        chosen = [
            (box.value, parse_params(params.value, box.value))
            for box, params in self.loss_rows
            if box.value != NO_LOSS
        ]
        return parse_losses(chosen)

    def _request(self):
        c = self._controls
        labels, pred_a = c.labels_layer.value, c.prediction_layer.value
        if labels is None or pred_a is None:
            raise ValueError("choose a ground truth and a prediction first")
        preds = [pred_a]
        if self.compare_mode.value == "models":
            if self.prediction_b.value is None:
                raise ValueError("choose model B's prediction to compare two models")
            preds.append(self.prediction_b.value)
        specs = self.specs()
        lab, arrays, spacing = comparison_inputs(labels, preds)
        device = c.device.value
        kwargs = {
            "from_logits": bool(c.from_logits.value),
            "spacing": spacing,
            "device": None if device == "auto" else device,
            "threshold": None if c.from_logits.value else float(c.threshold.value),
            "hotspot_k": int(c.hotspot_k.value),
        }
        return labels, (lab, arrays, specs), kwargs

    # ------------------------------------------------------------------ running

    def compare(self) -> Comparison | None:
        """Compare now (synchronously) and show the panes; None after an error (reported)."""
        self._generation += 1
        try:
            labels, args, kwargs = self._request()
            comparison = compare_arrays(*args, **kwargs)
        except (ValueError, TypeError) as err:
            self._fail(err)
            return None
        self._show(labels, comparison)
        return comparison

    def start(self) -> None:
        """Compare in a thread worker; a newer start drops this one's result."""
        self._generation += 1
        generation = self._generation
        try:
            labels, args, kwargs = self._request()
        except (ValueError, TypeError) as err:
            self._fail(err)
            return
        if self._worker is not None:
            self._worker.quit()
        worker = thread_worker(compare_arrays, start_thread=False)(*args, **kwargs)
        worker.returned.connect(
            lambda comparison: self._on_returned(generation, labels, comparison)
        )
        worker.errored.connect(lambda err: self._on_errored(generation, err))
        self._worker = worker
        self.compare_status.value = "comparing…"
        worker.start()

    def stop(self) -> None:
        """Drop the running comparison's result (the widget is closing)."""
        self._generation += 1
        if self._worker is not None:
            self._worker.quit()
            self._worker = None

    def _on_returned(self, generation: int, labels, comparison: Comparison) -> None:
        if generation != self._generation or labels not in self._viewer.layers:
            return  # a newer request, or the ground truth was removed meanwhile
        self._worker = None
        self._show(labels, comparison)

    def _on_errored(self, generation: int, err: Exception) -> None:
        if generation == self._generation:
            self._worker = None
            self._fail(err)

    def _show(self, labels, comparison: Comparison) -> None:
        image = self._controls.image_layer.value
        self.layers = show_comparison(self._viewer, labels, comparison, keep=(image,))
        self.comparison = comparison
        self._spot = -1
        values = ", ".join(f"{p.title} = {p.value:.4g}" for p in comparison.panes)
        self.compare_status.value = values

    def _fail(self, err: Exception) -> None:
        self.compare_status.value = f"⚠ {err}"
        notifications.show_error(f"Loss Lens compare: {err}")

    # ------------------------------------------------------------- navigation

    def goto_hot_spot(self, i: int) -> None:
        """Centre every pane on hot-spot ``i`` (wraps around; 0 is the worst)."""
        if self.comparison is None or not self.comparison.hot_spots:
            self.compare_status.value = "no hot-spots: compare first"
            return
        n = len(self.comparison.hot_spots)
        self._spot = i % n
        labels = self._controls.labels_layer.value
        focus_hot_spot(self._viewer, labels, self.comparison, self._spot + 1)
        spot = self.comparison.hot_spots[self._spot]
        self.compare_status.value = f"hot-spot {self._spot + 1}/{n} at {spot.peak_position}"

    def leave_grid(self) -> None:
        """Leave grid mode and show the layers the comparison hid."""
        labels = self._controls.labels_layer.value
        hide_grid(self._viewer, None if labels is None else labels.name)
