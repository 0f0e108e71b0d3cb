"""unet_weight_map and its cheap parts against the definition of Ronneberger et al. 2015."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from napari_losslens._testing import touching_cells
from napari_losslens.core import (
    border_term,
    cell_distances,
    class_weight_map,
    cutoff_radius,
    separate_touching_cells,
    unet_weight_map,
    weight_map_from_distances,
)

from .reference import ref_separate_touching, ref_weight_map


def _close(got, want, w0):
    assert np.isfinite(got).all()
    np.testing.assert_allclose(np.asarray(got, np.float64), want, rtol=0, atol=1e-4 * w0)


@pytest.mark.parametrize(("w0", "sigma"), [(10.0, 5.0), (3.0, 2.0), (25.0, 9.0)])
def test_2d_touching_against_definition(w0, sigma):
    lab = touching_cells((80, 90), 30, 9.0, seed=11)
    got = unet_weight_map(lab, w0=w0, sigma=sigma, device="cpu")
    _close(got, ref_weight_map(lab, w0, sigma), w0)


@pytest.mark.parametrize("spacing", [(2.0, 1.0, 1.0), (0.5, 0.8, 1.7)])
def test_3d_anisotropic_against_definition(spacing):
    lab = touching_cells((14, 30, 28), 18, 6.0, spacing=spacing, seed=12)
    got = unet_weight_map(lab, w0=10, sigma=3, spacing=spacing, device="cpu")
    _close(got, ref_weight_map(lab, 10, 3, spacing=spacing), 10)


def test_background_only_false_adds_border_inside_cells():
    lab = touching_cells((40, 40), 8, 7.0, seed=13)
    got = unet_weight_map(lab, background_only=False, device="cpu")
    want = ref_weight_map(lab, background_only=False)
    _close(got, want, 10)
    assert np.any(got[lab > 0] > 1.0)  # touching cells get border weight on their pixels


@pytest.mark.parametrize("class_weights", [None, (0.3, 2.0), "balanced"])
def test_class_weights(class_weights):
    lab = touching_cells((40, 50), 10, 6.0, seed=14)
    got = unet_weight_map(lab, class_weights=class_weights, device="cpu")
    _close(got, ref_weight_map(lab, class_weights=class_weights), 10)


def test_balanced_weights_give_equal_class_totals():
    lab = touching_cells((30, 30), 5, 5.0, seed=15)
    wc = class_weight_map(lab, "balanced")
    fg = lab > 0
    assert wc[fg].sum() == pytest.approx(wc[~fg].sum(), rel=1e-5)
    assert wc.sum() == pytest.approx(lab.size, rel=1e-5)
    # one class only: it gets n / (2 n) = 0.5 (the absent class has no pixels to weight)
    assert np.all(class_weight_map(np.ones((4, 4), int), "balanced") == 0.5)
    assert np.all(class_weight_map(np.zeros((4, 4), int), "balanced") == 0.5)


def test_gap_pixel_value_by_hand():
    lab = np.zeros((5, 9), np.uint16)
    lab[:, :4] = 1
    lab[:, 5:] = 2
    w = unet_weight_map(lab, w0=10, sigma=5, device="cpu")
    assert w[2, 4] == pytest.approx(1 + 10 * math.exp(-4 / 50), abs=1e-5)
    assert np.all(w[lab > 0] == 1.0)


def test_empty_and_single_cell_have_no_border_term():
    assert np.all(unet_weight_map(np.zeros((10, 10), int), device="cpu") == 1.0)
    one = np.zeros((10, 10), int)
    one[2:5, 2:5] = 4
    assert np.all(unet_weight_map(one, device="cpu", background_only=False) == 1.0)


def test_w0_zero_gives_class_weights_only():
    lab = touching_cells((30, 30), 6, 6.0, seed=16)
    assert np.all(unet_weight_map(lab, w0=0, device="cpu") == 1.0)


def test_separate_touching_removes_exactly_the_documented_pixels():
    lab = touching_cells((40, 40), 12, 8.0, seed=17)
    np.testing.assert_array_equal(separate_touching_cells(lab), ref_separate_touching(lab))
    lab3 = touching_cells((8, 16, 16), 8, 5.0, seed=18)
    np.testing.assert_array_equal(separate_touching_cells(lab3), ref_separate_touching(lab3))


def test_separated_cells_no_longer_touch_and_get_border_weight():
    lab = np.zeros((6, 10), np.int32)
    lab[:, :5] = 1
    lab[:, 5:] = 2
    sep = separate_touching_cells(lab)
    assert np.all(sep[:, 5] == 0) and np.all(sep[:, :5] == 1) and np.all(sep[:, 6:] == 2)
    w = unet_weight_map(lab, separate_touching=True, device="cpu")
    np.testing.assert_allclose(w, ref_weight_map(sep), atol=1e-4)
    assert w[0, 5] > 5  # the new gap gets the large border weight
    assert unet_weight_map(lab, device="cpu")[0, 5] == 1.0  # without separation: a cell pixel


def test_from_distances_equals_full_computation():
    lab = touching_cells((60, 60), 20, 8.0, seed=19)
    d1, d2 = cell_distances(lab, max_distance=cutoff_radius(20, 8), device="cpu")
    for w0, sigma, cw in [(10, 5, None), (20, 8, "balanced"), (4, 2, (0.5, 3.0))]:
        got = weight_map_from_distances(lab, d1, d2, w0=w0, sigma=sigma, class_weights=cw)
        want = unet_weight_map(lab, w0=w0, sigma=sigma, class_weights=cw, device="cpu")
        np.testing.assert_allclose(got, want, atol=1e-5 * w0)


def test_border_term_is_zero_without_second_cell_and_never_nan():
    d1 = np.array([0.0, 1.0, np.inf])
    d2 = np.array([np.inf, 2.0, np.inf])
    b = border_term(d1, d2, w0=10, sigma=5)
    assert b[0] == 0 and b[2] == 0 and b[1] == pytest.approx(10 * math.exp(-9 / 50))


def test_cutoff_radius_bounds_the_dropped_term():
    for w0, sigma in [(10, 5), (1, 0.5), (100, 20)]:
        r = cutoff_radius(w0, sigma)
        assert w0 * math.exp(-(r**2) / (2 * sigma**2)) == pytest.approx(1e-5 * w0)
    assert cutoff_radius(0, 5) == 0.0
    assert cutoff_radius(1.0, 5, eps=2.0) == 0.0  # the term never reaches eps


def test_float64_on_request_and_torch_round_trip(device):
    lab = touching_cells((24, 24), 6, 6.0, seed=20)
    w64 = unet_weight_map(lab, device="cpu", dtype=torch.float64)
    assert w64.dtype == np.float64
    t = torch.from_numpy(lab).to(device)
    wt = unet_weight_map(t)
    assert isinstance(wt, torch.Tensor) and wt.device.type == device
    np.testing.assert_allclose(wt.cpu().numpy(), w64, atol=1e-4)


@pytest.mark.cuda
def test_cuda_equals_cpu_on_3d():
    lab = touching_cells((16, 48, 48), 30, 7.0, spacing=(2, 1, 1), seed=21)
    a = unet_weight_map(lab, spacing=(2, 1, 1), device="cpu")
    b = unet_weight_map(lab, spacing=(2, 1, 1), device="cuda")
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_input_not_modified():
    lab = touching_cells((30, 30), 8, 7.0, seed=22)
    before = lab.copy()
    unet_weight_map(lab, separate_touching=True, class_weights="balanced", device="cpu")
    separate_touching_cells(lab)
    assert np.array_equal(lab, before)


@pytest.mark.parametrize(
    ("kwargs", "error", "match"),
    [
        ({"sigma": 0}, ValueError, r"sigma must be a finite number > 0, got 0"),
        ({"sigma": -1}, ValueError, r"sigma must be"),
        ({"w0": -1}, ValueError, r"w0 must be a finite number >= 0"),
        ({"class_weights": "inverse"}, ValueError, r"None, 'balanced' or a pair"),
        ({"class_weights": (1, 2, 3)}, ValueError, r"a pair .* got 3 values"),
        ({"class_weights": (1, -2)}, ValueError, r"finite and >= 0"),
        ({"spacing": (1,)}, ValueError, r"one value per axis \(2\), got 1"),
        ({"device": "cuda:7"}, ValueError, r"not available"),
    ],
)
def test_bad_parameters(kwargs, error, match):
    if "device" in kwargs and torch.cuda.device_count() > 7:
        pytest.skip("this machine has a cuda:7")
    with pytest.raises(error, match=match):
        unet_weight_map(np.zeros((5, 5), int), **{"device": "cpu", **kwargs})


@settings(max_examples=40, deadline=None)
@given(
    lab=hnp.arrays(
        np.uint16,
        st.tuples(st.integers(1, 14), st.integers(1, 14)),
        elements=st.sampled_from([0, 0, 0, 1, 2, 5, 900]),
    ),
    w0=st.floats(0.0, 50.0),
    sigma=st.floats(0.3, 10.0),
    background_only=st.booleans(),
)
def test_hypothesis_against_definition(lab, w0, sigma, background_only):
    got = unet_weight_map(lab, w0=w0, sigma=sigma, background_only=background_only, device="cpu")
    _close(got, ref_weight_map(lab, w0, sigma, background_only=background_only), max(w0, 1))


@pytest.mark.parametrize("tile_voxels", [500, 2000])
@pytest.mark.parametrize(
    "kwargs",
    [{}, {"class_weights": "balanced", "separate_touching": True}, {"background_only": False}],
)
def test_tiles_equal_one_piece(tile_voxels, kwargs):
    lab = touching_cells((70, 64), 24, 8.0, seed=23)
    whole = unet_weight_map(lab, device="cpu", **kwargs)
    tiled = unet_weight_map(lab, device="cpu", tile_voxels=tile_voxels, sigma=5, **kwargs)
    np.testing.assert_array_equal(tiled, whole)


def test_tiles_equal_one_piece_3d_anisotropic():
    lab = touching_cells((16, 40, 36), 16, 6.0, spacing=(2, 1, 1), seed=24)
    whole = unet_weight_map(lab, spacing=(2, 1, 1), sigma=3, device="cpu")
    tiled = unet_weight_map(lab, spacing=(2, 1, 1), sigma=3, device="cpu", tile_voxels=4000)
    np.testing.assert_array_equal(tiled, whole)


def test_tile_voxels_must_be_positive():
    with pytest.raises(ValueError, match="tile_voxels must be a positive number of voxels"):
        unet_weight_map(np.zeros((4, 4), int), tile_voxels=0, device="cpu")


def test_out_of_memory_retries_in_tiles_then_on_cpu(monkeypatch):
    """Simulated GPU: a fake 'cuda' device whose distance kernel fails above a size."""
    from napari_losslens.core import weights

    lab = touching_cells((60, 60), 16, 8.0, seed=25)
    want = unet_weight_map(lab, sigma=2, device="cpu")
    real = weights._two_nearest
    calls = []

    def fake_two_nearest(t, sp, maxsq, limit):
        calls.append(t.numel())
        if t.numel() > limit:
            raise torch.cuda.OutOfMemoryError("CUDA out of memory (simulated)")
        return real(t, sp, maxsq)

    monkeypatch.setattr(weights, "resolve_device", lambda *a: torch.device("cuda"))
    monkeypatch.setattr(
        weights,
        "validate_labels",
        lambda x, dev, **k: torch.from_numpy(np.ascontiguousarray(x)).to(torch.int64),
    )
    monkeypatch.setattr(torch, "empty", _cpu_only(torch.empty))
    monkeypatch.setattr(torch.cuda, "empty_cache", lambda: None)
    # 1) fails whole, succeeds in tiles
    monkeypatch.setattr(weights, "_two_nearest", lambda t, sp, m: fake_two_nearest(t, sp, m, 2500))
    with pytest.warns(
        ResourceWarning, match="ran out of GPU memory on cuda; it finished in tiles"
    ):
        got = weights.unet_weight_map(lab, sigma=2, tile_voxels=4000)
    np.testing.assert_array_equal(got, want)
    assert calls[0] > 2500 and max(calls[1:]) <= 2500
    # 2) fails in tiles too: falls back to the CPU (where the fake 'cuda' kernel is not used)
    state = {"cpu": False}

    def two_nearest_cpu_aware(t, sp, m):
        if state["cpu"]:
            return real(t, sp, m)
        return fake_two_nearest(t, sp, m, 0)

    monkeypatch.setattr(weights, "_two_nearest", two_nearest_cpu_aware)
    orig_tiled = weights._weight_map_tiled

    def tiled(labels, dev, *args):
        state["cpu"] = dev.type == "cpu"
        return orig_tiled(labels, dev, *args)

    monkeypatch.setattr(weights, "_weight_map_tiled", tiled)
    with pytest.warns(ResourceWarning, match="computed the map on the CPU instead"):
        got = weights.unet_weight_map(lab, sigma=2, tile_voxels=4000)
    np.testing.assert_array_equal(got, want)


def _cpu_only(fn):
    def wrapper(*args, device=None, **kwargs):
        return fn(*args, **kwargs)

    return wrapper


@pytest.mark.parametrize("dtype", [np.uint16, np.uint32, np.uint64, np.int8, bool, np.float32])
def test_from_distances_accepts_every_label_dtype(dtype):
    lab = touching_cells((20, 20), 5, 5.0, seed=26)
    d1, d2 = cell_distances(lab, device="cpu")
    want = weight_map_from_distances(lab.astype(np.int64), d1, d2)
    np.testing.assert_array_equal(weight_map_from_distances(lab.astype(dtype) * 1, d1, d2), want)
    t = torch.from_numpy(lab.astype(dtype))
    got = weight_map_from_distances(t, torch.from_numpy(d1), torch.from_numpy(d2))
    np.testing.assert_array_equal(got.numpy(), want)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("background_only", [True, False])
def test_cpu_fused_formula_equals_the_formula_on_the_distances(dtype, background_only):
    """unet_weight_map's CPU path (one fused numba pass) against weight_map_from_distances
    on cell_distances (torch ops), with class weights, anisotropic spacing, and in tiles."""
    lab = touching_cells((40, 52), 14, 7.0, seed=31)
    before = lab.copy()
    sp, w0, sigma = (1.0, 0.7), 8.0, 3.0
    kw = dict(w0=w0, sigma=sigma, class_weights=(0.5, 2.0), background_only=background_only)
    d1, d2 = cell_distances(lab, spacing=sp, dtype=torch.float64)
    want = weight_map_from_distances(lab, d1, d2, **kw)
    for tiles in (None, 600):
        got = unet_weight_map(lab, spacing=sp, device="cpu", dtype=dtype, tile_voxels=tiles, **kw)
        assert got.dtype == (np.float32 if dtype == torch.float32 else np.float64)
        np.testing.assert_allclose(got, want, rtol=1e-6, atol=1e-6 * w0)
    assert np.array_equal(lab, before)


@pytest.mark.parametrize(
    ("shape", "spacing", "background_only", "class_weights"),
    [
        ((70, 80), (1.0, 1.0), True, None),
        ((12, 40, 36), (2.0, 1.0, 0.7), False, "balanced"),
        ((30, 90), (0.5, 1.5), True, (0.5, 2.0)),
    ],
)
def test_the_gpu_branch_run_on_the_cpu_equals_the_definition(
    monkeypatch, shape, spacing, background_only, class_weights
):
    """What a GPU computes (the torch transform, then square roots and the torch formula,
    instead of the numba kernels' fused pass), run on the CPU."""
    from napari_losslens.core import _two_nearest_torch, weights

    lab = touching_cells(shape, 20, 6.0, spacing=spacing, seed=12)
    kw = {"spacing": spacing, "background_only": background_only, "class_weights": class_weights}
    cpu = unet_weight_map(lab, device="cpu", **kw)
    used = []

    def torch_two_nearest(t, sp, maxsq):
        used.append(t.shape)
        return _two_nearest_torch.two_nearest_sq(t, sp, maxsq)

    monkeypatch.setattr(weights, "_two_nearest", torch_two_nearest)
    monkeypatch.setattr(weights, "_fused_applies", lambda *a: False)
    got = unet_weight_map(lab, device="cpu", **kw)
    assert used == [lab.shape]  # the torch branch ran, on the whole image
    assert got.dtype == np.float32
    _close(got, ref_weight_map(lab, **kw), 10.0)
    np.testing.assert_allclose(got, cpu, rtol=1e-6, atol=1e-5)
