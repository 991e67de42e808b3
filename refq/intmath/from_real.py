"""Real numbers → integer parameters (multipliers, shifts, dyadic pairs).

This module is the boundary of the integer path: it takes a real number (a Python float or
``fractions.Fraction``) once, converts it to an exact rational, and does every rounding in
Python integers, so the integer parameters it returns are the same on every platform. It is
used by lowering (the only stage where reals become integers) and is the one intmath module
that accepts floats; the float scan lists it by name.
"""

from __future__ import annotations

import math
import warnings
from fractions import Fraction
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath.fixedpoint import Scheme, check_scheme
from refq.intmath.rounding import Rounding, check_rounding

Real = float | int | Fraction


def _exact(real: Any, name: str) -> Fraction:
    if isinstance(real, (np.floating, np.integer)):
        real = real.item()
    if isinstance(real, bool) or not isinstance(real, (int, float, Fraction)):
        raise SpecError(f"{name}: expected a real number, got {type(real).__name__}")
    if isinstance(real, float) and not math.isfinite(real):
        raise SpecError(f"{name}: expected a finite real number, got {real}")
    return Fraction(real)


def round_fraction(f: Fraction, rounding: Rounding) -> int:
    """Round an exact rational to an integer with a named rounding."""
    rounding = check_rounding(rounding)
    fl = f.numerator // f.denominator
    rem = f - fl
    if rounding == "floor" or rem == 0:
        return fl
    if rounding == "ceil":
        return fl + 1
    if rounding == "trunc":
        return fl + 1 if f < 0 else fl
    half = Fraction(1, 2)
    if rem != half:
        return fl + 1 if rem > half else fl
    if rounding == "half_up":
        return fl + 1
    if rounding == "half_away":
        return fl + 1 if f > 0 else fl
    return fl + (fl & 1)


def frexp_exact(f: Fraction) -> tuple[Fraction, int]:
    """(m, e) with f = m · 2^e and 0.5 <= |m| < 1 (C frexp), exactly; (0, 0) for 0."""
    if f == 0:
        return Fraction(0), 0
    e = f.numerator.bit_length() - f.denominator.bit_length()
    m = f / Fraction(2) ** e
    while abs(m) >= 1:
        m /= 2
        e += 1
    while abs(m) < Fraction(1, 2):
        m *= 2
        e -= 1
    return m, e


def quantize_multiplier(
    real: Real, scheme: Scheme = "double", *, convention: Scheme | None = None
) -> tuple[int, int]:
    """TFLite QuantizeMultiplier: real ≥ 0 → (multiplier, shift), real ≈ M · 2^(shift-31).

    frexp gives real = q · 2^shift with q in [0.5, 1); M = round_half_away(q · 2^31); if M
    reaches 2^31 it is halved and shift incremented; shift < -31 flushes to (0, 0). The
    ``single`` scheme (TFLITE_SINGLE_ROUNDING) also clamps shift > 30 to (2^31 - 1, 30).
    ``real == 0`` gives (0, 0). Negative reals raise SpecError (refq keeps signs in the
    integer operands); reals whose shift exceeds 30 in the double scheme raise SpecError
    (the C++ left shift would overflow int32). ``convention=`` is the former name of
    ``scheme`` (deprecated).
    """
    if convention is not None:
        warnings.warn("quantize_multiplier: 'convention' is now 'scheme'", DeprecationWarning,
                      stacklevel=2)
        scheme = convention
    scheme = check_scheme(scheme, "quantize_multiplier: scheme")
    f = _exact(real, "real")
    if f < 0:
        raise SpecError(f"quantize_multiplier: real multiplier must be >= 0, got {real}")
    if f == 0:
        return 0, 0
    q, shift = frexp_exact(f)
    q_fixed = round_fraction(q * 2**31, "half_away")
    if q_fixed == 2**31:
        q_fixed //= 2
        shift += 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        if scheme == "single":
            return 2**31 - 1, 30
        raise SpecError(f"quantize_multiplier: real {real} needs shift {shift} > 30")
    return q_fixed, shift


def dyadic_from_real(
    real: Real, bits: int = 31, rounding: Rounding = "half_even"
) -> tuple[int, int]:
    """Dyadic approximation real ≈ b / 2^c (I-ViT / HAWQ ``batch_frexp``).

    frexp gives real = m · 2^e, m in [0.5, 1); b = round(m · 2^bits) with the named rounding
    (I-ViT's torch.round is ``half_even``), c = bits - e. A carry (b = 2^bits) is
    renormalised to (2^(bits-1), c - 1). ``bits`` in 1..62; real must be ≥ 0 and give c ≥ 0
    (i.e. real < 2^bits). real == 0 gives (0, 0).
    """
    if isinstance(bits, bool) or not isinstance(bits, int) or not 1 <= bits <= 62:
        raise SpecError(f"dyadic_from_real: bits must be an int in 1..62, got {bits!r}")
    rounding = check_rounding(rounding)
    f = _exact(real, "real")
    if f < 0:
        raise SpecError(f"dyadic_from_real: real must be >= 0, got {real}")
    if f == 0:
        return 0, 0
    m, e = frexp_exact(f)
    b = round_fraction(m * 2**bits, rounding)
    c = bits - e
    if b == 2**bits:
        b //= 2
        c -= 1
    if c < 0:
        raise SpecError(f"dyadic_from_real: real {real} >= 2^{bits} gives a negative shift")
    if c > 63:
        raise SpecError(f"dyadic_from_real: real {real} needs shift {c} > 63")
    return b, c


__all__ = ["dyadic_from_real", "frexp_exact", "quantize_multiplier", "round_fraction"]
