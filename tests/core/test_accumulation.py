"""Sums accumulated in float64 without a float64 copy: values against exact references
(``math.fsum``, or sums whose every partial sum float64 holds exactly), gradients against
``sum(dtype=float64)``, and the Dice loss built on them against a float64 reference."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from napari_losslens.core import available_losses, loss_map, loss_value
from napari_losslens.core.losses import LossContext
from napari_losslens.core.losses._accumulate import (
    chunked_float64_sum,
    chunked_overlap_sums,
    overlap_sums_float64,
    sum_float64,
)

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


# ---------------------------------------------------------------- overlap sums


def _overlap_paths():
    """The public function (numpy chunks for CPU float32) and the torch chunks forced small
    (the path of CUDA tensors, bfloat16 and float64)."""
    return [
        pytest.param(overlap_sums_float64, id="overlap_sums_float64"),
        pytest.param(
            lambda x, region, mask=None: chunked_overlap_sums(x, region, mask, chunk=4099),
            id="torch-chunks",
        ),
    ]


def _overlap_reference(x: np.ndarray, region: np.ndarray, mask: np.ndarray | None):
    """TP, FP, FN, TN by ``math.fsum`` of float64 terms (1 − x formed in float64)."""
    x64 = x.astype(np.float64).ravel()
    counted = np.ones(x64.size, bool) if mask is None else mask.ravel()
    on, off = region.ravel() & counted, ~region.ravel() & counted
    return [
        math.fsum(x64[on]),
        math.fsum(x64[off]),
        math.fsum(1.0 - x64[on]),
        math.fsum(1.0 - x64[off]),
    ]


@pytest.mark.parametrize("total", _overlap_paths())
@pytest.mark.parametrize("masked", [False, True])
def test_overlap_sums_are_exact(total, masked, device):
    # ones and 2^-29: every term, every 1 − x and every partial sum is exact in float64
    x, _ = _exact_ones_and_small(2**22 - 1000, 1000, 2.0**-29)
    rng = np.random.default_rng(11)
    region = rng.random(x.size) > 0.4
    mask = rng.random(x.size) > 0.2 if masked else None
    got = total(
        torch.from_numpy(x).to(device),
        torch.from_numpy(region).to(device),
        None if mask is None else torch.from_numpy(mask).to(device),
    )
    assert got.dtype == torch.float64 and got.shape == (4,) and got.device.type == device
    assert got.tolist() == _overlap_reference(x, region, mask)


@pytest.mark.parametrize("total", _overlap_paths())
def test_false_negatives_of_a_confident_prediction_are_summed_directly(total, device):
    # p = 1 on most of the foreground, 2^-40 on 300 pixels: FN = 300·(1 − 2^-40) exactly.
    # TP needs bits from 2^21 to 2^-40 (62 > 53): float64 rounds it, so FN taken as
    # Σ_R 1 − TP would be off by up to 2^-31 per rounding; the direct sum of the terms
    # 1 − p (each exact, as is every partial sum) is exact
    n = 2**21
    x = np.ones(2 * n, np.float32)
    region = np.zeros(2 * n, bool)
    region[:n] = True
    x[np.random.default_rng(12).choice(n, 300, replace=False)] = 2.0**-40
    got = total(torch.from_numpy(x).to(device), torch.from_numpy(region).to(device))
    fn = 300 * (1.0 - 2.0**-40)
    assert float(got[2]) == fn == _overlap_reference(x, region, None)[2]
    difference = float(np.count_nonzero(region)) - float(got[0])
    assert difference != fn  # the cancellation the direct sum avoids


@pytest.mark.parametrize("total", _overlap_paths())
@pytest.mark.parametrize("bad", [math.inf, -math.inf, math.nan])
def test_overlap_sums_leave_out_uncounted_terms_whatever_their_value(total, bad, device):
    x = torch.rand(600, 700, generator=torch.Generator().manual_seed(13))
    region = torch.rand(600, 700, generator=torch.Generator().manual_seed(14)) > 0.5
    mask = x > 0.3
    want = _overlap_reference(x.numpy(), region.numpy(), mask.numpy())
    x[~mask] = bad  # 0·inf would be NaN: the sums must not touch these terms
    got = total(x.to(device), region.to(device), mask.to(device)).tolist()
    assert got == pytest.approx(want, rel=1e-15)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float64])
def test_overlap_sums_of_other_dtypes(dtype):
    x = torch.rand(300, 500, generator=torch.Generator().manual_seed(15)).to(dtype)
    region = x > 0.5
    mask = torch.rand(300, 500, generator=torch.Generator().manual_seed(16)) > 0.1
    want = _overlap_reference(x.double().numpy(), region.numpy(), mask.numpy())
    got = overlap_sums_float64(x, region, mask)
    assert got.dtype == torch.float64
    assert got.tolist() == pytest.approx(want, rel=1e-14)


def test_gradient_of_the_overlap_sums_is_that_of_the_product_maps(device):
    gen = torch.Generator().manual_seed(17)
    x = torch.rand(300, 400, generator=gen).to(device).requires_grad_(True)
    region = (torch.rand(300, 400, generator=gen) > 0.5).to(device)
    mask = (torch.rand(300, 400, generator=gen) > 0.2).to(device)
    coef = torch.tensor([3.0, -2.0, 0.5, 7.0], dtype=torch.float64, device=device)
    (got,) = torch.autograd.grad((coef * overlap_sums_float64(x, region, mask)).sum(), x)
    # the reference: autograd through the masked product maps, each sum in float64
    y, m = region.to(x.dtype), mask.to(x.dtype)
    terms = [x * y, x * (1 - y), (1 - x) * y, (1 - x) * (1 - y)]
    ref = sum(c * (t * m).sum(dtype=torch.float64) for c, t in zip(coef, terms, strict=True))
    (want,) = torch.autograd.grad(ref, x)
    assert got.dtype == torch.float32
    assert torch.equal(got, want)
    # with create_graph (the loss map of a prediction that requires grad): the same
    # values, and a second derivative through them (0: the sums are linear in x)
    (g,) = torch.autograd.grad(
        (coef * overlap_sums_float64(x, region, mask)).sum(), x, create_graph=True
    )
    assert torch.equal(g.detach(), want)
    (h,) = torch.autograd.grad((g * x).sum(), x)
    assert torch.equal(h, want)


def test_overlap_sums_validate_their_arguments():
    x = torch.rand(4, 5)
    region = torch.ones(4, 5, dtype=torch.bool)
    with pytest.raises(TypeError, match=r"needs a floating tensor, got dtype torch.int64"):
        overlap_sums_float64(torch.ones(4, 5, dtype=torch.int64), region)
    with pytest.raises(TypeError, match=r"region must be a bool tensor, got dtype torch.float32"):
        overlap_sums_float64(x, torch.ones(4, 5))
    with pytest.raises(TypeError, match=r"mask must be a bool tensor, got ndarray"):
        overlap_sums_float64(x, region, np.ones((4, 5), bool))
    with pytest.raises(
        ValueError, match=r"region must have the shape and device of x, got \(5, 4\)"
    ):
        overlap_sums_float64(x, torch.ones(5, 4, dtype=torch.bool))
    with pytest.raises(ValueError, match=r"mask must have the shape and device of x, got \(4,\)"):
        overlap_sums_float64(x, region, torch.ones(4, dtype=torch.bool))


def test_overlap_sums_do_not_mutate_their_inputs():
    x = torch.rand(50, 60, generator=torch.Generator().manual_seed(18))
    region, mask = x > 0.4, x < 0.9
    copies = [x.clone(), region.clone(), mask.clone()]
    overlap_sums_float64(x.requires_grad_(True), region, mask)[2].backward()
    for before, after in zip(copies, (x.detach(), region, mask), strict=True):
        assert torch.equal(before, after)


def test_context_overlap_sums_are_the_sums_of_the_product_maps():
    gen = torch.Generator().manual_seed(19)
    p = torch.rand(256, 300, generator=gen)
    labels = (torch.rand(256, 300, generator=gen) * 3).long()  # instance ids 0, 1, 2
    mask = torch.rand(256, 300, generator=gen) > 0.25
    ctx = LossContext(p, labels, False, mask, torch.float32)
    y = (labels > 0).double()
    p64, m = p.double(), mask.double()
    want = [
        math.fsum((t * m).flatten().tolist())
        for t in (p64 * y, p64 * (1 - y), (1 - p64) * y, (1 - p64) * (1 - y))
    ]
    got = [float(s) for s in ctx.overlap_sums()]
    assert got == pytest.approx(want, rel=1e-15)
    # another region and other terms
    region = labels == 2
    q = 1.0 - p
    got = [float(s) for s in ctx.overlap_sums(q, region)]
    assert got == pytest.approx(
        _overlap_reference(q.numpy(), region.numpy(), mask.numpy()), rel=1e-15
    )


def _product_formula(name: str, p, y, k: dict):
    """The loss written with product maps by y and 1 − y (float64, counted pixels only)."""
    tp, fp = (p * y).sum(), (p * (1 - y)).sum()
    fn, tn = ((1 - p) * y).sum(), ((1 - p) * (1 - y)).sum()
    s = k.get("smooth")
    if name == "jaccard":
        return 1 - (tp + s) / (tp + fp + fn + s)
    if name in ("tversky", "focal_tversky"):
        ti = (tp + s) / (tp + k["alpha"] * fp + k["beta"] * fn + s)
        return 1 - ti if name == "tversky" else (1 - ti) ** k["gamma"]
    if name == "mcc":
        den = torch.sqrt((tp + fp) * (tp + fn) * (tn + fp) * (tn + fn) + k["smooth_dr"])
        return 1 - (tp * tn - fp * fn + k["smooth_nr"]) / den
    if name == "generalized_dice":
        w = 1 / torch.stack([(1 - y).sum(), y.sum()]) ** 2
        num = 2 * (w[0] * tn + w[1] * tp) + k["smooth_nr"]
        both = torch.stack([((1 - p) + (1 - y)).sum(), (p + y).sum()])
        return 1 - num / ((w * both).sum() + k["smooth_dr"])
    if name == "unified_focal":
        d, g = k["delta"], k["gamma"]
        back = (1 - d) * p**g * (-(1 - y) * torch.log1p(-p))
        focal = (back + d * (-y * torch.log(p))).mean() / 2
        ti0 = (tn + s) / (tn + d * fp + (1 - d) * fn + s)
        ti1 = (tp + s) / (tp + d * fn + (1 - d) * fp + s)
        tversky = 0.5 * ((1 - ti0) + (1 - ti1) ** (1 - g))
        return k["weight"] * focal + (1 - k["weight"]) * tversky
    if name == "sensitivity_specificity":
        err = (y - p) ** 2
        sens = (err * y).sum() / (y.sum() + s)
        return k["w"] * sens + (1 - k["w"]) * (err * (1 - y)).sum() / ((1 - y).sum() + s)
    if name == "exp_log":
        dice = (2 * tp + s) / (p.sum() + y.sum() + s)
        n, n_fg = y.numel(), y.sum()
        w = y * torch.sqrt(n / n_fg) + (1 - y) * torch.sqrt(n / (n - n_fg))
        nll = -(y * torch.log(p) + (1 - y) * torch.log1p(-p))
        l_ce = (w * nll ** k["gamma_ce"]).mean()
        return k["w_dice"] * (-torch.log(dice)) ** k["gamma_dice"] + k["w_ce"] * l_ce
    if name == "combo":
        b, a = k["beta"], k["alpha"]
        ce = -(b * y * torch.log(p) + (1 - b) * (1 - y) * torch.log1p(-p))
        dice = (2 * tp + s) / ((p ** k["gamma"]).sum() + (y ** k["gamma"]).sum() + s)
        return a * ce.mean() + (1 - a) * (1 - dice)
    raise AssertionError(name)


@pytest.mark.parametrize(
    ("name", "params"),
    [
        ("jaccard", {}),
        ("tversky", {"alpha": 0.3, "beta": 0.9}),
        ("focal_tversky", {}),
        ("mcc", {}),
        ("generalized_dice", {}),
        ("unified_focal", {}),
        ("sensitivity_specificity", {"w": 0.3}),
        ("exp_log", {}),
        ("combo", {"beta": 0.3}),
    ],
)
def test_region_loss_maps_match_the_product_formulas_in_float64(name, params):
    # the loss map (float32 prediction, overlap and where= sums) against autograd through
    # the formula written with product maps in float64: equal to float32 rounding
    gen = torch.Generator().manual_seed(20)
    p = torch.rand(128, 160, generator=gen) * 0.98 + 0.01
    labels = (torch.rand(128, 160, generator=gen) > 0.6).long()
    mask = torch.rand(128, 160, generator=gen) > 0.2
    got = loss_map(p, labels, name, mask=mask, **params)
    p64 = p.double().requires_grad_(True)
    defaults = {q.name: q.default for q in available_losses()[name].params}
    value = _product_formula(name, p64[mask], (labels[mask] > 0).double(), defaults | params)
    (want,) = torch.autograd.grad(value, p64)
    assert got.dtype == torch.float32
    torch.testing.assert_close(got.double(), want, rtol=2e-6, atol=1e-6 * float(want.abs().max()))
    assert float(got[~mask].abs().max()) == 0.0
