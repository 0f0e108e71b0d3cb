"""Slow, obvious implementations of the definitions, for the tests to compare against."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi


def ref_distances(labels, spacing=None):
    """d1, d2 by the definition: one full-frame EDT per cell, then the two smallest."""
    labels = np.asarray(labels)
    if spacing is not None:
        spacing = tuple(float(s) for s in np.broadcast_to(spacing, (labels.ndim,)))
    sp = spacing
    ids = [i for i in np.unique(labels) if i > 0]
    stack = [ndi.distance_transform_edt(labels != i, sampling=sp) for i in ids]
    stack += [np.full(labels.shape, np.inf)] * 2
    stack = np.sort(np.stack(stack), axis=0)
    return stack[0], stack[1]


def ref_weight_map(
    labels, w0=10.0, sigma=5.0, class_weights=None, spacing=None, background_only=True
):
    """The U-Net weight map by its definition, in float64."""
    labels = np.asarray(labels)
    d1, d2 = ref_distances(labels, spacing)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2))
    border[~np.isfinite(d2)] = 0.0
    fg = labels > 0
    if background_only:
        border[fg] = 0.0
    if class_weights is None:
        wc = np.ones(labels.shape)
    elif class_weights == "balanced":
        n, n_fg = fg.size, fg.sum()
        n_bg = n - n_fg
        wc = np.where(fg, n / (2 * n_fg) if n_fg else 0.0, n / (2 * n_bg) if n_bg else 0.0)
    else:
        wc = np.where(fg, class_weights[1], class_weights[0])
    return wc + border


def ref_separate_touching(labels):
    """Pixel by pixel: drop a cell pixel that has a neighbour with a smaller positive id."""
    labels = np.asarray(labels)
    out = labels.copy()
    for idx in np.ndindex(labels.shape):
        v = labels[idx]
        if v <= 0:
            continue
        lo = tuple(max(i - 1, 0) for i in idx)
        hi = tuple(i + 2 for i in idx)
        nb = labels[tuple(slice(a, b) for a, b in zip(lo, hi, strict=True))]
        if np.any((nb > 0) & (nb < v)):
            out[idx] = 0
    return out
