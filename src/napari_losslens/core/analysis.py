"""Where the loss is: per-object statistics, hot-spots and error maps of a loss map.

These turn the maps of :mod:`~napari_losslens.core.losses` into things a person can read:
a table with one row per ground-truth object, the k worst places of the image, and a map of
true positives, false positives and false negatives. numpy and scipy only; any number of
dimensions. Torch tensors are accepted and converted to numpy (the results are tables and
small arrays, not part of an autograd graph).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import ndimage as ndi

from ._arrays import ArrayLike, check_same_shape

__all__ = [
    "ERROR_CODES",
    "FALSE_NEGATIVE",
    "FALSE_POSITIVE",
    "TRUE_POSITIVE",
    "HotSpot",
    "error_map",
    "hot_spots",
    "object_overlap",
    "object_stats",
]

#: Codes of :func:`error_map`. 0 is a true negative (background in both).
TRUE_POSITIVE = 1
FALSE_POSITIVE = 2
FALSE_NEGATIVE = 3
ERROR_CODES = {0: "true negative", 1: "true positive", 2: "false positive", 3: "false negative"}


def _numpy(x: ArrayLike, name: str) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor
        x = x.detach().cpu().numpy()
    a = np.asarray(x)
    if a.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be a numeric array, got dtype {a.dtype}")
    if a.ndim == 0 or a.size == 0:
        raise ValueError(f"{name} must be a non-empty array, got shape {a.shape}")
    return a


def _labels(x: ArrayLike, name: str = "labels") -> np.ndarray:
    a = _numpy(x, name)
    if a.dtype.kind == "f":
        if not np.all(np.isfinite(a)) or not np.all(a == np.round(a)):
            raise ValueError(f"{name} must hold integer ids, got non-integer values")
    if a.size and a.min() < 0:
        raise ValueError(
            f"{name} must hold non-negative ids (0 is background), got a minimum of {a.min()}"
        )
    return a.astype(np.int64, copy=False)


def _foreground(prediction: ArrayLike, threshold: float) -> np.ndarray:
    p = _numpy(prediction, "prediction")
    if p.dtype.kind == "b":
        return p
    if p.dtype.kind in "iu":
        return p > 0
    return p > threshold


def error_map(labels: ArrayLike, prediction: ArrayLike, *, threshold: float = 0.5) -> np.ndarray:
    """Classify every pixel as true/false positive/negative.

    .. math::

        e(x) = \\begin{cases}
            1 & y(x) = 1,\\ \\hat y(x) = 1 \\quad\\text{(true positive)}\\\\
            2 & y(x) = 0,\\ \\hat y(x) = 1 \\quad\\text{(false positive)}\\\\
            3 & y(x) = 1,\\ \\hat y(x) = 0 \\quad\\text{(false negative)}\\\\
            0 & \\text{otherwise (true negative)}
        \\end{cases}

    with y = [labels > 0] and ŷ = [prediction > threshold] (integer or bool predictions:
    ŷ = [prediction > 0]).

    Args:
        labels: ground-truth ids or mask, any shape.
        prediction: probabilities (or a mask), same shape. For logits pass
            ``threshold=0``.
        threshold: the foreground threshold of a floating prediction.

    Returns:
        uint8 array of the codes :data:`TRUE_POSITIVE`, :data:`FALSE_POSITIVE`,
        :data:`FALSE_NEGATIVE` (0 elsewhere).

    Example:
        >>> error_map(np.array([1, 1, 0, 0]), np.array([0.9, 0.1, 0.8, 0.2])).tolist()
        [1, 3, 2, 0]
    """
    check_same_shape(labels, prediction, "labels", "prediction")
    y = _labels(labels) > 0
    yhat = _foreground(prediction, threshold)
    out = np.zeros(y.shape, np.uint8)
    out[y & yhat] = TRUE_POSITIVE
    out[~y & yhat] = FALSE_POSITIVE
    out[y & ~yhat] = FALSE_NEGATIVE
    return out


def object_stats(
    labels: ArrayLike,
    loss: ArrayLike | None = None,
    prediction: ArrayLike | None = None,
    *,
    threshold: float = 0.5,
    image: ArrayLike | None = None,
    frame_axes: int = 0,
) -> dict[str, np.ndarray]:
    """One row per ground-truth object: size, loss and overlap with the prediction.

    For an object O (the pixels of one positive id) and the loss map ℓ:

    .. math::

        \\text{mean\\_loss}(O) = \\frac{1}{|O|}\\sum_{x \\in O} \\ell(x), \\qquad
        \\text{total\\_loss}(O) = \\sum_{x \\in O} \\ell(x).

    Overlap: P = [prediction > threshold] is split into connected components; P_O is the
    union of the components that touch O (so a prediction that merges O with a neighbour
    counts the neighbour's pixels against O, and a missed object has P_O = ∅):

    .. math::

        \\text{dice}(O) = \\frac{2\\,|O \\cap P_O|}{|O| + |P_O|}, \\qquad
        \\text{iou}(O) = \\frac{|O \\cap P_O|}{|O \\cup P_O|}.

    Args:
        labels: instance ids (0 = background), any number of dimensions.
        loss: optional loss map of the same shape (signed maps are used as given).
        prediction: optional probabilities or mask of the same shape, for Dice and IoU.
        threshold: foreground threshold of a floating prediction (0 for logits).
        image: optional intensity image of the same shape (adds ``mean_intensity``).
        frame_axes: number of leading axes whose slices are independent frames; connected
            components of the prediction do not cross frames.

    Returns:
        A dict of equal-length 1D arrays (a column table, one row per object present, in
        increasing id): ``index`` (the id), ``area`` (pixels), and when given the inputs
        ``mean_loss``, ``total_loss``, ``dice``, ``iou``, ``mean_intensity``.

    Example:
        >>> lab = np.array([[1, 1, 0, 2]])
        >>> s = object_stats(lab, np.array([[1.0, 3.0, 0.0, 5.0]]), np.array([[1, 1, 1, 0]]))
        >>> s["index"].tolist(), s["mean_loss"].tolist(), s["dice"].round(3).tolist()
        ([1, 2], [2.0, 5.0], [0.8, 0.0])
    """
    lab = _labels(labels)
    ids, inverse, area, keep = _objects(lab)
    out: dict[str, np.ndarray] = {"index": ids[keep], "area": area[keep].astype(np.int64)}
    n = len(ids)
    if loss is not None:
        check_same_shape(labels, loss, "labels", "loss")
        lm = _numpy(loss, "loss").astype(np.float64, copy=False).ravel()
        total = np.bincount(inverse, weights=lm, minlength=n)
        out["mean_loss"] = total[keep] / area[keep]
        out["total_loss"] = total[keep]
    if prediction is not None:
        check_same_shape(labels, prediction, "labels", "prediction")
        fg = _foreground(prediction, threshold)
        out.update(_overlap(lab, ids, inverse, area, keep, fg, frame_axes))
    if image is not None:
        check_same_shape(labels, image, "labels", "image")
        im = _numpy(image, "image").astype(np.float64, copy=False).ravel()
        out["mean_intensity"] = np.bincount(inverse, weights=im, minlength=n)[keep] / area[keep]
    return out


def object_overlap(
    labels: ArrayLike,
    prediction: ArrayLike,
    *,
    threshold: float = 0.5,
    frame_axes: int = 0,
) -> dict[str, np.ndarray]:
    """The overlap columns of :func:`object_stats` (Dice and IoU per ground-truth object),
    on their own.

    They depend on the labels, the prediction and the threshold only, not on any loss map:
    a caller that re-evaluates the loss as its parameters move (the widget, on a w0/σ
    change) computes them once per prediction, with the prediction's connected components,
    and the loss columns with ``object_stats(labels, loss)``.

    For an object O and P_O, the union of the connected components of
    P = [prediction > threshold] that touch O:

    .. math::

        \\text{dice}(O) = \\frac{2\\,|O \\cap P_O|}{|O| + |P_O|}, \\qquad
        \\text{iou}(O) = \\frac{|O \\cap P_O|}{|O \\cup P_O|}.

    Args:
        labels: instance ids (0 = background), any number of dimensions.
        prediction: probabilities or a mask of the same shape (integer or bool: P =
            [prediction > 0]).
        threshold: foreground threshold of a floating prediction (0 for logits).
        frame_axes: number of leading axes whose slices are independent frames; connected
            components of the prediction do not cross frames.

    Returns:
        A dict of equal-length 1D arrays, one row per object present, in increasing id
        (the rows of :func:`object_stats`): ``index``, ``dice``, ``iou``; the same values
        as :func:`object_stats`' columns of those names.

    Raises:
        ValueError: the shapes differ, the labels hold negative or non-integer ids, an
            array is empty, or ``frame_axes`` is outside ``[0, labels.ndim - 1]``.
        TypeError: an array is not numeric.

    Example:
        >>> lab = np.array([[1, 1, 0, 2]])
        >>> o = object_overlap(lab, np.array([[0.9, 0.8, 0.7, 0.1]]))
        >>> o["index"].tolist(), o["dice"].round(3).tolist(), o["iou"].round(3).tolist()
        ([1, 2], [0.8, 0.0], [0.667, 0.0])
    """
    check_same_shape(labels, prediction, "labels", "prediction")
    lab = _labels(labels)
    ids, inverse, area, keep = _objects(lab)
    fg = _foreground(prediction, threshold)
    return {"index": ids[keep], **_overlap(lab, ids, inverse, area, keep, fg, frame_axes)}


def _objects(lab: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """The ids (``ids``), each pixel's row in them (``inverse``), each id's pixel count
    (``area``) and the rows that are objects present (``keep``: id > 0, area > 0)."""
    flat = lab.ravel()
    top = int(flat.max())
    if top <= 4 * flat.size:  # small ids: count directly
        area = np.bincount(flat, minlength=top + 1)
        ids = np.arange(top + 1)
        return ids, flat, area, (ids > 0) & (area > 0)
    # huge sparse ids: compress them first
    ids, inverse, area = np.unique(flat, return_inverse=True, return_counts=True)
    return ids, inverse, area, ids > 0


def _overlap(lab, ids, inverse, area, keep, fg, frame_axes) -> dict[str, np.ndarray]:
    """Dice and IoU of the kept objects with the components of ``fg`` that touch them."""
    n = len(ids)
    comp, n_comp = ndi.label(fg, structure=_structure(lab.ndim, frame_axes))
    comp_size = np.bincount(comp.ravel(), minlength=n_comp + 1)
    inter = np.bincount(inverse, weights=fg.ravel(), minlength=n)
    # distinct (object, component) pairs that overlap
    both = (lab.ravel() > 0) & (comp.ravel() > 0)
    pair_code = np.unique(inverse[both].astype(np.int64) * (n_comp + 1) + comp.ravel()[both])
    obj, cmp = np.divmod(pair_code, n_comp + 1)
    pred_size = np.bincount(obj, weights=comp_size[cmp], minlength=n)
    area_k, inter_k, pred_k = area[keep], inter[keep], pred_size[keep]
    return {
        "dice": 2.0 * inter_k / (area_k + pred_k),
        "iou": inter_k / (area_k + pred_k - inter_k),
    }


def _structure(ndim: int, frame_axes: int) -> np.ndarray:
    """Full connectivity within a frame, none across the leading ``frame_axes``."""
    if not 0 <= frame_axes < ndim:
        raise ValueError(f"frame_axes must be in [0, {ndim - 1}], got {frame_axes}")
    s = np.ones((3,) * ndim, bool)
    if frame_axes:
        s[...] = False
        s[(1,) * frame_axes] = True
    return s


@dataclass(frozen=True)
class HotSpot:
    """One high-loss region found by :func:`hot_spots`.

    Attributes:
        rank: 1 for the worst.
        peak_position: index of the maximum of the smoothed map within the region.
        centroid: centre of the region weighted by the smoothed map (index units).
        peak: the smoothed map's maximum there (the ranking key).
        mean: the mean of the raw map (``abs`` for signed maps) over the region.
        total: its sum over the region.
        area: the region's size in pixels.
        bbox: ``(start, stop)`` index tuples of the region's bounding box.
    """

    rank: int
    peak_position: tuple[int, ...]
    centroid: tuple[float, ...]
    peak: float
    mean: float
    total: float
    area: int
    bbox: tuple[tuple[int, ...], tuple[int, ...]]


def hot_spots(
    loss: ArrayLike,
    k: int = 10,
    *,
    sigma: float | Sequence[float] = 2.0,
    threshold: float | None = None,
    frame_axes: int = 0,
) -> list[HotSpot]:
    """The k highest-loss regions of a loss map, worst first.

    The map's magnitude m = |ℓ| is smoothed with a Gaussian, s = G_σ * m. The regions are the
    connected components of {x : s(x) > t} (full connectivity), with the threshold

    .. math::

        t = \\bar s + 2\\,\\operatorname{std}(s)

    unless given. Each region is ranked by its peak max s(x); the k highest are returned.
    A region holds exactly one entry, so two nearby maxima of one blob count once.

    Args:
        loss: a loss map (or a signed gradient map), any number of dimensions.
        k: how many regions at most (>= 1).
        sigma: Gaussian width in pixels, one value or one per axis (0 = no smoothing along
            that axis). With ``frame_axes`` the leading axes are never smoothed.
        threshold: the level t above which the smoothed map counts (default above).
        frame_axes: number of leading axes whose slices are independent frames.

    Returns:
        A list of :class:`HotSpot`, at most k, in decreasing peak.

    Example:
        >>> m = np.zeros((20, 20)); m[5, 5] = 1.0; m[15, 12] = 3.0
        >>> [h.peak_position for h in hot_spots(m, 2, sigma=1)]
        [(15, 12), (5, 5)]
    """
    m = np.abs(_numpy(loss, "loss").astype(np.float64, copy=False))
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    sig = np.broadcast_to(np.asarray(sigma, float), (m.ndim,)).copy()
    if np.any(sig < 0) or not np.all(np.isfinite(sig)):
        raise ValueError(f"sigma must be finite and >= 0, got {sigma!r}")
    sig[:frame_axes] = 0.0
    s = ndi.gaussian_filter(m, sig, mode="nearest") if np.any(sig > 0) else m
    if threshold is None:
        threshold = float(s.mean() + 2.0 * s.std())
    above = s > threshold
    if not above.any():
        if s.max() <= 0:
            return []
        above = s >= s.max()
    comp, n = ndi.label(above, structure=_structure(m.ndim, frame_axes))
    index = np.arange(1, n + 1)
    # every region's pixels are the pixels above (ndi.maximum sorts what it is given: the
    # whole map took ~20 ms of a 512² map's ~45)
    peaks = ndi.maximum(s[above], comp[above], index)
    order = np.argsort(-np.asarray(peaks), kind="stable")[:k]
    objects = ndi.find_objects(comp)
    result = []
    for rank, i in enumerate(order, start=1):
        sl = objects[i]
        region = comp[sl] == i + 1
        sub_s = s[sl]
        local = np.unravel_index(np.argmax(np.where(region, sub_s, -np.inf)), region.shape)
        peak_pos = tuple(int(a.start + b) for a, b in zip(sl, local, strict=True))
        w = np.where(region, sub_s, 0.0)
        grid = np.indices(region.shape, dtype=float)
        wsum = w.sum()
        centroid = tuple(
            float(a.start + ((g * w).sum() / wsum if wsum > 0 else g[region].mean()))
            for a, g in zip(sl, grid, strict=True)
        )
        raw = m[sl][region]
        result.append(
            HotSpot(
                rank=rank,
                peak_position=peak_pos,
                centroid=centroid,
                peak=float(peaks[i]),
                mean=float(raw.mean()),
                total=float(raw.sum()),
                area=int(region.sum()),
                bbox=(tuple(a.start for a in sl), tuple(a.stop for a in sl)),
            )
        )
    return result
