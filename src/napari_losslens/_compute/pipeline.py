"""The computation as a pipeline: a list of named steps over one shared :class:`Job`.

:func:`plan` lists the steps a request needs, in order: per frame ``distances`` (when the
weight map or the distances are wanted), ``weight map`` and ``loss``; then, once for the
whole region, ``error map``, ``overlap`` and ``statistics`` (with the per-object table),
and ``hot-spots`` (each when asked). Each step is
a plain function ``step(job)`` that reads what earlier steps left in the job and adds its
own part. :func:`run_steps` walks the plan as a generator that yields a :class:`Progress`
before every step (so that a thread worker can report progress and stop between steps);
:func:`run` drives it to the end.

Stacks: the last ``spatial_ndim`` axes are spatial (2, or 3 for a volume), the leading ones
index independent frames. ``current_index`` restricts the work to one frame.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable, Hashable, Iterator
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import Any

import numpy as np

from .. import core
from ..core._arrays import resolve_device
from .cache import DistanceCache, labels_digest
from .memo import StepMemo
from .request import (
    WEIGHT_PARAMS,
    ComputeRequest,
    ComputeResult,
    InputError,
    Progress,
    check_inputs,
)

__all__ = ["GRADIENT_COLUMNS", "PIPELINE", "Job", "Step", "plan", "run", "run_steps"]


# --------------------------------------------------------------------------------------
# The state the steps share
# --------------------------------------------------------------------------------------


@dataclass
class Job:
    """One request being computed: its inputs, read once, and what the steps produce.

    ``frame`` (the current frame's index, labels and prediction), ``entry`` (its cached
    distances) and ``weight`` (its weight map) are set by the per-frame steps and read by the
    ones after them; ``overlap`` (the per-object Dice and IoU) is read by the statistics;
    ``arrays``, ``values``, ``stats`` and ``spots`` collect the results.
    """

    request: ComputeRequest
    info: Any  # the loss's core.LossInfo
    cache: DistanceCache
    labels: np.ndarray
    prediction: np.ndarray
    spacing: tuple[float, ...]  # of the spatial axes
    device: Any
    radius: float  # the weight map's cutoff radius
    frames: list[tuple[int, ...]]
    region: tuple[int, ...]
    started: float
    memo: StepMemo | None = None
    timings: dict[str, float] = field(default_factory=dict)
    arrays: dict[str, np.ndarray] = field(default_factory=dict)
    values: list[float] = field(default_factory=list)
    stats: dict[str, np.ndarray] | None = None
    overlap: dict[str, np.ndarray] | None = None
    spots: list = field(default_factory=list)
    # the frame the per-frame steps work on
    frame: tuple[int, ...] = ()
    entry: Any = None
    restored: set[str] = field(default_factory=set)  # steps taken from the memo

    @property
    def outputs(self) -> set[str]:
        return set(self.request.outputs)

    @property
    def spatial_ndim(self) -> int:
        return self.request.spatial_ndim

    @property
    def needs_weights(self) -> bool:
        """The weight map is shown, or the loss takes it as an input."""
        return "weight_map" in self.outputs or any(
            p.kind == "array" and p.name == "weight_map" for p in self.info.params
        )

    @property
    def needs_distances(self) -> bool:
        return self.needs_weights or "distances" in self.outputs

    @property
    def loss_uses_weights(self) -> bool:
        """The loss reads the weight-map parameters (so w0 and σ change it)."""
        return any(
            p.name in WEIGHT_PARAMS or (p.kind == "array" and p.name == "weight_map")
            for p in self.info.params
        )

    @property
    def needs_loss_map(self) -> bool:
        """The map is shown, or the statistics or hot-spots are made from it."""
        return bool(self.outputs & {"loss_map", "object_stats", "hot_spots"})

    @property
    def threshold(self) -> float:
        t = self.request.threshold
        if t is None:
            return 0.0 if self.request.from_logits else 0.5
        return t

    def timed(self, name: str, fn: Callable, *args, **kwargs):
        """Call ``fn`` and add its wall time to ``timings[name]``."""
        t0 = time.perf_counter()
        out = fn(*args, **kwargs)
        self.timings[name] = self.timings.get(name, 0.0) + time.perf_counter() - t0
        return out

    @property
    def local(self) -> tuple[int, ...]:
        """The current frame's index within the computed region."""
        return self.frame[len(self.region) :]

    def put(self, name: str, value: np.ndarray, dtype=np.float32) -> None:
        """Write the current frame's ``value`` into the output array ``name`` (a single
        frame's array is taken as it is, not copied)."""
        if not self.local:
            self.arrays[name] = np.asarray(value, dtype)
            return
        if name not in self.arrays:
            self.arrays[name] = np.zeros(self.labels.shape[len(self.region) :], dtype)
        self.arrays[name][self.local] = value

    @property
    def weight(self) -> np.ndarray | None:
        """The current frame's weight map (once the weight-map step ran or was restored)."""
        full = self.arrays.get("weight_map")
        return None if full is None else full[self.local]

    # content keys of the memoised steps (computed once, only when a memo is used)

    @cached_property
    def data_key(self) -> Hashable:
        return (labels_digest(self.labels), self.region, self.spatial_ndim, self.spacing)

    @cached_property
    def prediction_key(self) -> Hashable:
        return labels_digest(self.prediction)

    @cached_property
    def image_key(self) -> Hashable:
        image = self.request.image
        return None if image is None else labels_digest(np.asarray(image))

    def whole(self, array: np.ndarray | None) -> np.ndarray | None:
        """``array`` restricted to the computed region (all of it, or one frame)."""
        if array is None or not self.region:
            return array
        return array[self.region]


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


def prepare(
    request: ComputeRequest, cache: DistanceCache | None = None, memo: StepMemo | None = None
) -> Job:
    """Check ``request`` and read it into a :class:`Job` (no computation yet)."""
    check_inputs(request)
    started = time.perf_counter()
    labels = np.asarray(request.labels)
    spacing_all = (
        (1.0,) * labels.ndim
        if request.spacing is None
        else tuple(float(s) for s in request.spacing)
    )
    if len(spacing_all) != labels.ndim:
        raise InputError(f"spacing has {len(spacing_all)} values for {labels.ndim}D labels.")
    try:
        device = resolve_device(None if request.device in (None, "auto") else request.device)
    except ValueError as err:
        raise InputError(f"{err}. Choose 'auto' or 'cpu' as the device.") from None
    w = request.weights
    frames = _frames(request)
    return Job(
        request=request,
        info=core.available_losses()[request.loss],
        cache=cache if cache is not None else DistanceCache(),
        labels=labels,
        prediction=_prediction_array(request.prediction),
        spacing=spacing_all[-request.spatial_ndim :],
        device=device,
        radius=core.cutoff_radius(w.w0, w.sigma) if w.w0 > 0 else 0.0,
        frames=frames,
        region=frames[0] if request.current_index is not None else (),
        started=started,
        memo=memo,
    )


# --------------------------------------------------------------------------------------
# The steps
# --------------------------------------------------------------------------------------


def compute_distances(job: Job) -> None:
    """d1, d2 of the current frame, from the cache (or computed into it)."""
    request, w = job.request, job.request.weights
    key = None if request.cache_key is None else (request.cache_key, job.frame, job.spatial_ndim)
    job.entry = job.timed(
        "distances",
        job.cache.get,
        job.labels[job.frame],
        key=key,
        spacing=job.spacing,
        separate_touching=w.separate_touching,
        max_distance=max(job.radius, 1.0),
        device=str(job.device),
    )
    if "distances" in job.outputs:
        lim = job.entry.max_distance
        job.put("d1", np.minimum(job.entry.d1, lim))
        job.put("d2", np.minimum(job.entry.d2, lim))


def compute_weight_map(job: Job) -> None:
    """The U-Net weight map of the current frame, from its distances."""
    w, entry = job.request.weights, job.entry
    weight = job.timed(
        "weight_map",
        core.weight_map_from_distances,
        entry.labels > 0,
        entry.d1,
        entry.d2,
        w0=w.w0,
        sigma=w.sigma,
        class_weights=w.class_weights,
        background_only=w.background_only,
    )
    job.put("weight_map", weight)  # dropped from the result unless asked for


def _loss_kwargs(job: Job) -> dict[str, Any]:
    """The loss's keyword arguments: weight-map parameters, spacing, arrays, its own."""
    request, kwargs = job.request, {}
    for p in job.info.params:
        if p.name in WEIGHT_PARAMS:
            kwargs[p.name] = getattr(request.weights, p.name)
        elif p.kind == "spacing":
            kwargs[p.name] = job.spacing
        elif p.kind == "array":
            weight = job.weight if p.name == "weight_map" else None
            if weight is not None:
                kwargs[p.name] = weight
        elif p.name in request.loss_params:
            kwargs[p.name] = request.loss_params[p.name]
    return kwargs


def compute_loss(job: Job) -> None:
    """The current frame's loss map (when needed), scalar loss and gradient map (when asked).

    A pixel loss's value is the mean of its map (no second pass); a region loss's value is
    computed on its own, since its map is a gradient.
    """
    request, info = job.request, job.info
    pred, lab = job.prediction[job.frame], job.labels[job.frame]
    common = dict(from_logits=request.from_logits, device=job.device, **_loss_kwargs(job))
    pixel = info.kind == "pixel"
    try:
        if job.needs_loss_map:
            lm = job.timed("loss_map", core.loss_map, pred, lab, request.loss, **common)
            job.put("loss_map", lm)
            if pixel:
                job.values.append(float(np.mean(lm, dtype=np.float64)))
        if not job.needs_loss_map or not pixel:
            value = job.timed("loss_value", core.loss_value, pred, lab, request.loss, **common)
            job.values.append(value)
        if "gradient_map" in job.outputs:
            grad = job.timed("gradient", core.gradient_map, pred, lab, request.loss, **common)
            job.put("gradient_map", grad)
    except (TypeError, ValueError) as err:
        raise InputError(f"{info.title}: {err}") from None


def compute_error_map(job: Job) -> None:
    """TP/FP/FN of the whole region."""
    job.arrays["errors"] = job.timed(
        "errors",
        core.error_map,
        job.whole(job.labels),
        job.whole(job.prediction),
        threshold=job.threshold,
    )


#: A region loss's map is its gradient ∂L/∂p, not a loss: its per-object columns say so.
GRADIENT_COLUMNS = {"mean_loss": "mean_abs_gradient", "total_loss": "total_abs_gradient"}


def compute_overlap(job: Job) -> None:
    """The per-object Dice and IoU of the whole region (with the prediction's connected
    components): they depend on the labels, the prediction and the threshold, not on the
    loss, so a w0/σ move takes them from the memo."""
    labels = job.whole(job.labels)
    job.overlap = job.timed(
        "overlap",
        core.object_overlap,
        labels,
        job.whole(job.prediction),
        threshold=job.threshold,
        frame_axes=labels.ndim - job.spatial_ndim,
    )


def compute_object_stats(job: Job) -> None:
    """The per-object table of the whole region: the loss columns from the loss map, the
    overlap columns from the ``overlap`` step, in the columns' order of
    :func:`~napari_losslens.core.object_stats`.

    For a region loss (whose map is the signed gradient ∂L/∂p) the table holds the mean and
    total of |∂L/∂p| per object, as ``mean_abs_gradient`` and ``total_abs_gradient``: a
    signed mean would cancel, and neither is a loss.
    """
    image = None if job.request.image is None else np.asarray(job.request.image)
    labels = job.whole(job.labels)
    gradient = job.info.kind != "pixel"
    loss = job.arrays["loss_map"]
    stats = job.timed(
        "object_stats",
        core.object_stats,
        labels,
        np.abs(loss) if gradient else loss,
        image=job.whole(image),
    )
    intensity = stats.pop("mean_intensity", None)
    stats.update((k, v) for k, v in job.overlap.items() if k != "index")
    if intensity is not None:
        stats["mean_intensity"] = intensity
    if gradient:
        stats = {GRADIENT_COLUMNS.get(k, k): v for k, v in stats.items()}
    job.stats = stats


def _shift_spot(spot, region: tuple[int, ...]):
    """A hot-spot found in a frame, in indices of the full array."""
    if not region:
        return spot
    r = tuple(region)
    return replace(
        spot,
        peak_position=r + spot.peak_position,
        centroid=tuple(float(i) for i in r) + spot.centroid,
        bbox=(r + spot.bbox[0], tuple(i + 1 for i in r) + spot.bbox[1]),
    )


def compute_hot_spots(job: Job) -> None:
    """The worst regions of the loss map, in indices of the full array."""
    loss = job.arrays["loss_map"]
    found = job.timed(
        "hot_spots",
        core.hot_spots,
        loss,
        max(1, int(job.request.hotspot_k)),
        sigma=job.request.hotspot_sigma,
        frame_axes=loss.ndim - job.spatial_ndim,
    )
    job.spots = [_shift_spot(s, job.region) for s in found]


# --------------------------------------------------------------------------------------
# The pipeline
# --------------------------------------------------------------------------------------


def _freeze(params: dict[str, Any]) -> Hashable:
    return tuple(sorted((k, repr(v)) for k, v in params.items()))


def _weight_key(job: Job) -> Hashable:
    return ("weight map", job.data_key, job.request.weights)


def _loss_key(job: Job) -> Hashable:
    r = job.request
    return (
        "loss",
        job.data_key,
        job.prediction_key,
        r.loss,
        _freeze(r.loss_params),
        r.from_logits,
        str(job.device),
        r.weights if job.loss_uses_weights else None,
        job.needs_loss_map,
        "gradient_map" in job.outputs,
    )


def _errors_key(job: Job) -> Hashable:
    return ("errors", job.data_key, job.prediction_key, job.threshold)


def _overlap_key(job: Job) -> Hashable:
    return ("overlap", job.data_key, job.prediction_key, job.threshold)


def _stats_key(job: Job) -> Hashable:
    return ("statistics", _loss_key(job), job.image_key, _overlap_key(job))


def _spots_key(job: Job) -> Hashable:
    r = job.request
    return ("hot-spots", _loss_key(job), int(r.hotspot_k), float(r.hotspot_sigma))


_LOSS_ARRAYS = ("loss_map", "gradient_map")


def _save_loss(job: Job) -> Any:
    return ({k: job.arrays[k] for k in _LOSS_ARRAYS if k in job.arrays}, list(job.values))


def _restore_loss(job: Job, saved: Any) -> None:
    arrays, values = saved
    job.arrays.update(arrays)
    job.values = list(values)


def _save_array(name: str) -> Callable[[Job], Any]:
    return lambda job: job.arrays[name]


def _restore_array(name: str) -> Callable[[Job, Any], None]:
    def restore(job: Job, saved: Any) -> None:
        job.arrays[name] = saved

    return restore


def _restore_overlap(job: Job, saved: Any) -> None:
    job.overlap = saved


def _restore_stats(job: Job, saved: Any) -> None:
    job.stats = saved


def _restore_spots(job: Job, saved: Any) -> None:
    job.spots = saved


@dataclass(frozen=True)
class Step:
    """A named step: ``run(job)`` when ``wanted(job)``, per frame or once.

    A step with a ``key`` is memoised: when a :class:`~.memo.StepMemo` holds its output
    for the same key, ``restore(job, saved)`` puts it back instead of running the step
    (for all frames at once); otherwise ``save(job)`` is stored after it ran.
    """

    name: str
    run: Callable[[Job], None]
    per_frame: bool
    wanted: Callable[[Job], bool]
    key: Callable[[Job], Hashable] | None = None
    save: Callable[[Job], Any] | None = None
    restore: Callable[[Job, Any], None] | None = None


def _asked(output: str) -> Callable[[Job], bool]:
    return lambda job: output in job.outputs


def _wants_distances(job: Job) -> bool:
    if "distances" in job.outputs:
        return True
    return job.needs_weights and "weight map" not in job.restored


#: Every step, in order; :func:`plan` keeps those a request needs.
PIPELINE = (
    Step("distances", compute_distances, True, _wants_distances),
    Step(
        "weight map",
        compute_weight_map,
        True,
        lambda job: job.needs_weights,
        key=_weight_key,
        save=_save_array("weight_map"),
        restore=_restore_array("weight_map"),
    ),
    Step(
        "loss",
        compute_loss,
        True,
        lambda job: True,
        key=_loss_key,
        save=_save_loss,
        restore=_restore_loss,
    ),
    Step(
        "error map",
        compute_error_map,
        False,
        _asked("errors"),
        key=_errors_key,
        save=_save_array("errors"),
        restore=_restore_array("errors"),
    ),
    Step(
        "overlap",
        compute_overlap,
        False,
        _asked("object_stats"),
        key=_overlap_key,
        save=lambda job: job.overlap,
        restore=_restore_overlap,
    ),
    Step(
        "statistics",
        compute_object_stats,
        False,
        _asked("object_stats"),
        key=_stats_key,
        save=lambda job: job.stats,
        restore=_restore_stats,
    ),
    Step(
        "hot-spots",
        compute_hot_spots,
        False,
        _asked("hot_spots"),
        key=_spots_key,
        save=lambda job: job.spots,
        restore=_restore_spots,
    ),
)


def _restore(job: Job) -> None:
    """Take from the memo every wanted step whose inputs did not change."""
    if job.memo is None:
        return
    for step in PIPELINE:
        if step.key is None or not step.wanted(job):
            continue
        saved = job.memo.get(step.name, step.key(job))
        if saved is not None:
            step.restore(job, saved)
            job.restored.add(step.name)


def _save(job: Job, step: Step) -> None:
    if job.memo is not None and step.key is not None:
        job.memo.put(step.name, step.key(job), step.save(job))


def plan(job: Job) -> list[Step]:
    """The steps of :data:`PIPELINE` that ``job`` needs, in order (those restored from
    the memo excluded)."""
    return [step for step in PIPELINE if step.wanted(job) and step.name not in job.restored]


def _result(job: Job) -> ComputeResult:
    request, arrays = job.request, dict(job.arrays)
    if "loss_map" not in request.outputs:
        arrays.pop("loss_map", None)  # computed for the table or the hot-spots only
    if "weight_map" not in request.outputs:
        arrays.pop("weight_map", None)  # computed for the loss only
    return ComputeResult(
        value=float(np.mean(job.values)) if job.values else float("nan"),
        arrays=arrays,
        stats=job.stats,
        hot_spots=job.spots,
        region=tuple(job.region),
        shape=tuple(job.labels.shape),
        device=str(job.device),
        seconds=time.perf_counter() - job.started,
        timings=job.timings,
        signed=job.info.kind != "pixel",
        loss=request.loss,
        distance_cutoff=job.radius,
        outputs=tuple(request.outputs),
        reused=tuple(sorted(job.restored)),
    )


#: Steps whose output is final once they ran, by output: sent ahead of the rest (a single
#: frame's, when asked for), so that what a slider changes is shown at once.
_EARLY = {"weight map": "weight_map", "loss": "loss_map"}


def run_steps(
    request: ComputeRequest,
    cache: DistanceCache | None = None,
    memo: StepMemo | None = None,
) -> Iterator[Progress]:
    """Compute ``request`` step by step: yields a :class:`Progress` before each step and
    returns the :class:`ComputeResult`.

    The steps are those of :func:`plan`: the per-frame ones for every frame, then the
    others once. With a ``memo``, a step whose inputs are those of the memo's last run is
    not run again (see :mod:`.memo`). The last :class:`Progress` has ``done == total`` and
    the step ``"done"``. The :class:`Progress` that follows a single frame's weight-map
    step carries that weight map in ``ready`` (when it is asked for), so that it can be
    shown before the loss, the statistics and the hot-spots are done; the one that follows
    its loss step carries the loss map likewise (before the statistics and the hot-spots).

    A generator, so that a thread worker can report progress and stop between steps
    (``result = yield from run_steps(...)``); :func:`run` drives it to the end.

    Raises:
        InputError: a combination that cannot be computed (the message says what to change).
    """
    job = prepare(request, cache, memo)
    _restore(job)
    steps = plan(job)
    per_frame = [s for s in steps if s.per_frame]
    once = [s for s in steps if not s.per_frame]
    signed = job.info.kind != "pixel"
    total = len(job.frames) * len(per_frame) + len(once)
    done = 0
    many = len(job.frames) > 1
    ready = None  # outputs final before the end, sent with the next Progress
    region = tuple(job.region)
    if per_frame:
        for n, frame in enumerate(job.frames):
            job.frame, job.entry = frame, None
            for step in per_frame:
                name = f"{step.name}, frame {n + 1}/{len(job.frames)}" if many else step.name
                yield Progress(done, total, name, ready, region if ready else (), signed)
                ready = None
                step.run(job)
                done += 1
                if step.name in _EARLY and not many and _EARLY[step.name] in job.outputs:
                    role = _EARLY[step.name]
                    ready = {role: job.arrays[role]}
        for step in per_frame:
            _save(job, step)
    for step in once:
        yield Progress(done, total, step.name, ready, region if ready else (), signed)
        ready = None
        step.run(job)
        _save(job, step)
        done += 1
    yield Progress(done, total, "done", ready, region if ready else (), signed)
    return _result(job)


def run(
    request: ComputeRequest, cache: DistanceCache | None = None, memo: StepMemo | None = None
) -> ComputeResult:
    """Compute ``request`` to the end (see :func:`run_steps`)."""
    gen = run_steps(request, cache, memo)
    while True:
        try:
            next(gen)
        except StopIteration as stop:
            return stop.value
