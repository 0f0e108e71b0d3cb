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

    plain, recorded, step_no = [], [], 0
    cpu_plain, cpu_recorded = [], []
    with tempfile.TemporaryDirectory() as tmp:
        for block in range(args.blocks):
            t, c = time.perf_counter(), time.process_time()
            for _ in range(args.steps):
                _step(model, optimiser, crops, batch, step_no)
                step_no += 1
            plain.append(time.perf_counter() - t)
            cpu_plain.append(time.process_time() - c)

            path = Path(tmp) / f"b{block}.losslens.zarr"
            t, c = time.perf_counter(), time.process_time()
            with LossRecorder(path, loss="unet_ce", outputs=("loss_map", "error_map")) as rec:
                for s in range(args.steps):
                    _step(model, optimiser, crops, batch, step_no)
                    step_no += 1
                    rec.record(s, val_image, val_logits + noise[s % 4], val_labels,
                               from_logits=True)  # fmt: skip
            recorded.append(time.perf_counter() - t)
            cpu_recorded.append(time.process_time() - c)

        sync = Path(tmp) / "sync.losslens.zarr"
        with LossRecorder(
            sync, loss="unet_ce", outputs=("loss_map", "error_map"), background=False
        ) as rec:
            rec.record(0, val_image, val_logits, val_labels, from_logits=True)  # setup
            t, c = time.perf_counter(), time.process_time()
            for s in range(1, args.steps + 1):
                rec.record(s, val_image, val_logits + noise[s % 4], val_labels, from_logits=True)
            in_thread = (time.perf_counter() - t) / args.steps
            in_thread_cpu = (time.process_time() - c) / args.steps

    n = args.steps * args.blocks
    t_plain, t_rec = sum(plain) / n, sum(recorded) / n
    c_plain, c_rec = sum(cpu_plain) / n, sum(cpu_recorded) / n
    print(f"torch threads {torch.get_num_threads()}; {args.blocks} blocks of {args.steps} steps")
    print("per training step (8 x 128x128, U-Net base 16)   wall ms    CPU ms")
    rows = (
        ("without recording", t_plain, c_plain),
        ("recording a 256x256 sample every step", t_rec, c_rec),
        ("the recorder alone, in the training thread", in_thread, in_thread_cpu),
    )
    for label, wall, cpu in rows:
        print(f"  {label:<44} {1e3 * wall:8.1f}  {1e3 * cpu:8.1f}")
    print(f"  (validation forward pass, 256x256, not included: {1e3 * forward:.1f} ms)")
    print(
        f"recorder overhead: {100 * (t_rec - t_plain) / t_plain:.1f}% of a training step "
        f"(wall clock), {100 * (c_rec - c_plain) / c_plain:.1f}% (CPU time)"
    )


if __name__ == "__main__":
    main()
