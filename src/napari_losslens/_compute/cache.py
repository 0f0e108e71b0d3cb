"""The distance cache: d1, d2 per labels, reused while w0, σ and the class weights move."""

from __future__ import annotations

import hashlib
import threading
from collections import OrderedDict
from collections.abc import Hashable
from dataclasses import dataclass
from typing import Any

import numpy as np

from .. import core

__all__ = ["DistanceCache", "labels_digest"]


def labels_digest(labels: np.ndarray) -> tuple:
    """A fingerprint of a labels array's content (shape, dtype and a hash of the bytes).

    Cheap next to the distances it guards (about 0.5 ms per MB), so that a cache entry is
    only ever reused for the very labels it was computed from, whatever events were missed.
    """
    arr = np.ascontiguousarray(labels)
    h = hashlib.sha1(arr.view(np.uint8).reshape(-1) if arr.size else b"", usedforsecurity=False)
    return (arr.shape, arr.dtype.str, h.hexdigest())


@dataclass
class _Entry:
    labels: np.ndarray  # after separate_touching_cells when asked
    d1: np.ndarray
    d2: np.ndarray
    max_distance: float
    digest: tuple = ()  # labels_digest of the labels given (before separation)

    @property
    def nbytes(self) -> int:
        return self.labels.nbytes + self.d1.nbytes + self.d2.nbytes


class DistanceCache:
    """d1 and d2 per labels (key, frame), reused while parameters move.

    An entry holds the (separated, if asked) labels, d1, d2, the ``max_distance`` they were
    computed with and a digest of the labels' content (:func:`labels_digest`); an entry is
    reused only for labels of the same content, so a missed edit can never serve stale
    distances. A request that needs a larger cutoff radius (a larger σ or w0, see
    :func:`~napari_losslens.core.cutoff_radius`) recomputes with some headroom, one that needs
    less reuses it. :meth:`invalidate` (connected to the labels layer's data events) forgets
    everything, and a computation that was running while it was called does not store its
    result (it may have started from the labels before the edit). Thread-safe; least
    recently used entries go beyond ``max_bytes``.
    """

    #: Extra radius computed on a miss, so that a slowly growing σ does not miss every time.
    HEADROOM = 1.5

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by invalidate()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self, *_event: Any) -> None:
        """Forget everything (the labels changed); takes and ignores an event."""
        with self._lock:
            self._entries.clear()
            self._epoch += 1

    def get(
        self,
        labels: np.ndarray,
        *,
        key: Hashable,
        spacing: tuple[float, ...],
        separate_touching: bool,
        max_distance: float,
        device: str | None = None,
    ) -> _Entry:
        """The entry for ``labels``, computed (or recomputed further out) when needed."""
        full_key = (key, tuple(float(s) for s in spacing), bool(separate_touching))
        digest = labels_digest(labels) if key is not None else ()
        with self._lock:
            epoch = self._epoch
            entry = self._entries.get(full_key)
            if entry is not None and entry.digest == digest and entry.max_distance >= max_distance:
                self._entries.move_to_end(full_key)
                self.hits += 1
                return entry
        lab = core.separate_touching_cells(labels) if separate_touching else labels
        md = max_distance * self.HEADROOM
        d1, d2 = core.cell_distances(lab, spacing=spacing, max_distance=md, device=device)
        entry = _Entry(lab, d1, d2, md, digest)
        with self._lock:
            self.misses += 1
            if key is not None and epoch == self._epoch:
                self._entries[full_key] = entry
                self._entries.move_to_end(full_key)
                total = sum(e.nbytes for e in self._entries.values())
                while total > self.max_bytes and len(self._entries) > 1:
                    _, old = self._entries.popitem(last=False)
                    total -= old.nbytes
        return entry
