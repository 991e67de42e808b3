"""Exact real helpers for parameter derivation."""

from __future__ import annotations

import math
from fractions import Fraction
from typing import Any

from refq.errors import SpecError


def exact(v: Any, name: str, positive: bool = True) -> Fraction:
    """A finite real (float, int, Fraction, decimal string) as an exact Fraction."""
    if isinstance(v, bool):
        raise SpecError(f"{name}: expected a real number, got a bool")
    if isinstance(v, str | int | Fraction):
        f = Fraction(v)
    else:
        try:
            fv = float(v)
        except (TypeError, ValueError):
            raise SpecError(f"{name}: expected a real number, got {type(v).__name__}") from None
        if not math.isfinite(fv):
            raise SpecError(f"{name}: must be finite, got {fv}")
        f = Fraction(fv)
    if positive and f <= 0:
        raise SpecError(f"{name}: must be > 0, got {v}")
    return f


def floor_frac(f: Fraction) -> int:
    return f.numerator // f.denominator
