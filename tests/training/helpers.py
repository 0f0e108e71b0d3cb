"""Small deterministic inputs for the training tests."""

from __future__ import annotations

import numpy as np


def blobs(shape=(40, 56)):
    """An image and instance labels with three separate rectangles (they never merge)."""
    target = np.zeros(shape, np.int32)
    target[4:16, 5:20] = 1
    target[22:36, 26:46] = 2
    target[5:12, 40:52] = 3
    image = (target > 0).astype(np.float32) * 0.7 + 0.1
    return image, target


def prediction_at(target, step):
    """Probabilities that sharpen with the step (a model that learns), with a miss."""
    y = (target > 0).astype(np.float32)
    p = 0.5 + (y - 0.5) * min(0.95, 0.15 * (step + 1))
    p[target == 3] = 0.3  # object 3 stays wrong
    rng = np.random.default_rng(step)
    return np.clip(p + rng.uniform(-0.02, 0.02, p.shape), 0.0, 1.0).astype(np.float32)
