"""LiteRT's requantization rules as data, and the exact scale ↔ parameter derivations: which
refq requantize variant each resolver runs per op (:data:`RULES`, measured; the table is in
:mod:`refq.crosscheck.adapters.litert_backend`), the integer parameters a resolver derives from
float32 scales (:func:`derive`, reproducing the C++ float / double arithmetic exactly), and
float32 scales from which a derivation gives chosen parameters (:func:`scales_for_family`,
:func:`scales_for`). Pure Python + NumPy: no LiteRT import.
"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from refq.intmath import quantize_multiplier


def f32(v: float) -> float:
    """``v`` rounded to float32 (as a Python float)."""
    return float(np.float32(v))


RULES: dict[tuple[str, str], str] = {
    ("fully_connected", "ref"): "fp64",
    ("fully_connected", "optimized"): "double_up",
    ("fully_connected", "default"): "fp32",
    ("fully_connected_uint8", "ref"): "fp64",
    ("fully_connected_uint8", "optimized"): "double_up",
    ("fully_connected_uint8", "default"): "fp32",
    ("batch_matmul", "ref"): "double",
    ("batch_matmul", "optimized"): "double",
    ("batch_matmul", "default"): "fp32",
}
"""The refq requantize family each resolver runs per op (module docstring table)."""
RULE_CPU: dict[str, dict[str, list[str]]] = {
    "optimized": {"cpu_has": ["avx2"]},  # ruy's AVX2 / AVX-512 kernels (portable C++: single)
    "default": {"cpu_has": ["avx2"]},  # XNNPACK's x86 qs8 microkernels (fp32 requantization)
}
"""CPU condition under which a resolver's :data:`RULES` were measured; on other CPUs the
resolver maps no requantizing GEMM case (they are reported as skipped)."""
XNNPACK_MAX_SCALE = 256.0
"""XNNPACK refuses requantization scales >= 256 (the default resolver then fails to prepare
its delegate); such ``fp32`` cases are not mapped."""


def derive(family: str, s_x: float, s_w: float, s_o: float) -> tuple[int, int]:
    """The integer (multiplier, shift) a resolver running ``family`` derives from float32
    scales (input, weight, output), computed exactly as its C++ does (Python floats are
    IEEE binary64, np.float32 binary32; every operation rounds the same way)."""
    from refq.params import fp32_multiplier, fp64_multiplier

    if family == "fp64":
        return fp64_multiplier(float(s_x) * float(s_w) / float(s_o))
    if family == "fp32":
        return fp32_multiplier(float(np.float32(np.float32(s_x) * np.float32(s_w))
                                     / np.float32(s_o)))
    prod = float(np.float32(np.float32(s_x) * np.float32(s_w)))
    return quantize_multiplier(prod / float(s_o), "double")


def scales_for_family(family: str, multiplier: int, shift: int, limit: int = 100_000
                      ) -> tuple[float, float, float] | None:
    """Float32 scales (input, weight, output) from which ``family``'s derivation
    (:func:`derive`) yields exactly (multiplier, shift), or None.

    ``fp32``: (1, m·2^-c, 1). ``fp64``: the same where m < 2^24 (a double product of
    float32 scales cannot reach other 53-bit significands in general). ``double`` /
    ``double_up``: (1, v, u) with v/u, rounded to binary64, inside QuantizeMultiplier's
    rounding interval of M: u = B·2^-23, v = A·2^(shift-24) with A = round(M·B/2^30); a scan
    over B < 2^23 finds an A/B close enough to M/2^30 (within 2^-32 relative) in ~2^8 steps
    on average.
    """
    m, c = int(multiplier), int(shift)
    if family in ("fp32", "fp64"):
        if not 0 < m < (1 << 24) or not 0 <= c <= 140:
            return None
        if family == "fp32" and not 2.0**-32 <= math.ldexp(m, -c) < XNNPACK_MAX_SCALE:
            return None
        w = math.ldexp(m, -c)
        if f32(w) != w or w < 1.2e-38:
            return None
        return (1.0, w, 1.0) if derive(family, 1.0, w, 1.0) == (m, c) else None
    if not (1 << 30) <= m < (1 << 31):
        return None
    for b in range((1 << 23) - 1, max((1 << 23) - 1 - limit, 1 << 22), -1):
        a = (m * b + (1 << 29)) >> 30  # A/B ≈ M/2^30, A < 2^24 as b < 2^23
        v, u = math.ldexp(a, c - 24), math.ldexp(b, -23)  # v/u ≈ M·2^(shift-31)
        if v > 1.2e-38 and f32(v) == v and derive(family, 1.0, v, u) == (m, c):
            return 1.0, v, u
    return None


def scales_for(multiplier: int, shift: int, extra: int = 0, limit: int = 200_000
               ) -> tuple[float, float] | None:
    """Two float32 values (s1, s2) with QuantizeMultiplier(s1·s2·2^extra) == (multiplier,
    shift), the product taken exactly (as a double product of two floats is), or None.

    QuantizeMultiplier rounds q·2^31 half away from zero, q = frexp mantissa; so s1·s2·2^extra
    must lie strictly inside ((M - 1/2)·2^(shift-31), (M + 1/2)·2^(shift-31)). With 24-bit
    significands A, B and s1·s2 = A·B·2^E (E = shift - 47 - extra), A·B must lie strictly
    between (2M - 1)·2^15 and (2M + 1)·2^15; a scan over A from √((2M-1)·2^15) upward
    finds one in ~100 steps on average (B = the smallest integer above the lower bound / A).
    Used for SOFTMAX (beta · input scale · 2^26).
    """
    m = int(multiplier)
    if not (1 << 30) <= m < (1 << 31):
        return None
    lo, hi = (2 * m - 1) << 15, (2 * m + 1) << 15
    a = math.isqrt(lo)
    for _ in range(limit):
        a += 1
        b = lo // a + 1
        if a * b < hi and (1 << 23) <= b < (1 << 24) and (1 << 23) <= a < (1 << 24):
            e = shift - 47 - extra
            e1 = e // 2
            s1, s2 = math.ldexp(a, e1), math.ldexp(b, e - e1)
            if f32(s1) == s1 and f32(s2) == s2 and s1 > 1.2e-38 and s2 > 1.2e-38:
                got = quantize_multiplier(Fraction(s1) * Fraction(s2) * Fraction(2) ** extra,
                                          "double")
                if got == (m, shift):
                    return s1, s2
        if a >= (1 << 24):
            return None
    return None


__all__ = ["RULES", "RULE_CPU", "XNNPACK_MAX_SCALE", "derive", "f32", "scales_for",
           "scales_for_family"]
