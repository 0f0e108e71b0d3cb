"""The pipeline behind the widget and the console API: arrays in, arrays out (no napari).

A :class:`ComputeRequest` says what to compute (labels, prediction, spacing, the loss and
its parameters, the U-Net weight-map parameters, the outputs wanted, how to treat stacks);
:func:`run` computes it with :mod:`napari_losslens.core` and returns a
:class:`ComputeResult`. The expensive distances d1, d2 are kept in a
:class:`DistanceCache`, so that moving w0, σ or the class weights only re-evaluates the cheap
:func:`~napari_losslens.core.weight_map_from_distances`. :func:`run_steps` is the same
computation as a generator that yields a :class:`Progress` before every step, so that a
thread worker can report progress and stop between steps.

Modules: :mod:`.request` (what is asked and answered, and the input checks),
:mod:`.cache` (the distance cache), :mod:`.memo` (the last output of each step, reused
while its inputs stand still), :mod:`.pipeline` (the named steps and their order).
"""

from .cache import DistanceCache, labels_digest
from .memo import StepMemo
from .pipeline import GRADIENT_COLUMNS, PIPELINE, Job, Step, plan, run, run_steps
from .request import (
    OUTPUTS,
    WEIGHT_PARAMS,
    ComputeRequest,
    ComputeResult,
    InputError,
    Progress,
    WeightParams,
    check_inputs,
    looks_like_probabilities,
)

__all__ = [
    "GRADIENT_COLUMNS",
    "OUTPUTS",
    "PIPELINE",
    "WEIGHT_PARAMS",
    "ComputeRequest",
    "ComputeResult",
    "DistanceCache",
    "InputError",
    "Job",
    "Progress",
    "Step",
    "StepMemo",
    "WeightParams",
    "check_inputs",
    "labels_digest",
    "looks_like_probabilities",
    "plan",
    "run",
    "run_steps",
]
