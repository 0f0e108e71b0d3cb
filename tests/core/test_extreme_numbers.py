"""Every accepted number gives a finite, correct result or an error naming the parameter.

Issue 10, point 4: spacing, σ, w0, class weights and loss parameters from the smallest
positive float to the float64 maximum. Correctness is checked against exact identities
(distances scale with the spacing, the weight map depends on spacing and σ only through
their ratio) and against the plain formula, not against the code under test.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_losslens.core import (
    border_term,
    cell_distances,
    class_weight_map,
    cutoff_radius,
    gradient_map,
    loss_map,
    loss_value,
    unet_weight_map,
    weight_map_from_distances,
)
from napari_losslens.core.losses.distance import (
    boundary_signed_distance,
    mean_contour_distance,
    two_sided_distance,
)

from .reference import (
    ref_mean_contour_distance,
    ref_penalty,
    ref_signed,
    ref_two_sided,
    ref_weight_map,
)

MAX = float(np.finfo(np.float64).max)
TINY = 5e-324  # smallest positive (subnormal) float64
F32_MAX = float(np.finfo(np.float32).max)


@pytest.fixture
def cells():
    lab = np.zeros((9, 12), np.int32)
    lab[1:4, 1:5] = 1
    lab[1:4, 6:11] = 2
    lab[6:8, 2:9] = 3
    return lab


@pytest.fixture
def one_cell():
    lab = np.zeros((8, 8), np.int32)
    lab[2:5, 2:5] = 7
    return lab


# ---------------------------------------------------------------- spacing and sigma


@pytest.mark.parametrize(
    ("spacing", "sigma"),
    [(1e200, 3e200), (MAX, MAX), (1e-300, 3e-300), (TINY, 3 * TINY), (1e-200, 1e-200)],
)
def test_weight_map_depends_on_spacing_and_sigma_only_through_their_ratio(cells, spacing, sigma):
    """w(spacing=s, σ=c·s) = w(spacing=1, σ=c): the border term is a function of d/σ."""
    want = unet_weight_map(cells, spacing=1.0, sigma=sigma / spacing, dtype=torch.float64)
    got = unet_weight_map(cells, spacing=spacing, sigma=sigma, dtype=torch.float64)
    assert np.isfinite(got).all()
    # exact to the documented 1e-5·w0 (where σ·R overflows, nothing is cut off at all)
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-5 * 10.0)


@pytest.mark.parametrize("spacing", [1e200, MAX, TINY])
def test_weight_map_with_extreme_spacing_and_default_sigma(cells, spacing):
    got = unet_weight_map(cells, spacing=spacing)
    assert np.isfinite(got).all()
    fg = cells > 0
    np.testing.assert_array_equal(got[fg], 1.0)  # wc = 1, no border on cells
    if spacing > 1:  # cells are astronomically far apart for σ = 5: no border term
        np.testing.assert_array_equal(got, 1.0)
    else:  # every distance is ~0 next to σ = 5: the full border term w0 between cells
        gap = got[~fg]
        assert gap.max() == pytest.approx(11.0) and gap.min() >= 1.0


def test_huge_sigma_with_one_cell_is_not_nan(one_cell):
    """No second cell: the border term is 0, whatever σ (was NaN = inf/inf)."""
    for sigma in (1e300, MAX):
        got = unet_weight_map(one_cell, sigma=sigma)
        np.testing.assert_array_equal(got, 1.0)


@pytest.mark.parametrize("sigma", [1e17, 1e19, 2.2e52, 1e150])
@pytest.mark.parametrize("volume", [False, True], ids=["2d", "one-slice-3d"])
@pytest.mark.parametrize("which", ["cells", "one_cell"])
def test_large_finite_sigma_is_the_formula(request, which, volume, sigma):
    """A cutoff whose square root is beyond int64 (σ from about 2e18 up): the kernels' reach
    covers the whole line, not an overflowed integer (the map was wrong, sometimes NaN)."""
    lab = request.getfixturevalue(which)
    lab = lab[None] if volume else lab
    before = lab.copy()
    got = unet_weight_map(lab, sigma=sigma, w0=10.0, dtype=torch.float64)
    np.testing.assert_allclose(got, ref_weight_map(lab, w0=10.0, sigma=sigma), rtol=1e-12)
    np.testing.assert_array_equal(lab, before)


def test_huge_sigma_gives_the_full_border_between_two_cells(cells):
    got = unet_weight_map(cells, sigma=MAX, w0=10.0)
    bg = cells == 0
    np.testing.assert_allclose(got[bg], 11.0, rtol=1e-6)


def test_tiny_sigma_leaves_only_the_class_weights(cells):
    got = unet_weight_map(cells, sigma=TINY, dtype=torch.float64)
    np.testing.assert_array_equal(got, 1.0)


def test_cutoff_radius_is_infinite_not_an_error_for_the_largest_sigma():
    assert cutoff_radius(10.0, MAX) == math.inf
    assert cutoff_radius(MAX, 5.0) == pytest.approx(5.0 * math.sqrt(2 * math.log(1e5)))


@pytest.mark.parametrize("spacing", [1e200, 1e300, TINY, 1e-200])
def test_distances_scale_with_the_spacing(cells, spacing):
    d1, d2 = cell_distances(cells, dtype=torch.float64)
    e1, e2 = cell_distances(cells, spacing=spacing, dtype=torch.float64)
    finite = np.isfinite(d2)
    np.testing.assert_array_equal(np.isfinite(e2), finite)
    if spacing >= 1e-300:
        np.testing.assert_allclose(e1, d1 * spacing, rtol=1e-12)
        np.testing.assert_allclose(e2[finite], d2[finite] * spacing, rtol=1e-12)
    else:  # subnormal: as exact as the format allows
        np.testing.assert_allclose(e2[finite], d2[finite] * spacing, rtol=0.5, atol=TINY)


def test_distances_along_a_row_with_the_smallest_spacing_are_exact():
    row = np.array([[1, 0, 0, 0, 2]])
    d1, d2 = cell_distances(row, spacing=TINY, dtype=torch.float64)
    assert d2[0, 0] == 4 * TINY and d1[0, 2] == 2 * TINY


def test_distances_that_do_not_fit_the_dtype_name_the_spacing_and_the_range(cells):
    with pytest.raises(ValueError, match=r"spacing .* too large .* float32.*torch.float64"):
        cell_distances(cells, spacing=1e200)
    with pytest.raises(ValueError, match=r"spacing .* too large .* float64"):
        cell_distances(cells, spacing=MAX, dtype=torch.float64)
    d1, _ = cell_distances(cells, spacing=1e37)  # 1e37 · diagonal 15 fits float32
    assert np.isfinite(d1).all()


def test_spacing_values_far_apart_are_refused_with_the_usable_ratio(cells):
    with pytest.raises(ValueError, match=r"spacing values must lie within a factor 1e\+150"):
        unet_weight_map(cells, spacing=(1e-200, 1e200))
    got = unet_weight_map(cells, spacing=(1e-100, 1e40))  # 1e140 apart: fine
    assert np.isfinite(got).all()


# ---------------------------------------------------------------- w0 and class weights


def test_w0_beyond_float32_is_an_error_naming_w0_and_the_way_out(cells):
    with pytest.raises(ValueError, match=r"w0 too large for a float32 weight map.*float64"):
        unet_weight_map(cells, w0=1e39)
    with pytest.raises(ValueError, match="w0 too large for a float32 weight map"):
        unet_weight_map(cells, w0=MAX)
    d1, d2 = cell_distances(cells)
    with pytest.raises(ValueError, match="w0 too large"):
        weight_map_from_distances(cells, d1, d2, w0=1e39)
    with pytest.raises(ValueError, match="w0 too large"):
        border_term(d1, d2, w0=1e39)


@pytest.mark.parametrize("w0", [1e39, 1e300, MAX / 2])
def test_huge_w0_in_float64_is_the_formula(cells, w0):
    got = unet_weight_map(cells, w0=w0, sigma=5.0, dtype=torch.float64)
    d1, d2 = cell_distances(cells, dtype=torch.float64)
    border = w0 * np.exp(-((d1 + d2) ** 2) / (2 * 25.0))
    want = np.where(cells > 0, 1.0, 1.0 + border)
    assert np.isfinite(got).all()
    np.testing.assert_allclose(got, want, rtol=1e-12)


def test_tiny_w0_gives_only_the_class_weights(cells):
    np.testing.assert_array_equal(unet_weight_map(cells, w0=TINY), 1.0)


def test_class_weights_beyond_float32_are_an_error_naming_class_weights(cells):
    for cw in [(1e39, 1.0), (1.0, MAX)]:
        with pytest.raises(ValueError, match="class_weights too large for a float32"):
            unet_weight_map(cells, class_weights=cw)
        with pytest.raises(ValueError, match="class_weights too large for a float32"):
            class_weight_map(cells, cw)
    with pytest.raises(ValueError, match="w0 and class_weights too large"):
        unet_weight_map(cells, class_weights=(MAX, 1.0), w0=MAX, dtype=torch.float64)


@pytest.mark.parametrize("cw", [(1e39, 1.0), (TINY, 1.0), (MAX / 2, TINY)])
def test_extreme_class_weights_in_float64_are_exact(cells, cw):
    got = unet_weight_map(cells, class_weights=cw, w0=0.0, dtype=torch.float64)
    np.testing.assert_array_equal(got, np.where(cells > 0, cw[1], cw[0]))


def test_unet_ce_class_weights_beyond_float32(cells):
    p = np.full(cells.shape, 0.3)
    with pytest.raises(ValueError, match="class_weights too large for a float32"):
        loss_value(p.astype(np.float32), cells, "unet_ce", class_weights=(1e39, 1.0))
    value = loss_value(p, cells, "unet_ce", class_weights=(1e39, 1.0), w0=0)
    fg = cells > 0
    want = (1e39 * -np.log(0.7) * (~fg).sum() + -np.log(0.3) * fg.sum()) / cells.size
    assert value == pytest.approx(want, rel=1e-12)


def test_ce_class_weights_beyond_float32_name_class_weights():
    p = np.array([[0.2, 0.7], [0.8, 0.3]], np.float32)
    with pytest.raises(ValueError, match="class_weights too large for a float32"):
        loss_value(p, np.array([[0, 1], [1, 0]]), "ce", class_weights=(1e39, 1.0))


# ---------------------------------------------------------------- distance-based losses


@pytest.mark.parametrize("spacing", [1e300, MAX, TINY])
def test_distance_penalized_ce_does_not_depend_on_the_spacing_scale(cells, spacing):
    p = np.random.default_rng(0).uniform(0.05, 0.95, cells.shape)
    want = loss_value(p, cells, "distance_penalized_ce")
    got = loss_value(p, cells, "distance_penalized_ce", spacing=spacing)
    assert got == pytest.approx(want, rel=1e-12)


@pytest.mark.parametrize("spacing", [1e200, 1e-300, TINY])
def test_boundary_loss_scales_with_the_spacing(cells, spacing):
    p = np.random.default_rng(1).uniform(0.05, 0.95, cells.shape)
    want = loss_value(p, cells, "boundary") * spacing
    got = loss_value(p, cells, "boundary", spacing=spacing)
    assert math.isfinite(got)
    assert got == pytest.approx(want, rel=1e-12, abs=1e-320)


def test_boundary_loss_beyond_the_range_names_spacing(cells):
    p = np.full(cells.shape, 0.3)
    with pytest.raises(ValueError, match=r"spacing .* too large .* float64"):
        loss_value(p, cells, "boundary", spacing=MAX)
    with pytest.raises(ValueError, match=r"spacing .* too large .* float32"):
        loss_value(p.astype(np.float32), cells, "boundary", spacing=1e200)
    with pytest.raises(ValueError, match=r"spacing .* too large"):
        boundary_signed_distance(cells > 0, spacing=MAX)


@pytest.mark.parametrize(("spacing", "alpha"), [(1e100, 2.0), (1e150, 2.0), (1e70, 4.0)])
def test_hausdorff_dt_scales_with_spacing_to_the_alpha(cells, spacing, alpha):
    p = np.random.default_rng(2).uniform(0.05, 0.95, cells.shape)
    want = loss_value(p, cells, "hausdorff_dt", alpha=alpha) * spacing**alpha
    got = loss_value(p, cells, "hausdorff_dt", alpha=alpha, spacing=spacing)
    assert got == pytest.approx(want, rel=1e-9)


def test_hausdorff_dt_beyond_the_range_names_spacing_and_alpha(cells):
    p = np.full(cells.shape, 0.3)
    with pytest.raises(ValueError, match=r"hausdorff_dt.*spacing=1e\+200 and alpha=2.0"):
        loss_value(p, cells, "hausdorff_dt", spacing=1e200)
    np.testing.assert_allclose(
        two_sided_distance(cells > 0, spacing=1e300), two_sided_distance(cells > 0) * 1e300
    )


DISTANCE_LOSSES = (
    "hausdorff_dt",
    "log_hausdorff_dt",
    "shape_aware",
    "distance_penalized_ce",
    "boundary",
)


def _ref_distance_map(name, p, lab, spacing, alpha=2.0):
    """Per-pixel float64 formula on brute-force distances (squares must fit float64).

    For log_hausdorff_dt (a region loss) the map of hausdorff_dt, whose mean H gives the
    loss log(1 + H).
    """
    sp = tuple(np.broadcast_to(np.asarray(spacing, float), (lab.ndim,)))
    y = (lab > 0).astype(float)
    ce = -(y * np.log(p) + (1 - y) * np.log(1 - p))
    if name in ("hausdorff_dt", "log_hausdorff_dt"):
        d_p, d_y = ref_two_sided(p > 0.5, sp), ref_two_sided(y > 0, sp)
        return (p - y) ** 2 * (d_p**alpha + d_y**alpha)
    if name == "shape_aware":
        return (1 + ref_mean_contour_distance(p > 0.5, y > 0, sp)) * ce
    if name == "distance_penalized_ce":
        return (1 + ref_penalty(y > 0, sp)) * ce
    return p * ref_signed(y > 0, sp)  # boundary


def _ref_distance_loss(name, p, lab, spacing, alpha=2.0):
    """The loss value: the mean of :func:`_ref_distance_map`, log(1 + it) for the log loss."""
    mean = float(np.mean(_ref_distance_map(name, p, lab, spacing, alpha)))
    return math.log1p(mean) if name == "log_hausdorff_dt" else mean


@pytest.fixture
def p_cells(cells):
    """Probabilities away from 0.5 (the threshold of d_p), wrong in places."""
    rng = np.random.default_rng(4)
    p = np.where(
        cells > 0, rng.uniform(0.3, 0.95, cells.shape), rng.uniform(0.05, 0.7, cells.shape)
    )
    return np.where(np.abs(p - 0.5) < 0.05, p + 0.1, p)


EXTREME_SPACINGS = [1e-30, 1e30, (1e20, 1e-20), (1e-20, 1e20), 1e-100, 1e100]


@pytest.mark.parametrize("spacing", EXTREME_SPACINGS, ids=str)
@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_distance_losses_at_extreme_spacings_match_the_float64_formula(
    cells, p_cells, name, spacing
):
    """Every distance-based loss, isotropic and mixed extreme spacings, in float64."""
    want = _ref_distance_loss(name, p_cells, cells, spacing)
    got = loss_value(p_cells, cells, name, spacing=spacing)
    assert math.isfinite(got)
    assert got == pytest.approx(want, rel=1e-9)


@pytest.mark.parametrize("spacing", EXTREME_SPACINGS, ids=str)
@pytest.mark.parametrize("name", DISTANCE_LOSSES)
def test_distance_losses_at_extreme_spacings_in_float32_fit_or_name_float32(
    cells, p_cells, name, spacing
):
    """float32: the float64 value to float32 precision, or an error naming float32.

    The error only where the per-pixel map cannot be represented in float32; a loss whose
    value fits (log_hausdorff_dt, whose log brings 1e60 down to 138) is computed.
    """
    p32 = p_cells.astype(np.float32)
    p64 = p32.astype(np.float64)
    want = _ref_distance_loss(name, p64, cells, spacing)
    if name != "log_hausdorff_dt":  # a per-pixel map that float32 cannot hold is refused
        peak = np.abs(_ref_distance_map(name, p64, cells, spacing)).max()
        # boundary checks spacing × image diagonal (15 pixels here) up front
        extent = max(np.broadcast_to(spacing, (2,))) * math.hypot(*cells.shape)
        if peak > F32_MAX or (name == "boundary" and extent > F32_MAX):
            with pytest.raises(ValueError, match="float32"):
                loss_value(p32, cells, name, spacing=spacing)
            return
    got = loss_value(p32, cells, name, spacing=spacing)
    assert math.isfinite(got)
    assert got == pytest.approx(want, rel=1e-5, abs=float(np.finfo(np.float32).smallest_subnormal))


@pytest.mark.parametrize("alpha", [1.0, 2.0, 4.0])
@pytest.mark.parametrize("spacing", [1e200, 1e300, MAX])
def test_log_hausdorff_dt_is_finite_where_spacing_to_the_alpha_overflows(
    cells, p_cells, spacing, alpha
):
    """log(1 + s^α·H) = α·ln s + ln H (+ a term below 1e-300) where s^α·H overflows float64."""
    h1 = _ref_distance_loss("hausdorff_dt", p_cells, cells, 1.0, alpha)
    want = alpha * math.log(spacing) + math.log(h1)
    for p in (p_cells, p_cells.astype(np.float32)):
        got = loss_value(p, cells, "log_hausdorff_dt", alpha=alpha, spacing=spacing)
        assert got == pytest.approx(want, rel=1e-12 if p.dtype == np.float64 else 1e-6)
    # and its gradient is that of ln H: H'/H, whatever the spacing
    grad = gradient_map(p_cells, cells, "log_hausdorff_dt", alpha=alpha, spacing=spacing)
    h_grad = gradient_map(p_cells, cells, "hausdorff_dt", alpha=alpha)
    np.testing.assert_allclose(grad, h_grad / h1, rtol=1e-10, atol=1e-300)


@pytest.mark.parametrize("spacing", [1e-300, 1e-200, 1e200, 1e300])
def test_mean_contour_distance_scales_with_the_spacing(cells, p_cells, spacing):
    """E(s) = s·E(1) exactly, where s² underflows or overflows float64."""
    pred, target = p_cells > 0.5, cells > 0
    e1 = ref_mean_contour_distance(pred, target, (1.0, 1.0))
    assert e1 > 0
    assert mean_contour_distance(pred, target, spacing) == pytest.approx(e1 * spacing, rel=1e-12)
    ce = -np.log(np.where(target, p_cells, 1 - p_cells))
    want = float(np.mean((1 + e1 * spacing) * ce))
    assert loss_value(p_cells, cells, "shape_aware", spacing=spacing) == pytest.approx(
        want, rel=1e-12
    )


def test_mean_contour_distance_beyond_the_range_names_spacing(cells):
    with pytest.raises(ValueError, match=r"spacing .* too large .* float64"):
        mean_contour_distance(cells > 0, cells == 1, spacing=MAX)
    with pytest.raises(ValueError, match="spacing values must be finite and positive"):
        mean_contour_distance(np.zeros((3, 3), bool), cells[:3, :3] > 0, spacing=-1.0)


# ---------------------------------------------------------------- accumulation in float64


@pytest.mark.parametrize("sign", [1.0, -1.0])
def test_float32_logits_of_1e37_give_a_finite_mean(sign):
    x = np.full((100, 100), sign * 1e37, np.float32)
    y = np.zeros(x.shape) if sign > 0 else np.ones(x.shape)  # every pixel wrong by 1e37
    value = loss_value(x, y, from_logits=True)
    assert value == pytest.approx(float(np.float32(1e37)), rel=1e-6)
    t = loss_value(torch.from_numpy(x), torch.from_numpy(y), from_logits=True)
    assert t.dtype == torch.float32 and torch.isfinite(t)


def test_the_scalar_is_the_float64_mean_of_the_float32_map():
    rng = np.random.default_rng(3)
    p = rng.uniform(1e-6, 1 - 1e-6, (300, 300)).astype(np.float32)
    y = rng.integers(0, 2, p.shape)
    m = loss_map(p, y)
    assert m.dtype == np.float32
    assert loss_value(p, y) == np.mean(m, dtype=np.float64)


def test_a_map_that_does_not_fit_float32_is_an_error_naming_the_parameter():
    x = np.full((4, 4), -1e37, np.float32)  # confidently wrong where the target is 1
    with pytest.raises(ValueError, match=r"weighted_bce.*does not fit float32.*beta=1000000.0"):
        loss_map(x, np.ones((4, 4)), "weighted_bce", from_logits=True, beta=1e6)
    # the same in float64 is finite and exact: β · softplus(−x) = β · 1e37 for y = 1
    x64 = x.astype(np.float64)
    got = loss_map(x64, np.ones((4, 4)), "weighted_bce", from_logits=True, beta=1e6)
    np.testing.assert_allclose(got, 1e6 * float(np.float32(1e37)), rtol=1e-12)
    assert np.isfinite(gradient_map(x64, np.ones((4, 4)), "weighted_bce", from_logits=True)).all()
