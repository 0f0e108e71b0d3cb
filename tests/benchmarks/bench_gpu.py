"""GPU benchmark of the torch two-nearest transform and the weight map (run by
``scripts/gpu_check.sh``; needs a CUDA device).

Prints a table to paste into ``docs/performance.md``: best-of-N times with
``torch.cuda.synchronize`` around each call, and the largest difference from the CPU (numba)
result of the same call.

    python tests/benchmarks/bench_gpu.py [--repeat 10]
"""

from __future__ import annotations

import argparse
import sys
import time

import numpy as np
import torch

from napari_losslens._testing import touching_cells
from napari_losslens.core import cell_distances, cutoff_radius, unet_weight_map


def best_of(fn, repeat):
    times = []
    out = None
    for _ in range(repeat):
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        out = fn()
        torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return min(times), out


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--repeat", type=int, default=10)
    args = ap.parse_args(argv)
    if not torch.cuda.is_available():
        print("no CUDA device: nothing to benchmark")
        return 1
    radius = cutoff_radius(10.0, 5.0)
    cases = [
        ("2D", touching_cells((1024, 1024), 620, 24, seed=1), (1.0, 1.0)),
        (
            "3D",
            touching_cells((64, 256, 256), 320, 16, spacing=(2, 1, 1), seed=2),
            (2.0, 1.0, 1.0),
        ),
    ]
    print(f"\nGPU: {torch.cuda.get_device_name(0)}, torch {torch.__version__}")
    print("| case | shape | call | GPU (s) | CPU (s) | max abs difference GPU vs CPU |")
    print("|---|---|---|---|---|---|")
    for name, labels, sp in cases:
        lab_gpu = torch.from_numpy(labels).cuda()
        calls = [
            (
                "unet_weight_map",
                lambda lab, sp=sp: unet_weight_map(lab, w0=10.0, sigma=5.0, spacing=sp),
            ),
            (
                "cell_distances, max_distance=R",
                lambda lab, sp=sp: torch.stack(
                    cell_distances(lab, spacing=sp, max_distance=radius)
                ),
            ),
        ]
        if name == "2D":
            calls.append(
                (
                    "cell_distances, no cutoff",
                    lambda lab, sp=sp: torch.stack(cell_distances(lab, spacing=sp)),
                )
            )
        for call, fn in calls:
            fn(lab_gpu)  # warm up
            t_gpu, out_gpu = best_of(lambda fn=fn, lab=lab_gpu: fn(lab), args.repeat)
            t0 = time.perf_counter()
            out_cpu = fn(torch.from_numpy(labels))
            t_cpu = time.perf_counter() - t0
            a, b = out_gpu.cpu().double().numpy(), out_cpu.double().numpy()
            same_inf = np.array_equal(np.isinf(a), np.isinf(b))
            fin = np.isfinite(a) & np.isfinite(b)
            diff = float(np.abs(a[fin] - b[fin]).max()) if fin.any() else 0.0
            note = "" if same_inf else " (inf pattern differs)"
            shape = "x".join(map(str, labels.shape))
            print(f"| {name} | {shape} | {call} | {t_gpu:.4f} | {t_cpu:.3f} | {diff:.1e}{note} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
