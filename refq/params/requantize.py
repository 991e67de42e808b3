"""Parameters of requantize / add from real scales."""

from __future__ import annotations

from typing import Any

from refq.errors import SpecError
from refq.intmath import INT8, INT32, IntFormat, dyadic_from_real, quantize_multiplier
from refq.intmath.from_real import frexp_exact, round_fraction
from refq.intmath.rounding import Rounding
from refq.ops.add import AddParams
from refq.ops.requantize import RequantParams
from refq.params._real import exact


def requant_params(
    real_multiplier: Any,
    family: str = "double",
    *,
    in_zero_point: int = 0,
    out_zero_point: int = 0,
    out_format: IntFormat = INT8,
    rounding: str | None = None,
    multiplier_rounding: Rounding | None = None,
    dyadic_bits: int = 31,
) -> RequantParams:
    """RequantParams of the variant ``requantize.<family>`` for y = x · real (real =
    S_in·S_w/S_out, one value or per channel).

    Two roundings, two arguments: ``multiplier_rounding`` is how the dyadic multiplier is
    derived from the real (b = round(m·2^dyadic_bits), :func:`dyadic_from_real`; None →
    half_even, I-ViT's torch.round), ``rounding`` the runtime rounding of x·b/2^c
    (RequantParams.rounding; None → half_even). The TFLite families (``double``, ``single``,
    ``double_up``) derive their multiplier by QuantizeMultiplier (ties away from zero),
    ``fp32`` / ``fp64`` round the real to the nearest binary32 / binary64 value
    (:func:`fp32_multiplier`, :func:`fp64_multiplier`); all of these fix their runtime
    roundings and take neither argument (SpecError)."""
    fixed = family in ("double", "single", "double_up", "fp32", "fp32_zp", "fp64")
    if fixed and (rounding is not None or multiplier_rounding is not None):
        raise SpecError(
            f"requant_params: family {family!r} takes no rounding / multiplier_rounding "
            "(the family fixes both)"
        )
    reals = real_multiplier if isinstance(real_multiplier, (list, tuple)) else [real_multiplier]
    ms: list[int] = []
    ss: list[int] = []
    for i, r in enumerate(reals):
        exact(r, f"real_multiplier[{i}]")
        if family in ("fp32", "fp32_zp"):
            b, c = fp32_multiplier(r)
        elif family == "fp64":
            b, c = fp64_multiplier(r)
        elif fixed:
            b, c = quantize_multiplier(r, "single" if family == "single" else "double")
        else:
            b, c = dyadic_from_real(r, dyadic_bits, multiplier_rounding or "half_even")
        ms.append(b)
        ss.append(c)
    return RequantParams(family, tuple(ms), tuple(ss), rounding, in_zero_point, out_zero_point,
                         out_format)


def fp32_multiplier(real: Any) -> tuple[int, int]:
    """(m, c) with m·2^-c the binary32 value nearest to ``real`` (ties to even), m < 2^24 and
    c in 0..63 (the ``fp32`` requantize family's parameters), reduced so that m is odd (or
    c = 0, or m = 0).

    ``real`` is taken exactly (a Python float is its binary64 value; a string or Fraction its
    decimal value). SpecError if real < 0, if it rounds to a value >= 2^24 or needs c > 63
    (below ~2^-40; binary32 subnormals are not needed at that size)."""
    return _binary_multiplier(real, 24, 63, "fp32_multiplier")


def fp64_multiplier(real: Any) -> tuple[int, int]:
    """(m, c) with m·2^-c the binary64 value nearest to ``real`` (ties to even), m < 2^53,
    c in 0..126, reduced so that m is odd (or c = 0, or m = 0). A Python
    float is taken as is (its exact value). SpecError if real < 0 or >= 2^53."""
    return _binary_multiplier(real, 53, 126, "fp64_multiplier")


def _binary_multiplier(real: Any, digits: int, max_shift: int, what: str) -> tuple[int, int]:
    """(m, c): ``real`` rounded to ``digits`` significant bits, ties to even, as m·2^-c
    with m odd (or c = 0, or m = 0), m < 2^digits, c in 0..max_shift; SpecError naming
    ``what`` otherwise."""
    f = exact(real, "real", positive=False)
    if f < 0:
        raise SpecError(f"{what}: real must be >= 0, got {real}")
    if f == 0:
        return 0, 0
    q, e = frexp_exact(f)  # f = q·2^e, q in [1/2, 1)
    m = round_fraction(q * 2**digits, "half_even")  # ``digits`` significant bits
    c = digits - e
    while m and m % 2 == 0 and c > 0:
        m //= 2
        c -= 1
    if m >= 1 << digits or c < 0:
        raise SpecError(f"{what}: real {real} >= 2^{digits} (needs a left shift)")
    if c > max_shift:
        raise SpecError(f"{what}: real {real} needs shift {c} > {max_shift}")
    return m, c


def add_params(
    a_scale: Any,
    b_scale: Any,
    out_scale: Any,
    scheme: str = "ivit",
    *,
    a_format: IntFormat = INT32,
    b_format: IntFormat = INT32,
    a_zero_point: int = 0,
    b_zero_point: int = 0,
    out_zero_point: int = 0,
    out_format: IntFormat = INT8,
    rounding: str = "half_even",
    multiplier_rounding: Rounding = "half_even",
    bits: int = 16,
) -> AddParams:
    """AddParams: ``ivit`` → one dyadic pair per branch (S_x/S_out, derived with
    ``multiplier_rounding``); ``shared_shift`` → a common shift c and integer multipliers
    round(S_x/S_out · 2^c) with ``bits`` bits for the larger one. ``rounding`` is the
    runtime rounding (AddParams.rounding)."""
    fa = exact(a_scale, "a_scale") / exact(out_scale, "out_scale")
    fb = exact(b_scale, "b_scale") / exact(out_scale, "out_scale")
    if scheme == "ivit":
        ma, ca = dyadic_from_real(fa, bits, multiplier_rounding)
        mb, cb = dyadic_from_real(fb, bits, multiplier_rounding)
    else:
        big = max(fa, fb)
        _, e = dyadic_from_real(big, bits)
        ca = cb = e
        ma = round_fraction(fa * 2**e, multiplier_rounding)
        mb = round_fraction(fb * 2**e, multiplier_rounding)
    return AddParams(scheme, a_format, b_format, a_zero_point, b_zero_point, ma, ca, mb, cb,
                     rounding, out_zero_point, out_format)
