"""Parameters of requantize / add from real scales."""

from __future__ import annotations

from typing import Any

from refq.intmath import INT8, INT32, IntFormat, dyadic_from_real, quantize_multiplier
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
    rounding: str = "half_even",
    dyadic_bits: int = 31,
) -> RequantParams:
    """RequantParams for y = x · real (real = S_in·S_w/S_out, one value or per channel)."""
    reals = real_multiplier if isinstance(real_multiplier, (list, tuple)) else [real_multiplier]
    ms: list[int] = []
    ss: list[int] = []
    for i, r in enumerate(reals):
        exact(r, f"real_multiplier[{i}]")
        if family == "dyadic":
            b, c = dyadic_from_real(r, dyadic_bits, rounding)  # type: ignore[arg-type]
        else:
            b, c = quantize_multiplier(r, "single" if family == "single" else "double")
        ms.append(b)
        ss.append(c)
    return RequantParams(family, tuple(ms), tuple(ss), rounding, in_zero_point, out_zero_point,
                         out_format)


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
    bits: int = 16,
) -> AddParams:
    """AddParams: ``ivit`` → one dyadic pair per branch (S_x/S_out); ``shared_shift`` →
    a common shift c and integer multipliers round(S_x/S_out · 2^c) with ``bits`` bits for
    the larger one."""
    fa = exact(a_scale, "a_scale") / exact(out_scale, "out_scale")
    fb = exact(b_scale, "b_scale") / exact(out_scale, "out_scale")
    if scheme == "ivit":
        ma, ca = dyadic_from_real(fa, bits, rounding)  # type: ignore[arg-type]
        mb, cb = dyadic_from_real(fb, bits, rounding)  # type: ignore[arg-type]
    else:
        big = max(fa, fb)
        _, e = dyadic_from_real(big, bits)
        ca = cb = e
        ma = round(fa * 2**e)
        mb = round(fb * 2**e)
    return AddParams(scheme, a_format, b_format, a_zero_point, b_zero_point, ma, ca, mb, cb,
                     rounding, out_zero_point, out_format)
