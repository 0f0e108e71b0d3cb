"""Make the documentation's figures (core math only, no napari): PNGs in docs/images/figures/.

    .venv/bin/python scripts/make_doc_figures.py [--out docs/images/figures]

Writes:

- ``sample.png``: the synthetic touching-nuclei crop used everywhere (labels, prediction).
- ``weight-map-grid.png``: the U-Net weight map over a grid of w0 and σ.
- ``separate-touching.png``: labels and weight map without / with ``separate_touching``.
- ``background-only.png``: the weight map with ``background_only`` on / off.
- ``class-weights.png``: the weight map with no class weights / ``"balanced"``.
  (These three on a 96-pixel window with the most cell contacts, so pixels show.)
- ``loss-<name>.png``: one per loss in ``available_losses()``, its map on the same prediction.

Deterministic: the data come from fixed seeds (the plugin's ``touching_nuclei`` sample when
it is importable, otherwise an equivalent generator here), and the PNGs carry no date.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np

from napari_losslens.core import (
    available_losses,
    loss_map,
    loss_value,
    separate_touching_cells,
    unet_weight_map,
)

ROOT = Path(__file__).resolve().parents[1]
CROP = (slice(80, 272), slice(120, 312))  # 192 × 192 pixels of the 512 × 512 sample
DPI = 80
PNG_META = {"Software": None}


def sample(crop: bool = True) -> tuple[np.ndarray, np.ndarray]:
    """``(labels, prediction)``: the touching-nuclei sample, or its 192-pixel crop."""
    try:
        from napari_losslens._sample_data import make_prediction, make_touching_nuclei

        _, labels = make_touching_nuclei()
        prediction = make_prediction(labels)
    except ImportError:  # the sample module is not there: an equivalent generator
        labels, prediction = _fallback_sample()
    if not crop:
        return labels, prediction
    return labels[CROP].copy(), prediction[CROP].copy()


def _fallback_sample() -> tuple[np.ndarray, np.ndarray]:
    from scipy import ndimage as ndi

    from napari_losslens._testing import touching_cells

    labels = touching_cells((512, 512), 300, 14.0, seed=2015)
    rng = np.random.default_rng(7)
    soft = ndi.gaussian_filter((labels > 0).astype(np.float32), 1.5)
    logits = 9.0 * (soft - 0.5) + ndi.gaussian_filter(rng.standard_normal(labels.shape), 3) * 0.8
    return labels, (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _show_labels(ax, labels, title, highlight=None):
    """Labels in fixed colours by id (black background); ``highlight`` pixels in red."""
    rng = np.random.default_rng(0)
    colours = rng.uniform(0.3, 0.95, (int(labels.max()) + 1, 3))
    colours[0] = 0.0
    rgb = colours[labels]
    if highlight is not None:
        rgb[highlight] = (1.0, 0.1, 0.1)
    ax.imshow(rgb, interpolation="nearest")
    _finish(ax, title)


def _finish(ax, title):
    ax.set_title(title, fontsize=9)
    ax.set_xticks([])
    ax.set_yticks([])


def _save(fig, path: Path) -> None:
    fig.savefig(path, dpi=DPI, metadata=PNG_META)
    plt.close(fig)
    print(
        f"{path.relative_to(ROOT) if path.is_relative_to(ROOT) else path}: "
        f"{path.stat().st_size // 1024} KB"
    )


def fig_sample(labels, prediction, out: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(6.4, 3.4), layout="constrained")
    _show_labels(axes[0], labels, "target: instance labels")
    im = axes[1].imshow(prediction, cmap="viridis", vmin=0, vmax=1)
    _finish(axes[1], "prediction p")
    fig.colorbar(im, ax=axes[1], shrink=0.8)
    _save(fig, out / "sample.png")


def fig_weight_grid(labels, out: Path) -> None:
    w0s, sigmas = (3.0, 10.0, 30.0), (2.0, 5.0, 10.0)
    maps = {
        (w0, s): unet_weight_map(labels, w0=w0, sigma=s, device="cpu")
        for w0 in w0s
        for s in sigmas
    }
    fig, axes = plt.subplots(3, 3, figsize=(7.0, 6.6), layout="constrained")
    for i, w0 in enumerate(w0s):
        for j, s in enumerate(sigmas):
            # each row on its own scale, 1 .. 1 + w0 (the largest value possible)
            im = axes[i, j].imshow(maps[w0, s], cmap="magma", vmin=1.0, vmax=1.0 + w0)
            _finish(axes[i, j], f"w0 = {w0:g}, σ = {s:g}")
        fig.colorbar(im, ax=axes[i, :], shrink=0.9, label="w(x)")
    fig.suptitle("U-Net weight map: w0 (rows) sets the height, σ (columns) the reach")
    _save(fig, out / "weight-map-grid.png")


def zoom(labels: np.ndarray, size: int = 96) -> tuple[slice, slice]:
    """The ``size``-pixel window of ``labels`` with the most cell contacts."""
    removed = (labels > 0) & (separate_touching_cells(labels) == 0)
    best, where = -1, (0, 0)
    for y in range(0, labels.shape[0] - size + 1, 8):
        for x in range(0, labels.shape[1] - size + 1, 8):
            n = int(removed[y : y + size, x : x + size].sum())
            if n > best:
                best, where = n, (y, x)
    return slice(where[0], where[0] + size), slice(where[1], where[1] + size)


def _maps_row(axes, maps, titles, vmax):
    for ax, m, title in zip(axes, maps, titles, strict=True):
        im = ax.imshow(m, cmap="magma", vmin=0.0, vmax=vmax, interpolation="nearest")
        _finish(ax, title)
    return im


def fig_separate_touching(labels, out: Path) -> None:
    sep = separate_touching_cells(labels)
    gap = (labels > 0) & (sep == 0)
    maps = [
        unet_weight_map(labels, device="cpu"),
        unet_weight_map(labels, separate_touching=True, device="cpu"),
    ]
    fig, axes = plt.subplots(2, 2, figsize=(6.4, 6.4), layout="constrained")
    _show_labels(axes[0, 0], labels, "labels: cells touch")
    _show_labels(axes[0, 1], sep, "separate_touching=True (red: removed)", highlight=gap)
    im = _maps_row(
        axes[1],
        maps,
        ["weight map, separate_touching=False", "weight map, separate_touching=True"],
        max(float(m.max()) for m in maps),
    )
    fig.colorbar(im, ax=axes[1, :], shrink=0.8, label="weight w(x)")
    fig.suptitle("separate_touching: the contacts become background gaps, with high weight")
    _save(fig, out / "separate-touching.png")


def _two_maps(labels, out: Path, name: str, title: str, variants) -> None:
    maps = [unet_weight_map(labels, device="cpu", **kw) for _, kw in variants]
    fig, axes = plt.subplots(1, 3, figsize=(9.0, 3.4), layout="constrained")
    _show_labels(axes[0], labels, "labels")
    im = _maps_row(
        axes[1:], maps, [label for label, _ in variants], max(float(m.max()) for m in maps)
    )
    fig.colorbar(im, ax=axes[1:], shrink=0.85, label="weight w(x)")
    fig.suptitle(title)
    _save(fig, out / name)


def fig_flags(labels, out: Path) -> None:
    fig_separate_touching(labels, out)
    _two_maps(
        labels,
        out,
        "background-only.png",
        "background_only: the border term on the gaps only, or inside the cells too",
        [
            ("background_only=True (default)", {}),
            ("background_only=False", {"background_only": False}),
        ],
    )
    _two_maps(
        labels,
        out,
        "class-weights.png",
        "class_weights: the class term wc under the border term",
        [
            ("class_weights=None (wc = 1)", {}),
            ('class_weights="balanced"', {"class_weights": "balanced"}),
        ],
    )


def fig_losses(labels, prediction, out: Path) -> list[str]:
    names = []
    for name, info in available_losses().items():
        lmap = loss_map(prediction, labels, name, device="cpu")
        value = loss_value(prediction, labels, name, device="cpu")
        fig, ax = plt.subplots(figsize=(4.2, 3.6), layout="constrained")
        if info.kind == "pixel":
            vmax = float(np.percentile(lmap, 99.5)) or 1.0
            im = ax.imshow(lmap, cmap="magma", vmin=0.0, vmax=vmax)
            label = "per-pixel loss"
        else:
            vmax = float(np.percentile(np.abs(lmap), 99.5)) or 1.0
            im = ax.imshow(lmap, cmap="RdBu_r", vmin=-vmax, vmax=vmax)
            label = "∂L/∂p (blue: pulls p up)"
        fig.colorbar(im, ax=ax, shrink=0.85, label=label)
        _finish(ax, f"{name}: L = {value:.4g}")
        _save(fig, out / f"loss-{name}.png")
        names.append(name)
    return names


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument(
        "--out",
        type=Path,
        default=ROOT / "docs" / "images" / "figures",
        help="output folder (default: docs/images/figures)",
    )
    args = parser.parse_args(argv)
    args.out.mkdir(parents=True, exist_ok=True)
    plt.rcParams.update({"font.size": 8, "svg.hashsalt": "losslens"})
    labels, prediction = sample()
    fig_sample(labels, prediction, args.out)
    fig_weight_grid(labels, args.out)
    full_labels, _ = sample(crop=False)
    fig_flags(full_labels[zoom(full_labels)], args.out)
    fig_losses(labels, prediction, args.out)


if __name__ == "__main__":
    main()
