"""Sums accumulated in float64 without a float64 copy: values against exact references
(``math.fsum``, or sums whose every partial sum float64 holds exactly), gradients against
``sum(dtype=float64)``, and the Dice loss built on them against a float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_losslens.core import loss_map, loss_value
from napari_losslens.core.losses import LossContext
from napari_losslens.core.losses._accumulate import chunked_float64_sum, sum_float64

U64 = 2.0**-53  # float64 unit roundoff
SMALLEST_F32 = 2.0**-149  # smallest positive (subnormal) float32


def _paths():
    """Each way a float64 sum is taken: the public function (numpy's buffered reduction
    for CPU float32, torch chunks on CUDA), and torch chunks forced small (many chunks and
    a shorter last one), the path CUDA tensors and bfloat16 take."""
    return [
        pytest.param(sum_float64, id="sum_float64"),
        pytest.param(
            lambda x, where=None: chunked_float64_sum(x, where, chunk=4099), id="torch-chunks"
        ),
    ]


def _exact_ones_and_small(n_ones: int, n_small: int, small: float):
    """float32 terms whose exact sum float64 holds, as does every partial sum of them."""
    x = np.ones(n_ones + n_small, np.float32)
    x[np.random.default_rng(0).choice(x.size, n_small, replace=False)] = small
    return x, float(n_ones) + n_small * small  # both terms exact in float64


@pytest.mark.parametrize("total", _paths())
def test_ones_and_small_values_are_summed_exactly(total, device):
    # 2^22 terms (any block length divides it): ones and 1000 values 2^-29; the sum needs
    # 52 bits, float32 holds 24, and loses 2^-29 next to any sum above 2^-5; every partial
    # sum is a multiple of 2^-29 below 2^22, so float64 adds them exactly
    x, exact = _exact_ones_and_small(2**22 - 1000, 1000, 2.0**-29)
    t = torch.from_numpy(x).to(device)
    got = total(t)
    assert got.dtype == torch.float64 and got.device.type == device
    assert float(got) == exact
    assert float(t.sum()) != exact  # a float32 accumulation loses the small values


@pytest.mark.parametrize("total", _paths())
@pytest.mark.parametrize("value", [1e37, float(np.finfo(np.float32).max)])
def test_huge_terms_do_not_overflow(total, value, device):
    # k·v is exact in float64 for every k <= n; a float32 sum (of any block of two or
    # more terms for the maximum, of 35 or more for 1e37) overflows to inf
    n = 2**20
    t = torch.full((n,), value, dtype=torch.float32, device=device)
    v = float(np.float32(value))
    assert float(total(t)) == n * v
    assert torch.isinf(t.sum())


@pytest.mark.parametrize("total", _paths())
def test_subnormal_terms_are_not_lost(total, device):
    n = 3 * 4099 + 11
    t = torch.full((n,), SMALLEST_F32, dtype=torch.float32, device=device)
    assert float(total(t)) == n * SMALLEST_F32
    # next to ones, correctly rounded: 1e6 + n·2^-149 rounds to 1e6 in float64
    t2 = torch.cat([torch.ones(10**6, device=device), t])
    assert float(total(t2)) == math.fsum([1e6, n * SMALLEST_F32]) == 1e6


@pytest.mark.parametrize("total", _paths())
def test_mixed_magnitudes_and_signs_within_the_documented_bound(total, device):
    # terms from 1e-30 to 1e30 of both signs: |error| <= (n - 1)·u·Σ|x| (Higham 1993)
    rng = np.random.default_rng(1)
    n = 2**18
    x = (rng.uniform(-1, 1, n) * 10.0 ** rng.uniform(-30, 30, n)).astype(np.float32)
    exact = math.fsum(x.astype(np.float64))
    bound = (n - 1) * U64 * math.fsum(np.abs(x.astype(np.float64)))
    got = float(total(torch.from_numpy(x).to(device)))
    assert abs(got - exact) <= bound


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_other_dtypes_are_summed_exactly(dtype, device):
    # integers up to 64 (exact in float16 and bfloat16) over 3·2^22 terms: float64 holds
    # every partial sum; float16 and bfloat16 accumulations would not
    n = 3 * 2**22
    t = (torch.arange(n, device=device) % 65).to(dtype)
    exact = float(sum(range(65)) * (n // 65) + sum(range(n % 65)))
    got = sum_float64(t)
    assert got.dtype == torch.float64 and float(got) == exact


def test_strided_views_are_read_as_they_are():
    base = torch.arange(600 * 700, dtype=torch.float32).reshape(600, 700) % 1000
    for view in (base.t(), base[::3, 1::2], base.t()[5:]):
        assert not view.is_contiguous()
        assert float(sum_float64(view)) == math.fsum(view.double().flatten().tolist())
        assert float(chunked_float64_sum(view, chunk=997)) == float(sum_float64(view))


def test_input_not_modified():
    x, _ = _exact_ones_and_small(2**20, 10, 2.0**-29)
    t = torch.from_numpy(x.copy()).requires_grad_(True)
    before = t.detach().clone()
    sum_float64(t).backward()
    chunked_float64_sum(t.detach(), chunk=999)
    assert torch.equal(t.detach(), before)


@pytest.mark.parametrize("total", _paths())
def test_same_value_as_torch_float64_sum(total, device):
    x = torch.rand(1000, 1300, generator=torch.Generator().manual_seed(2)).to(device)
    want = float(x.sum(dtype=torch.float64))
    assert float(total(x)) == pytest.approx(want, rel=4 * x.numel() * U64)


def test_gradient_is_that_of_the_float64_sum(device):
    gen = torch.Generator().manual_seed(3)
    p = torch.rand(700, 900, generator=gen).to(device).requires_grad_(True)
    y = (torch.rand(700, 900, generator=gen) > 0.4).to(device, torch.float32)

    def dice(total):
        return 1 - (2 * total(p * y) + 1e-6) / (total(p * p) + total(y) + 1e-6)

    (got,) = torch.autograd.grad(dice(sum_float64), p)
    (want,) = torch.autograd.grad(dice(lambda x: x.sum(dtype=torch.float64)), p)
    assert got.dtype == torch.float32 and got.shape == p.shape
    torch.testing.assert_close(got, want, rtol=1e-6, atol=1e-12)


def test_second_derivative_goes_through():
    x = torch.rand(50, 60, dtype=torch.float32).requires_grad_(True)
    (g,) = torch.autograd.grad(sum_float64(x * x), x, create_graph=True)
    torch.testing.assert_close(g, 2 * x)
    (h,) = torch.autograd.grad(g.sum(), x)
    assert torch.equal(h, torch.full_like(x, 2.0))


def test_float64_input_is_torch_sum():
    x = torch.rand(300, 300, dtype=torch.float64)
    assert torch.equal(sum_float64(x), x.sum())


# ---------------------------------------------------------------- sums over a region


@pytest.mark.parametrize("total", _paths())
def test_sum_over_a_region_is_exact(total, device):
    x, _ = _exact_ones_and_small(2**22 - 1000, 1000, 2.0**-29)
    region = np.random.default_rng(6).random(x.size) > 0.4
    exact = math.fsum(x.astype(np.float64)[region])  # every partial sum exact: no rounding
    got = total(torch.from_numpy(x).to(device), where=torch.from_numpy(region).to(device))
    assert got.dtype == torch.float64 and float(got) == exact


@pytest.mark.parametrize("total", _paths())
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_terms_outside_the_region_are_left_out_whatever_their_value(total, bad, device):
    x = torch.rand(600, 700, generator=torch.Generator().manual_seed(7))
    region = x > 0.3
    x[~region] = bad  # 0·inf would be NaN: the sum must not touch these terms
    want = math.fsum(x[region].double().tolist())
    assert float(total(x.to(device), where=region.to(device))) == pytest.approx(want, rel=1e-15)


def test_gradient_of_a_sum_over_a_region_is_the_region(device):
    x = torch.rand(300, 400, generator=torch.Generator().manual_seed(8)).to(device)
    region = x > 0.5
    x.requires_grad_(True)
    (g,) = torch.autograd.grad(3.0 * sum_float64(x, where=region), x)
    assert g.dtype == torch.float32
    assert torch.equal(g, 3.0 * region.to(torch.float32))
    # a second derivative goes through the masked sum too
    (g2,) = torch.autograd.grad(sum_float64(x * x, where=region), x, create_graph=True)
    torch.testing.assert_close(g2, 2 * x * region)
    (h,) = torch.autograd.grad(g2.sum(), x)
    assert torch.equal(h, 2.0 * region.to(torch.float32))


def test_float64_terms_over_a_region():
    x = torch.rand(200, 300, dtype=torch.float64).requires_grad_(True)
    region = x > 0.5
    s = sum_float64(x, where=region)
    assert float(s.detach()) == pytest.approx(math.fsum(x[region].tolist()), rel=1e-14)
    (g,) = torch.autograd.grad(s, x)
    assert torch.equal(g, region.double())


def test_where_of_another_shape_or_type_is_refused():
    x = torch.rand(4, 5)
    with pytest.raises(
        ValueError, match=r"where must have the shape and device of x, got \(5, 4\)"
    ):
        sum_float64(x, where=torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(TypeError, match=r"where must be a bool tensor, got dtype torch.float32"):
        sum_float64(x, where=torch.ones(4, 5))
    with pytest.raises(TypeError, match=r"where must be a bool tensor, got ndarray"):
        sum_float64(x, where=np.ones((4, 5), bool))


@pytest.mark.parametrize(
    ("value", "match"),
    [
        (torch.ones(3, dtype=torch.int64), r"floating tensor, got dtype torch.int64"),
        (np.ones(3, np.float32), r"floating tensor, got ndarray"),
    ],
)
def test_non_floating_input_is_a_type_error(value, match):
    with pytest.raises(TypeError, match=match):
        sum_float64(value)


# ---------------------------------------------------------------- through LossContext


def test_context_sum_counts_only_masked_pixels_exactly():
    x, _ = _exact_ones_and_small(2**20 - 500, 500, 2.0**-29)
    t = torch.from_numpy(x)
    mask = torch.from_numpy(np.random.default_rng(4).random(x.size) > 0.3)
    ctx = LossContext(t, torch.zeros(x.size, dtype=torch.int64), False, mask, torch.float32)
    got = ctx.sum(t)
    assert got.dtype == torch.float64
    assert float(got) == math.fsum(x.astype(np.float64)[mask.numpy()])
    assert float(ctx.sum(t > 0.5)) == float(((t > 0.5) & mask).sum())  # a count
    region = torch.from_numpy(np.random.default_rng(9).random(x.size) > 0.5)
    both = (mask & region).numpy()
    assert float(ctx.sum(t, where=region)) == math.fsum(x.astype(np.float64)[both])
    assert float(ctx.sum(t > 0.5, where=region)) == float(((t > 0.5) & mask & region).sum())


def _dice_case():
    """2^21 pixels: p = 1 on most, 2^-12 on 1500 background and 2^-20 on 1500 foreground
    pixels; y = 1 on one half.

    The small values are lost by a float32 sum of a few hundred ones (resolution 2^-14 at
    1024) but not by float64: Σpy is a multiple of 2^-20 below 2^21 (41 bits, exact); Σp²
    gets 1500·2^-24 + 1500·2^-40, rounded once in float64 at most.
    """
    shape = (2048, 1024)
    y = np.zeros(shape, np.int64)
    y[:1024] = 1
    p = np.ones(shape, np.float32)
    bg = np.flatnonzero(y.ravel() == 0)
    rng = np.random.default_rng(5)
    p.ravel()[rng.choice(bg, 1500, replace=False)] = 2.0**-12
    p.ravel()[rng.choice(np.flatnonzero(y.ravel() > 0), 1500, replace=False)] = 2.0**-20
    return p, y


def _dice_reference(p, y, smooth=1e-6):
    """The Dice loss from exactly rounded float64 sums (math.fsum) of float64 terms."""
    p64 = p.astype(np.float64).ravel()
    fg = y.ravel() > 0
    spy = math.fsum(p64[fg])
    spp = math.fsum(p64 * p64)  # squares of float32 values: exact in float64
    return 1.0 - (2.0 * spy + smooth) / (spp + float(fg.sum()) + smooth)


def test_dice_value_is_the_float64_reference_where_float32_sums_are_not():
    p, y = _dice_case()
    want = _dice_reference(p, y)
    got = loss_value(p, y, "dice", device="cpu")  # numpy in: the float64 accumulation
    assert got == pytest.approx(want, rel=1e-14)
    # the same formula with float32 sums misses by far more than that
    pt, yt = torch.from_numpy(p), torch.from_numpy((y > 0).astype(np.float32))
    f32 = 1 - (2 * (pt * yt).sum() + 1e-6) / ((pt * pt).sum() + yt.sum() + 1e-6)
    assert abs(float(f32) - want) > 1e-10 * abs(want)


def test_dice_map_is_the_float64_gradient(device):
    p, y = _dice_case()
    p64 = torch.from_numpy(p.astype(np.float64)).requires_grad_(True)
    y64 = torch.from_numpy((y > 0).astype(np.float64))
    ref = 1 - (2 * (p64 * y64).sum() + 1e-6) / ((p64 * p64).sum() + y64.sum() + 1e-6)
    (want,) = torch.autograd.grad(ref, p64)
    got = loss_map(torch.from_numpy(p).to(device), torch.from_numpy(y).to(device), "dice")
    assert got.dtype == torch.float32 and bool(torch.isfinite(got).all())
    torch.testing.assert_close(got.cpu().double(), want, rtol=1e-6, atol=1e-13)
