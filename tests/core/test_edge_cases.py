"""Numerics at the edges: tiny and huge cells, cells at the border, many cells."""

from __future__ import annotations

import math

import numpy as np
import pytest

from napari_losslens._testing import touching_cells
from napari_losslens.core import cell_distances, loss_map, unet_weight_map

from .reference import ref_weight_map


def test_one_pixel_cells_against_definition():
    rng = np.random.default_rng(0)
    lab = np.zeros((40, 40), np.int32)
    pos = rng.choice(lab.size, 30, replace=False)
    lab.flat[pos] = np.arange(1, 31)
    np.testing.assert_allclose(
        unet_weight_map(lab, device="cpu"), ref_weight_map(lab), atol=1e-4 * 10
    )


def test_cells_touching_the_image_border_against_definition():
    lab = np.zeros((30, 36), np.int32)
    lab[:5, :] = 1  # a full-width band on the top border
    lab[-4:, :10] = 2
    lab[10:20, -3:] = 3  # on the right border
    lab[12:18, :2] = 4
    for bg in (True, False):
        np.testing.assert_allclose(
            unet_weight_map(lab, background_only=bg, device="cpu"),
            ref_weight_map(lab, background_only=bg),
            atol=1e-3,
        )


def test_a_single_huge_cell_gets_no_border_term():
    lab = np.ones((300, 300), np.uint8)
    lab[0, 0] = 0
    w = unet_weight_map(lab, background_only=False, device="cpu")
    assert np.all(w == 1.0)
    d1, d2 = cell_distances(lab, device="cpu")
    assert d1[0, 0] == 1.0 and np.isinf(d2).all()


def test_a_hundred_thousand_tiny_cells_on_a_grid():
    n = 316
    lab = np.zeros((2 * n, 2 * n), np.int32)
    lab[::2, ::2] = np.arange(1, n * n + 1).reshape(n, n)  # ~1e5 one-pixel cells
    w0, sigma = 10.0, 5.0
    w = unet_weight_map(lab, w0=w0, sigma=sigma, device="cpu")
    assert np.isfinite(w).all()
    # between two horizontal neighbours: d1 = d2 = 1
    assert w[0, 1] == pytest.approx(1 + w0 * math.exp(-4 / (2 * sigma**2)), abs=1e-5)
    # at the centre of four cells: d1 = d2 = sqrt(2)
    assert w[1, 1] == pytest.approx(1 + w0 * math.exp(-8 / (2 * sigma**2)), abs=1e-5)
    assert np.all(w[::2, ::2] == 1.0)


def test_float16_and_extreme_predictions_on_cells():
    lab = touching_cells((32, 32), 8, 6.0, seed=3)
    p16 = np.where(lab > 0, 1.0, 0.0).astype(np.float16)
    for loss in ("bce", "unet_ce", "dice", "focal", "tversky"):
        m = loss_map(p16, lab, loss, device="cpu")
        assert m.dtype == np.float32 and np.isfinite(m).all(), loss
    logits = np.where(lab > 0, 1e4, -1e4)
    m = loss_map(logits, lab, "bce", from_logits=True, device="cpu")
    assert np.all(m == 0.0)
    m = loss_map(-logits, lab, "bce", from_logits=True, device="cpu")
    assert np.all(m == 1e4)  # exact from logits, no clamp
