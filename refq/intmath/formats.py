"""Integer formats and the three ways to enforce one: check, saturate, wrap."""

from __future__ import annotations

import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64, first_index


@dataclass(frozen=True)
class IntFormat:
    """A two's-complement (``signed=True``) or unsigned integer format of ``bits`` bits.

    ``bits`` is 1..64 for unsigned and 2..64 for signed formats. ``min``/``max`` are the
    full range; ``narrow_min`` is the symmetric lower bound (-2^(bits-1) + 1) used by
    narrow-range quantizers. Formats are values: hashable, comparable, JSON-able through
    :meth:`to_dict` / :meth:`from_dict`, and written ``int8`` / ``uint4`` by :meth:`name`.
    """

    bits: int
    signed: bool = True

    def __post_init__(self) -> None:
        if isinstance(self.bits, bool) or not isinstance(self.bits, (int, np.integer)):
            raise SpecError(f"IntFormat.bits: expected an int, got {self.bits!r}")
        if not isinstance(self.signed, (bool, np.bool_)):
            raise SpecError(f"IntFormat.signed: expected a bool, got {self.signed!r}")
        lo = 2 if self.signed else 1
        if not lo <= int(self.bits) <= 64:
            raise SpecError(
                f"IntFormat.bits: {self.bits} outside {lo}..64 for a "
                f"{'signed' if self.signed else 'unsigned'} format"
            )
        object.__setattr__(self, "bits", int(self.bits))
        object.__setattr__(self, "signed", bool(self.signed))

    @property
    def min(self) -> int:
        """Smallest representable value."""
        return -(1 << (self.bits - 1)) if self.signed else 0

    @property
    def max(self) -> int:
        """Largest representable value."""
        return (1 << (self.bits - 1)) - 1 if self.signed else (1 << self.bits) - 1

    @property
    def narrow_min(self) -> int:
        """Lower bound of the narrow (symmetric) range: ``-max`` for signed, 0 unsigned."""
        return -self.max if self.signed else 0

    @property
    def name(self) -> str:
        """``int8``, ``uint4``, ..."""
        return f"{'' if self.signed else 'u'}int{self.bits}"

    def __str__(self) -> str:
        return self.name

    def contains(self, x: Any, narrow: bool = False) -> bool:
        """True when every element of ``x`` lies in the format (narrow range if asked)."""
        arr = as_int64(x, "x") if self.bits < 64 or self.signed else np.asarray(x)
        if arr.size == 0:
            return True
        lo = self.narrow_min if narrow else self.min
        return bool(int(arr.min()) >= lo and int(arr.max()) <= self.max)

    def to_dict(self) -> dict[str, Any]:
        return {"bits": self.bits, "signed": self.signed}

    @classmethod
    def from_dict(cls, d: Any) -> IntFormat:
        if not isinstance(d, dict) or set(d) != {"bits", "signed"}:
            raise SpecError(f"IntFormat.from_dict: expected {{'bits', 'signed'}}, got {d!r}")
        return cls(d["bits"], d["signed"])

    @classmethod
    def parse(cls, name: str) -> IntFormat:
        """Inverse of :attr:`name`: ``"int8"`` → IntFormat(8, True)."""
        signed = not name.startswith("u")
        body = name if signed else name[1:]
        digits = body[3:]
        if not body.startswith("int") or not digits.isdigit():
            raise SpecError(f"IntFormat.parse: {name!r} is not of the form int<N> or uint<N>")
        return cls(int(digits), signed)


INT4 = IntFormat(4, True)
UINT4 = IntFormat(4, False)
INT8 = IntFormat(8, True)
UINT8 = IntFormat(8, False)
INT16 = IntFormat(16, True)
INT32 = IntFormat(32, True)
INT64 = IntFormat(64, True)


_DTYPE_RANGES: dict[np.dtype[Any], tuple[int, int]] = {}


def _dtype_range(dt: np.dtype[Any]) -> tuple[int, int]:
    """(min, max) of an integer dtype, cached (np.iinfo costs microseconds per call)."""
    r = _DTYPE_RANGES.get(dt)
    if r is None:
        info = np.iinfo(dt)
        r = _DTYPE_RANGES[dt] = (int(info.min), int(info.max))
    return r


class CheckedArrays:
    """Arrays whose values a caller has already checked or proven to lie in a format, held
    by identity through weak references (an entry dies with its array, so a reused id
    never matches).

    Within :func:`checked_arrays`, :func:`check_bounds` skips its scan of a noted array when
    the requested range contains the noted one. The program interpreter (refq.program.run)
    notes every tensor it has range-checked or proven against its declared format, so the
    kernels' own input validation does not scan the same values again. Only the exact
    array object is covered (a view or copy is scanned as usual), and a noted array must
    not be modified while noted (kernels never write to their inputs).
    """

    def __init__(self) -> None:
        self._by_id: dict[int, tuple[weakref.ref[Any], int, int]] = {}

    def note(self, arr: Any, fmt: IntFormat) -> None:
        """Record that every element of ``arr`` lies in ``fmt`` (a weak reference: noting
        does not keep ``arr`` alive, and its entry goes when it does)."""
        key = id(arr)
        by_id = self._by_id

        def gone(ref: weakref.ref[Any]) -> None:
            hit = by_id.get(key)
            if hit is not None and hit[0] is ref:  # not a later array that reused the id
                del by_id[key]

        by_id[key] = (weakref.ref(arr, gone), fmt.min, fmt.max)

    def covers(self, arr: Any, lo: int, hi: int) -> bool:
        """Whether ``arr`` itself was noted within a range inside [lo, hi]."""
        hit = self._by_id.get(id(arr))
        return hit is not None and hit[0]() is arr and lo <= hit[1] and hit[2] <= hi

    def range_of(self, arr: Any) -> tuple[int, int] | None:
        """The (min, max) of the format ``arr`` itself was noted in, or None."""
        hit = self._by_id.get(id(arr))
        if hit is None or hit[0]() is not arr:
            return None
        return hit[1], hit[2]

    def __len__(self) -> int:
        return len(self._by_id)


_CHECKED: ContextVar[CheckedArrays | None] = ContextVar("refq_checked_arrays", default=None)


@contextmanager
def checked_arrays() -> Iterator[CheckedArrays]:
    """A scope in which arrays noted on the yielded :class:`CheckedArrays` skip
    :func:`check_bounds` scans (see there); the previous scope is restored on exit."""
    registry = CheckedArrays()
    token = _CHECKED.set(registry)
    try:
        yield registry
    finally:
        _CHECKED.reset(token)


def noted_range(arr: Any) -> tuple[int, int] | None:
    """Inside :func:`checked_arrays`: the (min, max) that ``arr`` itself was noted within
    (a bound on its values that needs no scan); None outside or when not noted."""
    registry = _CHECKED.get()
    return None if registry is None else registry.range_of(arr)


def check_range(
    x: Any, fmt: IntFormat, name: str = "x", op: str | None = None, narrow: bool = False
) -> IntArray:
    """Return ``x`` as int64 if every element lies in ``fmt``; else raise RangeError.

    The message names the op (if given), the tensor, the first offending index in C order,
    its value and the allowed range.
    """
    arr = as_int64(x, name)
    check_bounds(arr, fmt, name, op, narrow)
    return arr


def check_bounds(
    arr: Any, fmt: IntFormat, name: str = "x", op: str | None = None, narrow: bool = False
) -> None:
    """Raise RangeError unless every element of the integer array ``arr`` lies in ``fmt``.

    Like :func:`check_range` but returns nothing and converts nothing: ``arr`` may be of any
    integer dtype (int32 intermediates are checked in place). The test is one min and one
    max reduction (skipped when ``arr``'s dtype cannot leave ``fmt``, or inside
    :func:`checked_arrays` when ``arr`` itself was noted within ``fmt``); only on failure is
    the first offending index located and reported.
    """
    a = np.asarray(arr)
    if a.dtype.kind not in "iu":
        raise SpecError(f"{name}: expected an integer array, got dtype {a.dtype}")
    lo = fmt.narrow_min if narrow else fmt.min
    dmin, dmax = _dtype_range(a.dtype)
    if a.size == 0 or (dmin >= lo and dmax <= fmt.max):
        return
    registry = _CHECKED.get()
    if registry is not None and registry.covers(a, lo, fmt.max):
        return
    if int(a.min()) >= lo and int(a.max()) <= fmt.max:
        return
    _raise_out_of_range(a, lo, fmt, name, op, narrow)


def _raise_out_of_range(
    a: Any, lo: int, fmt: IntFormat, name: str, op: str | None, narrow: bool
) -> None:
    """Raise the RangeError of :func:`check_bounds` for an array known to leave [lo, max]."""
    a = np.asarray(a)
    bad = (a < lo) | (a > fmt.max)
    idx = first_index(bad)
    where = f"{op}: " if op else ""
    raise RangeError(
        f"{where}tensor {name!r} value {int(a[idx])} at index {idx} outside "
        f"{fmt.name}{' narrow' if narrow else ''} range [{lo}, {fmt.max}] "
        f"({int(bad.sum())} element(s) out of range)"
    )


def _clip_bounds(lo: int, hi: int) -> tuple[np.int64, np.int64]:
    """[lo, hi] ∩ int64 as NumPy scalars (np.clip's fast path: no per-call range checks of
    Python-int bounds)."""
    return np.int64(max(lo, -(2**63))), np.int64(min(hi, 2**63 - 1))


def saturate(x: Any, fmt: IntFormat, narrow: bool = False) -> IntArray:
    """Clamp every element of ``x`` to ``fmt`` (to its narrow range if ``narrow``)."""
    arr = as_int64(x, "x")
    lo = fmt.narrow_min if narrow else fmt.min
    return np.asarray(np.clip(arr, *_clip_bounds(lo, fmt.max)), dtype=np.int64)


def saturate_offset(y: IntArray, zero_point: int, fmt: IntFormat, *, in_place: bool) -> IntArray:
    """saturate(y + zero_point, fmt) for an int64 ``y``, without forming a sum that could
    wrap: ``y`` is clamped to [fmt.min - zero_point, fmt.max - zero_point] ∩ int64 first,
    then ``zero_point`` is added — the same integers as the exact sum saturated, for every
    zero point. ``in_place``: work in ``y`` itself (the caller owns it), else on a copy."""
    out = y if in_place else np.array(y, dtype=np.int64)
    zp = int(zero_point)
    np.clip(out, *_clip_bounds(fmt.min - zp, fmt.max - zp), out=out)
    if zp:
        out += np.int64(zp)
    return out


def wrap(x: Any, fmt: IntFormat) -> IntArray:
    """Reduce every element of ``x`` modulo 2^bits into ``fmt`` (two's complement wrap).

    This is what a hardware register of ``fmt.bits`` bits holds after an overflow.
    """
    arr = as_int64(x, "x")
    if fmt.bits == 64:
        if not fmt.signed:
            raise SpecError("wrap: uint64 results cannot be carried in int64")
        return np.array(arr, dtype=np.int64)
    mask = (1 << fmt.bits) - 1
    low = arr & np.int64(mask)
    if fmt.signed:
        half = 1 << (fmt.bits - 1)
        h = np.int64(half)
        low = np.where(low >= h, (low - h) - h, low)  # subtract 2^bits without overflow
    return np.asarray(low, dtype=np.int64)


__all__ = [
    "INT4",
    "INT8",
    "INT16",
    "INT32",
    "INT64",
    "UINT4",
    "UINT8",
    "CheckedArrays",
    "IntFormat",
    "check_bounds",
    "check_range",
    "checked_arrays",
    "noted_range",
    "saturate",
    "saturate_offset",
    "wrap",
]
