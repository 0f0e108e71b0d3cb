"""available_losses(): the description a GUI builds itself from."""

from __future__ import annotations

import inspect

import numpy as np
import pytest

from napari_losslens.core import (
    LossParam,
    available_losses,
    get_loss,
    loss_map,
    register_loss,
    unet_weight_map,
)
from napari_losslens.core.losses.distance import UNET_WEIGHT_PARAMS


def test_builtin_losses_are_described():
    losses = available_losses()
    assert list(losses)[:4] == ["bce", "weighted_bce", "dice", "unet_ce"]
    assert losses["bce"].kind == "pixel" and losses["bce"].params == ()
    assert losses["dice"].kind == "region" and not losses["dice"].pixelwise
    assert losses["dice"].defaults == {"smooth": 1e-6, "gamma": 2.0}
    assert losses["weighted_bce"].defaults == {"beta": 1.0}
    unet = losses["unet_ce"].defaults
    assert unet["w0"] == 10.0 and unet["sigma"] == 5.0 and unet["background_only"] is True
    assert unet["separate_touching"] is False and unet["class_weights"] is None


def test_unet_weight_params_are_the_unet_ce_params_unet_weight_map_takes():
    """The names the chunked path and the recorder pass on: neither more nor fewer."""
    takes = inspect.signature(unet_weight_map).parameters
    shared = tuple(p.name for p in get_loss("unet_ce").params if p.name in takes)
    assert sorted(UNET_WEIGHT_PARAMS) == sorted(shared)


def test_every_loss_is_documented_and_every_parameter_has_a_range():
    for name, info in available_losses().items():
        assert info.name == name and info.title and info.formula and info.reference
        for p in info.params:
            if p.kind in ("float", "int"):
                assert p.minimum is not None and p.maximum is not None, (name, p.name)
                assert p.minimum <= p.default <= p.maximum, (name, p.name)
            assert p.description, (name, p.name)


def test_every_loss_runs_with_its_defaults():
    rng = np.random.default_rng(0)
    y = np.zeros((12, 12), int)
    y[2:6, 2:6], y[6:10, 5:9] = 1, 2
    p = rng.uniform(0.05, 0.95, y.shape)
    for name in available_losses():
        m = loss_map(p, y, name, device="cpu")
        assert m.shape == y.shape and np.isfinite(m).all(), name


def test_get_loss_errors():
    with pytest.raises(ValueError, match="unknown loss 'nope'; available: bce"):
        get_loss("nope")
    with pytest.raises(TypeError, match="loss must be a name"):
        get_loss(3)


def test_register_loss_rejects_duplicates_and_bad_kinds():
    with pytest.raises(ValueError, match="already registered"):
        register_loss("bce", title="x", kind="pixel")(lambda ctx: ctx.y)
    with pytest.raises(ValueError, match="kind must be 'pixel' or 'region'"):
        register_loss("zzz", title="x", kind="other")


def test_param_validation_messages():
    p = LossParam("alpha", 0.5, minimum=0.0, maximum=1.0)
    assert p.validate(1, "x") == 1.0
    with pytest.raises(ValueError, match=r"'alpha' of loss 'x' must be <= 1.0, got 2"):
        p.validate(2, "x")
    with pytest.raises(ValueError, match=r"must be >= 0.0, got -1"):
        p.validate(-1, "x")
    with pytest.raises(ValueError, match="must be finite"):
        p.validate(float("nan"), "x")
    with pytest.raises(TypeError, match="must be a number, got True"):
        p.validate(True, "x")
    b = LossParam("flag", True, kind="bool")
    with pytest.raises(TypeError, match="must be True or False"):
        b.validate("yes", "x")
