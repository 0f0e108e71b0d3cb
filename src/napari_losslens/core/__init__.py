"""napari_losslens.core: the standalone math (torch, numpy, scipy, numba; no napari, no Qt).

Per-pixel loss maps, gradient maps and scalar losses for segmentation, and the U-Net weight
map of Ronneberger et al. 2015 with its distance maps, for 2D and 3D (anisotropic) data, on
the GPU when one is present and on the CPU otherwise. numpy in gives numpy out; torch in
gives torch out, on the input's device, with autograd intact.

Layers, each importing only those before it (checked by import-linter, see
``docs/architecture.md``): ``_arrays`` → ``distances`` → ``weights``; ``registry`` →
``losses`` (the loss families, each registering its own losses) → ``chunked`` (dask) →
``maps`` (the public ``loss_map``, ``gradient_map``, ``loss_value``) → ``modules``
(``nn.Module`` wrappers). ``analysis`` reads maps and labels and stands apart. Importing
this package imports :mod:`.losses`, which registers every built-in loss.
"""

from .analysis import (
    ERROR_CODES,
    FALSE_NEGATIVE,
    FALSE_POSITIVE,
    TRUE_POSITIVE,
    HotSpot,
    error_map,
    hot_spots,
    object_overlap,
    object_stats,
)
from .distances import cell_distances, two_nearest_cells
from .losses import LossContext
from .losses.multiclass import multiclass_losses
from .maps import class_losses, gradient_map, loss_map, loss_value
from .modules import (
    BalancedBCELoss,
    BCELoss,
    BoundaryLoss,
    ComboLoss,
    CrossEntropyLoss,
    DiceclDiceLoss,
    DiceLoss,
    DistancePenalizedCELoss,
    ExpLogLoss,
    FocalLoss,
    FocalTverskyLoss,
    GeneralizedDiceLoss,
    HausdorffDTLoss,
    HausdorffERLoss,
    JaccardLoss,
    LogCoshDiceLoss,
    LogHausdorffDTLoss,
    LovaszHingeLoss,
    LovaszSoftmaxLoss,
    MCCLoss,
    SegmentationLoss,
    SensitivitySpecificityLoss,
    ShapeAwareLoss,
    SoftclDiceLoss,
    StructuralSimilarityLoss,
    TopKCELoss,
    TverskyLoss,
    UNetCELoss,
    UnifiedFocalLoss,
    WeightedBCELoss,
)
from .registry import LossInfo, LossParam, available_losses, get_loss, register_loss
from .weights import (
    border_term,
    class_weight_map,
    cutoff_radius,
    separate_touching_cells,
    unet_weight_map,
    weight_map_from_distances,
)

__all__ = [
    "ERROR_CODES",
    "FALSE_NEGATIVE",
    "FALSE_POSITIVE",
    "TRUE_POSITIVE",
    "BCELoss",
    "BalancedBCELoss",
    "BoundaryLoss",
    "ComboLoss",
    "CrossEntropyLoss",
    "DiceLoss",
    "DiceclDiceLoss",
    "DistancePenalizedCELoss",
    "ExpLogLoss",
    "FocalLoss",
    "FocalTverskyLoss",
    "GeneralizedDiceLoss",
    "HausdorffDTLoss",
    "HausdorffERLoss",
    "HotSpot",
    "JaccardLoss",
    "LogCoshDiceLoss",
    "LogHausdorffDTLoss",
    "LossContext",
    "LossInfo",
    "LossParam",
    "LovaszHingeLoss",
    "LovaszSoftmaxLoss",
    "MCCLoss",
    "SegmentationLoss",
    "SensitivitySpecificityLoss",
    "ShapeAwareLoss",
    "SoftclDiceLoss",
    "StructuralSimilarityLoss",
    "TopKCELoss",
    "TverskyLoss",
    "UNetCELoss",
    "UnifiedFocalLoss",
    "WeightedBCELoss",
    "available_losses",
    "border_term",
    "cell_distances",
    "class_losses",
    "class_weight_map",
    "cutoff_radius",
    "error_map",
    "get_loss",
    "gradient_map",
    "hot_spots",
    "loss_map",
    "loss_value",
    "multiclass_losses",
    "object_overlap",
    "object_stats",
    "register_loss",
    "separate_touching_cells",
    "two_nearest_cells",
    "unet_weight_map",
    "weight_map_from_distances",
]
