"""Dask arrays: blockwise results equal the in-memory ones, tiles cutting through cells."""

from __future__ import annotations

import dask.array as da
import numpy as np
import pytest

from napari_losslens._testing import touching_cells
from napari_losslens.core import (
    available_losses,
    gradient_map,
    loss_map,
    loss_value,
    unet_weight_map,
)
from napari_losslens.core.chunked import is_dask


@pytest.fixture(scope="module")
def cells2d():
    return touching_cells((120, 130), 40, 9.0, seed=1)


@pytest.mark.parametrize(
    "kwargs",
    [
        {},
        {"class_weights": "balanced", "separate_touching": True},
        {"background_only": False, "sigma": 3.0, "w0": 20.0},
        {"class_weights": (0.2, 3.0), "spacing": (1.5, 0.7)},
    ],
)
def test_weight_map_tiles_equal_whole_image_2d(cells2d, kwargs):
    whole = unet_weight_map(cells2d, device="cpu", **kwargs)
    lazy = unet_weight_map(da.from_array(cells2d, chunks=(37, 41)), **kwargs)
    assert is_dask(lazy) and len(lazy.chunks[0]) >= 3 and len(lazy.chunks[1]) >= 3
    # tiles of 37x41 cut through cells of radius 9: the halo makes them exact
    np.testing.assert_array_equal(lazy.compute(), whole)


def test_weight_map_tiles_equal_whole_volume_3d_anisotropic():
    lab = touching_cells((20, 50, 40), 20, 7.0, spacing=(2, 1, 1), seed=2)
    whole = unet_weight_map(lab, spacing=(2, 1, 1), device="cpu")
    lazy = unet_weight_map(da.from_array(lab, chunks=(7, 17, 13)), spacing=(2, 1, 1))
    np.testing.assert_array_equal(lazy.compute(), whole)


def test_weight_map_bad_labels_fail_at_compute_with_the_core_message():
    lazy = unet_weight_map(da.from_array(-np.ones((10, 10), int), chunks=5))
    with pytest.raises(ValueError, match="non-negative ids"):
        lazy.compute()
    with pytest.raises(ValueError, match="2D or 3D"):
        unet_weight_map(da.zeros((4,), chunks=2))


BLOCKWISE = [
    name
    for name, info in available_losses().items()
    if info.blockwise and (name == "unet_ce" or not any(p.kind == "spacing" for p in info.params))
]


@pytest.mark.parametrize("loss", BLOCKWISE)
def test_loss_maps_values_gradients_equal_in_memory(cells2d, loss):
    rng = np.random.default_rng(0)
    p = np.clip(0.7 * (cells2d > 0) + 0.3 * rng.random(cells2d.shape), 0.01, 0.99)
    mask = rng.random(cells2d.shape) > 0.2
    dp, dt, dm = (da.from_array(a, chunks=40) for a in (p, cells2d, mask))
    want = loss_map(p, cells2d, loss, mask=mask, device="cpu")
    got = loss_map(dp, dt, loss, mask=dm)
    assert is_dask(got)
    scale = np.abs(want).max() + 1e-30
    np.testing.assert_allclose(got.compute(), want, rtol=1e-6, atol=1e-7 * scale)
    assert loss_value(dp, dt, loss, mask=dm) == pytest.approx(
        loss_value(p, cells2d, loss, mask=mask, device="cpu"), rel=1e-6
    )
    g_want = gradient_map(p, cells2d, loss, mask=mask, device="cpu")
    g_got = gradient_map(dp, dt, loss, mask=dm).compute()
    np.testing.assert_allclose(g_got, g_want, rtol=1e-6, atol=1e-7 * (np.abs(g_want).max()))


def info_of(name):
    return available_losses()[name]


def test_losses_that_need_whole_image_distances_are_refused(cells2d):
    needs = [n for n in available_losses() if n not in BLOCKWISE]
    assert needs  # the survey's distance-based losses
    d = da.from_array(cells2d, chunks=40)
    for name in needs:
        match = "distance maps of the whole image" if info_of(name).blockwise else "at once"
        with pytest.raises(ValueError, match=match):
            loss_map(d.astype(float) / max(1, cells2d.max()), d, name)


def test_all_masked_dask_is_an_error(cells2d):
    d = da.from_array(cells2d, chunks=40)
    with pytest.raises(ValueError, match="mask excludes every pixel"):
        loss_value(d.astype(float) * 0, d, "bce", mask=da.zeros(cells2d.shape, bool, chunks=40))


def test_dask_input_not_modified(cells2d):
    before = cells2d.copy()
    unet_weight_map(da.from_array(cells2d, chunks=50), separate_touching=True).compute()
    assert np.array_equal(cells2d, before)


def test_zarr_array_is_read_tile_by_tile_with_the_same_result(cells2d, tmp_path):
    zarr = pytest.importorskip("zarr")
    z = zarr.open_array(
        str(tmp_path / "labels.zarr"),
        mode="w",
        shape=cells2d.shape,
        chunks=(32, 32),
        dtype=cells2d.dtype,
    )
    z[:] = cells2d
    got = unet_weight_map(z, tile_voxels=3000, device="cpu")
    assert isinstance(got, np.ndarray)
    np.testing.assert_array_equal(got, unet_weight_map(cells2d, device="cpu"))
