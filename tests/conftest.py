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


@pytest.fixture(scope="session")
def kernels_warmed():
    """The widget's kernel warm-up, run to its end before the first test that makes a viewer.

    The widget warms the numba kernels in a background thread (once per process). With a
    cold numba cache (a fresh checkout) that compiles for seconds, and numba's compiler
    enters and leaves ``warnings.catch_warnings`` hundreds of times: that context manager
    saves and restores the process-wide filter list, so in another thread it can undo the
    main thread's own ``catch_warnings`` (napari's, around a label colormap) and a warning
    napari meant to silence fails the next test (warnings are errors here). Waiting here
    keeps the compilation out of the tests; the warm-up itself is what the widget runs.
    """
    # imported here: Qt and napari load only for the tests that make a viewer
    from napari_losslens._widget.widget import warm_up_in_background

    thread = warm_up_in_background()
    if thread is not None:
        thread.join(300)


@pytest.fixture
def sample_viewer(make_napari_viewer, kernels_warmed):
    """A viewer holding the touching-nuclei sample (image, prediction, ground truth)."""
    from napari_losslens._sample_data import touching_nuclei

    viewer = make_napari_viewer()
    for data, kwargs, kind in touching_nuclei():
        getattr(viewer, f"add_{kind}")(data, **kwargs)
    return viewer
