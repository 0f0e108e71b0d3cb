"""Shared fixtures for the napari-side tests: a viewer with a sample and the docked widget."""

from __future__ import annotations

import pytest


@pytest.fixture
def sample_viewer(make_napari_viewer):
    """A viewer holding the touching-nuclei sample (image, prediction, ground truth)."""
    from napari_losslens._sample_data import touching_nuclei

    viewer = make_napari_viewer()
    for data, kwargs, kind in touching_nuclei():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    return viewer


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
