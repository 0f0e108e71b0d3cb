"""napari_losslens.training: watch where the loss goes while a model learns.

- :class:`LossRecorder`: called from a training loop, writes the loss maps of fixed
  validation samples, step by step, into a ``*.losslens.zarr`` store;
- :class:`Recording` / :func:`open_recording`: read such a store (what the napari reader
  and the analysis functions use);
- :mod:`~napari_losslens.training.analysis`: per-object loss over steps, the objects that
  stay wrong, the table at a step;
- :class:`UNet` and :func:`~napari_losslens.training.demo.train_demo`: a small U-Net and
  the demo that trains it with a recorder.

No napari, no Qt (like :mod:`napari_losslens.core`). The stores need zarr (the ``zarr``
extra).
"""

from .analysis import (
    ObjectHistory,
    loss_curve,
    object_history,
    objects_that_stay_wrong,
    table_at_step,
)
from .recorder import LossRecorder
from .store import Recording, open_recording
from .unet import UNet

__all__ = [
    "LossRecorder",
    "ObjectHistory",
    "Recording",
    "UNet",
    "loss_curve",
    "object_history",
    "objects_that_stay_wrong",
    "open_recording",
    "table_at_step",
]
