"""The pipeline behind the widget and the console API: arrays in, arrays out (no napari).

A :class:`ComputeRequest` says what to compute (labels, prediction, spacing, the loss and
its parameters, the U-Net weight-map parameters, the outputs wanted, how to treat stacks);
:func:`run` computes it with :mod:`napari_losslens.core` and returns a
:class:`ComputeResult`. The expensive distances d1, d2 are kept in a
:class:`DistanceCache`, so that moving w0, σ or the class weights only re-evaluates the cheap
:func:`~napari_losslens.core.weight_map_from_distances`. :func:`run_steps` is the same
computation as a generator that yields a :class:`Progress` before every step, so that a thread
worker can report progress and stop between steps.

Stacks: the last ``spatial_ndim`` axes are spatial (2, or 3 for a volume), the leading ones
index independent frames. ``current_index`` restricts the work to one frame.
"""

from __future__ import annotations

import hashlib
import itertools
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field
from typing import Any, Literal, NamedTuple

import numpy as np

__all__ = [
    "OUTPUTS",
    "WEIGHT_PARAMS",
    "ComputeRequest",
    "ComputeResult",
    "DistanceCache",
    "InputError",
    "Progress",
    "WeightParams",
    "check_inputs",
    "labels_digest",
    "run",
    "run_steps",
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
    """Everything :func:`run` needs.

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
    """What :func:`run_steps` yields before each step: ``done`` of ``total`` steps finished,
    ``step`` names the one about to run (``"done"`` at the end, when ``done == total``)."""

    done: int
    total: int
    step: str

    @property
    def percent(self) -> float:
        """How much is done, in percent (100 at the end)."""
        return 100.0 * self.done / self.total if self.total else 100.0


@dataclass
class ComputeResult:
    """What :func:`run` computed.

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


# --------------------------------------------------------------------------------------
# The distance cache
# --------------------------------------------------------------------------------------


def labels_digest(labels: np.ndarray) -> tuple:
    """A fingerprint of a labels array's content (shape, dtype and a hash of the bytes).

    Cheap next to the distances it guards (about 0.5 ms per MB), so that a cache entry is
    only ever reused for the very labels it was computed from, whatever events were missed.
    """
    arr = np.ascontiguousarray(labels)
    h = hashlib.sha1(arr.view(np.uint8).reshape(-1) if arr.size else b"", usedforsecurity=False)
    return (arr.shape, arr.dtype.str, h.hexdigest())


@dataclass
class _Entry:
    labels: np.ndarray  # after separate_touching_cells when asked
    d1: np.ndarray
    d2: np.ndarray
    max_distance: float
    digest: tuple = ()  # labels_digest of the labels given (before separation)

    @property
    def nbytes(self) -> int:
        return self.labels.nbytes + self.d1.nbytes + self.d2.nbytes


class DistanceCache:
    """d1 and d2 per labels (key, frame), reused while parameters move.

    An entry holds the (separated, if asked) labels, d1, d2, the ``max_distance`` they were
    computed with and a digest of the labels' content (:func:`labels_digest`); an entry is
    reused only for labels of the same content, so a missed edit can never serve stale
    distances. A request that needs a larger cutoff radius (a larger σ or w0, see
    :func:`~napari_losslens.core.cutoff_radius`) recomputes with some headroom, one that needs
    less reuses it. :meth:`invalidate` (connected to the labels layer's data events) forgets
    everything, and a computation that was running while it was called does not store its
    result (it may have started from the labels before the edit). Thread-safe; least
    recently used entries go beyond ``max_bytes``.
    """

    #: Extra radius computed on a miss, so that a slowly growing σ does not miss every time.
    HEADROOM = 1.5

    def __init__(self, max_bytes: int = 1 << 30):
        self.max_bytes = int(max_bytes)
        self._entries: OrderedDict[Hashable, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._epoch = 0  # bumped by invalidate()
        self.hits = 0
        self.misses = 0

    def __len__(self) -> int:
        return len(self._entries)

    def invalidate(self, *_event: Any) -> None:
        """Forget everything (the labels changed); takes and ignores an event."""
        with self._lock:
            self._entries.clear()
            self._epoch += 1

    def get(
        self,
        labels: np.ndarray,
        *,
        key: Hashable,
        spacing: tuple[float, ...],
        separate_touching: bool,
        max_distance: float,
        device: str | None = None,
    ) -> _Entry:
        """The entry for ``labels``, computed (or recomputed further out) when needed."""
        from .core import cell_distances, separate_touching_cells

        full_key = (key, tuple(float(s) for s in spacing), bool(separate_touching))
        digest = labels_digest(labels) if key is not None else ()
        with self._lock:
            epoch = self._epoch
            entry = self._entries.get(full_key)
            if entry is not None and entry.digest == digest and entry.max_distance >= max_distance:
                self._entries.move_to_end(full_key)
                self.hits += 1
                return entry
        lab = separate_touching_cells(labels) if separate_touching else labels
        md = max_distance * self.HEADROOM
        d1, d2 = cell_distances(lab, spacing=spacing, max_distance=md, device=device)
        entry = _Entry(lab, d1, d2, md, digest)
        with self._lock:
            self.misses += 1
            if key is not None and epoch == self._epoch:
                self._entries[full_key] = entry
                self._entries.move_to_end(full_key)
                total = sum(e.nbytes for e in self._entries.values())
                while total > self.max_bytes and len(self._entries) > 1:
                    _, old = self._entries.popitem(last=False)
                    total -= old.nbytes
        return entry


# --------------------------------------------------------------------------------------
# Input checks: messages that say what to change
# --------------------------------------------------------------------------------------


def check_inputs(request: ComputeRequest) -> None:
    """Raise :class:`InputError` for a combination that cannot be computed."""
    from .core import available_losses

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
                "tick 'from logits' (from_logits=True) if these are logits"
                if p.dtype.kind == "f"
                else "use a Labels mask layer, or rescale to probabilities in [0, 1]"
            )
            raise InputError(
                f"Prediction values lie in [{lo:.3g}, {hi:.3g}], not in [0, 1]: they are "
                f"not probabilities; {hint}."
            )
    losses = available_losses()
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


# --------------------------------------------------------------------------------------
# The computation
# --------------------------------------------------------------------------------------


def _frames(request: ComputeRequest) -> list[tuple[int, ...]]:
    shape = np.shape(request.labels)
    lead = request.leading
    if request.current_index is not None:
        idx = tuple(int(i) for i in request.current_index)[:lead]
        if len(idx) != lead or any(not 0 <= i < n for i, n in zip(idx, shape, strict=False)):
            raise InputError(
                f"current slice {request.current_index} is outside the labels' leading axes "
                f"{shape[:lead]}."
            )
        return [idx]
    return list(itertools.product(*(range(n) for n in shape[:lead])))


def _prediction_array(pred: np.ndarray) -> np.ndarray:
    p = np.asarray(pred)
    if p.dtype.kind in "biu":
        return (p > 0).astype(np.float32)
    return p if p.dtype in (np.float32, np.float64) else p.astype(np.float32)


def _loss_kwargs(info, request: ComputeRequest, spacing, weight_map) -> dict[str, Any]:
    kwargs = {}
    w = request.weights
    for p in info.params:
        if p.name in WEIGHT_PARAMS:
            kwargs[p.name] = getattr(w, p.name)
        elif p.kind == "spacing":
            kwargs[p.name] = spacing
        elif p.kind == "array":
            if p.name == "weight_map" and weight_map is not None:
                kwargs[p.name] = weight_map
        elif p.name in request.loss_params:
            kwargs[p.name] = request.loss_params[p.name]
    return kwargs


def _needs_weight_map(info, outputs) -> bool:
    return "weight_map" in outputs or any(
        p.kind == "array" and p.name == "weight_map" for p in info.params
    )


def run_steps(
    request: ComputeRequest, cache: DistanceCache | None = None
) -> Iterator[tuple[int, int]]:
    """Compute ``request`` step by step: yields a :class:`Progress` before each step and
    returns the :class:`ComputeResult`.

    The steps, per frame: ``distances`` (when the weight map or the distances are wanted),
    ``weight map``, ``loss``; then, for the whole region: ``error map``, ``statistics``,
    ``hot-spots`` (each when asked). The last :class:`Progress` has ``done == total`` and the
    step ``"done"``. A generator, so that a thread worker can report progress and stop between
    steps (``result = yield from run_steps(...)``); :func:`run` drives it to the end.
    """
    from .core import (
        available_losses,
        cutoff_radius,
        error_map,
        gradient_map,
        hot_spots,
        loss_map,
        loss_value,
        object_stats,
        weight_map_from_distances,
    )
    from .core._arrays import resolve_device

    check_inputs(request)
    t_start = time.perf_counter()
    timings: dict[str, float] = {}

    def timed(name: str, fn: Callable, *a, **k):
        t0 = time.perf_counter()
        out = fn(*a, **k)
        timings[name] = timings.get(name, 0.0) + time.perf_counter() - t0
        return out

    info = available_losses()[request.loss]
    outputs = set(request.outputs)
    want_map = bool(outputs & {"loss_map", "object_stats", "hot_spots"})
    labels = np.asarray(request.labels)
    pred_full = _prediction_array(request.prediction)
    shape = labels.shape
    spatial = request.spatial_ndim
    spacing_all = (
        (1.0,) * labels.ndim
        if request.spacing is None
        else tuple(float(s) for s in request.spacing)
    )
    if len(spacing_all) != labels.ndim:
        raise InputError(f"spacing has {len(spacing_all)} values for {labels.ndim}D labels.")
    spacing = spacing_all[-spatial:]
    try:
        dev = resolve_device(None if request.device in (None, "auto") else request.device)
    except ValueError as err:
        raise InputError(f"{err}. Choose 'auto' or 'cpu' as the device.") from None
    w = request.weights
    radius = cutoff_radius(w.w0, w.sigma) if w.w0 > 0 else 0.0
    frames = _frames(request)
    region = frames[0] if request.current_index is not None else ()
    out_shape = shape[len(region) :]
    arrays: dict[str, np.ndarray] = {}

    def put(name: str, idx: tuple[int, ...], value: np.ndarray, dtype=np.float32) -> None:
        if name not in arrays:
            arrays[name] = np.zeros(out_shape, dtype)
        arrays[name][idx[len(region) :]] = value

    values = []
    need_weights = _needs_weight_map(info, outputs)
    need_distances = need_weights or "distances" in outputs
    per_frame = ["loss"]
    if need_weights:
        per_frame.insert(0, "weight map")
    if need_distances:
        per_frame.insert(0, "distances")
    after = [
        name
        for name, wanted in (
            ("error map", "errors" in outputs),
            ("statistics", "object_stats" in outputs),
            ("hot-spots", "hot_spots" in outputs),
        )
        if wanted
    ]
    total = len(frames) * len(per_frame) + len(after)
    done = 0

    def step(name: str, frame: int | None = None) -> Progress:
        if frame is not None and len(frames) > 1:
            name = f"{name}, frame {frame + 1}/{len(frames)}"
        return Progress(done, total, name)

    for n_frame, idx in enumerate(frames):
        lab = labels[idx]
        pred = pred_full[idx]
        weight = None
        if need_distances:
            yield step("distances", n_frame)
            done += 1
            entry_key = None if request.cache_key is None else (request.cache_key, idx, spatial)
            if cache is None:
                cache = DistanceCache()
            entry = timed(
                "distances",
                cache.get,
                lab,
                key=entry_key,
                spacing=spacing,
                separate_touching=w.separate_touching,
                max_distance=max(radius, 1.0),
                device=str(dev),
            )
            if need_weights:
                yield step("weight map", n_frame)
                done += 1
                weight = timed(
                    "weight_map",
                    weight_map_from_distances,
                    entry.labels > 0,
                    entry.d1,
                    entry.d2,
                    w0=w.w0,
                    sigma=w.sigma,
                    class_weights=w.class_weights,
                    background_only=w.background_only,
                )
                if "weight_map" in outputs:
                    put("weight_map", idx, weight)
            if "distances" in outputs:
                lim = entry.max_distance
                put("d1", idx, np.minimum(entry.d1, lim))
                put("d2", idx, np.minimum(entry.d2, lim))
        yield step("loss", n_frame)
        done += 1
        kwargs = _loss_kwargs(info, request, spacing, weight)
        common = dict(from_logits=request.from_logits, device=dev, **kwargs)
        try:
            if want_map:
                lm = timed("loss_map", loss_map, pred, lab, request.loss, **common)
                put("loss_map", idx, lm)
                if info.kind == "pixel":
                    values.append(float(np.mean(lm, dtype=np.float64)))
            if not want_map or info.kind != "pixel":
                values.append(timed("loss_value", loss_value, pred, lab, request.loss, **common))
            if "gradient_map" in outputs:
                put(
                    "gradient_map",
                    idx,
                    timed("gradient", gradient_map, pred, lab, request.loss, **common),
                )
        except (TypeError, ValueError) as err:
            raise InputError(f"{info.title}: {err}") from None

    sub = labels[region] if region else labels
    sub_pred = pred_full[region] if region else pred_full
    threshold = request.threshold
    if threshold is None:
        threshold = 0.0 if request.from_logits else 0.5
    frame_axes = sub.ndim - spatial
    if "errors" in outputs:
        yield step("error map")
        done += 1
        arrays["errors"] = timed("errors", error_map, sub, sub_pred, threshold=threshold)
    stats = None
    if "object_stats" in outputs:
        yield step("statistics")
        done += 1
        image = None if request.image is None else np.asarray(request.image)
        if image is not None and region:
            image = image[region]
        stats = timed(
            "object_stats",
            object_stats,
            sub,
            arrays["loss_map"],
            sub_pred,
            threshold=threshold,
            image=image,
            frame_axes=frame_axes,
        )
    spots = []
    if "hot_spots" in outputs:
        yield step("hot-spots")
        done += 1
        found = timed(
            "hot_spots",
            hot_spots,
            arrays["loss_map"],
            max(1, int(request.hotspot_k)),
            sigma=request.hotspot_sigma,
            frame_axes=frame_axes,
        )
        spots = [_shift_spot(s, region) for s in found]
    if "loss_map" not in outputs:
        arrays.pop("loss_map", None)  # computed for the table or the hot-spots only
    yield step("done")
    return ComputeResult(
        value=float(np.mean(values)) if values else float("nan"),
        arrays=arrays,
        stats=stats,
        hot_spots=spots,
        region=tuple(region),
        shape=tuple(shape),
        device=str(dev),
        seconds=time.perf_counter() - t_start,
        timings=timings,
        signed=info.kind != "pixel",
        loss=request.loss,
        distance_cutoff=radius,
        outputs=tuple(request.outputs),
    )


def _shift_spot(spot, region: tuple[int, ...]):
    """A hot-spot found in a frame, in indices of the full array."""
    if not region:
        return spot
    from dataclasses import replace

    r = tuple(region)
    return replace(
        spot,
        peak_position=r + spot.peak_position,
        centroid=tuple(float(i) for i in r) + spot.centroid,
        bbox=(r + spot.bbox[0], tuple(i + 1 for i in r) + spot.bbox[1]),
    )


def run(request: ComputeRequest, cache: DistanceCache | None = None) -> ComputeResult:
    """Compute ``request`` to the end (see :func:`run_steps`)."""
    gen = run_steps(request, cache)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
