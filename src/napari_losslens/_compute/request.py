"""What the pipeline is asked (:class:`ComputeRequest`), what it answers
(:class:`ComputeResult`, :class:`Progress`) and the checks of a request (:func:`check_inputs`),
whose messages say what to change."""

from __future__ import annotations

from collections.abc import Hashable
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

from .. import core

__all__ = [
    "OUTPUTS",
    "WEIGHT_PARAMS",
    "ComputeRequest",
    "ComputeResult",
    "InputError",
    "Progress",
    "WeightParams",
    "check_inputs",
    "looks_like_probabilities",
]

#: What can be asked for. ``distances`` gives ``d1`` and ``d2``; ``errors`` the TP/FP/FN map;
#: ``object_stats`` a per-object table; ``hot_spots`` the worst regions.
OUTPUTS = (
    "loss_map",
    "gradient_map",
    "weight_map",
    "distances",
    "errors",
    "object_stats",
    "hot_spots",
)

#: Loss parameters that the weight-map group supplies (so a GUI shows them once).
WEIGHT_PARAMS = ("w0", "sigma", "class_weights", "background_only", "separate_touching")


class InputError(ValueError):
    """A bad combination of inputs; the message says what to change."""


@dataclass(frozen=True)
class WeightParams:
    """The U-Net weight-map parameters (see :func:`~napari_losslens.core.unet_weight_map`)."""

    w0: float = 10.0
    sigma: float = 5.0
    class_weights: Any = None
    background_only: bool = True
    separate_touching: bool = False


@dataclass
class ComputeRequest:
    """Everything :func:`~napari_losslens._compute.run` needs.

    Attributes:
        labels: ground-truth instance ids (0 = background), 2D, 3D or a stack.
        prediction: probabilities (or logits with ``from_logits``) or a 0/1 mask, same shape.
        image: optional intensity image, same shape (adds a mean intensity per object).
        spacing: pixel size per axis of ``labels`` (the layer's ``scale``); default 1.
        loss: a name from :func:`~napari_losslens.core.available_losses`.
        loss_params: the loss's own parameters (those not in :data:`WEIGHT_PARAMS`).
        weights: the weight-map parameters.
        outputs: which of :data:`OUTPUTS` to compute (the scalar loss always is).
        stack_mode: ``"volume"``: the last three axes are spatial (3D distances);
            ``"frames"``: every 2D plane is independent. 2D data ignore it.
        current_index: compute only this frame (an index into the leading axes).
        threshold: foreground threshold of the prediction for Dice/IoU and the error map
            (default 0.5, or 0 for logits).
        cache_key: identity and version of the labels for the distance cache
            (``None``: do not cache).
    """

    labels: np.ndarray
    prediction: np.ndarray
    image: np.ndarray | None = None
    spacing: tuple[float, ...] | None = None
    loss: str = "bce"
    loss_params: dict[str, Any] = field(default_factory=dict)
    weights: WeightParams = field(default_factory=WeightParams)
    outputs: tuple[str, ...] = ("loss_map",)
    from_logits: bool = False
    device: str = "auto"
    stack_mode: Literal["volume", "frames"] = "volume"
    current_index: tuple[int, ...] | None = None
    threshold: float | None = None
    hotspot_k: int = 10
    hotspot_sigma: float = 2.0
    cache_key: Hashable | None = None

    @property
    def spatial_ndim(self) -> int:
        """How many trailing axes are spatial."""
        nd = np.ndim(self.labels)
        if self.current_index is not None or self.stack_mode == "frames" or nd == 2:
            return 2
        return 3

    @property
    def leading(self) -> int:
        """How many leading axes index frames."""
        return np.ndim(self.labels) - self.spatial_ndim


class Progress(NamedTuple):
    """What :func:`~napari_losslens._compute.run_steps` yields before each step: ``done`` of
    ``total`` steps finished, ``step`` names the one about to run (``"done"`` at the end,
    when ``done == total``).

    ``ready`` holds outputs that are final before the computation ends (the weight map of
    a single frame, the first to be shown when a w0/σ slider moves, then its loss map), by
    role, and ``region`` the leading indices of the computed region they belong to;
    ``None`` and ``()`` otherwise. ``signed`` says whether the loss map can be negative
    (a region loss's gradient map), as :attr:`ComputeResult.signed` will.
    """

    done: int
    total: int
    step: str
    ready: dict[str, Any] | None = None
    region: tuple[int, ...] = ()
    signed: bool = False

    @property
    def percent(self) -> float:
        """How much is done, in percent (100 at the end)."""
        return 100.0 * self.done / self.total if self.total else 100.0


@dataclass
class ComputeResult:
    """What :func:`~napari_losslens._compute.run` computed.

    Attributes:
        value: the scalar loss (for frames: the mean over the frames computed).
        arrays: ``loss_map``, ``gradient_map``, ``weight_map``, ``d1``, ``d2``, ``errors``
            as asked, each of the computed region's shape.
        stats: the per-object table (:func:`~napari_losslens.core.object_stats`) or None.
        hot_spots: :class:`~napari_losslens.core.HotSpot` list, positions in indices of the
            full labels array.
        region: where ``arrays`` go in the full array: ``()`` for all of it, or the frame
            index of ``current_index``.
        shape: the full labels shape.
        device: the device used.
        seconds: wall time; ``timings`` splits it by step.
        signed: whether ``loss_map`` is signed (a region loss's gradient).
        reused: the steps whose output was taken from a step memo (their arrays, table
            or hot-spots are the very objects of the run that computed them).
    """

    value: float
    arrays: dict[str, np.ndarray]
    stats: dict[str, np.ndarray] | None
    hot_spots: list
    region: tuple[int, ...]
    shape: tuple[int, ...]
    device: str
    seconds: float
    timings: dict[str, float]
    signed: bool
    loss: str
    distance_cutoff: float = 0.0
    outputs: tuple[str, ...] = ()
    reused: tuple[str, ...] = ()


def check_inputs(request: ComputeRequest) -> None:
    """Raise :class:`InputError` for a combination that cannot be computed."""
    lab, pred = request.labels, request.prediction
    if lab is None:
        raise InputError("No ground-truth labels: add or choose a Labels layer.")
    if pred is None:
        raise InputError(
            "No prediction: add or choose an Image layer of probabilities (or logits), "
            "or a Labels mask."
        )
    if np.ndim(lab) < 2:
        raise InputError(f"Labels must be at least 2D, got shape {np.shape(lab)}.")
    if np.shape(lab) != np.shape(pred):
        raise InputError(
            f"Labels {np.shape(lab)} and prediction {np.shape(pred)} differ in shape: "
            "choose a prediction of the same shape as the labels."
        )
    if request.image is not None and np.shape(request.image) != np.shape(lab):
        raise InputError(
            f"Image {np.shape(request.image)} and labels {np.shape(lab)} differ in shape: "
            "choose an image of the same shape, or none."
        )
    if np.asarray(lab).dtype.kind not in "biu":
        raise InputError(
            f"Labels must hold integer ids, got dtype {np.asarray(lab).dtype}: "
            "choose a Labels layer."
        )
    if lab.size and lab.min() < 0:
        raise InputError(
            f"Labels hold negative ids (minimum {lab.min()}): ids must be >= 0 "
            "(0 is background); relabel the layer."
        )
    p = np.asarray(pred)
    if p.dtype.kind not in "biuf":
        raise InputError(f"Prediction must be numeric, got dtype {p.dtype}.")
    if p.dtype.kind == "f" and not np.all(np.isfinite(p)):
        raise InputError(
            "Prediction holds NaN or inf values: it must be finite probabilities or logits."
        )
    if not request.from_logits:
        lo, hi = (float(p.min()), float(p.max())) if p.size else (0.0, 0.0)
        if lo < 0.0 or hi > 1.0:
            hint = (
                "tick 'prediction holds logits' (from_logits=True) if these are logits"
                if p.dtype.kind == "f"
                else "use a Labels mask layer, or rescale to probabilities in [0, 1]"
            )
            raise InputError(
                f"Prediction values lie in [{lo:.3g}, {hi:.3g}], not in [0, 1]: they are "
                f"not probabilities; {hint}."
            )
    losses = core.available_losses()
    if request.loss not in losses:
        raise InputError(f"Unknown loss {request.loss!r}; choose one of: {', '.join(losses)}.")
    unknown = set(request.outputs) - set(OUTPUTS)
    if unknown:
        raise InputError(
            f"Unknown output(s) {sorted(unknown)}; choose among: {', '.join(OUTPUTS)}."
        )
    w = request.weights
    if not (np.isfinite(w.w0) and w.w0 >= 0):
        raise InputError(f"w0 must be >= 0, got {w.w0}.")
    if not (np.isfinite(w.sigma) and w.sigma > 0):
        raise InputError(f"sigma must be > 0, got {w.sigma}.")


def looks_like_probabilities(prediction: np.ndarray) -> bool:
    """True when every value lies in [0, 1] (so 'from logits' is probably wrong)."""
    p = np.asarray(prediction)
    return bool(p.size and p.min() >= 0.0 and p.max() <= 1.0)
