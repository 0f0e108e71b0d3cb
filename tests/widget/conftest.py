"""napari-side fixtures: the widget on the sample viewer (see tests/conftest.py), the
notifications it shows, `drive` to run the pipeline's steps to their end; and gc.freeze
after each test here (the collector skips the long-lived objects)."""

from __future__ import annotations

import gc

import pytest

# gc.freeze between tests: see pytest_runtest_teardown
_FROZEN_GROWTH = 1_000_000  # objects frozen since the last full collection, at most
_frozen_since_full_collection = [0]


@pytest.hookimpl(hookwrapper=True, trylast=True)
def pytest_runtest_teardown(item, nextitem):
    """After each widget test: collect its garbage, then freeze what is still alive.

    The session holds half a million objects and more (torch, napari, Qt, the test modules),
    alive until the end. Every full collection walked them all, and napari runs one each
    time it removes a layer or closes a viewer (``gc.collect()`` in its canvas): each
    widget test's teardown took 3 to 6 s in a full run. Frozen objects are left out of the
    walk. Some of them die later (napari keeps the last viewer's actions until the next
    viewer is made): once ``_FROZEN_GROWTH`` objects were frozen, one full collection
    frees those, so memory stays bounded. Nothing a test asserts changes: its own objects
    are not frozen while it runs. (``gc.get_freeze_count`` walks all frozen objects: 70 ms
    a call, so the survivors are counted here instead, in the oldest generation.)

    Here only, where napari's collections cost: suite-wide, the changed memory reuse made
    tests/core/test_properties.py find NaN in the weight map at a huge σ (an int64
    overflow in the kernel, since fixed: test_large_finite_sigma_is_the_formula); the
    other tests keep the interpreter's own collection timing.
    """
    yield
    gc.collect()
    _frozen_since_full_collection[0] += len(gc.get_objects(generation=2))
    if _frozen_since_full_collection[0] > _FROZEN_GROWTH:
        gc.unfreeze()
        gc.collect()
        _frozen_since_full_collection[0] = 0
    gc.freeze()


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
