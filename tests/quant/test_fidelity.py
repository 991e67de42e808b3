"""Fidelity: refq's quantizers against independent oracles written here from the formulas
in shared METHODS.md (PTQ4ViT official twin code, I&S-ViT SULQ code and paper, RepQ-ViT
log√2, FQ-ViT LIS and PTF) and from refq's documented readings (V-2SF, TanQ, O-2SF)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from refq.quant import (
    Log2Quantizer,
    OutlierTwoScaleQuantizer,
    PowerOfTwoFactorQuantizer,
    ShiftUniformLog2Quantizer,
    TanQuantizer,
    TwinUniformQuantizer,
    ValueTwoScaleQuantizer,
)

RNG = np.random.default_rng(1234)


def _softmax_like(n: int, s: float) -> np.ndarray:  # type: ignore[type-arg]
    a = RNG.random(n) ** 6
    near = s * (1 + RNG.normal(0, 1e-3, 200))
    grid = np.arange(0, 1.0001, 1 / 127 / 16)
    return np.clip(np.concatenate([a, near, grid, [0.0, s, 1.0, np.nextafter(s, 0)]]), 0, 1)


@pytest.mark.parametrize("bits", [3, 4, 6, 8])
@pytest.mark.parametrize("m", [0, 1, 2, 4, 7, 19])
def test_twin_softmax_code_mode_is_official_sum(bits: int, m: int) -> None:
    M = 2 ** (bits - 1) - 1
    s = 2.0**-m
    d1 = s / M
    a = _softmax_like(5000, s)
    # PTQ4ViT quant_input_A: the high branch multiplies by M and divides the code by M
    oracle = (np.clip(np.round(np.clip(a, s, 1) * M), 0, M) / M
              + np.clip(np.round(np.clip(a, 0, s) / d1), 0, M) * d1)
    q = TwinUniformQuantizer(bits, "softmax", m=m, mode="code")
    np.testing.assert_array_equal(q.fake_quant(a), oracle, strict=True)


@pytest.mark.parametrize("bits", [3, 4, 8])
@pytest.mark.parametrize("m", [0, 3, 9])
def test_twin_softmax_paper_mode_is_piecewise(bits: int, m: int) -> None:
    M = 2 ** (bits - 1) - 1
    s = 2.0**-m
    d1, d2 = s / M, 1 / M
    a = _softmax_like(3000, s)
    r1 = np.clip(np.round(a / d1), 0, M)
    r2 = np.clip(np.round(a / d2), 0, M)
    q = TwinUniformQuantizer(bits, "softmax", m=m, mode="paper")
    np.testing.assert_array_equal(q.fake_quant(a), np.where(a < s, r1 * d1, r2 * d2), strict=True)
    codes = np.where(a < s, r1, r2 + 2 ** (bits - 1)).astype(np.int64)
    np.testing.assert_array_equal(q.quantize(a), codes, strict=True)


@pytest.mark.parametrize("bits", [4, 6, 8])
def test_twin_gelu_code_mode(bits: int) -> None:
    dn = 0.16997124254703522 / 2 ** (bits - 1)
    dp = 0.0371
    M = 2 ** (bits - 1) - 1
    x = np.concatenate([RNG.normal(0, 2, 5000), np.arange(-40, 40) * dp / 2, [-0.17, 10.0]])
    oracle = (np.clip(np.round(x / dp), 0, M) * dp
              + np.clip(np.round(x / dn), -(2 ** (bits - 1)), 0) * dn)
    q = TwinUniformQuantizer(bits, "gelu", delta_pos=dp, mode="code")
    np.testing.assert_array_equal(q.fake_quant(x), oracle, strict=True)
    assert q.code_range() == (-(2 ** (bits - 1)), M)


@pytest.mark.parametrize("mode", ["paper", "code"])
@pytest.mark.parametrize("bits", [3, 4, 6])
@pytest.mark.parametrize("eta", [0.001, 0.01, 0.1, 1.0])
def test_sulq_matches_official_formula(mode: str, bits: int, eta: float) -> None:
    x = np.concatenate([RNG.random(4000) ** 8, [0.0, 1.0]])
    y = np.log(x + eta) / np.log(2.0)  # I&S-ViT logk: ln(x)/ln(2)
    lo, hi = float(y.min()), float(y.max())
    n = 2**bits - 1 if mode == "paper" else 2**bits
    d = (hi - lo) / n
    qq = np.clip(np.round((y - lo) / d), 0, n)
    oracle = 2 ** np.round(qq * d + lo) - eta
    q = ShiftUniformLog2Quantizer.from_data(x, bits, eta, mode)  # type: ignore[arg-type]
    assert (q.y_min, q.y_max) == (lo, hi)
    np.testing.assert_array_equal(q.quantize(x), qq.astype(np.int64), strict=True)
    np.testing.assert_array_equal(q.fake_quant(x), oracle, strict=True)
    assert q.code_range() == (0, n)


@pytest.mark.parametrize("bits", [3, 4, 8])
@pytest.mark.parametrize("delta", [1.0, 0.37])
def test_log_sqrt2_matches_repq(bits: int, delta: float) -> None:
    x = np.concatenate([RNG.random(5000) ** 10 * delta, [0.0, delta, 2 * delta]])
    with np.errstate(divide="ignore"):
        xi = np.round(-1 * np.log2(x / delta) * 2)
    mask = xi >= 2**bits
    xq = np.clip(xi, 0, 2**bits - 1)
    odd = (xq % 2) * (math.sqrt(2) - 1) + 1
    oracle = 2 ** (-1 * np.ceil(xq / 2)) * odd * delta
    oracle[mask] = 0
    q = Log2Quantizer(bits, "sqrt2", delta, zero="extra")
    np.testing.assert_array_equal(q.fake_quant(x), oracle, strict=True)
    codes = np.where(mask, 2**bits, xq).astype(np.int64)
    np.testing.assert_array_equal(q.quantize(x), codes, strict=True)


def test_log2_matches_fqvit_lis_uint4() -> None:
    x = np.concatenate([RNG.random(5000) ** 12, [0.0, 1.0, 2**-15, 2**-16, 2**-15.5]])
    with np.errstate(divide="ignore"):
        r = np.round(-np.log2(x))
    oracle = np.where(r >= 16, 0.0, 2.0 ** -np.clip(r, 0, 15))
    q = Log2Quantizer(4, "2")
    np.testing.assert_array_equal(q.fake_quant(x), oracle, strict=True)


def test_ptf_matches_fqvit_formula() -> None:
    C = 6
    x = RNG.normal(0, 1, (400, C)) * np.array([0.2, 1, 3, 8, 20, 50])
    lo, hi = float(x.min()), float(x.max())
    alpha = np.array([0, 0, 1, 2, 3, 3])
    s8 = max((hi - lo) / 255, 1e-8)
    z = float(np.clip(np.round(-lo / s8), 0, 255))
    sc = s8 / 8 * 2.0**alpha
    oracle_c = np.clip(np.round(x / sc) + z, 0, 255)
    q = PowerOfTwoFactorQuantizer.from_layer_range(lo, hi, 8, alpha)
    np.testing.assert_array_equal(q.quantize(x), oracle_c.astype(np.int64), strict=True)
    np.testing.assert_array_equal(q.fake_quant(x), (oracle_c - z) * sc, strict=True)


@pytest.mark.parametrize("bits,k", [(4, 1), (4, 3), (8, 2), (8, 4), (6, 7)])
def test_v2sf_reading(bits: int, k: int) -> None:
    s = 0.013
    half = 2 ** (bits - 1)
    x = np.concatenate([RNG.random(3000) ** 3 * s * half * 2**k * 1.2, [-1.0, 0.0]])
    V = ValueTwoScaleQuantizer(s, bits, k)
    got = V.quantize(x)
    exp = []
    for v in x.tolist():
        xr = round(v / s)  # Python round: half to even, as the reading specifies
        if xr < half:
            exp.append(max(xr, 0))
        else:  # keep the MSBs: shift right by k, saturate at the (b-1)-bit max
            exp.append(half + min(max(round(v / (s * 2**k)), max(1, half >> k)), half - 1))
    np.testing.assert_array_equal(got, np.array(exp, dtype=np.int64), strict=True)
    assert V.code_range() == (0, 2 * half - 1)


@pytest.mark.parametrize("bits", [2, 3, 4, 8])
@pytest.mark.parametrize("a", [0.1, 0.8, 1.4])
def test_tanq_is_nearest_level_in_companded_domain(bits: int, a: float) -> None:
    n = 2**bits
    x = RNG.random(3000)
    y = np.tan(a * (2 * x - 1)) / np.tan(a)
    oracle = np.clip(np.round((y + 1) * (n - 1) / 2), 0, n - 1).astype(np.int64)
    q = TanQuantizer(bits, a)
    got = q.quantize(x)
    # away from a decision point the two computations must agree exactly
    t = q.thresholds
    far = np.min(np.abs(x[:, None] - t[None, :]), axis=1) > 1e-9
    np.testing.assert_array_equal(got[far], oracle[far], strict=True)
    lv = q.levels()
    assert lv is not None and lv[0] == 0.0 and lv[-1] == 1.0
    # finer than uniform near 1 (and 0): the top step is smaller than 1/(n-1)
    assert lv[-1] - lv[-2] < 1 / (n - 1)


def test_o2sf_flags_planted_outliers() -> None:
    x = RNG.normal(0, 1, (500, 8))
    x[:, 2] *= 40
    x[:, 6] = x[:, 6] * 25 + 10
    q = OutlierTwoScaleQuantizer.from_calibration(x, 8, tau=4.0)
    np.testing.assert_array_equal(q.flags, np.array([0, 0, 1, 0, 0, 0, 1, 0]), strict=True)
    np.testing.assert_array_equal(q.scale, q.base_scale * np.where(q.flags == 1, 2.0**q.k, 1.0),
                                  strict=True)
    # every channel's data lies inside its representable range (no clipping at calibration)
    lo = (0 - q.zero_point) * q.scale
    hi = (255 - q.zero_point) * q.scale
    assert bool((x.min(0) >= lo - q.scale / 2).all() and (x.max(0) <= hi + q.scale / 2).all())
    err_o2 = np.mean((q.fake_quant(x) - x) ** 2)
    # against one scale covering everything (the uniform alternative)
    s1 = (x.max() - x.min()) / 255
    z1 = np.round(-x.min() / s1)
    err_1 = np.mean(((np.clip(np.round(x / s1) + z1, 0, 255) - z1) * s1 - x) ** 2)
    assert err_o2 < err_1
