"""Watch where the loss goes while a U-Net learns: a LossRecorder in a plain training loop.

Trains the package's small U-Net on crops of synthetic touching nuclei and records, every
10 steps, its prediction on a fixed validation image into ``run.losslens.zarr``; open that
in napari (``viewer.open("run.losslens.zarr", plugin="napari-losslens")``) and move the step
slider.

Run it:  python docs/examples/watch_training.py
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import torch

from napari_losslens._sample_data import make_touching_nuclei
from napari_losslens.core import loss_value
from napari_losslens.training import LossRecorder, UNet


def batches(size: int = 64, n: int = 4, seed: int = 0):
    """Random crops (image, labels) of a synthetic training image, forever."""
    image, labels = make_touching_nuclei((256, 256), seed=1)
    rng = np.random.default_rng(seed)
    while True:
        ys, xs = rng.integers(0, 256 - size, (2, n))
        crops = [(image[y : y + size, x : x + size], labels[y : y + size, x : x + size])
                 for y, x in zip(ys, xs, strict=True)]  # fmt: skip
        yield (torch.from_numpy(np.stack([c[0] for c in crops]))[:, None],
               torch.from_numpy(np.stack([c[1] for c in crops]).astype(np.int64)))  # fmt: skip


def train_step(model, optimiser, batch) -> float:
    """One step of your own training loop (here: BCE on the logits)."""
    image, labels = batch
    loss = loss_value(model(image)[:, 0], labels, "bce", from_logits=True)
    optimiser.zero_grad()
    loss.backward()
    optimiser.step()
    return loss.item()


def main(steps: int = 100, out: Path = Path(".")) -> Path:
    torch.manual_seed(0)
    model = UNet(base=8)
    optimiser = torch.optim.Adam(model.parameters(), lr=3e-3)
    image, labels = make_touching_nuclei((128, 128), seed=2015)
    val_image, val_labels = torch.from_numpy(image), torch.from_numpy(labels)
    data = batches()
    # --8<-- [start:loop]
    with LossRecorder(out / "run.losslens.zarr", loss="unet_ce", every=10) as recorder:
        for step in range(steps):
            train_step(model, optimiser, next(data))  # your training step
            if recorder.due(step):  # every 10th step
                model.eval()
                with torch.no_grad():  # the fixed validation sample
                    logits = model(val_image[None, None])[0, 0]
                recorder.record(step, val_image, logits, val_labels, from_logits=True)
                model.train()
    # --8<-- [end:loop]
    return out / "run.losslens.zarr"


if __name__ == "__main__":
    path = main(int(sys.argv[1]) if len(sys.argv) > 1 else 100)
    print(f'recorded {path}: open it with viewer.open("{path}", plugin="napari-losslens")')
