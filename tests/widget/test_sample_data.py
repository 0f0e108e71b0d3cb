"""The samples are deterministic and realistic enough to show the typical errors."""

from __future__ import annotations

import numpy as np
import pytest

from napari_losslens import _sample_data
from napari_losslens.core import object_stats


def test_touching_nuclei_is_deterministic_and_plausible():
    a = _sample_data.touching_nuclei()
    b = _sample_data.touching_nuclei()
    for (da, ka, ta), (db, kb, tb) in zip(a, b, strict=True):
        np.testing.assert_array_equal(da, db)
        assert ka["name"] == kb["name"] and ta == tb
    (image, _, _), (pred, _, _), (labels, _, kind) = a
    assert kind == "labels" and labels.shape == image.shape == pred.shape == (512, 512)
    assert 0 < pred.min() and pred.max() < 1
    left, right = labels[:, :-1], labels[:, 1:]
    touching = int(((left != right) & (left > 0) & (right > 0)).sum())
    assert touching > 100  # many contacts between different nuclei
    stats = object_stats(labels, prediction=pred)
    assert (stats["dice"] == 0).sum() >= 3  # missed cells
    assert ((stats["dice"] > 0) & (stats["dice"] < 0.7)).sum() >= 10  # merged neighbours
    false_blobs = (pred > 0.5) & (labels == 0)
    assert false_blobs.sum() > 100


def test_dsb_without_stardist_says_which_extra(monkeypatch):
    from importlib import metadata, util

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    monkeypatch.setattr(metadata, "distribution", missing)
    monkeypatch.setattr(util, "find_spec", lambda name: None)
    with pytest.raises(ModuleNotFoundError, match=r"napari-losslens\[dsb\]"):
        _sample_data.dsb_nuclei()
