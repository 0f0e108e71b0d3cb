"""Sample data: synthetic touching nuclei, and the real nuclei the ``stardist`` wheel ships.

Both return napari layer-data tuples ``(data, kwargs, layer_type)``: an intensity image, a
model-like prediction (probabilities) and the ground-truth instance labels. The prediction is
made from the labels with the errors a real model makes: merged neighbours, blurred borders,
a few missed cells and a few false ones. Everything is deterministic (fixed seeds).
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

__all__ = ["dsb_nuclei", "make_prediction", "make_touching_nuclei", "touching_nuclei"]

DSB_EXTRA_HINT = 'pip install "napari-losslens[dsb]"'


def make_touching_nuclei(
    shape: tuple[int, int] = (512, 512), *, seed: int = 2015
) -> tuple[np.ndarray, np.ndarray]:
    """A synthetic image and its instance labels with many touching nuclei.

    Ellipses on a jittered grid, a little closer together than their size, so that many
    neighbours touch (where ellipses overlap, each pixel goes to the nearer centre, in the
    ellipse metric) and others nearly touch.

    Returns:
        ``(image, labels)``: float32 intensities in [0, 1] and int32 ids 1..N (shuffled).
    """
    rng = np.random.default_rng(seed)
    h, w = shape
    step = 30
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    best = np.full(shape, np.inf, np.float32)
    owner = np.zeros(shape, np.int32)
    n = 0
    for cy in range(step // 2, h, step):
        for cx in range(step // 2, w, step):
            if rng.random() < 0.2:
                continue  # leave some gaps
            n += 1
            y0 = cy + rng.uniform(-6, 6)
            x0 = cx + rng.uniform(-6, 6)
            a, b = rng.uniform(11, 18), rng.uniform(9, 14)
            t = rng.uniform(0, np.pi)
            sl = (
                slice(max(0, int(y0 - 20)), min(h, int(y0 + 21))),
                slice(max(0, int(x0 - 20)), min(w, int(x0 + 21))),
            )
            dy, dx = yy[sl] - y0, xx[sl] - x0
            u = (dy * np.cos(t) + dx * np.sin(t)) / a
            v = (-dy * np.sin(t) + dx * np.cos(t)) / b
            r = u * u + v * v
            inside = (r <= 1.0) & (r < best[sl])
            best[sl] = np.where(inside, r, best[sl])
            owner[sl] = np.where(inside, n, owner[sl])
    perm = np.concatenate([[0], rng.permutation(n) + 1]).astype(np.int32)
    labels = perm[owner]
    brightness = np.concatenate([[0.0], rng.uniform(0.45, 1.0, n)]).astype(np.float32)
    image = ndi.gaussian_filter(brightness[labels], 1.5)
    image *= 1.0 + 0.15 * ndi.gaussian_filter(rng.standard_normal(shape), 2.0)
    image += 0.05 + 0.03 * rng.standard_normal(shape)
    image = np.clip(image, 0.0, 1.0).astype(np.float32)
    return image, labels


_SHIFTS = ((0, 1), (1, 0), (1, 1), (1, -1))


def _neighbour_pairs(labels: np.ndarray):
    """For each 8-neighbour offset: the slices of both sides and the touching-pair mask."""
    h, w = labels.shape
    for dy, dx in _SHIFTS:
        sa = (slice(0, h - dy), slice(max(0, -dx), w - max(0, dx)))
        sb = (slice(dy, h), slice(max(0, dx), w - max(0, -dx)))
        a, b = labels[sa], labels[sb]
        yield sa, sb, a, b, (a > 0) & (b > 0) & (a != b)


def _pair_code(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    lo, hi = np.minimum(a, b).astype(np.int64), np.maximum(a, b).astype(np.int64)
    return lo * (1 << 31) + hi


def make_prediction(labels: np.ndarray, *, seed: int = 7) -> np.ndarray:
    """A plausible model prediction (probabilities) for instance labels.

    A blurred version of the foreground with a dip along most cell contacts, except that
    about a third of the touching pairs are merged (no dip), a few cells are missed, a few
    false blobs appear in the background, and the borders are soft.

    Returns:
        float32 probabilities in (0, 1), the shape of ``labels``.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels)
    ids = np.unique(labels[labels > 0])
    target = (labels > 0).astype(np.float32)
    # a gap between touching cells, except for the merged pairs
    codes = np.unique(
        np.concatenate([_pair_code(a[m], b[m]) for _, _, a, b, m in _neighbour_pairs(labels)])
    )
    merged = codes[rng.random(len(codes)) < 0.35]
    border = np.zeros(labels.shape, bool)
    for sa, sb, a, b, m in _neighbour_pairs(labels):
        cut = m & ~np.isin(_pair_code(a, b), merged)
        border[sa] |= cut
        border[sb] |= cut
    target[border] = 0.0
    # a few missed cells, a few false ones
    missed = rng.choice(ids, size=max(1, len(ids) // 25), replace=False) if len(ids) else []
    target[np.isin(labels, missed)] = 0.0
    yy, xx = np.mgrid[0 : labels.shape[0], 0 : labels.shape[1]]
    background = np.argwhere(ndi.binary_erosion(labels == 0, iterations=12))
    for k in range(max(1, len(ids) // 30) if len(background) else 0):
        y0, x0 = background[rng.integers(len(background))]
        r = rng.uniform(5, 9)
        target[(yy - y0) ** 2 + (xx - x0) ** 2 <= r * r] = 0.8 + 0.02 * k
    soft = ndi.gaussian_filter(target, 1.5)
    noise = ndi.gaussian_filter(rng.standard_normal(labels.shape), 3.0) * 0.8
    logits = 9.0 * (soft - 0.5) + noise
    return (1.0 / (1.0 + np.exp(-logits))).astype(np.float32)


def _layers(image, prediction, labels, source: str):
    return [
        (image, {"name": "image", "colormap": "gray", "metadata": {"sample": source}}, "image"),
        (
            prediction,
            {
                "name": "prediction",
                "colormap": "viridis",
                "contrast_limits": (0.0, 1.0),
                "opacity": 0.5,
                "visible": False,
                "metadata": {"sample": source},
            },
            "image",
        ),
        (
            labels,
            {"name": "ground truth", "opacity": 0.4, "metadata": {"sample": source}},
            "labels",
        ),
    ]


def touching_nuclei():
    """Sample: synthetic touching nuclei (512×512) with image, prediction and labels."""
    image, labels = make_touching_nuclei()
    return _layers(image, make_prediction(labels), labels, "touching_nuclei")


def _stardist_file(relative: str) -> Path:
    """The path of a data file inside the installed stardist wheel, without importing it."""
    from importlib import metadata, util

    try:
        path = Path(metadata.distribution("stardist").locate_file(f"stardist/{relative}"))
        if path.is_file():
            return path
    except metadata.PackageNotFoundError:
        pass
    spec = util.find_spec("stardist")
    for root in (spec.submodule_search_locations or []) if spec else []:
        path = Path(root) / relative
        if path.is_file():
            return path
    raise ModuleNotFoundError(
        "The 2018 Data Science Bowl nuclei come with the 'stardist' package, which is not "
        f"installed: {DSB_EXTRA_HINT}"
    )


def dsb_nuclei():
    """Sample: real nuclei of the 2018 Data Science Bowl (512×512, 125 nuclei).

    Read by path from the ``stardist`` wheel (``stardist/data/images/img2d.tif`` and
    ``mask2d.tif``), with a prediction made by :func:`make_prediction`.

    Raises:
        ModuleNotFoundError: stardist or tifffile is missing; the message says to
            ``pip install "napari-losslens[dsb]"``.
    """
    img_path = _stardist_file("data/images/img2d.tif")
    mask_path = _stardist_file("data/images/mask2d.tif")
    try:
        import tifffile
    except ImportError:
        raise ModuleNotFoundError(
            f"Reading the Data Science Bowl sample needs tifffile: {DSB_EXTRA_HINT}"
        ) from None
    image = tifffile.imread(img_path).astype(np.float32)
    image = (image - image.min()) / max(float(image.max() - image.min()), 1.0)
    labels = tifffile.imread(mask_path).astype(np.int32)
    return _layers(image, make_prediction(labels), labels, "dsb_nuclei")
