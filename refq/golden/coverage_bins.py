"""Coverage bins: the kinds of coverage point a kernel variant declares, the bins each kind
expands to, and the predicates that decide, element by element, which bins a sampled
intermediate hits.

A variant declares its points in the registry (``meta["coverage.bins"]``, module docstring
of :mod:`refq.ops.registry`) as ``"kind:intermediate"`` strings; its coverage model
(``meta["coverage.model"]``) samples each named intermediate of one call as one of the
sample types below. The bin ``"<intermediate>: <bin>"`` (e.g. ``"x·b / 2^c: tie-"``) is hit
by a call when its predicate holds for at least one element.

=========  ====================================  =============================================
kind       sample                                bins
=========  ====================================  =============================================
tie        :class:`Division` or :class:`Shift`   ``tie+`` / ``tie-``: the quotient is exactly
                                                 k + 1/2, numerator positive / negative;
                                                 ``near_tie+`` / ``near_tie-``: the remainder
                                                 is one unit (of the numerator) from the half
clamp      :class:`Clamp`                        ``below`` / ``above``: the value before
                                                 saturation or clamping lies outside [lo, hi]
ends       :class:`Ends`                         ``min`` / ``max``: the value equals lo / hi
                                                 (a shift at its range end, a table index)
operand    :class:`Ends` with ``zero``           ``min`` / ``zero`` / ``max`` (zero: the zero
                                                 point)
top        :class:`Top`                          ``top_bit``: the value needs the top bit of
                                                 its declared signed width (|v| >= 2^(w-2))
rows       :class:`Flags`                        ``all_equal`` / ``one_dominant``: a row whose
                                                 elements are all equal / a row whose maximum
                                                 takes the whole output
=========  ====================================  =============================================

Integer-only (numpy int64); remainders are computed so that nothing overflows int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError

BoolArray = npt.NDArray[np.bool_]
Arr = npt.NDArray[np.int64]

KINDS: dict[str, tuple[str, ...]] = {
    "tie": ("tie+", "tie-", "near_tie+", "near_tie-"),
    "clamp": ("below", "above"),
    "ends": ("min", "max"),
    "operand": ("min", "zero", "max"),
    "top": ("top_bit",),
    "rows": ("all_equal", "one_dominant"),
}


def _i64(a: Any) -> Arr:
    return np.asarray(a, dtype=np.int64)


@dataclass(frozen=True)
class Division:
    """A rounding point num / den (den >= 1, broadcasting against num)."""

    num: Any
    den: Any


@dataclass(frozen=True)
class Shift:
    """A rounding point num / 2^shift (shift 0..63, broadcasting against num)."""

    num: Any
    shift: Any


@dataclass(frozen=True)
class Clamp:
    """A saturation or clamp of ``value`` into [lo, hi]."""

    value: Any
    lo: Any
    hi: Any


@dataclass(frozen=True)
class Ends:
    """A value with a range [lo, hi] (and a zero point for the ``operand`` kind)."""

    value: Any
    lo: Any
    hi: Any
    zero: Any = None


@dataclass(frozen=True)
class Top:
    """A value declared in a signed width of ``bits`` bits."""

    value: Any
    bits: int


@dataclass(frozen=True)
class Flags:
    """Precomputed masks, bin → bool array (row kinds)."""

    masks: dict[str, Any] = field(default_factory=dict)


Sample = Division | Shift | Clamp | Ends | Top | Flags


def parse_point(decl: str) -> tuple[str, str]:
    """``"kind:intermediate"`` → (kind, intermediate); SpecError for an unknown kind."""
    kind, sep, name = decl.partition(":")
    if not sep or not name.strip() or kind not in KINDS:
        raise SpecError(f"coverage point {decl!r}: expected 'kind:intermediate' with kind in "
                        f"{tuple(KINDS)}")
    return kind, name.strip()


def bin_names(points: tuple[str, ...]) -> list[str]:
    """Every bin of the declared points, in declaration order: ``"<intermediate>: <bin>"``."""
    out: list[str] = []
    for decl in points:
        kind, name = parse_point(decl)
        out.extend(f"{name}: {b}" for b in KINDS[kind])
    return out


def _sign_split(tie: BoolArray, near: BoolArray, num: Arr) -> dict[str, BoolArray]:
    pos, neg = num > 0, num < 0
    return {"tie+": tie & pos, "tie-": tie & neg, "near_tie+": near & pos, "near_tie-": near & neg}


def _tie_masks(sample: Division | Shift) -> dict[str, BoolArray]:
    if isinstance(sample, Shift):
        num, s = np.broadcast_arrays(_i64(sample.num), _i64(sample.shift))
        mask = np.left_shift(np.int64(1), s) - np.int64(1)  # wraps to 2^63 - 1 at s = 63
        rem = num & mask
        half = np.left_shift(np.int64(1), np.maximum(s - 1, 0))
        off = rem - half  # |rem - half| < 2^63: no overflow
        tie = (off == 0) & (s >= 1)
        near = ((off == 1) | (off == -1)) & (s >= 2)
        return _sign_split(tie, near, num)
    num, den = np.broadcast_arrays(_i64(sample.num), _i64(sample.den))
    if num.size and int(den.min()) < 1:
        raise SpecError("coverage: a Division sample needs den >= 1")
    rem = np.mod(num, den)
    dist = rem - (den - rem)  # 2·rem - den, in [-den, den): no overflow
    # near: one unit of the numerator from the exact half (|2·rem - den| = 2), or for an odd
    # den the two remainders nearest the (unreachable) half (|2·rem - den| = 1)
    tie = (dist == 0) & (den >= 2)
    near = ((dist == 2) | (dist == -2) | (dist == 1) | (dist == -1)) & (den >= 3)
    return _sign_split(tie, near, num)


def masks(kind: str, sample: Sample) -> dict[str, BoolArray]:
    """bin → bool array of the elements (or rows) of ``sample`` that hit it."""
    if kind == "tie":
        if not isinstance(sample, (Division, Shift)):
            raise SpecError(f"coverage: a tie point needs a Division or Shift, got {sample!r}")
        return _tie_masks(sample)
    if kind == "clamp" and isinstance(sample, Clamp):
        v = _i64(sample.value)
        return {"below": v < _i64(sample.lo), "above": v > _i64(sample.hi)}
    if kind in ("ends", "operand") and isinstance(sample, Ends):
        v = _i64(sample.value)
        out = {"min": v == _i64(sample.lo), "max": v == _i64(sample.hi)}
        if kind == "operand":
            zero = 0 if sample.zero is None else sample.zero
            out["zero"] = v == _i64(zero)
        return out
    if kind == "top" and isinstance(sample, Top):
        v, lim = _i64(sample.value), np.int64(1) << np.int64(sample.bits - 2)
        return {"top_bit": (v >= lim) | (v < -lim)}
    if kind == "rows" and isinstance(sample, Flags):
        return {b: np.asarray(m, dtype=bool) for b, m in sample.masks.items()}
    raise SpecError(f"coverage: a {kind!r} point cannot take a {type(sample).__name__} sample")


def row_flags(x: Any, out: Any, zero: int = 0) -> Flags:
    """``rows`` bins of row kernels (last axis): all elements equal; one dominant — a unique
    row maximum whose output is the row's only output other than ``zero`` (the code of
    probability 0)."""
    xa, ya = _i64(x), _i64(out)
    if xa.ndim == 0 or xa.shape[-1] == 0:
        return Flags({"all_equal": np.zeros(0, bool), "one_dominant": np.zeros(0, bool)})
    mx = xa.max(axis=-1, keepdims=True)
    equal = (xa == mx).all(axis=-1)
    unique = (xa == mx).sum(axis=-1) == 1
    alone = ((ya != zero) == (xa == mx)).all(axis=-1) if ya.shape == xa.shape else unique
    return Flags({"all_equal": equal, "one_dominant": unique & alone & (xa.shape[-1] > 1)})


__all__ = [
    "KINDS",
    "Clamp",
    "Division",
    "Ends",
    "Flags",
    "Sample",
    "Shift",
    "Top",
    "bin_names",
    "masks",
    "parse_point",
    "row_flags",
]
