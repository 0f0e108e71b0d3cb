"""The training demo: a small U-Net learns touching nuclei while a LossRecorder watches.

:func:`train_demo` trains :class:`~napari_losslens.training.UNet` on random crops of
synthetic touching nuclei (:func:`~napari_losslens._sample_data.make_touching_nuclei`) with
one loss of :mod:`napari_losslens.core`, and records its prediction on a validation image
every few steps into ``<out>/<loss>.losslens.zarr``: the real nuclei of the 2018 Data Science
Bowl when the ``dsb`` extra is installed (the image the stardist wheel ships), a synthetic
image of unseen nuclei otherwise. It prints the validation Dice as it rises, and how to open
the recording in napari. Several losses give one recording each, trained from the same
initial weights on the same crops, for a side-by-side comparison.

The training images are normalised like the validation image (1st and 99.8th percentiles
to 0 and 1); the U-Net weight map of each training image is computed once, and cropped with
it (``weight_map=`` of :func:`~napari_losslens.core.loss_value`), so ``unet_ce`` costs no
more per step than a plain cross-entropy.
"""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from .._sample_data import make_touching_nuclei
from ..core import get_loss, loss_value, unet_weight_map
from .recorder import LossRecorder
from .store import SUFFIX
from .unet import UNet

__all__ = ["DemoResult", "load_validation", "train_demo"]

#: Training images: synthetic touching nuclei with these seeds (the sample uses 2015).
_TRAIN_SEEDS = (1, 2, 3, 4)
_TRAIN_SHAPE = (256, 256)
#: The synthetic validation image: a seed the training never sees.
_VALIDATION_SEED = 2015


@dataclass
class DemoResult:
    """What :func:`train_demo` did for one loss.

    Attributes:
        loss: the loss's name.
        path: the recording (``<out>/<loss>.losslens.zarr``).
        validation: ``"dsb_nuclei"`` or ``"synthetic_nuclei"``.
        steps: the recorded steps.
        dice: the validation Dice (foreground, threshold 0.5) at each recorded step.
        seconds: the wall-clock time of the training and recording.
    """

    loss: str
    path: Path
    validation: str
    steps: list[int] = field(default_factory=list)
    dice: list[float] = field(default_factory=list)
    seconds: float = 0.0


def _normalise(image: np.ndarray) -> np.ndarray:
    lo, hi = np.percentile(image, (1.0, 99.8))
    return np.clip((image - lo) / max(float(hi - lo), 1e-6), 0.0, 1.0).astype(np.float32)


def load_validation(kind: str = "auto") -> tuple[str, np.ndarray, np.ndarray]:
    """The validation image and labels: ``(name, image, labels)``.

    Args:
        kind: ``"dsb"`` (the 2018 Data Science Bowl image of the stardist wheel: needs the
            ``dsb`` extra), ``"synthetic"`` (touching nuclei the training never sees), or
            ``"auto"`` (dsb when installed, synthetic otherwise).

    Raises:
        ValueError: an unknown ``kind``.
        ModuleNotFoundError: ``kind="dsb"`` without the ``dsb`` extra.
    """
    if kind not in ("auto", "dsb", "synthetic"):
        raise ValueError(f"validation must be 'auto', 'dsb' or 'synthetic', got {kind!r}")
    if kind != "synthetic":
        try:
            from .._sample_data import dsb_nuclei  # reads tifffile + stardist's files

            layers = {kwargs["name"]: data for data, kwargs, _ in dsb_nuclei()}
            return "dsb_nuclei", _normalise(layers["image"]), layers["ground truth"]
        except ModuleNotFoundError:
            if kind == "dsb":
                raise
    image, labels = make_touching_nuclei(_TRAIN_SHAPE, seed=_VALIDATION_SEED)
    return "synthetic_nuclei", _normalise(image), labels


class _Crops:
    """Random flipped/rotated crops of the training images, their labels and weight maps."""

    def __init__(self, size: int, weights: bool, seed: int) -> None:
        pairs = [make_touching_nuclei(_TRAIN_SHAPE, seed=s) for s in _TRAIN_SEEDS]
        self.images = np.stack([_normalise(img) for img, _ in pairs])
        self.labels = np.stack([lab for _, lab in pairs])
        self.weights = np.stack([unet_weight_map(lab) for lab in self.labels]) if weights else None
        self.size = size
        self.rng = np.random.default_rng(seed)

    def batch(self, n: int):
        h, w = self.images.shape[1:]
        s = self.size
        out = ([], [], [])
        for _ in range(n):
            i = self.rng.integers(len(self.images))
            y, x = self.rng.integers(0, h - s + 1), self.rng.integers(0, w - s + 1)
            k, flip = int(self.rng.integers(4)), bool(self.rng.integers(2))
            arrays = [self.images[i], self.labels[i]]
            if self.weights is not None:
                arrays.append(self.weights[i])
            for j, a in enumerate(arrays):
                a = np.rot90(a[y : y + s, x : x + s], k)
                out[j].append(np.ascontiguousarray(a[:, ::-1] if flip else a))
        image = torch.from_numpy(np.stack(out[0]))[:, None]
        labels = torch.from_numpy(np.stack(out[1]).astype(np.int64))
        weights = torch.from_numpy(np.stack(out[2])) if out[2] else None
        return image, labels, weights


def _dice(prob: np.ndarray, labels: np.ndarray) -> float:
    p, y = prob > 0.5, labels > 0
    denom = p.sum() + y.sum()
    return float(2.0 * (p & y).sum() / denom) if denom else 1.0


def train_demo(
    steps: int = 150,
    losses: Sequence[str] = ("unet_ce",),
    out: str | Path = ".",
    *,
    every: int = 10,
    crop: int = 128,
    batch: int = 8,
    base: int = 16,
    lr: float = 3e-3,
    validation: str = "auto",
    seed: int = 0,
    overwrite: bool = False,
    log: Callable[[str], None] | None = print,
) -> list[DemoResult]:
    """Train a small U-Net on synthetic touching nuclei and record it, once per loss.

    Args:
        steps: training steps per loss (>= 1); a step is one batch.
        losses: loss names (binary losses of
            :func:`~napari_losslens.core.available_losses`); one recording each.
        out: the folder of the recordings ``<loss>.losslens.zarr``.
        every: record (and print) the validation every ``every`` steps, and after the last;
            step s is the model after s training steps (step 0: untrained).
        crop: the side of the training crops (a multiple of 4, at most 256).
        batch: crops per step.
        base: feature maps of the U-Net's top level.
        lr: Adam's learning rate.
        validation: ``"auto"``, ``"dsb"`` or ``"synthetic"`` (see :func:`load_validation`).
        seed: the seed of the weights and of the crops (the same for every loss).
        overwrite: replace existing recordings (default: refuse).
        log: where the progress lines go (``None``: nowhere).

    Returns:
        One :class:`DemoResult` per loss.

    Raises:
        ValueError: a bad number, an unknown or multi-class-only loss, a recording that
            exists without ``overwrite``.
        ModuleNotFoundError: zarr is missing, or ``validation="dsb"`` without stardist.

    Example:
        >>> results = train_demo(steps=150, losses=("bce", "unet_ce"), out="runs")
        >>> results[1].dice[-1] > results[1].dice[0]
        True
    """
    for name, value, low in (("steps", steps, 1), ("every", every, 1), ("batch", batch, 1),
                             ("base", base, 1)):  # fmt: skip
        if isinstance(value, bool) or not isinstance(value, int) or value < low:
            raise ValueError(f"{name} must be an integer >= {low}, got {value!r}")
    if isinstance(crop, bool) or not isinstance(crop, int) or crop % 4 or not 16 <= crop <= 256:
        raise ValueError(f"crop must be a multiple of 4 in [16, 256], got {crop!r}")
    if not lr > 0:
        raise ValueError(f"lr must be > 0, got {lr!r}")
    if isinstance(losses, str):
        losses = (losses,)
    losses = tuple(dict.fromkeys(losses))
    if not losses:
        raise ValueError("losses must name at least one loss, got none")
    for loss in losses:
        get_loss(loss)  # raises for an unknown name
    out = Path(out)
    paths = [out / f"{loss}{SUFFIX}" for loss in losses]
    existing = [str(p) for p in paths if p.exists()]
    if existing and not overwrite:
        raise ValueError(f"recording(s) exist: {', '.join(existing)}; pass overwrite=True")
    say = log or (lambda line: None)
    name, val_image, val_labels = load_validation(validation)
    h, w = (n - n % 4 for n in val_image.shape)  # the U-Net needs multiples of 2**depth
    val_image, val_labels = val_image[:h, :w], val_labels[:h, :w]
    validation_data = (name, val_image, val_labels)
    config = {"steps": steps, "every": every, "crop": crop, "batch": batch, "base": base}
    results = []
    for loss, path in zip(losses, paths, strict=True):
        say(f"training a U-Net with loss {loss!r} for {steps} steps; validation: {name}")
        if overwrite and path.exists():
            shutil.rmtree(path)
        results.append(_train_one(loss, path, validation_data, config, lr, seed, say))
    say("open the recording(s) in napari:")
    for r in results:
        say(f'  napari {r.path}    # or viewer.open("{r.path}", plugin="napari-losslens")')
    return results


def _train_one(loss, path, validation_data, config, lr, seed, say) -> DemoResult:
    """Train one U-Net with ``loss`` and record its validation predictions into ``path``."""
    name, val_image, val_labels = validation_data
    val_input = torch.from_numpy(val_image)[None, None]
    steps, every = config["steps"], config["every"]
    info = get_loss(loss)
    has_weights = any(p.name == "weight_map" for p in info.params)
    torch.manual_seed(seed)
    model = UNet(base=config["base"], depth=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=lr)
    crops = _Crops(config["crop"], has_weights, seed)
    result = DemoResult(loss, path, name)
    start = time.perf_counter()
    train_loss = float("nan")
    # every=1: the loop itself picks the steps (each ``every``-th, and the last)
    outputs = ("loss_map", "error_map")
    with LossRecorder(path, loss=loss, every=1, outputs=outputs, names=[name]) as rec:
        for step in range(steps + 1):  # step s: the model after s training steps
            if step % every == 0 or step == steps:
                model.eval()
                with torch.no_grad():
                    val_logits = model(val_input)[0, 0]
                rec.record(step, val_image, val_logits, val_labels, from_logits=True)
                dice = _dice(torch.sigmoid(val_logits).numpy(), val_labels)
                result.steps.append(step)
                result.dice.append(dice)
                trained = f"loss {train_loss:.4f}" if step else "untrained"
                say(f"  step {step:4d}  {trained:<12}  validation Dice {dice:.3f}")
            if step == steps:
                break
            model.train()
            image, labels, weights = crops.batch(config["batch"])
            logits = model(image)[:, 0]
            values = [
                loss_value(logits[i], labels[i], loss, from_logits=True,
                           **({"weight_map": weights[i]} if weights is not None else {}))
                for i in range(len(labels))
            ]  # fmt: skip
            loss_t = torch.stack(values).mean()
            optimiser.zero_grad()
            loss_t.backward()
            optimiser.step()
            train_loss = loss_t.item()
    result.seconds = time.perf_counter() - start
    say(
        f"  {loss}: validation Dice {result.dice[0]:.3f} -> {result.dice[-1]:.3f} in "
        f"{result.seconds:.0f} s; recorded {len(result.steps)} steps into {path}"
    )
    return result
