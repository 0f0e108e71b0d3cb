"""The nn.Module wrappers call the functions."""

from __future__ import annotations

import pytest
import torch

from napari_losslens.core import (
    BCELoss,
    DiceLoss,
    SegmentationLoss,
    UNetCELoss,
    WeightedBCELoss,
    loss_value,
)


@pytest.mark.parametrize(
    ("module", "name", "params"),
    [
        (BCELoss(), "bce", {}),
        (WeightedBCELoss(beta=2.0), "weighted_bce", {"beta": 2.0}),
        (DiceLoss(smooth=1.0), "dice", {"smooth": 1.0}),
        (UNetCELoss(w0=5.0, sigma=2.0), "unet_ce", {"w0": 5.0, "sigma": 2.0}),
        (SegmentationLoss("dice", gamma=1.0), "dice", {"gamma": 1.0}),
    ],
)
def test_module_equals_function(module, name, params):
    torch.manual_seed(0)
    target = torch.zeros(16, 16, dtype=torch.int64)
    target[2:7, 2:7], target[7:12, 4:10] = 1, 2
    logits = torch.randn(16, 16, dtype=torch.float64, requires_grad=True)
    module.from_logits = True
    got = module(logits, target)
    want = loss_value(logits, target, name, from_logits=True, **params)
    assert torch.allclose(got, want)
    got.backward()
    assert logits.grad is not None and torch.isfinite(logits.grad).all()


def test_module_validates_parameters_at_construction():
    with pytest.raises(TypeError, match="unknown parameter"):
        DiceLoss(beta=1)
    with pytest.raises(ValueError, match=r"must be > 0\.0"):
        UNetCELoss(sigma=0)
    assert "dice" in repr(DiceLoss())


def test_module_trains_a_parameter():
    target = torch.zeros(8, 8)
    target[2:6, 2:6] = 1
    logits = torch.zeros(8, 8, requires_grad=True)
    opt = torch.optim.SGD([logits], lr=50.0)
    crit = DiceLoss(from_logits=True)
    first = crit(logits, target).item()
    for _ in range(20):
        opt.zero_grad()
        crit(logits, target).backward()
        opt.step()
    assert crit(logits, target).item() < first / 2


def test_dice_module_takes_a_class_axis_with_average():
    torch.manual_seed(1)
    logits = torch.randn(3, 10, 10, dtype=torch.float64)
    target = torch.randint(0, 3, (10, 10))
    for average in ("macro", "micro"):
        got = DiceLoss(from_logits=True, average=average)(logits, target)
        want = loss_value(logits, target, "dice", from_logits=True, average=average)
        assert torch.allclose(got, want)
    macro = DiceLoss(from_logits=True)(logits, target)
    micro = DiceLoss(from_logits=True, average="micro")(logits, target)
    assert not torch.allclose(macro, micro)  # the average really changes the result
