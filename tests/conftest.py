"""Shared test configuration: the ``cuda`` marker, the ``device`` fixture and a viewer
holding the sample."""

from __future__ import annotations

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords and not HAS_CUDA:
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("cuda", marks=pytest.mark.cuda)])
def device(request):
    """Each test that takes ``device`` runs on the CPU and (where present) on CUDA."""
    return request.param


@pytest.fixture
def sample_viewer(make_napari_viewer):
    """A viewer holding the touching-nuclei sample (image, prediction, ground truth)."""
    from napari_losslens._sample_data import touching_nuclei

    viewer = make_napari_viewer()
    for data, kwargs, kind in touching_nuclei():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    return viewer
