"""The two histograms under the controls: per-pixel loss and per-object loss.

They are painted by Qt (:class:`HistogramPlot`, a ``QWidget`` with a ``paintEvent``), not by
matplotlib: a redraw of two small matplotlib axes costs 50-150 ms of the main thread on a
2-core machine (most of it tick-label text layout), even when only the bars' data change,
and a slider move that comes during it waits for it; a Qt paint of 80 bars and a few labels
takes about a millisecond. An update bins the values (``np.histogram``, a few ms for a
512x512 map) and schedules one paint. A result that has neither a loss map nor per-object
statistics (the weight map alone) hides them and paints nothing.

When to update (once a burst of live results is over) is the business of
:class:`~._presentation.Presenter`; this module only bins and paints.
"""

from __future__ import annotations

import math

import numpy as np
from qtpy.QtCore import QPointF, QRectF, Qt
from qtpy.QtGui import QColor, QFont, QFontMetrics, QPainter, QPen
from qtpy.QtWidgets import QSizePolicy, QVBoxLayout, QWidget

from .._compute import GRADIENT_COLUMNS, ComputeResult

__all__ = ["HistogramPlot", "Histograms", "nice_ticks", "object_column"]


def object_column(result: ComputeResult) -> tuple[str | None, str]:
    """The per-object column to plot, and its honest title (``(None, "")`` if none)."""
    stats = result.stats
    if stats is None:
        return None, ""
    if GRADIENT_COLUMNS["mean_loss"] in stats:
        return GRADIENT_COLUMNS["mean_loss"], "mean |∂L/∂p| per object"
    if "mean_loss" in stats:
        return "mean_loss", "mean loss per object"
    return None, ""


def nice_ticks(lo: float, hi: float, most: int = 4) -> list[float]:
    """Round values in [lo, hi], 1, 2, 2.5 or 5 times a power of ten apart, at most ``most``
    steps covering the range (so at most ``most + 1`` values).

    Example:
        >>> nice_ticks(0.0, 0.93)
        [0.0, 0.25, 0.5, 0.75]
        >>> nice_ticks(-3.0, 23.0, most=3)
        [0.0, 10.0, 20.0]
    """
    if not (math.isfinite(lo) and math.isfinite(hi)) or hi <= lo:
        return [lo] if math.isfinite(lo) else []
    raw = (hi - lo) / max(most, 1)
    power = 10.0 ** math.floor(math.log10(raw))
    step = next(m * power for m in (1.0, 2.0, 2.5, 5.0, 10.0) if m * power >= raw)
    first = math.ceil(lo / step - 1e-9) * step
    ticks, v = [], first
    while v <= hi + step * 1e-9:
        ticks.append(0.0 if abs(v) < step * 1e-9 else v)
        v = first + len(ticks) * step
    return ticks


class HistogramPlot(QWidget):
    """One histogram: bars, a title, a few tick labels; painted by Qt.

    Its data are public (what the bars show): ``counts`` and ``edges`` (as from
    ``np.histogram``), ``log`` (counts on a log axis), ``title``, ``xlabel`` and
    ``zero_line`` (a grey line at 0 on the value axis).

    Args:
        color: the bars' colour (a Qt colour name or ``#rrggbb``).
    """

    def __init__(self, color: str, parent: QWidget | None = None):
        super().__init__(parent)
        self.color = QColor(color)
        self.counts = np.zeros(0, np.int64)
        self.edges = np.array([0.0, 1.0])
        self.log = False
        self.title = ""
        self.xlabel = ""
        self.zero_line = False
        self.paints = 0  # paintEvents run (for tests and profiling)
        self._font = QFont(self.font())
        self._font.setPointSizeF(7.0)
        self._title_font = QFont(self.font())
        self._title_font.setPointSizeF(8.0)
        self.setSizePolicy(QSizePolicy.Policy.Expanding, QSizePolicy.Policy.Expanding)

    def set_data(
        self,
        counts: np.ndarray,
        edges: np.ndarray,
        *,
        log: bool = False,
        title: str = "",
        xlabel: str = "",
        zero_line: bool = False,
    ) -> None:
        """Show ``counts`` over the bins ``edges`` (one paint, when the event loop runs)."""
        self.counts = np.asarray(counts)
        self.edges = np.asarray(edges, float)
        self.log, self.title, self.xlabel, self.zero_line = log, title, xlabel, zero_line
        self.update()

    # ------------------------------------------------------------------ painting

    def _height_of(self, count: float, top: float) -> float:
        """The bar height of ``count`` as a fraction of the plot's height."""
        if count <= 0:
            return 0.0
        if not self.log:
            return count / top
        lo, hi = math.log10(0.5), math.log10(top)
        return (math.log10(count) - lo) / (hi - lo)

    def _count_ticks(self, top: float) -> list[float]:
        if self.log:
            return [10.0**k for k in range(int(math.log10(top)) + 1) if 10.0**k <= top]
        return nice_ticks(0.0, top, 3)

    def paintEvent(self, event):
        self.paints += 1
        painter = QPainter(self)
        try:
            self._paint(painter)
        finally:
            painter.end()

    def _paint(self, p: QPainter) -> None:
        w, h = self.width(), self.height()
        fm = QFontMetrics(self._font)
        tfm = QFontMetrics(self._title_font)
        counts = self.counts
        peak = float(counts.max()) if counts.size else 0.0
        top = max(peak * (2.0 if self.log else 1.05), 1.0)
        y_ticks = self._count_ticks(top)
        y_labels = [f"{t:.0f}" for t in y_ticks]
        left = 4 + max((fm.horizontalAdvance(s) for s in y_labels), default=0) + 4
        title_h = tfm.height() + 2 if self.title else 2
        bottom_h = fm.height() + 2 + (fm.height() if self.xlabel else 0)
        plot = QRectF(left, title_h, max(w - left - 6, 1), max(h - title_h - bottom_h, 1))
        if self.title:
            p.setFont(self._title_font)
            p.setPen(self.palette().windowText().color())
            p.drawText(
                QRectF(0, 0, w, tfm.height()), int(Qt.AlignmentFlag.AlignHCenter), self.title
            )
        lo, hi = float(self.edges[0]), float(self.edges[-1])
        span = hi - lo if hi > lo else 1.0

        def x_of(v: float) -> float:
            return plot.left() + (v - lo) / span * plot.width()

        # bars
        p.setPen(Qt.PenStyle.NoPen)
        p.setBrush(self.color)
        for i, c in enumerate(counts):
            frac = min(self._height_of(float(c), top), 1.0)
            if frac <= 0:
                continue
            x0, x1 = x_of(self.edges[i]), x_of(self.edges[i + 1])
            bar_h = frac * plot.height()
            p.drawRect(QRectF(x0, plot.bottom() - bar_h, max(x1 - x0, 0.5), bar_h))
        text = self.palette().windowText().color()
        if self.zero_line and lo <= 0.0 <= hi:
            p.setPen(QPen(QColor(128, 128, 128), 1.0))
            p.drawLine(QPointF(x_of(0.0), plot.top()), QPointF(x_of(0.0), plot.bottom()))
        # axes and labels
        p.setPen(QPen(text, 1.0))
        p.drawLine(plot.bottomLeft(), plot.bottomRight())
        p.drawLine(plot.bottomLeft(), plot.topLeft())
        p.setFont(self._font)
        for t, s in zip(y_ticks, y_labels, strict=True):
            y = plot.bottom() - min(self._height_of(t, top), 1.0) * plot.height()
            if t == 0.0:
                y = plot.bottom()
            p.drawLine(QPointF(plot.left() - 2, y), QPointF(plot.left(), y))
            box = QRectF(0, y - fm.height() / 2, plot.left() - 4, fm.height())
            p.drawText(box, int(Qt.AlignmentFlag.AlignRight | Qt.AlignmentFlag.AlignVCenter), s)
        label_y = plot.bottom() + 2
        for t in nice_ticks(lo, hi, 4):
            x = x_of(t)
            p.drawLine(QPointF(x, plot.bottom()), QPointF(x, plot.bottom() + 2))
            s = f"{t:.3g}"
            half = fm.horizontalAdvance(s) / 2 + 1
            x = min(max(x, half), w - half)
            p.drawText(
                QRectF(x - half, label_y, 2 * half, fm.height()),
                int(Qt.AlignmentFlag.AlignHCenter),
                s,
            )
        if self.xlabel:
            p.drawText(
                QRectF(plot.left(), label_y + fm.height(), plot.width(), fm.height()),
                int(Qt.AlignmentFlag.AlignHCenter),
                self.xlabel,
            )


class Histograms(QWidget):
    """The per-pixel and per-object histograms, one above the other, at a fixed height.

    Args:
        slot: the widget whose layout receives them (hidden until the first result with
            something to show: empty axes say nothing).
    """

    #: Bins of the per-pixel and per-object histograms.
    MAP_BINS = 80
    OBJECT_BINS = 30

    def __init__(self, slot: QWidget):
        super().__init__()
        self.map_plot = HistogramPlot("#ff7f0e")  # matplotlib's tab:orange
        self.object_plot = HistogramPlot("#1f77b4")  # tab:blue
        layout = QVBoxLayout(self)
        layout.setContentsMargins(0, 0, 0, 0)
        layout.setSpacing(6)
        layout.addWidget(self.map_plot)
        layout.addWidget(self.object_plot)
        # a fixed height, so that a status line that wraps differently does not resize it
        self.setFixedHeight(220)
        self.setMinimumWidth(120)
        self.setVisible(False)
        outer = slot.layout()
        if outer is None:
            outer = QVBoxLayout(slot)
        outer.setContentsMargins(0, 0, 0, 0)
        outer.addWidget(self)
        #: how many times :meth:`show` put new data on screen (for tests and profiling)
        self.updates = 0

    def show_result(self, result: ComputeResult) -> None:
        """Put the histograms of ``result`` on screen (one paint, when the event loop runs).

        The per-pixel one bins every finite value of the loss map (a log count axis when
        the map is a non-negative loss, a line at 0 otherwise); the per-object one bins the
        finite per-object means, in log10 when they are heavy-tailed (all positive and
        spanning more than a factor of 10).
        """
        lm = result.arrays.get("loss_map")
        self.map_plot.setVisible(lm is not None)
        if lm is not None:
            values = lm[np.isfinite(lm)].ravel()
            positive = not result.signed and values.size > 0 and float(values.min()) >= 0
            counts, edges = np.histogram(values, bins=self.MAP_BINS)
            self.map_plot.set_data(
                counts,
                edges,
                log=bool(positive),
                title="gradient ∂L/∂p per pixel" if result.signed else "loss per pixel",
                zero_line=not positive,
            )
        column, title = object_column(result)
        self.object_plot.setVisible(column is not None)
        if column is not None:
            values = np.asarray(result.stats[column], float)
            values = values[np.isfinite(values)]
            xlabel = ""
            if values.size and values.min() > 0 and values.max() > 10 * values.min():
                # heavy-tailed (a few bad objects): bins even in log10
                values, xlabel = np.log10(values), "log10"
            counts, edges = np.histogram(values, bins=self.OBJECT_BINS)
            self.object_plot.set_data(counts, edges, title=title, xlabel=xlabel)
        shown = lm is not None or column is not None
        self.setVisible(shown)
        if shown:
            self.updates += 1
