"""Read a training recording: each object's loss over the steps, and the objects that stay wrong.

What the widget shows for a recording, as plain functions of a
:class:`~napari_losslens.training.store.Recording`: the per-object table at one step (for a
labels layer's features), the loss of chosen objects over the steps (for a plot), and the
ranking of the objects whose loss stays high longest (for a tour, like the hot-spots).
numpy and scipy only.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from scipy import ndimage as ndi

from ..core import get_loss
from .store import OBJECT_COLUMNS, Recording

__all__ = [
    "ObjectHistory",
    "loss_curve",
    "object_history",
    "objects_that_stay_wrong",
    "step_index",
    "table_at_step",
]


def _recording(recording: Recording | str | Path) -> Recording:
    if isinstance(recording, Recording):
        return recording
    if isinstance(recording, (str, Path)):
        return Recording(recording)
    raise TypeError(f"recording must be a Recording or a path, got {type(recording).__name__}")


def step_index(recording: Recording, step: int) -> int:
    """The row of training step ``step`` in the recording's per-step arrays.

    Raises:
        ValueError: ``step`` was not recorded (the message gives the nearest recorded ones).
    """
    steps = recording.steps
    try:
        return steps.index(int(step))
    except ValueError:
        if not steps:
            raise ValueError(f"{recording.path} has no recorded step yet") from None
        nearest = sorted(steps, key=lambda s: abs(s - step))[:2]
        raise ValueError(
            f"step {step} was not recorded; the nearest recorded: {sorted(nearest)}"
        ) from None


def table_at_step(
    recording: Recording | str | Path, sample: str, step: int | None = None
) -> dict[str, np.ndarray]:
    """The per-object table of ``sample`` at a recorded training step.

    Args:
        recording: a :class:`Recording` or its path.
        sample: a sample name.
        step: a recorded training step (default: the last one).

    Returns:
        Equal-length columns, one row per object of the target in increasing id:
        ``index``, ``area``, ``mean_loss``, ``total_loss``, ``dice``, ``iou`` (see
        :func:`~napari_losslens.core.object_stats`), as in a labels layer's ``features``.

    Raises:
        ValueError: ``step`` not recorded, or nothing recorded yet.
        KeyError: no such sample.

    Example:
        >>> table_at_step("run.losslens.zarr", "dsb_nuclei", 100)["dice"][:3]
        array([0.91, 0.87, 0.95])
    """
    rec = _recording(recording)
    if not rec.steps:
        raise ValueError(f"{rec.path} has no recorded step yet")
    t = len(rec.steps) - 1 if step is None else step_index(rec, step)
    table = {
        "index": rec.read(sample, "objects/index"),
        "area": rec.read(sample, "objects/area"),
    }
    for col in OBJECT_COLUMNS:
        table[col] = rec.read(sample, f"objects/{col}", t)
    return table


def loss_curve(recording: Recording | str | Path, sample: str) -> tuple[np.ndarray, np.ndarray]:
    """The scalar loss of ``sample`` over the recorded steps: ``(steps, loss)``."""
    rec = _recording(recording)
    return np.asarray(rec.steps, np.int64), rec.read(sample, "loss")


def object_history(
    recording: Recording | str | Path,
    sample: str,
    ids: Sequence[int] | None = None,
    *,
    column: str = "mean_loss",
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A per-object column over the recorded steps (for a plot of an object's loss).

    Args:
        recording: a :class:`Recording` or its path.
        sample: a sample name.
        ids: object ids to return (default: all, in increasing id).
        column: ``mean_loss``, ``total_loss``, ``dice`` or ``iou``.

    Returns:
        ``(steps, ids, values)``: the steps ``(T,)``, the ids ``(n,)`` and the values
        ``(T, n)``.

    Raises:
        ValueError: an unknown column, or an id that is not an object of the target.

    Example:
        >>> steps, ids, loss = object_history("run.losslens.zarr", "dsb_nuclei", [7])
        >>> plt.plot(steps, loss[:, 0])
    """
    if column not in OBJECT_COLUMNS:
        raise ValueError(f"column must be one of {', '.join(OBJECT_COLUMNS)}, got {column!r}")
    rec = _recording(recording)
    all_ids = rec.read(sample, "objects/index")
    values = rec.read(sample, f"objects/{column}")
    if ids is None:
        return np.asarray(rec.steps, np.int64), all_ids, values
    ids = np.asarray(ids, np.int64).ravel()
    pos = np.searchsorted(all_ids, ids)
    found = (pos < len(all_ids)) & (all_ids[np.minimum(pos, len(all_ids) - 1)] == ids)
    if len(all_ids) == 0 or not found.all():
        missing = ids[~found] if len(all_ids) else ids
        raise ValueError(f"no object(s) {missing.tolist()} in sample {sample!r}")
    return np.asarray(rec.steps, np.int64), ids, values[:, pos]


@dataclass(frozen=True)
class ObjectHistory:
    """One object of :func:`objects_that_stay_wrong`.

    Attributes:
        rank: 1 for the object whose loss stayed highest.
        id: its label id in the target.
        area: its size in pixels.
        score: the ranking key: the loss integrated over the recorded steps (see
            :func:`objects_that_stay_wrong`).
        final_loss: its mean loss at the last recorded step.
        final_dice: its Dice at the last recorded step.
        centroid: its centre (index units of the target).
        bbox: ``(start, stop)`` index tuples of its bounding box.
    """

    rank: int
    id: int
    area: int
    score: float
    final_loss: float
    final_dice: float
    centroid: tuple[float, ...]
    bbox: tuple[tuple[int, ...], tuple[int, ...]]


def objects_that_stay_wrong(
    recording: Recording | str | Path, sample: str, k: int = 10, *, by: str = "loss"
) -> list[ObjectHistory]:
    """The k objects whose loss stays high longest: highest loss integrated over steps.

    With ℓ_o(s) the object's mean loss at recorded step s (its magnitude for a region loss,
    whose map is a signed gradient), or 1 − Dice with ``by="dice"``, the score is the area
    under the curve by the trapezoid rule over the recorded steps s_0 < ... < s_{T-1}:

    .. math::

        \\text{score}(o) = \\sum_{j=0}^{T-2} \\frac{s_{j+1} - s_j}{2}
            \\,\\big(\\ell_o(s_j) + \\ell_o(s_{j+1})\\big)

    and ℓ_o(s_0) when a single step is recorded. An object learnt early scores low, one that
    stays wrong to the end scores high.

    Args:
        recording: a :class:`Recording` or its path.
        sample: a sample name.
        k: how many objects at most (>= 1).
        by: ``"loss"`` (mean loss) or ``"dice"`` (1 − Dice).

    Returns:
        A list of :class:`ObjectHistory`, highest score first (ties: lower id first).

    Raises:
        ValueError: ``k`` < 1, an unknown ``by``, nothing recorded yet.

    Example:
        >>> [o.id for o in objects_that_stay_wrong("run.losslens.zarr", "dsb_nuclei", 3)]
        [41, 7, 88]
    """
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or k < 1:
        raise ValueError(f"k must be an integer >= 1, got {k!r}")
    if by not in ("loss", "dice"):
        raise ValueError(f"by must be 'loss' or 'dice', got {by!r}")
    rec = _recording(recording)
    steps = np.asarray(rec.steps, np.float64)
    if len(steps) == 0:
        raise ValueError(f"{rec.path} has no recorded step yet")
    ids = rec.read(sample, "objects/index")
    area = rec.read(sample, "objects/area")
    loss = rec.read(sample, "objects/mean_loss")
    dice = rec.read(sample, "objects/dice")
    if by == "dice":
        curve = 1.0 - dice
    else:
        curve = loss if get_loss(rec.loss).kind == "pixel" else np.abs(loss)
    if len(steps) == 1:
        score = curve[0]
    else:
        widths = np.diff(steps)[:, None]
        score = np.sum(widths * (curve[1:] + curve[:-1]) / 2.0, axis=0)
    order = np.lexsort((ids, -score))[:k]
    target = rec.read(sample, "target")
    chosen = ids[order]
    centroids = ndi.center_of_mass(np.ones(target.shape), target, chosen) if len(chosen) else []
    boxes = ndi.find_objects(target)
    result = []
    for rank, (j, centroid) in enumerate(zip(order, centroids, strict=True), start=1):
        box = boxes[int(ids[j]) - 1]
        result.append(
            ObjectHistory(
                rank=rank,
                id=int(ids[j]),
                area=int(area[j]),
                score=float(score[j]),
                final_loss=float(loss[-1, j]),
                final_dice=float(dice[-1, j]),
                centroid=tuple(float(c) for c in centroid),
                bbox=(tuple(s.start for s in box), tuple(s.stop for s in box)),
            )
        )
    return result
