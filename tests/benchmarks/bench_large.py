"""Benchmark: big images in bounded memory (tiles with a halo of the cutoff radius).

Each case runs in a fresh subprocess that reports its peak resident memory, so that cases do
not inherit each other's peaks. Printed per case: time, peak memory beyond input and output
in bytes per voxel (the budget is 16), and, on the largest size both paths can do, the
tiled time as a ratio of the one-piece (in-memory) time.

    python tests/benchmarks/bench_large.py            # 4096² with ~8000 cells, 128x1024x1024
    python tests/benchmarks/bench_large.py --quick    # smaller sizes, a smoke run
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys

CHILD = r"""
import json, resource, sys, time
import numpy as np
from napari_losslens._testing import touching_cells
from napari_losslens.core import unet_weight_map

def rss_mb():
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024

cfg = json.loads(sys.argv[1])
shape, tile = tuple(cfg["shape"]), tuple(cfg["tile"])
# build by tiling a touching-cells block with id offsets (cheap for huge shapes)
block = touching_cells(tile, cfg["cells_per_tile"], cfg["radius"],
                       spacing=cfg["spacing"], seed=0).astype(np.int32)
reps = tuple(s // t for s, t in zip(shape, tile))
n_per = int(block.max())
labels = np.empty(shape, np.int32)
for k, idx in enumerate(np.ndindex(*reps)):
    sl = tuple(slice(i * t, (i + 1) * t) for i, t in zip(idx, tile))
    labels[sl] = np.where(block > 0, block + k * n_per, 0)
del block
n_cells = len(np.unique(labels)) - 1
unet_weight_map(labels[tuple(slice(0, 16) for _ in shape)], device="cpu")  # warm numba
base = rss_mb()
import resource as r
t0 = time.perf_counter()
w = unet_weight_map(labels, spacing=cfg["spacing"], device="cpu",
                    tile_voxels=cfg.get("tile_voxels"))
dt = time.perf_counter() - t0
peak = r.getrusage(r.RUSAGE_SELF).ru_maxrss / 1024
out_mb = w.nbytes / 2**20
print(json.dumps({"seconds": dt, "peak_mb": peak, "base_mb": base, "out_mb": out_mb,
                  "voxels": int(labels.size), "cells": n_cells}))
"""


def run(cfg):
    out = subprocess.run(
        [sys.executable, "-c", CHILD, json.dumps(cfg)], capture_output=True, text=True
    )
    if out.returncode != 0:
        raise RuntimeError(out.stderr[-2000:])
    res = json.loads(out.stdout.strip().splitlines()[-1])
    # beyond input (already in base) and output
    extra = max(0.0, res["peak_mb"] - res["base_mb"] - res["out_mb"])
    res["bytes_per_voxel"] = extra * 2**20 / res["voxels"]
    return res


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--quick", action="store_true")
    args = ap.parse_args(argv)
    if args.quick:
        c2 = {
            "shape": [1024, 1024],
            "tile": [512, 512],
            "cells_per_tile": 120,
            "radius": 22,
            "spacing": [1, 1],
        }
        c3 = {
            "shape": [32, 256, 256],
            "tile": [32, 128, 128],
            "cells_per_tile": 40,
            "radius": 14,
            "spacing": [2, 1, 1],
        }
    else:
        c2 = {
            "shape": [4096, 4096],
            "tile": [1024, 1024],
            "cells_per_tile": 500,
            "radius": 22,
            "spacing": [1, 1],
        }
        c3 = {
            "shape": [128, 1024, 1024],
            "tile": [128, 256, 256],
            "cells_per_tile": 150,
            "radius": 16,
            "spacing": [2, 1, 1],
        }
    rows = []
    for name, cfg in (("2D", c2), ("3D", c3)):
        tiled = run(cfg)
        rows.append((name, cfg, tiled))
    # the largest size both paths can do: the 2D case in one piece
    one = run({**c2, "tile_voxels": c2["shape"][0] * c2["shape"][1]})

    print("\nU-Net weight map on large images (w0=10, sigma=5), CPU")
    print(
        "| case | shape | spacing | cells | time (s) | peak beyond input+output | "
        "bytes/voxel (budget 16) |"
    )
    print("|---|---|---|---|---|---|---|")
    for name, cfg, r in rows:
        print(
            f"| {name} tiled (default) | {'x'.join(map(str, cfg['shape']))} | "
            f"{tuple(cfg['spacing'])} | {r['cells']} | {r['seconds']:.1f} | "
            f"{r['peak_mb'] - r['base_mb'] - r['out_mb']:.0f} MB | "
            f"**{r['bytes_per_voxel']:.1f}** |"
        )
    r2 = rows[0][2]
    print(
        f"| 2D one piece | {'x'.join(map(str, c2['shape']))} | (1, 1) | {one['cells']} | "
        f"{one['seconds']:.1f} | {one['peak_mb'] - one['base_mb'] - one['out_mb']:.0f} MB | "
        f"{one['bytes_per_voxel']:.1f} |"
    )
    print(
        f"\ntiled / one-piece time on 2D {c2['shape']}: **{r2['seconds'] / one['seconds']:.2f}x**"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
