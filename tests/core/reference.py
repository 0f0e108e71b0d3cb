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


def ref_distance_to(shape, targets, spacing):
    """Distance from every pixel to the nearest True pixel of ``targets`` (brute force)."""
    idx = np.indices(shape).reshape(len(shape), -1).T * np.asarray(spacing, dtype=float)
    tgt = idx[targets.ravel()]
    d = np.sqrt(((idx[:, None, :] - tgt[None, :, :]) ** 2).sum(-1)).min(1)
    return d.reshape(shape)


def ref_two_sided(fg, spacing=(1.0, 1.0)):
    """Distance from each pixel to the nearest pixel of the other class; 0 with one class."""
    if fg.all() or not fg.any():
        return np.zeros(fg.shape)
    to_bg = ref_distance_to(fg.shape, ~fg, spacing)
    to_fg = ref_distance_to(fg.shape, fg, spacing)
    return np.where(fg, to_bg, to_fg)


def ref_signed(fg, spacing=(1.0, 1.0)):
    """The boundary loss's φ: distance to fg outside, −(distance to bg − min spacing) inside."""
    if fg.all() or not fg.any():
        return np.zeros(fg.shape)
    to_bg = ref_distance_to(fg.shape, ~fg, spacing)
    to_fg = ref_distance_to(fg.shape, fg, spacing)
    return np.where(fg, -(to_bg - min(spacing)), to_fg)


def ref_penalty(fg, spacing=(1.0, 1.0)):
    """φ = 1 − d/d_max on each side of the boundary (distance-penalised CE)."""
    phi = np.zeros(fg.shape)
    if fg.all() or not fg.any():
        return phi
    d = ref_two_sided(fg, spacing)
    for side in (fg, ~fg):
        phi[side] = 1.0 - d[side] / d[side].max()
    return phi


def ref_contour(m):
    """Pixels of ``m`` with a face neighbour outside it, inside the image."""
    out = np.zeros_like(m)
    for idx in zip(*np.nonzero(m), strict=True):
        for axis in range(m.ndim):
            for step in (-1, 1):
                j = list(idx)
                j[axis] += step
                if 0 <= j[axis] < m.shape[axis] and not m[tuple(j)]:
                    out[idx] = True
    return out


def ref_mean_contour_distance(pred, target, spacing):
    """Mean distance from the contour of ``pred`` to that of ``target`` (brute force)."""
    cp, ct = ref_contour(pred), ref_contour(target)
    if not cp.any() or not ct.any():
        return 0.0
    a = np.argwhere(cp) * np.asarray(spacing)
    b = np.argwhere(ct) * np.asarray(spacing)
    return np.sqrt(((a[:, None] - b[None]) ** 2).sum(-1)).min(1).mean()
