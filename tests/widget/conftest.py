"""napari-side fixtures: the widget on the sample viewer (see tests/conftest.py)."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True)
def _kernels_warmed(kernels_warmed):
    """No test here runs while the kernels compile in the background (see the fixture)."""


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
