"""Finite values and gradients for every loss at p ∈ {0, 1}, extreme logits and range ends.

Issue 10, point 6: the documentation promises finite gradients wherever the inputs are
valid. Each registered loss is run with every numeric parameter at both ends of its range
(the smallest positive float for an exclusive minimum of 0), on probabilities that are
exactly 0 and 1 and on logits so large that the sigmoid underflows to exactly 0 or 1.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_losslens.core import available_losses, gradient_map, loss_map, loss_value

TINY = 5e-324  # the smallest positive float64


def _ends(p):
    """The two ends of a parameter's range (as accepted by its validation)."""
    lo = p.minimum
    if p.exclusive_minimum:
        lo = math.nextafter(lo, math.inf) if lo != 0 else TINY
    return [("min", lo), ("max", p.maximum)]


def _cases():
    for name, info in available_losses().items():
        for p in info.params:
            if p.kind not in ("float", "int", "optional_float"):
                continue
            if p.minimum is None or p.maximum is None:
                continue
            for end, value in _ends(p):
                yield pytest.param(name, {p.name: value}, id=f"{name}-{p.name}-{end}")
        yield pytest.param(name, {}, id=f"{name}-defaults")


TARGET = np.array(
    [[0, 0, 1, 1, 0, 0], [0, 1, 1, 1, 1, 0], [0, 1, 1, 1, 1, 0], [0, 0, 1, 1, 0, 0]],
    dtype=np.int64,
)
# exactly 0 and 1, right and wrong: p = 1 on background, p = 0 on foreground, and the rest
PROBS = np.where(TARGET > 0, 1.0, 0.0)
PROBS[0, 0] = 1.0  # a confident false positive
PROBS[1, 2] = 0.0  # a confident false negative


def _inputs():
    wrong = np.where(TARGET > 0, -1.0, 1.0)
    right = -wrong
    mixed = np.where(np.indices(TARGET.shape).sum(0) % 2 == 0, right, wrong)
    yield "p01-f64", PROBS, False
    yield "p01-f32", PROBS.astype(np.float32), False
    yield "p0-all", np.zeros(TARGET.shape), False
    yield "p1-all", np.ones(TARGET.shape, np.float32), False
    yield "logits-1e4-f32", (1e4 * mixed).astype(np.float32), True
    yield "logits-1e30-f64", 1e30 * mixed, True
    yield "logits-1e30-f32", (1e30 * mixed).astype(np.float32), True


@pytest.mark.parametrize(("name", "params"), list(_cases()))
def test_every_loss_is_finite_with_finite_gradients_at_the_extremes(name, params):
    for label, pred, logits in _inputs():
        kw = {"from_logits": logits, "device": "cpu", **params}
        if label == "logits-1e30-f32":
            # terms like (−ln p)^γ = (1e30)^5 do not fit float32: then a clear error,
            # naming the parameters and the way out, is the promised outcome
            try:
                value = loss_value(pred, TARGET, name, **kw)
            except ValueError as err:
                assert "does not fit float32" in str(err)
                assert "pass float64 input or smaller parameter values" in str(err)
                for p in params:
                    assert p in str(err)
                continue
        value = loss_value(pred, TARGET, name, **kw)
        assert math.isfinite(value), (label, value)
        lmap = loss_map(pred, TARGET, name, **kw)
        assert np.isfinite(lmap).all(), label
        grad = gradient_map(pred, TARGET, name, **kw)
        assert np.isfinite(grad).all(), label
        if label not in ("p01-f64", "logits-1e30-f64"):
            continue
        # torch autograd agrees: backward through loss_value gives the same finite gradient
        x = torch.tensor(pred, requires_grad=True)
        loss_value(x, torch.from_numpy(TARGET), name, **kw).backward()
        assert torch.isfinite(x.grad).all(), label
        np.testing.assert_allclose(x.grad.numpy(), grad, rtol=1e-5, atol=1e-30)


@pytest.mark.parametrize("name", ["dice", "log_cosh_dice", "combo"])
def test_dice_family_gradient_is_finite_for_gamma_below_one_where_p_is_zero(name):
    """The case of the issue: p^γ with γ < 1 has an infinite slope at p = 0."""
    p = torch.tensor([[0.0, 0.3], [0.7, 1.0]], dtype=torch.float64, requires_grad=True)
    y = torch.tensor([[0, 1], [1, 1]])
    loss_value(p, y, name, gamma=0.5).backward()
    assert torch.isfinite(p.grad).all()
    # away from 0 the gradient is the exact one: compare with a central difference
    eps = 1e-7
    for idx in [(0, 1), (1, 0)]:
        hi, lo = p.detach().clone(), p.detach().clone()
        hi[idx] += eps
        lo[idx] -= eps
        fd = (loss_value(hi, y, name, gamma=0.5) - loss_value(lo, y, name, gamma=0.5)) / (2 * eps)
        assert float(p.grad[idx]) == pytest.approx(float(fd), rel=1e-5)


def test_dice_gamma_below_one_from_underflowing_logits_gives_no_nan():
    x = torch.tensor([[-200.0, 200.0], [-200.0, 3.0]], requires_grad=True)  # sigmoid(-200) = 0
    y = torch.tensor([[0, 1], [1, 1]])
    value = loss_value(x, y, "dice", from_logits=True, gamma=0.3)
    value.backward()
    assert torch.isfinite(value) and torch.isfinite(x.grad).all()


@pytest.mark.parametrize("name", ["ce", "dice", "jaccard", "tversky", "focal"])
@pytest.mark.parametrize("average", ["macro", "micro", None])
def test_multiclass_losses_finite_at_extremes(name, average):
    target = np.array([[0, 1, 2], [2, 1, 0]])
    onehot = np.stack([(target == c) for c in range(3)]).astype(np.float64)
    extra = {} if name == "ce" else {"average": average}
    if name == "dice":
        extra["gamma"] = TINY
    for pred, logits in [(onehot, False), (1 - onehot, False), (1e4 * (2 * onehot - 1), True)]:
        x = torch.tensor(pred, requires_grad=True)
        value = loss_value(x, torch.from_numpy(target), name, from_logits=logits, **extra)
        value.backward()
        assert torch.isfinite(value) and torch.isfinite(x.grad).all(), (name, logits)


# constant images: every skeleton, contour and difference is empty, so the smoothed ratios
# are s/s with s at its smallest (5e-324: 1/s does not fit float64)
CONSTANT_IMAGES = [
    pytest.param(np.array([[0.637]]), np.array([[1]]), id="one-fg-pixel"),
    pytest.param(np.array([[0.25]]), np.array([[0]]), id="one-bg-pixel"),
    pytest.param(np.full((3, 4), 0.5), np.zeros((3, 4), np.int64), id="all-bg"),
    pytest.param(np.full((3, 4), 0.5), np.ones((3, 4), np.int64), id="all-fg"),
]


@pytest.mark.parametrize(("pred", "target"), CONSTANT_IMAGES)
@pytest.mark.parametrize(("name", "params"), list(_cases()))
def test_every_loss_is_finite_on_constant_images_at_the_extremes(name, params, pred, target):
    x = torch.tensor(pred, requires_grad=True)
    try:
        value = loss_value(x, torch.from_numpy(target), name, device="cpu", **params)
    except ValueError as err:  # a loss that needs more than this image says so
        pytest.skip(str(err))
    value.backward()
    assert torch.isfinite(value), value
    assert torch.isfinite(x.grad).all(), x.grad
