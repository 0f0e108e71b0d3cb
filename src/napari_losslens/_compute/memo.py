"""The step memo: the last output of each pipeline step, reused while its inputs stand still.

Moving w0 or σ changes the weight map and what depends on it, nothing else: the loss map of
a loss that takes no weight map, its per-object statistics and hot-spots, and the error map
stay what they were. Each memoised step of :data:`~._compute.pipeline.PIPELINE` names
everything it depends on in a key (content digests of the labels, prediction and image, the
parameters it reads); a step whose key matches the last run's takes that run's output,
the very same objects, so that the layer adapter can also skip redrawing them.
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from typing import Any

__all__ = ["StepMemo"]


class StepMemo:
    """The last output of each step, by step name, with the key it was computed for.

    Thread-safe. Only one entry per step is kept (the last one), so that the memo holds at
    most one result's worth of arrays. Keys hold content digests, never array identities,
    so a stale computation that stores its output late cannot be served for other inputs.
    """

    def __init__(self) -> None:
        self._entries: dict[str, tuple[Hashable, Any]] = {}
        self._lock = threading.Lock()
        self.hits = 0
        self.misses = 0

    def get(self, step: str, key: Hashable) -> Any | None:
        """The output stored for ``step`` if it was computed for ``key``, else None."""
        with self._lock:
            entry = self._entries.get(step)
            if entry is not None and entry[0] == key:
                self.hits += 1
                return entry[1]
            self.misses += 1
            return None

    def put(self, step: str, key: Hashable, output: Any) -> None:
        """Store ``output`` of ``step`` for ``key`` (replacing the step's last one)."""
        with self._lock:
            self._entries[step] = (key, output)

    def clear(self, *_event: Any) -> None:
        """Forget everything; takes and ignores an event."""
        with self._lock:
            self._entries.clear()
