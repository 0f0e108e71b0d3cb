"""Benchmark: the U-Net weight map against its definition, a careful user's version and the
two-EDT floor; and loss maps against the plain torch expression.

Prints, in one run, tables of times and of ratios measured side by side (absolute times
drift on shared machines; the ratios within one run are what to compare). From the
repository root:

    python tests/benchmarks/bench_weight_map.py            # CPU, default sizes
    python tests/benchmarks/bench_weight_map.py --device cuda
    python tests/benchmarks/bench_weight_map.py --quick    # small sizes, a smoke run
    python tests/benchmarks/bench_weight_map.py --losses-only  # the loss table alone
    python tests/benchmarks/bench_weight_map.py --versus-edt   # 2D: kernels vs edt only

Rows of the weight-map table (w0 = 10, σ = 5, cutoff R = ``cutoff_radius(10, 5)``):

- **definition**: one full-frame ``scipy.ndimage.distance_transform_edt`` per cell, then the
  two smallest distances per pixel and the formula. Timed on ``--reference-cells`` cells
  and scaled to all cells (every per-cell transform is full-frame, so each costs the same),
  unless ``--full-reference``.
- **cropped scipy**: what a careful user writes: the same per-cell EDT on the cell's bounding
  box grown by R (exact up to R, which is all the weight map needs).
- **two edt EDTs**: ``edt.edt`` (the ``edt`` package, a benchmark-only dependency) of the
  foreground and of the background: the cost of d1 and d2 if a second-nearest transform
  cost what a nearest one does.
- **napari-losslens**: ``unet_weight_map``; ``cell_distances(max_distance=R)`` (the
  transform alone); and (CPU) the kernels called directly: the transform with the formula
  fused into its last pass (``unet_weight_map_sq``), i.e. ``unet_weight_map`` without its
  validation.

Loss table: ``loss_map`` on a 4096² prediction against the plain torch expression of the same
map (BCE; BCE times a cached weight map for ``unet_ce``; for the region losses, Dice,
Jaccard, Tversky, focal Tversky, generalised Dice, MCC, unified focal and
sensitivity-specificity, the gradient by autograd through the formula written with torch
ops, products by y and 1 − y and float32 sums, with each loss's default parameters).
"""

from __future__ import annotations

import argparse
import math
import os
import sys
import time

import numpy as np
import torch
from scipy import ndimage as ndi

from napari_losslens._testing import touching_cells
from napari_losslens.core import _two_nearest_numba as kernels
from napari_losslens.core import cell_distances, cutoff_radius, loss_map, unet_weight_map

W0, SIGMA = 10.0, 5.0


def _sync():
    if torch.cuda.is_available():
        torch.cuda.synchronize()


def best_of(fn, repeat):
    """(best wall time in seconds, last result) over ``repeat`` calls."""
    times = []
    out = None
    for _ in range(repeat):
        _sync()
        t0 = time.perf_counter()
        out = fn()
        _sync()
        times.append(time.perf_counter() - t0)
    return min(times), out


def _formula(labels, d1, d2):
    border = W0 * np.exp(-((d1 + d2) ** 2) / (2 * SIGMA**2))
    border[~np.isfinite(d2)] = 0.0
    return 1.0 + np.where(labels == 0, border, 0.0)


def _take_two(d1, d2, d):
    """Keep the two smallest of (d1, d2, d) in place (d1 <= d2)."""
    closer = d < d1
    d2[...] = np.where(closer, d1, np.minimum(d2, d))
    d1[...] = np.where(closer, d, d1)


def definition_weight_map(labels, spacing, max_cells=None):
    """One full-frame EDT per cell; returns (map or None, seconds for all cells)."""
    ids = np.unique(labels)
    ids = ids[ids > 0]
    sample = ids if max_cells is None else ids[:max_cells]
    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    t0 = time.perf_counter()
    for i in sample:
        _take_two(d1, d2, ndi.distance_transform_edt(labels != i, sampling=spacing))
    seconds = time.perf_counter() - t0
    if len(sample) < len(ids):
        return None, seconds * len(ids) / len(sample)
    return _formula(labels, d1, d2), seconds


def cropped_weight_map(labels, spacing, radius):
    """The careful user's version: each cell's EDT on its bounding box grown by R."""
    sp = np.broadcast_to(np.asarray(spacing, float), (labels.ndim,))
    grow = [math.ceil(radius / s) for s in sp]
    d1 = np.full(labels.shape, np.inf)
    d2 = np.full(labels.shape, np.inf)
    for i, box in enumerate(ndi.find_objects(labels), start=1):
        if box is None:
            continue
        crop = tuple(
            slice(max(0, b.start - g), min(n, b.stop + g))
            for b, g, n in zip(box, grow, labels.shape, strict=True)
        )
        d = ndi.distance_transform_edt(labels[crop] != i, sampling=sp)
        d[d > radius] = np.inf
        _take_two(d1[crop], d2[crop], d)
    return _formula(labels, d1, d2)


def two_edts(labels, spacing, threads):
    import edt  # benchmark-only dependency (pip install edt)

    fg = labels > 0
    sp = tuple(float(s) for s in np.broadcast_to(np.asarray(spacing, float), (labels.ndim,)))
    return edt.edt(fg, anisotropy=sp, parallel=threads), edt.edt(
        ~fg, anisotropy=sp, parallel=threads
    )


def run_case(name, labels, spacing, args, max_ref_cells):
    radius = cutoff_radius(W0, SIGMA)
    sp = (1.0,) * labels.ndim if spacing is None else spacing
    n_cells = len(np.unique(labels)) - 1
    threads = torch.get_num_threads()
    # warm up (numba compiles once, cached on disk)
    small = labels[tuple(slice(0, 32) for _ in labels.shape)]
    unet_weight_map(small, spacing=sp, device=args.device)
    cell_distances(small, spacing=sp, max_distance=radius, device=args.device)
    two_edts(small, sp, threads)
    times = {"fast": [], "dist": [], "fused": [], "crop": [], "edt": []}

    def fused():
        return kernels.unet_weight_map_sq(labels, sp, radius * radius, W0, SIGMA, 1.0, 1.0)

    fused()
    methods = {
        "fast": lambda: unet_weight_map(
            labels, w0=W0, sigma=SIGMA, spacing=sp, device=args.device
        ),
        "dist": lambda: cell_distances(
            labels, spacing=sp, max_distance=radius, device=args.device
        ),
        "fused": fused,
        "crop": lambda: cropped_weight_map(labels, sp, radius),
        "edt": lambda: two_edts(labels, sp, threads),
    }
    names = list(methods)
    results = {}
    # interleaved, so that each method sees the same load, and in a rotating order, so that
    # none always runs right after the same other one (thread pools left spinning, caches)
    for rep in range(args.repeat):
        for key in names[rep % len(names) :] + names[: rep % len(names)]:
            t, results[key] = best_of(methods[key], 1)
            times[key].append(t)
    w_fast, w_fused, w_crop = results["fast"], results["fused"], results["crop"]
    best = {k: min(v) for k, v in times.items()}
    w_def, t_def = definition_weight_map(labels, sp, max_ref_cells)
    w_fast = w_fast.cpu().numpy() if isinstance(w_fast, torch.Tensor) else w_fast
    err_def = float(np.abs(w_fast - w_def).max()) if w_def is not None else math.nan
    return {
        "case": name,
        "shape": "x".join(map(str, labels.shape)),
        "spacing": str(tuple(sp)),
        "cells": n_cells,
        "def_s": t_def,
        "def_note": "" if w_def is not None else f" (scaled from {max_ref_cells} cells)",
        "crop_s": best["crop"],
        "edt_s": best["edt"],
        "fast_s": best["fast"],
        "dist_s": best["dist"],
        "fused_s": best["fused"],
        "err_fused": float(np.abs(w_fused - w_crop).max()),
        "err_crop": float(np.abs(w_fast - w_crop).max()),
        "err_def": err_def,
    }


def versus_edt(repeat):
    """2D 1024²: the kernels (``unet_weight_map_sq``, no validation) and two ``edt`` EDTs
    alone, interleaved, ``repeat`` times each: (best, median) wall seconds of each."""
    labels = touching_cells((1024, 1024), 620, 24, seed=1)
    sp, radius = (1.0, 1.0), cutoff_radius(W0, SIGMA)
    threads = torch.get_num_threads()
    methods = {
        "kernels": lambda: kernels.unet_weight_map_sq(
            labels, sp, radius * radius, W0, SIGMA, 1.0, 1.0
        ),
        "edt": lambda: two_edts(labels, sp, threads),
    }
    times = {k: [] for k in methods}
    for fn in methods.values():
        fn()  # warm up
    for _ in range(repeat):
        for key, fn in methods.items():
            times[key].append(best_of(fn, 1)[0])
    return {k: (min(v), float(np.median(v))) for k, v in times.items()}


def loss_rows(device, repeat, size):
    gen = torch.Generator().manual_seed(0)
    pred = torch.rand((size, size), generator=gen).to(device)
    target = (torch.rand((size, size), generator=gen) > 0.5).to(torch.int64).to(device)
    w = (1.0 + 9.0 * torch.rand((size, size), generator=gen)).to(device)
    y = target.to(pred.dtype)
    eps = torch.finfo(pred.dtype).eps

    def plain_bce():
        p = pred.clamp(eps, 1 - eps)
        return -(y * torch.log(p) + (1 - y) * torch.log1p(-p))

    def gradient(loss_of_p):
        """The plain torch gradient map: autograd through the loss written with torch ops
        (float32 maps and sums, as a user writes it)."""
        p = pred.detach().requires_grad_(True)
        with torch.enable_grad():
            (g,) = torch.autograd.grad(loss_of_p(p), p)
        return g

    def overlaps(p):
        return (p * y).sum(), (p * (1 - y)).sum(), ((1 - p) * y).sum()

    def plain_dice(p):
        return 1 - (2 * (p * y).sum() + 1e-6) / ((p * p).sum() + (y * y).sum() + 1e-6)

    def plain_jaccard(p):
        tp, fp, fn = overlaps(p)
        return 1 - (tp + 1e-6) / (tp + fp + fn + 1e-6)

    def tversky_index(p):
        tp, fp, fn = overlaps(p)
        return (tp + 1e-6) / (tp + 0.5 * fp + 0.5 * fn + 1e-6)

    def plain_generalized_dice(p):
        probas, ys = torch.stack([1 - p, p]), torch.stack([1 - y, y])
        w = 1.0 / ys.sum((1, 2)) ** 2
        num = 2 * (w * (probas * ys).sum((1, 2))).sum() + 1e-5
        return 1 - num / ((w * (probas + ys).sum((1, 2))).sum() + 1e-5)

    def plain_mcc(p):
        tp, fp, fn = overlaps(p)
        tn = ((1 - p) * (1 - y)).sum()
        den = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + 1e-5)
        return 1 - (tp * tn - fp * fn) / den

    def plain_unified_focal(p, weight=0.5, delta=0.7, gamma=0.5, smooth=1e-7):
        pc = p.clamp(eps, 1 - eps)
        back = (1 - delta) * p**gamma * (-(1 - y) * torch.log1p(-pc))
        focal = (back + delta * (-y * torch.log(pc))).mean() / 2
        tis = []
        for q, z in ((1 - p, 1 - y), (p, y)):
            tp, fn, fp = (q * z).sum(), ((1 - q) * z).sum(), (q * (1 - z)).sum()
            tis.append((tp + smooth) / (tp + delta * fn + (1 - delta) * fp + smooth))
        tversky = 0.5 * ((1 - tis[0]) + (1 - tis[1]) ** (1 - gamma))
        return weight * focal + (1 - weight) * tversky

    def plain_sensitivity_specificity(p, w=0.5, smooth=1e-6):
        err = (y - p) ** 2
        sens = (err * y).sum() / (y.sum() + smooth)
        return w * sens + (1 - w) * (err * (1 - y)).sum() / ((1 - y).sum() + smooth)

    region = [
        ("dice", plain_dice),
        ("jaccard", plain_jaccard),
        ("tversky", lambda p: 1 - tversky_index(p)),
        ("focal_tversky", lambda p: (1 - tversky_index(p)) ** 0.75),
        ("generalized_dice", plain_generalized_dice),
        ("mcc", plain_mcc),
        ("unified_focal", plain_unified_focal),
        ("sensitivity_specificity", plain_sensitivity_specificity),
    ]
    cases = [("bce", lambda: loss_map(pred, target, "bce"), plain_bce)]
    cases += [
        (name, lambda name=name: loss_map(pred, target, name), lambda f=f: gradient(f))
        for name, f in region
    ]
    cases.append(
        (
            "unet_ce (cached weight map)",
            lambda: loss_map(pred, target, "unet_ce", weight_map=w),
            lambda: w * plain_bce(),
        )
    )
    rows = []
    for name, ours, plain in cases:
        ours(), plain()  # warm up
        t_ours = t_plain = math.inf
        for _ in range(repeat):
            t_ours = min(t_ours, best_of(ours, 1)[0])
            t_plain = min(t_plain, best_of(plain, 1)[0])
        a, b = ours(), plain()
        err = float((a - b).abs().max())
        rows.append((name, t_ours, t_plain, err, err / float(b.abs().max())))
    return rows


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--repeat", type=int, default=5)
    ap.add_argument("--quick", action="store_true", help="small sizes (smoke run)")
    ap.add_argument("--reference-cells", type=int, default=40)
    ap.add_argument("--full-reference", action="store_true", help="no scaled definition")
    ap.add_argument("--skip-losses", action="store_true")
    ap.add_argument("--losses-only", action="store_true", help="the loss table alone")
    ap.add_argument("--skip-3d", action="store_true", help="the 2D weight-map case only")
    ap.add_argument(
        "--versus-edt", action="store_true", help="2D: the kernels and two edt EDTs alone"
    )
    args = ap.parse_args(argv)
    if args.versus_edt:
        res = versus_edt(max(args.repeat, 15))
        (kb, km), (eb, em) = res["kernels"], res["edt"]
        print(f"2D 1024x1024, {torch.get_num_threads()} threads, wall time, interleaved")
        print("| method | best (s) | median (s) |\n|---|---|---|")
        print(f"| kernels (unet_weight_map_sq) | {kb:.4f} | {km:.4f} |")
        print(f"| two edt EDTs | {eb:.4f} | {em:.4f} |")
        print(f"two EDTs / kernels: best **{eb / kb:.2f}x**, median **{em / km:.2f}x**")
        return 0
    max_ref = None if args.full_reference else args.reference_cells

    if args.quick:
        cases = [
            ("2D", touching_cells((256, 256), 40, 22, seed=1), None),
            ("3D", touching_cells((16, 64, 64), 20, 12, spacing=(2, 1, 1), seed=2), (2, 1, 1)),
        ]
        loss_size = 512
    else:
        cases = [
            ("2D", touching_cells((1024, 1024), 620, 24, seed=1), None),
            (
                "3D",
                touching_cells((64, 256, 256), 320, 16, spacing=(2, 1, 1), seed=2),
                (2, 1, 1),
            ),
        ]
        loss_size = 4096
    if args.skip_3d:
        cases = cases[:1]
    if args.losses_only:
        cases = []
    rows = [run_case(n, lab, sp, args, max_ref) for n, lab, sp in cases]

    if rows:
        print(
            f"\nU-Net weight map (w0=10, sigma=5), device={args.device}, "
            f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
            f"best of {args.repeat} interleaved runs"
        )
        print(
            "| case | shape | spacing | cells | definition (s) | cropped scipy (s) | "
            "two edt EDTs (s) | napari-losslens weight map (s) | its transform alone (s) | "
            "kernels called directly (s) |"
        )
        print("|---|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['case']} | {r['shape']} | {r['spacing']} | {r['cells']} | "
                f"{r['def_s']:.2f}{r['def_note']} | {r['crop_s']:.3f} | {r['edt_s']:.3f} | "
                f"{r['fast_s']:.3f} | {r['dist_s']:.3f} | {r['fused_s']:.3f} |"
            )
        print(
            "\n| case | definition / ours | cropped / ours | two EDTs / ours | "
            "two EDTs / transform alone | cropped / fused | two EDTs / fused | "
            "max abs error vs cropped (weight map, fused) | vs definition |"
        )
        print("|---|---|---|---|---|---|---|---|---|")
        for r in rows:
            print(
                f"| {r['case']} | **{r['def_s'] / r['fast_s']:.0f}x** | "
                f"**{r['crop_s'] / r['fast_s']:.2f}x** | **{r['edt_s'] / r['fast_s']:.2f}x** | "
                f"{r['edt_s'] / r['dist_s']:.2f}x | {r['crop_s'] / r['fused_s']:.2f}x | "
                f"{r['edt_s'] / r['fused_s']:.2f}x | {r['err_crop']:.1e}, {r['err_fused']:.1e} | "
                f"{r['err_def']:.1e} |"
            )
    if not args.skip_losses:
        load = os.getloadavg()[0] if hasattr(os, "getloadavg") else math.nan
        print(
            f"\nloss_map on a {loss_size}x{loss_size} prediction, device={args.device}, "
            f"{torch.get_num_threads()} threads, load average {load:.2f} at the start"
        )
        print(
            "| loss | loss_map (s) | plain torch (s) | ratio | max abs difference | "
            "relative to the map's max |"
        )
        print("|---|---|---|---|---|---|")
        for name, t_ours, t_plain, err, rel in loss_rows(args.device, args.repeat, loss_size):
            print(
                f"| {name} | {t_ours:.4f} | {t_plain:.4f} | **{t_ours / t_plain:.2f}x** | "
                f"{err:.1e} | {rel:.1e} |"
            )
        if hasattr(os, "getloadavg"):
            print(f"load average {os.getloadavg()[0]:.2f} at the end")
    return 0


if __name__ == "__main__":
    sys.exit(main())
