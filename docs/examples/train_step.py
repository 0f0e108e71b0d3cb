"""A PyTorch training step with the U-Net weight map and losses of napari_losslens.core.

The same functions the napari widget shows are the ones a training script uses: compute the
weight map once per training image (in the data pipeline, on numpy arrays), then use it in
the U-Net weighted cross-entropy, here combined with a Dice loss, inside the training step.

Run it:  python docs/examples/train_step.py
"""

from __future__ import annotations

import numpy as np
import torch

from napari_losslens.core import SegmentationLoss, loss_value, unet_weight_map


def touching_discs(size: int = 96, n: int = 12, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic training pair: a noisy image and instance labels of touching discs."""
    rng = np.random.default_rng(seed)
    centres = rng.uniform(8, size - 8, (n, 2))
    radii = rng.uniform(7, 12, n)
    yy, xx = np.mgrid[:size, :size]
    dist = np.hypot(yy[None] - centres[:, 0, None, None], xx[None] - centres[:, 1, None, None])
    nearest = dist.argmin(axis=0)
    inside = dist.min(axis=0) <= radii[nearest]
    labels = np.where(inside, nearest + 1, 0).astype(np.int32)
    image = (labels > 0) * 0.6 + rng.normal(0.2, 0.15, labels.shape)
    return image.astype(np.float32), labels


# --- data: images, targets and their weight maps (computed once, before training) ---------
pairs = [touching_discs(seed=s) for s in range(4)]
images = torch.from_numpy(np.stack([im for im, _ in pairs]))[:, None]  # (B, 1, H, W)
labels = np.stack([lab for _, lab in pairs])  # (B, H, W) instance ids
weights = np.stack([unet_weight_map(lab, w0=10, sigma=5) for lab in labels])
targets = torch.from_numpy(labels > 0).float()  # the binary target
weight_maps = torch.from_numpy(weights)

# --- a small network and the losses -------------------------------------------------------
torch.manual_seed(0)
model = torch.nn.Sequential(
    torch.nn.Conv2d(1, 16, 3, padding=1),
    torch.nn.ReLU(),
    torch.nn.Conv2d(16, 16, 3, padding=1),
    torch.nn.ReLU(),
    torch.nn.Conv2d(16, 1, 1),
)
optimizer = torch.optim.Adam(model.parameters(), lr=1e-2)
dice = SegmentationLoss("dice", from_logits=True)  # any registered loss, as a module


def train_step(x: torch.Tensor, y: torch.Tensor, w: torch.Tensor) -> float:
    """One optimisation step on a batch; returns the loss."""
    optimizer.zero_grad()
    logits = model(x)[:, 0]  # (B, H, W)
    # U-Net weighted cross-entropy with the precomputed weight maps, plus Dice
    loss = loss_value(logits, y, "unet_ce", from_logits=True, weight_map=w) + dice(logits, y)
    loss.backward()
    optimizer.step()
    return loss.item()


def main(steps: int = 30) -> list[float]:
    """Train for ``steps`` steps and return the losses."""
    losses = []
    for step in range(steps):
        losses.append(train_step(images, targets, weight_maps))
        if step % 10 == 0 or step == steps - 1:
            print(f"step {step:3d}  loss {losses[-1]:.4f}")
    return losses


if __name__ == "__main__":
    main()
