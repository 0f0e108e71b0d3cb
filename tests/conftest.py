"""Shared test configuration: the ``cuda`` marker, the ``device`` fixture, a viewer holding
the sample, and gc.freeze between tests (the collector skips the long-lived objects)."""

from __future__ import annotations

import gc

import pytest
import torch

HAS_CUDA = torch.cuda.is_available()

# gc.freeze between tests: see pytest_runtest_teardown
_FROZEN_GROWTH = 1_000_000  # objects frozen since the last full collection, at most
_frozen_since_full_collection = [0]


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After each test: collect its garbage, then freeze what is still alive.

    The session holds half a million objects and more (torch, napari, Qt, the test modules),
    alive until the end. Every full collection walked them all, and napari runs one each
    time it removes a layer or closes a viewer (``gc.collect()`` in its canvas): each
    widget test's teardown took 3 to 6 s in a full run. Frozen objects are left out of the
    walk. Some of them die later (napari keeps the last viewer's actions until the next
    viewer is made): once ``_FROZEN_GROWTH`` objects were frozen, one full collection
    frees those, so memory stays bounded. Nothing a test asserts changes: its own objects
    are not frozen while it runs. (``gc.get_freeze_count`` walks all frozen objects: 70 ms
    a call, so the survivors are counted here instead, in the oldest generation.)
    """
    yield
    gc.collect()
    _frozen_since_full_collection[0] += len(gc.get_objects(generation=2))
    if _frozen_since_full_collection[0] > _FROZEN_GROWTH:
        gc.unfreeze()
        gc.collect()
        _frozen_since_full_collection[0] = 0
    gc.freeze()


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
