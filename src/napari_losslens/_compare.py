"""Comparing losses and models: several maps side by side, and what changed between two models.

Arrays in, arrays and tables out (no napari, no Qt), so that the console API, the widget and
the command line share one computation:

- **losses mode**: one prediction, 2 to :data:`MAX_PANES` losses (each with its
  parameters): one map per loss.
- **models mode**: two predictions (model A and model B), one loss: one map per model, the
  difference map A − B, and a per-object table of the change in loss, Dice and IoU.

Normalisation (so that panes compare whatever the losses' scales): each map is divided by
the sum of its absolute values over the image, so a pane shows the *share* of its loss (a
pixel loss) or of its gradient's total pull (a region loss) that each pixel holds, and
every pane's absolute values sum to 1. Panes of the same kind then share one contrast
range: ``[0, h]`` for per-pixel losses, ``[−h, h]`` for signed gradients, h the 99.5th
percentile over all panes of that kind. The difference map is *not* normalised (it is in
the loss's own units, A − B, so positive where model A has more loss than model B) and
has its own symmetric range.

Hot-spots: the regions where the panes together put the most weight (the sum of the
normalised absolute maps), or, for two models, where the difference is largest in
absolute value; stepping through them moves the one camera that all grid panes share.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from .core import HotSpot, get_loss, hot_spots, loss_map, loss_value, object_stats

__all__ = [
    "MAX_PANES",
    "Comparison",
    "LossSpec",
    "Pane",
    "compare_arrays",
    "normalize",
    "parse_losses",
    "per_object_changes",
    "shared_limits",
]

#: At most this many panes side by side.
MAX_PANES = 6

#: Columns of the per-object table (besides ``index``, the object id).
CHANGE_COLUMNS = (
    "area",
    "loss_a",
    "loss_b",
    "loss_change",
    "dice_a",
    "dice_b",
    "dice_change",
    "iou_a",
    "iou_b",
    "iou_change",
    "verdict",
)


@dataclass(frozen=True)
class LossSpec:
    """A loss and its parameters (validated, only those given)."""

    name: str
    params: Mapping[str, Any] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """``"dice"`` or ``"focal (gamma=1)"``: the loss name and the parameters given."""
        if not self.params:
            return self.name
        args = ", ".join(
            f"{k}={v:g}" if isinstance(v, float) else f"{k}={v}" for k, v in self.params.items()
        )
        return f"{self.name} ({args})"


def parse_losses(losses: Any) -> tuple[LossSpec, ...]:
    """Loss names or ``(name, params)`` pairs, checked against the registry.

    Args:
        losses: a name, a :class:`LossSpec`, a ``(name, {param: value})`` pair, or a list of
            these.

    Returns:
        The specs, in order.

    Raises:
        TypeError: an entry of another kind, parameters that are not a mapping, or an
            unknown parameter name.
        ValueError: an unknown loss, a parameter out of range, none or more than
            :data:`MAX_PANES` losses.

    Example:
        >>> [s.title for s in parse_losses(["bce", ("focal", {"gamma": 1.0})])]
        ['bce', 'focal (gamma=1)']
    """
    if isinstance(losses, (str, LossSpec)) or (
        isinstance(losses, tuple) and len(losses) == 2 and isinstance(losses[1], Mapping)
    ):
        losses = [losses]
    if not isinstance(losses, Sequence) or isinstance(losses, str):
        raise TypeError(
            f"losses must be a list of loss names or (name, params) pairs, got "
            f"{type(losses).__name__}"
        )
    specs = []
    for entry in losses:
        if isinstance(entry, LossSpec):
            name, params = entry.name, dict(entry.params)
        elif isinstance(entry, str):
            name, params = entry, {}
        elif isinstance(entry, (tuple, list)) and len(entry) == 2 and isinstance(entry[0], str):
            name, params = entry
            if not isinstance(params, Mapping):
                raise TypeError(
                    f"the parameters of loss {name!r} must be a dict, got {type(params).__name__}"
                )
            params = dict(params)
        else:
            raise TypeError(f"each loss must be a name or a (name, params) pair, got {entry!r}")
        info = get_loss(name)
        resolved = info.resolve_params(params)
        specs.append(LossSpec(name, {k: resolved[k] for k in params}))
    if not specs:
        raise ValueError("losses must name at least one loss, got none")
    if len(specs) > MAX_PANES:
        raise ValueError(f"at most {MAX_PANES} losses can be compared, got {len(specs)}")
    return tuple(specs)


@dataclass
class Pane:
    """One map of a comparison.

    Attributes:
        title: what the pane shows (``"dice (smooth=1)"``, ``"B: bce"``).
        loss: the loss's spec.
        prediction: 0 for model A (or the only prediction), 1 for model B.
        kind: ``"pixel"`` (a per-pixel loss) or ``"region"`` (a signed gradient ∂L/∂p).
        value: the scalar loss.
        raw: the map in the loss's units.
        normalized: ``raw / scale``: its absolute values sum to 1.
        scale: the sum of ``|raw|`` (1 where the map is all zeros).
    """

    title: str
    loss: LossSpec
    prediction: int
    kind: Literal["pixel", "region"]
    value: float
    raw: np.ndarray
    normalized: np.ndarray
    scale: float


@dataclass
class Comparison:
    """What :func:`compare_arrays` computed.

    Attributes:
        mode: ``"losses"`` (one prediction, several losses) or ``"models"`` (two
            predictions, one loss).
        panes: the maps, in display order.
        limits: shared contrast limits by pane kind (``"pixel"``, ``"region"``) and for
            ``"difference"``.
        difference: the map of model A minus model B (models mode), else None.
        table: per-object changes (models mode) as a dict of columns, else None.
        hot_spots: where to look first, worst first.
    """

    mode: Literal["losses", "models"]
    panes: list[Pane]
    limits: dict[str, tuple[float, float]]
    difference: np.ndarray | None = None
    table: dict[str, np.ndarray] | None = None
    hot_spots: list[HotSpot] = field(default_factory=list)

    @property
    def maps(self) -> dict[str, np.ndarray]:
        """The normalised maps by pane title (and ``"A − B"`` for the difference)."""
        out = {p.title: p.normalized for p in self.panes}
        if self.difference is not None:
            out["A − B"] = self.difference
        return out

    def pane_limits(self, pane: Pane) -> tuple[float, float]:
        """The contrast limits shared by the panes of ``pane``'s kind."""
        return self.limits[pane.kind]


def normalize(values: np.ndarray) -> tuple[np.ndarray, float]:
    """``values / Σ|values|`` and the divisor (1 for an all-zero map).

    Example:
        >>> m, s = normalize(np.array([1.0, -3.0]))
        >>> m.tolist(), s
        ([0.25, -0.75], 4.0)
    """
    a = np.asarray(values)
    total = float(np.abs(a).sum(dtype=np.float64))
    if not np.isfinite(total) or total == 0.0:
        return a.astype(np.float32, copy=True), 1.0
    return (a / total).astype(np.float32), total


def _percentile_abs(arrays: list[np.ndarray]) -> float:
    if not arrays:
        return 1.0
    flat = np.concatenate([np.abs(np.ravel(a)) for a in arrays])
    if flat.size > 262_144:  # a regular subsample: as good, much faster
        flat = flat[:: flat.size // 262_144]
    hi = float(np.percentile(flat, 99.5)) if flat.size else 0.0
    if hi <= 0:
        hi = float(flat.max()) if flat.size else 0.0
    return hi if hi > 0 else 1.0


def shared_limits(panes: Sequence[Pane], difference: np.ndarray | None = None):
    """Contrast limits shared by panes of the same kind (see the module docstring)."""
    limits = {}
    for kind in ("pixel", "region"):
        hi = _percentile_abs([p.normalized for p in panes if p.kind == kind])
        limits[kind] = (0.0, hi) if kind == "pixel" else (-hi, hi)
    if difference is not None:
        hi = _percentile_abs([difference])
        limits["difference"] = (-hi, hi)
    return limits


def per_object_changes(
    labels: np.ndarray,
    map_a: np.ndarray,
    map_b: np.ndarray,
    prediction_a: np.ndarray,
    prediction_b: np.ndarray,
    *,
    threshold: float = 0.5,
) -> dict[str, np.ndarray]:
    """Per ground-truth object: loss, Dice and IoU of models A and B, and their change B − A.

    The loss of an object is the mean of the map over its pixels (for a region loss, the
    mean of ∂L/∂p there); Dice and IoU are those of
    :func:`~napari_losslens.core.object_stats` (the predicted components touching the
    object). ``verdict`` says how the object fared from A to B by its Dice: ``"better"``
    (Dice up), ``"worse"`` (down) or ``"same"``.

    Returns:
        A dict of equal-length columns: ``index`` (the object id) and
        :data:`CHANGE_COLUMNS`.
    """
    a = object_stats(labels, map_a, prediction_a, threshold=threshold)
    b = object_stats(labels, map_b, prediction_b, threshold=threshold)
    d_dice = b["dice"] - a["dice"]
    verdict = np.where(d_dice > 1e-12, "better", np.where(d_dice < -1e-12, "worse", "same"))
    return {
        "index": a["index"],
        "area": a["area"],
        "loss_a": a["mean_loss"],
        "loss_b": b["mean_loss"],
        "loss_change": b["mean_loss"] - a["mean_loss"],
        "dice_a": a["dice"],
        "dice_b": b["dice"],
        "dice_change": d_dice,
        "iou_a": a["iou"],
        "iou_b": b["iou"],
        "iou_change": b["iou"] - a["iou"],
        "verdict": verdict.astype(object),
    }


def _loss_kwargs(spec: LossSpec, spacing) -> dict[str, Any]:
    kw = dict(spec.params)
    info = get_loss(spec.name)
    if spacing is not None and any(p.kind == "spacing" for p in info.params):
        kw.setdefault("spacing", tuple(spacing))
    return kw


def compare_arrays(
    labels: np.ndarray,
    predictions: Sequence[np.ndarray],
    losses: Any,
    *,
    from_logits: bool = False,
    spacing: Sequence[float] | None = None,
    device=None,
    threshold: float | None = None,
    hotspot_k: int = 10,
    hotspot_sigma: float = 2.0,
) -> Comparison:
    """Maps of several losses for one prediction, or of one loss for two predictions.

    Args:
        labels: ground-truth instance labels (0 = background), 2D or 3D.
        predictions: a list of one or two arrays of the labels' shape: probabilities, or
            logits with ``from_logits=True``.
        losses: as :func:`parse_losses`: 2 to :data:`MAX_PANES` losses for one prediction,
            exactly one for two.
        from_logits: the predictions hold logits.
        spacing: pixel size per axis, passed to the losses that take ``spacing``.
        device: the torch device (default: CUDA when present).
        threshold: foreground threshold for Dice/IoU (default 0.5, or 0 for logits).
        hotspot_k, hotspot_sigma: how many hot-spots, and their smoothing (pixels).

    Returns:
        A :class:`Comparison`.

    Raises:
        ValueError: not one or two predictions, shapes that differ, the wrong number of
            losses for the mode, and every error of
            :func:`~napari_losslens.core.loss_map`.
        TypeError: as :func:`parse_losses`.

    Example:
        >>> lab = np.zeros((8, 8), int); lab[2:6, 2:6] = 1
        >>> c = compare_arrays(lab, [np.full((8, 8), 0.4)], ["bce", "dice"])
        >>> [p.title for p in c.panes], round(float(np.abs(c.panes[0].normalized).sum()), 6)
        (['bce', 'dice'], 1.0)
    """
    if isinstance(predictions, np.ndarray) or hasattr(predictions, "shape"):
        predictions = [predictions]
    predictions = list(predictions)
    if len(predictions) not in (1, 2):
        raise ValueError(
            f"predictions must be one array or a list of two (model A, model B), got "
            f"{len(predictions)}"
        )
    specs = parse_losses(losses)
    mode: Literal["losses", "models"] = "losses" if len(predictions) == 1 else "models"
    if mode == "losses" and len(specs) < 2:
        raise ValueError(
            f"comparing losses needs 2 to {MAX_PANES} of them for one prediction, got "
            f"{len(specs)}; pass two predictions to compare models with one loss"
        )
    if mode == "models" and len(specs) != 1:
        raise ValueError(
            f"comparing two predictions takes exactly one loss, got {len(specs)} "
            f"({', '.join(s.name for s in specs)})"
        )
    lab = np.asarray(labels)
    preds = [np.asarray(p) for p in predictions]
    for i, p in enumerate(preds):
        if p.shape != lab.shape:
            which = "prediction" if mode == "losses" else f"prediction {'AB'[i]}"
            raise ValueError(f"{which} must have the labels' shape {lab.shape}, got {p.shape}")
    thr = threshold if threshold is not None else (0.0 if from_logits else 0.5)
    jobs = (
        [(s, 0, s.title) for s in specs]
        if mode == "losses"
        else [(specs[0], i, f"{'AB'[i]}: {specs[0].title}") for i in range(2)]
    )
    panes = []
    for spec, i, title in jobs:
        kw = _loss_kwargs(spec, spacing)
        common = {"from_logits": from_logits, "device": device}
        raw = np.asarray(loss_map(preds[i], lab, spec.name, **common, **kw), dtype=np.float32)
        value = float(loss_value(preds[i], lab, spec.name, **common, **kw))
        normalized, scale = normalize(raw)
        kind = get_loss(spec.name).kind
        panes.append(Pane(title, spec, i, kind, value, raw, normalized, scale))
    difference = table = None
    if mode == "models":
        difference = panes[0].raw - panes[1].raw
        table = per_object_changes(
            lab, panes[0].raw, panes[1].raw, preds[0], preds[1], threshold=thr
        )
        focus = np.abs(difference)
    else:
        focus = np.sum([np.abs(p.normalized) for p in panes], axis=0)
    spots = hot_spots(focus, k=hotspot_k, sigma=hotspot_sigma) if focus.any() else []
    return Comparison(
        mode=mode,
        panes=panes,
        limits=shared_limits(panes, difference),
        difference=difference,
        table=table,
        hot_spots=list(spots),
    )
