"""Deterministic synthetic label images for tests and benchmarks (numpy + scipy only)."""

from __future__ import annotations

import numpy as np
from scipy import ndimage as ndi

__all__ = ["touching_cells"]


def touching_cells(
    shape: tuple[int, ...],
    n_cells: int,
    radius: float,
    *,
    spacing=None,
    seed: int = 0,
    id_stride: int = 1,
) -> np.ndarray:
    """Cells grown from random seeds: each pixel within ``radius`` of its nearest seed
    belongs to that seed's cell (a Voronoi region clipped to a ball), so neighbouring cells
    touch along straight borders wherever their balls overlap.

    Args:
        shape: 2D or 3D shape.
        n_cells: number of seeds (ids ``id_stride * (1..n_cells)``; collisions of random
            seeds can leave slightly fewer).
        radius: cell radius in ``spacing`` units.
        spacing: pixel size per axis (default 1).
        seed: random seed.
        id_stride: multiply ids by this (to test non-contiguous ids).

    Returns:
        int32 label image.
    """
    rng = np.random.default_rng(seed)
    ndim = len(shape)
    sp = np.ones(ndim) if spacing is None else np.asarray(spacing, float)
    coords = tuple(rng.integers(0, s, n_cells) for s in shape)
    seeds = np.zeros(shape, np.int32)
    seeds[coords] = np.arange(1, n_cells + 1, dtype=np.int32) * id_stride
    dist, idx = ndi.distance_transform_edt(seeds == 0, sampling=sp, return_indices=True)
    labels = seeds[tuple(idx)]
    labels[dist > radius] = 0
    return labels
