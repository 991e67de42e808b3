"""A user adapter written from the docs alone: a from-scratch NumPy implementation of the
dyadic requantizer (round(x·b / 2^c), named rounding, zero point, saturation), using only
refq's public API (refq.golden.Case, refq.intmath.IntFormat) to read the case."""

from __future__ import annotations

from fractions import Fraction

import numpy as np

from refq.golden import Case
from refq.intmath import IntFormat


def _round(q: Fraction, mode: str) -> int:
    fl = q.numerator // q.denominator
    r = q - fl
    if mode == "floor" or r == 0:
        return fl
    if mode == "ceil":
        return fl + 1
    if mode == "trunc":
        return fl + (q < 0)
    if r != Fraction(1, 2):
        return fl + (r > Fraction(1, 2))
    return {"half_up": fl + 1, "half_away": fl + (q > 0), "half_even": fl + (fl % 2)}[mode]


class DyadicRequantizer:
    name = "my-dyadic"

    def supports(self, case: Case) -> bool:
        return case.meta.get("op") == "requantize" and case.meta.get("variant") == "dyadic"

    def run(self, case: Case) -> dict[str, np.ndarray]:
        p = case.meta["params"]
        fmt = IntFormat.parse(p["out_format"])
        b, c = p["multiplier"][0], p["shift"][0]
        x = case.tensors["x"].values.astype(object).ravel()
        y = [_round(Fraction(int(v) - p["in_zero_point"]) * b / 2**c, p["rounding"]) for v in x]
        y = [min(max(v + p["out_zero_point"], fmt.min), fmt.max) for v in y]
        return {"y": np.array(y, dtype=np.int64).reshape(case.tensors["x"].values.shape)}


def factory() -> DyadicRequantizer:
    return DyadicRequantizer()
