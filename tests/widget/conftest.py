"""napari-side fixtures: the widget on the sample viewer (see tests/conftest.py), the
notifications it shows, and `drive` to run the pipeline's steps to their end."""

from __future__ import annotations

import pytest


@pytest.fixture
def widget(sample_viewer):
    """The Loss Lens widget on the sample viewer (not docked: faster, same behaviour)."""
    from napari_losslens._widget import LossLensWidget

    w = LossLensWidget(sample_viewer)
    return w


@pytest.fixture
def messages(monkeypatch):
    """Collect the napari notifications the plugin shows (errors and warnings)."""
    from napari.utils import notifications

    seen: list[tuple[str, str]] = []
    monkeypatch.setattr(notifications, "show_error", lambda m: seen.append(("error", m)))
    monkeypatch.setattr(notifications, "show_warning", lambda m: seen.append(("warning", m)))
    return seen


def drive_steps(steps):
    """Run a :func:`~napari_losslens._compute.run_steps` generator to its end, on this
    thread: the progress it yielded, in order, and the result it returned."""
    seen = []
    while True:
        try:
            seen.append(next(steps))
        except StopIteration as stop:
            return seen, stop.value


@pytest.fixture
def drive():
    """:func:`drive_steps`, for the tests that run the pipeline's steps themselves."""
    return drive_steps
