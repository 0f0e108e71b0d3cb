"""Modules follow PyTorch's batch convention (issue 10, point 7).

The last ``spatial_dims`` axes are spatial, the leading ones index images; each image gets
its own weight map or distance maps, and the loss of a batch is the mean of the per-image
losses, computed here one image at a time with the core function.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch

from napari_losslens._testing import touching_cells
from napari_losslens.core import available_losses, loss_value, modules, unet_weight_map
from napari_losslens.core.modules import SegmentationLoss, split_batch

NAMED = {
    cls.loss_name: cls
    for cls in vars(modules).values()
    if isinstance(cls, type)
    and issubclass(cls, SegmentationLoss)
    and cls.__name__ != "_Named"
    and not cls.__name__.startswith("_")
    and cls is not SegmentationLoss
}
BINARY = [n for n in available_losses() if n != "ce"]


def _batch(n=3, shape=(14, 16), seed=0):
    rng = torch.Generator().manual_seed(seed)
    labels = np.stack([touching_cells(shape, 4, 5.0, seed=seed + i) for i in range(n)])
    target = torch.from_numpy(labels.astype(np.int64))
    logits = torch.randn((n, *shape), generator=rng, dtype=torch.float64)
    return logits, target


def _per_image_mean(name, logits, target, mask=None, **params):
    values = [
        loss_value(
            logits[i],
            target[i],
            name,
            from_logits=True,
            mask=None if mask is None else mask[i],
            **params,
        )
        for i in range(target.shape[0])
    ]
    return torch.stack(values).mean()


def test_every_named_module_is_covered():
    assert set(NAMED) == set(available_losses())


@pytest.mark.parametrize("name", BINARY)
def test_batch_loss_is_the_mean_of_the_per_image_losses(name):
    logits, target = _batch()
    crit = SegmentationLoss(name, from_logits=True)
    want = _per_image_mean(name, logits, target)
    torch.testing.assert_close(crit(logits, target), want)
    # the same with a channel axis of 1 on the prediction, and on both
    torch.testing.assert_close(crit(logits[:, None], target), want)
    torch.testing.assert_close(crit(logits[:, None], target[:, None]), want)


@pytest.mark.parametrize("name", sorted(NAMED))
def test_named_modules_take_batches(name):
    logits, target = _batch(seed=5)
    extra = {}
    if name == "ce":
        target = (target > 0).long()
    if name == "hausdorff_er":
        # its erosions of (p − y)² by a cross of weight 0.2 vanish where the local mean
        # error stays below 0.5, as for random logits (image 0 here: loss and gradient 0):
        # make every pixel wrong (|logit| ≈ 3) so that each image has a gradient to check
        logits = logits - 3.0 * (2.0 * (target > 0).double() - 1.0)
    want = _per_image_mean(name, logits, target, **extra)
    x = logits.clone().requires_grad_(True)
    got = NAMED[name](from_logits=True)(x, target)
    torch.testing.assert_close(got, want)
    got.backward()
    assert torch.isfinite(x.grad).all()
    assert all(bool(x.grad[i].abs().sum() > 0) for i in range(x.shape[0]))  # every image


def test_unet_ce_builds_one_weight_map_per_image_not_one_volume():
    """The bug of the issue: a (N, H, W) batch got one 3D weight map across the batch."""
    logits, target = _batch(n=4, seed=11)
    got = modules.UNetCELoss(from_logits=True)(logits, target)
    whole_volume = loss_value(logits, target, "unet_ce", from_logits=True)  # 3D map
    assert not torch.allclose(got, whole_volume)
    maps = [unet_weight_map(target[i].numpy(), dtype=torch.float64) for i in range(4)]
    bce = torch.nn.functional.binary_cross_entropy_with_logits(
        logits, (target > 0).double(), reduction="none"
    )
    want = torch.stack([(torch.from_numpy(maps[i]) * bce[i]).mean() for i in range(4)]).mean()
    torch.testing.assert_close(got, want)


def test_multiclass_batches_have_the_class_axis_at_position_1():
    torch.manual_seed(3)
    logits = torch.randn(3, 4, 10, 12, dtype=torch.float64)  # N, C, H, W
    target = torch.randint(0, 4, (3, 10, 12))
    for average in ("macro", "micro", None):
        crit = modules.DiceLoss(from_logits=True, average=average)
        want = torch.stack(
            [
                loss_value(logits[i], target[i], "dice", from_logits=True, average=average)
                for i in range(3)
            ]
        ).mean()
        torch.testing.assert_close(crit(logits, target), want)
    ce = modules.CrossEntropyLoss(from_logits=True)
    want = torch.stack(
        [loss_value(logits[i], target[i], "ce", from_logits=True) for i in range(3)]
    )
    torch.testing.assert_close(ce(logits, target), want.mean())
    # with equal pixel counts, the mean of means is torch's cross-entropy of the batch
    torch.testing.assert_close(
        ce(logits, target), torch.nn.functional.cross_entropy(logits, target)
    )


def test_spatial_dims_3_treats_the_last_three_axes_as_a_volume():
    labels = np.stack([touching_cells((6, 12, 12), 3, 3.0, seed=s) for s in (1, 2)])
    target = torch.from_numpy(labels.astype(np.int64))
    logits = torch.randn(
        target.shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0)
    )
    crit = modules.UNetCELoss(from_logits=True, spatial_dims=3, sigma=2.0)
    want = _per_image_mean("unet_ce", logits, target, sigma=2.0)
    torch.testing.assert_close(crit(logits, target), want)
    # one volume without a batch axis is one image
    torch.testing.assert_close(
        crit(logits[0], target[0]),
        loss_value(logits[0], target[0], "unet_ce", from_logits=True, sigma=2.0),
    )
    # spatial_dims=2 on the same data: 2 x 6 images of 12 x 12
    per_slice = modules.UNetCELoss(from_logits=True, sigma=2.0)(logits, target)
    want2 = _per_image_mean(
        "unet_ce", logits.reshape(12, 12, 12), target.reshape(12, 12, 12), sigma=2.0
    )
    torch.testing.assert_close(per_slice, want2)


def test_masks_and_precomputed_weight_maps_are_split_per_image():
    logits, target = _batch(seed=21)
    mask = torch.ones(target.shape, dtype=torch.bool)
    mask[:, :, :5] = False
    crit = modules.BCELoss(from_logits=True)
    torch.testing.assert_close(
        crit(logits, target, mask), _per_image_mean("bce", logits, target, mask)
    )
    w = torch.rand(target.shape, dtype=torch.float64) * 5
    got = SegmentationLoss("unet_ce", from_logits=True, weight_map=w)(logits, target)
    want = torch.stack(
        [
            loss_value(logits[i], target[i], "unet_ce", from_logits=True, weight_map=w[i])
            for i in range(3)
        ]
    ).mean()
    torch.testing.assert_close(got, want)
    one = w[0]  # the spatial shape: the same map for every image
    got = SegmentationLoss("unet_ce", from_logits=True, weight_map=one)(logits, target)
    want = torch.stack(
        [
            loss_value(logits[i], target[i], "unet_ce", from_logits=True, weight_map=one)
            for i in range(3)
        ]
    ).mean()
    torch.testing.assert_close(got, want)


def test_unbatched_input_is_unchanged():
    logits, target = _batch(n=1)
    crit = modules.DiceLoss(from_logits=True)
    torch.testing.assert_close(
        crit(logits[0], target[0]), loss_value(logits[0], target[0], "dice", from_logits=True)
    )


def test_numpy_batches_give_a_float():
    logits, target = _batch()
    got = modules.BCELoss(from_logits=True)(logits.numpy(), target.numpy())
    assert isinstance(got, float)
    assert got == pytest.approx(float(_per_image_mean("bce", logits, target)), rel=1e-12)


def test_bad_batches_name_the_argument():
    logits, target = _batch()
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got 4"):
        modules.BCELoss(spatial_dims=4)
    with pytest.raises(ValueError, match="spatial_dims must be 2 or 3, got True"):
        SegmentationLoss("bce", spatial_dims=True)
    crit = modules.BCELoss(from_logits=True)
    with pytest.raises(ValueError, match=r"prediction must have the target's shape"):
        crit(logits[:, :, :-1], target)
    with pytest.raises(ValueError, match=r"mask and target must have the same shape"):
        crit(logits, target, torch.ones(2, 14, 16, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"target must have at least spatial_dims=3 axes"):
        modules.BCELoss(spatial_dims=3)(logits[0], target[0])
    with pytest.raises(ValueError, match=r"weight_map must have the target's shape"):
        SegmentationLoss("unet_ce", weight_map=torch.ones(5, 5))(logits.sigmoid(), target)


def test_split_batch_moves_the_class_axis_in_front_of_the_spatial_axes():
    p = np.arange(2 * 3 * 4 * 5).reshape(2, 3, 4, 5)  # (N, C, H, W)
    t = np.zeros((2, 4, 5), int)
    parts = split_batch(p, t)
    assert len(parts) == 2
    np.testing.assert_array_equal(parts[1][0], p[1])
    p5 = np.arange(2 * 3 * 7 * 4 * 5).reshape(2, 3, 7, 4, 5)  # (N, C, T, H, W)
    parts = split_batch(p5, np.zeros((2, 7, 4, 5), int))
    assert len(parts) == 14
    np.testing.assert_array_equal(parts[1 * 7 + 2][0], p5[1, :, 2])
