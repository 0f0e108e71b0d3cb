"""The "Loss Lens" dock widget, in three rooms and the wiring between them.

- :mod:`._controls`: the controls, their layout, and reading them into a request;
- :mod:`._orchestrator`: the background workers (start, cancel, newest wins, progress);
- :mod:`._presentation`: layers, status line, progress bar, histograms, hot-spot tour;
- :mod:`.widget`: :class:`LossLensWidget`, which connects them to each other and to the
  viewer (the npe2 manifest points here: ``napari_losslens._widget:LossLensWidget``).
"""

from .widget import LossLensWidget

__all__ = ["LossLensWidget"]
