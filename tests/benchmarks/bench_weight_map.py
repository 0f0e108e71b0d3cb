"""Benchmark: U-Net weight map against the per-cell full-frame definition.

Prints a table of ratios measured in one run (absolute times drift on shared machines; the
ratios are what to compare). Run from the repository root:

    python tests/benchmarks/bench_weight_map.py            # CPU, default sizes
    python tests/benchmarks/bench_weight_map.py --device cuda
    python tests/benchmarks/bench_weight_map.py --quick    # small sizes, a smoke run

The reference is the definition itself: one full-frame ``scipy.ndimage.distance_transform_edt``
per cell, then the two smallest distances per pixel, then the formula. For the 3D case the
reference's per-cell transform is timed on a sample of cells and scaled to all cells (each
per-cell transform costs the same: it is full-frame), unless ``--full-reference``.
"""

from __future__ import annotations

import argparse
import math
import sys
import time

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_losslens._testing import touching_cells
from napari_losslens.core import (
    cell_distances,
    cutoff_radius,
    unet_weight_map,
    weight_map_from_distances,
)


def reference_weight_map(labels, w0, sigma, spacing, max_cells=None):
    """The definition, per cell; returns (weight map or None, seconds for all cells)."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    sample = ids if max_cells is None else ids[:max_cells]
    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    t0 = time.perf_counter()
    for i in sample:
        d = ndi.distance_transform_edt(labels != i, sampling=spacing)
        closer = d < d1
        d2 = np.where(closer, d1, np.minimum(d2, d))
        d1 = np.where(closer, d, d1)
    seconds = time.perf_counter() - t0
    if len(sample) < len(ids):
        return None, seconds * len(ids) / len(sample)
    w = 1.0 + np.where(labels == 0, w0 * np.exp(-((d1 + d2) ** 2) / (2 * sigma**2)), 0.0)
    return w, seconds


def best_of(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times), out


def peak_rss_mb():
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def run_case(name, labels, spacing, device, args, max_ref_cells=None):
    w0, sigma = 10.0, 5.0
    n_cells = len(np.unique(labels)) - 1
    # warm up (numba compilation is cached on disk after the first run)
    unet_weight_map(labels[tuple(slice(0, 32) for _ in labels.shape)], device=device)
    t_fast, w_fast = best_of(
        lambda: unet_weight_map(labels, w0=w0, sigma=sigma, spacing=spacing, device=device),
        args.repeat,
    )
    w_ref, t_ref = reference_weight_map(labels, w0, sigma, spacing, max_ref_cells)
    err = float(np.abs(w_fast - w_ref).max()) if w_ref is not None else math.nan

    # cached distances: only the cheap part re-evaluated (what the widget does on a slider)
    radius = cutoff_radius(w0, 2 * sigma)  # the cache is computed for the largest sigma
    t_dist, (d1, d2) = best_of(
        lambda: cell_distances(labels, spacing=spacing, max_distance=radius, device=device), 1
    )
    t_cheap, _ = best_of(
        lambda: weight_map_from_distances(labels, d1, d2, w0=7.0, sigma=4.0), args.repeat * 3
    )
    return {
        "case": name,
        "shape": "x".join(map(str, labels.shape)),
        "cells": n_cells,
        "ref_s": t_ref,
        "ref_note": "" if w_ref is not None else f" (scaled from {max_ref_cells} cells)",
        "fast_s": t_fast,
        "speedup": t_ref / t_fast,
        "cheap_s": t_cheap,
        "cheap_speedup": t_fast / t_cheap,
        "max_abs_err": err,
    }


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--full-reference", action="store_true", help="no scaled 3D reference")
    args = ap.parse_args(argv)

    if args.quick:
        cases = [
            ("2D", touching_cells((256, 256), 40, 22, seed=1), None, None),
            (
                "3D",
                touching_cells((16, 64, 64), 20, 12, spacing=(2, 1, 1), seed=2),
                (2, 1, 1),
                None,
            ),
        ]
    else:
        cases = [
            ("2D", touching_cells((1024, 1024), 620, 24, seed=1), None, None),
            (
                "3D",
                touching_cells((64, 256, 256), 320, 16, spacing=(2, 1, 1), seed=2),
                (2, 1, 1),
                None if args.full_reference else 40,
            ),
        ]
    rows = [run_case(n, lab, sp, args.device, args, mr) for n, lab, sp, mr in cases]

    print(
        f"\nU-Net weight map (w0=10, sigma=5), device={args.device}, "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads"
    )
    print(
        "| case | shape | cells | reference (s) | napari-losslens (s) | speed-up | "
        "cached re-evaluation (s) | speed-up vs full | max abs error |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        print(
            f"| {r['case']} | {r['shape']} | {r['cells']} | {r['ref_s']:.2f}{r['ref_note']} | "
            f"{r['fast_s']:.3f} | **{r['speedup']:.0f}x** | {r['cheap_s']:.4f} | "
            f"**{r['cheap_speedup']:.0f}x** | {r['max_abs_err']:.1e} |"
        )
    print(f"\npeak RSS: {peak_rss_mb():.0f} MB")
    return 0


if __name__ == "__main__":
    sys.exit(main())
