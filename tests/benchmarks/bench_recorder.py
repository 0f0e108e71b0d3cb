"""Benchmark: what recording a validation sample every step costs a training loop.

Trains the demo's U-Net (:class:`napari_losslens.training.UNet`, 16 feature maps, batches of
8 crops of 128×128, unet_ce with precomputed weight maps, Adam) for blocks of steps without
and with a :class:`~napari_losslens.training.LossRecorder` recording one 256×256 validation
sample every step (loss map, error map, per-object table), alternating the two so that both
see the same machine load. The recorded prediction is a fixed model output perturbed per
step: the validation forward pass is the user's choice and is timed separately. The time
with recording includes ``close()``, which waits until every step is written.

Prints, in one run:

- the overhead ratio (time with recording − time without) / time without, per step;
- the recorder's cost when it runs in the training thread (``background=False``);
- the validation forward pass, for reference.

Run from the repository root (``--threads 2`` to match the 2-core target machine):

    python tests/benchmarks/bench_recorder.py [--steps 20] [--blocks 3] [--threads N]
"""

from __future__ import annotations

import argparse
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from napari_losslens._sample_data import make_touching_nuclei
from napari_losslens.core import loss_value, unet_weight_map
from napari_losslens.training import LossRecorder, UNet

OUTPUTS = ("loss_map", "error_map")  # the demo's


def _train_data(batch: int, crop: int):
    image, labels = make_touching_nuclei((256, 256), seed=1)
    weights = unet_weight_map(labels)
    rng = np.random.default_rng(0)
    crops = []
    for _ in range(16):
        y, x = rng.integers(0, 256 - crop, 2)
        sl = (slice(y, y + crop), slice(x, x + crop))
        crops.append((image[sl], labels[sl].astype(np.int64), weights[sl]))
    return crops, batch


def _step(model, optimiser, crops, batch, step):
    chosen = [crops[(step * batch + i) % len(crops)] for i in range(batch)]
    image = torch.from_numpy(np.stack([c[0] for c in chosen]))[:, None]
    logits = model(image)[:, 0]
    loss = torch.stack(
        [
            loss_value(logits[i], torch.from_numpy(c[1]), "unet_ce", from_logits=True,
                       weight_map=torch.from_numpy(c[2]))
            for i, c in enumerate(chosen)
        ]
    ).mean()  # fmt: skip
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20, help="training steps per block")
    parser.add_argument("--blocks", type=int, default=3, help="blocks of each kind")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(0)
    model = UNet(base=16, depth=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-3)
    crops, batch = _train_data(8, 128)
    val_image, val_labels = make_touching_nuclei((256, 256), seed=2015)
    with torch.no_grad():
        t = time.perf_counter()
        val_logits = model(torch.from_numpy(val_image)[None, None])[0, 0]
        forward = time.perf_counter() - t
    rng = np.random.default_rng(1)
    noise = [torch.from_numpy(rng.normal(0, 0.1, val_labels.shape).astype(np.float32))
             for _ in range(4)]  # fmt: skip
    for s in range(3):  # warm-up (allocator, first-call costs)
        _step(model, optimiser, crops, batch, s)
    if args.threads:  # again: numba's parallel weight map may have reset it
        torch.set_num_threads(args.threads)
    threads = torch.get_num_threads()

    def record(rec, s):
        rec.record(s, val_image, val_logits + noise[s % 4], val_labels, from_logits=True)

    # three kinds of block, interleaved so that all see the same machine load: training
    # alone; the recorder alone, in this thread; training with the recorder's writer thread
    totals = {"plain": np.zeros(2), "sync": np.zeros(2), "background": np.zeros(2)}
    step_no = 0
    with tempfile.TemporaryDirectory() as tmp:
        for block in range(args.blocks):
            t, c = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                _step(model, optimiser, crops, batch, step_no)
                step_no += 1
            totals["plain"] += (time.perf_counter() - t, time.process_time() - c)

            path = Path(tmp) / f"sync{block}.losslens.zarr"
            with LossRecorder(path, outputs=OUTPUTS, background=False) as rec:
                record(rec, 0)  # the set-up (image, target, weight map) is not timed
                t, c = time.perf_counter(), time.process_time()
                for s in range(1, args.steps + 1):
                    record(rec, s)
                totals["sync"] += (time.perf_counter() - t, time.process_time() - c)

            path = Path(tmp) / f"background{block}.losslens.zarr"
            rec = LossRecorder(path, outputs=OUTPUTS)
            record(rec, 0)  # the set-up again, not timed
            rec.flush()
            t, c = time.perf_counter(), time.process_time()
            for s in range(1, args.steps + 1):
                _step(model, optimiser, crops, batch, step_no)
                step_no += 1
                record(rec, s)
            rec.close()  # waits until the writer has written every step
            totals["background"] += (time.perf_counter() - t, time.process_time() - c)

    n = args.steps * args.blocks
    (t_plain, c_plain), (t_sync, c_sync), (t_bg, c_bg) = (v / n for v in totals.values())
    print(f"torch threads {threads}; {args.blocks} blocks of {args.steps} steps of each kind")
    print("per step (training: 8 x 128x128, U-Net base 16)        wall ms    CPU ms")
    rows = (
        ("training step", t_plain, c_plain),
        ("recorder alone, in the training thread", t_sync, c_sync),
        ("training step + recorder's background writer", t_bg, c_bg),
    )
    for label, wall, cpu in rows:
        print(f"  {label:<50} {1e3 * wall:8.1f}  {1e3 * cpu:8.1f}")
    print(f"  (validation forward pass, 256x256, not included: {1e3 * forward:.1f} ms)")
    print(
        f"recorder cost: {100 * t_sync / t_plain:.1f}% of a training step (wall), "
        f"{100 * c_sync / c_plain:.1f}% (CPU) in the training thread; with the background "
        f"writer {100 * (t_bg - t_plain) / t_plain:+.1f}% (wall), "
        f"{100 * (c_bg - c_plain) / c_plain:+.1f}% (CPU)"
    )


if __name__ == "__main__":
    main()
