"""The distance cache: keyed per labels layer, checked against the labels' content, and never
filled from labels that changed while the distances were computed."""

from __future__ import annotations

import threading

import numpy as np

from napari_losslens import _layers, core
from napari_losslens._compute import DistanceCache, labels_digest


def _labels():
    lab = np.zeros((40, 40), np.int32)
    lab[5:15, 5:15] = 1
    lab[15:25, 5:15] = 2
    return lab


def _get(cache, lab, **kw):
    kw = {"key": "k", "spacing": (1.0, 1.0), "separate_touching": False, "max_distance": 10.0}
    return cache.get(lab, **kw)


def test_an_edit_without_an_event_is_not_served_stale_distances():
    cache, lab = DistanceCache(), _labels()
    _get(cache, lab)
    _get(cache, lab)
    assert (cache.hits, cache.misses) == (1, 1)
    lab[30:35, 30:35] = 3  # in place, nobody told the cache
    entry = _get(cache, lab)
    assert cache.misses == 2
    d1, d2 = core.cell_distances(lab, max_distance=15.0)
    np.testing.assert_allclose(np.minimum(entry.d1, 15), np.minimum(d1, 15), atol=1e-4)
    assert len(cache) == 1  # replaced, not piled up


def test_invalidate_during_a_computation_keeps_its_result_out(monkeypatch):
    cache, lab = DistanceCache(), _labels()
    entered, release = threading.Event(), threading.Event()
    real = core.cell_distances

    def held(*args, **kwargs):
        entered.set()
        release.wait(5)
        return real(*args, **kwargs)

    monkeypatch.setattr(core, "cell_distances", held)
    thread = threading.Thread(target=_get, args=(cache, lab.copy()))
    thread.start()
    assert entered.wait(5)
    cache.invalidate()  # the labels were edited while the distances ran
    release.set()
    thread.join(5)
    assert len(cache) == 0
    monkeypatch.setattr(core, "cell_distances", real)
    _get(cache, lab)
    assert len(cache) == 1


def test_digest_sees_content_shape_and_dtype():
    lab = _labels()
    assert labels_digest(lab) == labels_digest(lab.copy())
    assert labels_digest(lab) != labels_digest(lab.astype(np.int64))
    assert labels_digest(lab) != labels_digest(lab.reshape(20, 80))
    edited = lab.copy()
    edited[0, 0] = 7
    assert labels_digest(lab) != labels_digest(edited)
    assert labels_digest(np.zeros((0, 4), bool)) == labels_digest(np.zeros((0, 4), bool))


def test_one_cache_per_layer_emptied_by_its_edits(make_napari_viewer):
    viewer = make_napari_viewer()
    a = viewer.add_labels(_labels(), name="a")
    b = viewer.add_labels(_labels(), name="b")
    cache = _layers.distance_cache(a)
    assert _layers.distance_cache(a) is cache
    assert _layers.distance_cache(b) is not cache
    _get(cache, a.data)
    _get(_layers.distance_cache(b), b.data)
    a.paint((30, 30), 5, refresh=True)
    assert len(cache) == 0
    assert len(_layers.distance_cache(b)) == 1  # another layer's edit leaves it alone
    _get(cache, a.data)
    a.data = _labels()
    assert len(cache) == 0
