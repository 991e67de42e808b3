"""The Quantizer interface (Contract A), the registry, and the machinery every quantizer
shares: input validation, grouping (per-tensor / per-channel / per-group rows), and the
integer form derived by exact bisection.

Integer form. A quantizer maps a real input to an integer code by a monotone decision
function. On an integer input grid ``x_real = fl(in_scale · float64(x_int - zp))`` (the
float64 product, exactly what a dequantize of the previous tensor computes) the code is a
monotone step function of ``x_int``, so it is fully described by integer thresholds:

    ascending quantizers:   code = code_min + #{t in thresholds : t <= x_int}
    descending quantizers:  code = code_max - #{t in thresholds : t <= x_int}

(``descending`` is True only for the log quantizers, whose code is an exponent). Each
threshold is the smallest integer whose code passes the boundary; it is found by a
vectorized bisection over int64 that evaluates ``quantize`` itself, so
``quantize_int(x_int) == quantize(in_scale*(x_int - zp))`` holds for every integer in the
domain |x_int| <= 2^62 by construction (no float tolerance, ties included). A boundary that
no input reaches gets threshold 2^63-1; one that every input passes gets -2^63.
"""

from __future__ import annotations

import abc
import math
from collections.abc import Callable
from typing import Any, ClassVar, TypeVar

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64

FloatArray = npt.NDArray[np.float64]
T = TypeVar("T", bound="Quantizer")

VERSION = 1
INT_DOMAIN = 2**62
_I64_MIN = -(2**63)
_I64_MAX = 2**63 - 1


def bisect_first_passing(
    lo: IntArray, hi: IntArray, passed: Callable[[IntArray], npt.NDArray[np.bool_]], steps: int
) -> IntArray:
    """Vectorized integer bisection: for each element, the smallest k in (lo, hi] with
    ``passed(k)``, assuming ``passed`` is monotone, not passed at lo and passed at hi (the
    caller handles the elements where that does not hold). The midpoint is computed without
    overflow for any int64 lo, hi; at most ``steps`` halvings."""
    for _ in range(steps):
        active = (hi - 1) > lo
        if not bool(active.any()):
            break
        mid = (lo >> 1) + (hi >> 1) + (lo & hi & 1)
        pm = passed(mid)
        hi = np.where(active & pm, mid, hi)
        lo = np.where(active & ~pm, mid, lo)
    return hi

QUANTIZERS: dict[str, type[Quantizer]] = {}
"""Registry: ``kind`` -> Quantizer subclass (filled by :func:`register`)."""


def register(cls: type[T]) -> type[T]:
    """Class decorator adding ``cls`` to :data:`QUANTIZERS` under ``cls.kind``."""
    if cls.kind in QUANTIZERS:
        raise SpecError(f"quantizer kind {cls.kind!r} registered twice")
    QUANTIZERS[cls.kind] = cls
    return cls


def quantizer_from_dict(d: Any) -> Quantizer:
    """Rebuild any registered quantizer from its :meth:`Quantizer.to_dict` form.

    SpecError if ``d`` is not a dict, has no known ``kind`` or a wrong ``version``.
    """
    if not isinstance(d, dict):
        raise SpecError(f"quantizer_from_dict: expected a dict, got {type(d).__name__}")
    kind = d.get("kind")
    if kind not in QUANTIZERS:
        raise SpecError(
            f"quantizer_from_dict: unknown kind {kind!r}; known: {sorted(QUANTIZERS)}"
        )
    try:
        return QUANTIZERS[kind].from_dict(d)
    except SpecError:
        raise
    except (ValueError, TypeError, KeyError, IndexError, OverflowError) as exc:
        # a value of the wrong shape or type that the class's own checks let through to
        # NumPy (e.g. a ragged list): still a malformed entry, never a raw exception
        raise SpecError(f"{kind} quantizer: malformed entry ({type(exc).__name__}: "
                        f"{str(exc)[:200]})") from None


# ----------------------------------------------------------------------------- validation


def check_bits(bits: Any, name: str = "bits") -> int:
    """``bits`` as an int in 2..16, else SpecError."""
    if isinstance(bits, (bool, np.bool_)) or not isinstance(bits, (int, np.integer)):
        raise SpecError(f"{name}: expected an int in 2..16, got {bits!r}")
    if not 2 <= int(bits) <= 16:
        raise SpecError(f"{name}: {int(bits)} outside 2..16")
    return int(bits)


def check_positive(x: Any, name: str) -> float:
    """A finite float > 0, else SpecError."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise SpecError(f"{name}: expected a positive finite number, got {x!r}")
    v = float(x)
    if not math.isfinite(v) or v <= 0:
        raise SpecError(f"{name}: must be finite and > 0, got {v!r}")
    return v


def check_float(x: Any, name: str) -> float:
    """A finite float, else SpecError."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, float, np.integer, np.floating)):
        raise SpecError(f"{name}: expected a finite number, got {x!r}")
    v = float(x)
    if not math.isfinite(v):
        raise SpecError(f"{name}: must be finite, got {v!r}")
    return v


def check_int(x: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """An int (not bool) within [lo, hi], else SpecError."""
    if isinstance(x, (bool, np.bool_)) or not isinstance(x, (int, np.integer)):
        raise SpecError(f"{name}: expected an int, got {x!r}")
    v = int(x)
    if (lo is not None and v < lo) or (hi is not None and v > hi):
        raise SpecError(f"{name}: {v} outside [{lo}, {hi}]")
    return v


def as_real(x: Any, name: str = "x") -> FloatArray:
    """A non-empty float64 array with only finite values, else SpecError naming ``name``."""
    try:
        arr = np.asarray(x)
    except Exception as e:  # pragma: no cover - numpy raises many types
        raise SpecError(f"{name}: not an array ({e})") from e
    if arr.dtype.kind not in "iuf" or arr.dtype.kind == "b":
        raise SpecError(f"{name}: expected a real array, got dtype {arr.dtype}")
    arr = arr.astype(np.float64, copy=False)
    if arr.size == 0:
        raise SpecError(f"{name}: empty array")
    if not bool(np.isfinite(arr).all()):
        bad = int(np.flatnonzero(~np.isfinite(arr.ravel()))[0])
        raise SpecError(f"{name}: non-finite value {arr.ravel()[bad]!r} at flat index {bad}")
    return arr


def check_dict(
    d: Any, kind: str, required: set[str], optional: frozenset[str] | set[str] = frozenset()
) -> dict[str, Any]:
    """Validate the envelope of a to_dict() form: kind, version and the key set."""
    if not isinstance(d, dict):
        raise SpecError(f"{kind}.from_dict: expected a dict, got {type(d).__name__}")
    if d.get("kind") != kind:
        raise SpecError(f"{kind}.from_dict: kind is {d.get('kind')!r}, expected {kind!r}")
    if d.get("version") != VERSION:
        raise SpecError(
            f"{kind}.from_dict: unsupported version {d.get('version')!r} (expected {VERSION})"
        )
    keys = set(d) - {"kind", "version"}
    missing = required - keys
    extra = keys - required - set(optional)
    if missing or extra:
        raise SpecError(
            f"{kind}.from_dict: missing keys {sorted(missing)}, unknown keys {sorted(extra)}"
        )
    return dict(d)


# ------------------------------------------------------------------------- the interface


class Quantizer(abc.ABC):
    """Abstract quantizer: real values -> int64 codes -> float64 reconstruction levels.

    Subclasses implement :meth:`_codes_rows` / :meth:`_values_rows` on a (G, K) view of the
    data in which row g uses the parameters of group g (G = 1 per-tensor), plus
    :meth:`code_range`, :meth:`levels`, :meth:`to_dict`, :meth:`from_dict`.
    """

    kind: ClassVar[str] = ""
    descending: ClassVar[bool] = False
    bits: int
    axis: int | None = None
    group_size: int | None = None

    # --- to implement
    @abc.abstractmethod
    def _codes_rows(self, rows: FloatArray) -> IntArray:
        """Codes of a (G, K) float array (finite or ±inf), row g with group g's parameters."""

    @abc.abstractmethod
    def _values_rows(self, q: IntArray) -> FloatArray:
        """Levels of a (G, K) array of codes already checked to lie in code_range."""

    @abc.abstractmethod
    def code_range(self) -> tuple[int, int]:
        """(smallest code, largest code)."""

    @abc.abstractmethod
    def levels(self) -> FloatArray | None:
        """Reconstruction value of every code in code_range: (n_codes,) per-tensor,
        (n_groups, n_codes) per-channel / per-group."""

    @abc.abstractmethod
    def to_dict(self) -> dict[str, Any]:
        """JSON-safe description: ``{"kind": ..., "version": 1, ...}``."""

    @classmethod
    @abc.abstractmethod
    def from_dict(cls: type[T], d: Any) -> T:
        """Inverse of :meth:`to_dict`, validated (SpecError on malformed input)."""

    # --- shared
    @property
    def integer_exact(self) -> bool:
        """False when the quantizer is usable in fake-quant only (e.g. float zero point)."""
        return True

    @property
    def n_groups(self) -> int:
        """Number of parameter groups (1 per-tensor)."""
        return 1

    @property
    def group_shape(self) -> tuple[int, ...] | None:
        """Shape of the per-group parameter array when per-group (x.shape with the
        grouped axis divided by group_size); None otherwise."""
        return None

    def _require_exact(self, what: str) -> None:
        if not self.integer_exact:
            raise SpecError(
                f"{self.kind}.{what}: this quantizer is not integer-exact "
                "(float zero point: fake-quant only; integer_exact=False)"
            )

    def _to_rows(
        self, x: npt.NDArray[Any], axis: int | None = None
    ) -> tuple[npt.NDArray[Any], Callable[[npt.NDArray[Any]], npt.NDArray[Any]]]:
        """Reshape ``x`` to (G, K) rows and return a function undoing the reshape."""
        shape = x.shape
        if self.axis is None and self.group_size is None:
            return x.reshape(1, -1), lambda r: r.reshape(shape)
        ax = self.axis if axis is None else axis
        if ax is None:
            raise SpecError(f"{self.kind}: per-channel/per-group quantizer needs an axis")
        if not -x.ndim <= ax < x.ndim:
            raise SpecError(f"{self.kind}: axis {ax} out of range for shape {shape}")
        ax %= x.ndim
        if self.group_size is None:
            if shape[ax] != self.n_groups:
                raise SpecError(
                    f"{self.kind}: axis {ax} has {shape[ax]} channels, quantizer has "
                    f"{self.n_groups}"
                )
            m = np.moveaxis(x, ax, 0)
            mshape = m.shape
            return m.reshape(self.n_groups, -1), lambda r: np.moveaxis(r.reshape(mshape), 0, ax)
        bsz = self.group_size
        if shape[ax] % bsz:
            raise SpecError(f"{self.kind}: axis {ax} length {shape[ax]} not divisible by {bsz}")
        split = (*shape[:ax], shape[ax] // bsz, bsz, *shape[ax + 1 :])
        y = np.moveaxis(x.reshape(split), ax + 1, -1)
        gshape = y.shape[:-1]
        if gshape != self.group_shape:
            raise SpecError(f"{self.kind}: group shape {gshape} != quantizer's {self.group_shape}")

        def back(r: npt.NDArray[Any]) -> npt.NDArray[Any]:
            return np.moveaxis(r.reshape((*gshape, bsz)), -1, ax + 1).reshape(shape)

        return y.reshape(-1, bsz), back

    def quantize(self, x: npt.ArrayLike) -> IntArray:
        """Real values (any shape; finite, non-empty) -> int64 codes in code_range."""
        self._require_exact("quantize")
        xa = as_real(x)
        rows, back = self._to_rows(xa)
        return np.asarray(back(self._codes_rows(rows)), dtype=np.int64)

    def dequantize(self, q: npt.ArrayLike) -> FloatArray:
        """int64 codes (within code_range, else RangeError) -> float64 levels."""
        self._require_exact("dequantize")
        qa = as_int64(q, "q")
        if qa.size == 0:
            raise SpecError(f"{self.kind}.dequantize: empty array")
        lo, hi = self.code_range()
        bad = (qa < lo) | (qa > hi)
        if bool(bad.any()):
            i = int(np.flatnonzero(bad.ravel())[0])
            raise RangeError(
                f"{self.kind}.dequantize: code {int(qa.ravel()[i])} at flat index {i} "
                f"outside code_range [{lo}, {hi}]"
            )
        rows, back = self._to_rows(qa)
        return np.asarray(back(self._values_rows(rows)), dtype=np.float64)

    def fake_quant(self, x: npt.ArrayLike) -> FloatArray:
        """dequantize(quantize(x)), same shape, float64."""
        return self.dequantize(self.quantize(x))

    # --- integer form
    def int_thresholds(self, in_scale: float, in_zero_point: int = 0) -> IntArray:
        """Integer decision thresholds on the grid x_real = fl(in_scale·(x_int - zp)).

        Shape (n_codes-1,) per-tensor, (n_groups, n_codes-1) otherwise; non-decreasing.
        ascending: code = code_min + #{t <= x_int}; descending: code = code_max - #{...}.
        Found by exact int64 bisection of :meth:`quantize` (module docstring), so equal to
        quantize() for every |x_int| <= 2^62. SpecError if not integer-exact.
        """
        self._require_exact("int_thresholds")
        s = check_positive(in_scale, "in_scale")
        zp = check_int(in_zero_point, "in_zero_point", -INT_DOMAIN, INT_DOMAIN)
        lo_c, hi_c = self.code_range()
        nb = hi_c - lo_c
        g = self.n_groups
        # target "passed": ascending code >= lo_c + j + 1 ; descending code <= hi_c - j - 1
        j = np.arange(nb, dtype=np.int64)

        def passed(n: IntArray) -> npt.NDArray[np.bool_]:
            xr = s * (n - zp).astype(np.float64)
            with np.errstate(over="ignore", invalid="ignore"):
                c = self._codes_rows(xr)
            if self.descending:
                return c <= (hi_c - j - 1)[None, :]
            return c >= (lo_c + j + 1)[None, :]

        lo = np.full((g, nb), -INT_DOMAIN, dtype=np.int64)
        hi = np.full((g, nb), INT_DOMAIN, dtype=np.int64)
        p_lo = passed(lo)
        p_hi = passed(hi)
        hi = bisect_first_passing(lo, hi, passed, 64)
        t = np.where(p_lo, _I64_MIN, np.where(p_hi, hi, _I64_MAX)).astype(np.int64)
        return t[0] if self.axis is None and self.group_size is None else t

    def quantize_int(
        self,
        x_int: npt.ArrayLike,
        in_scale: float,
        in_zero_point: int = 0,
        axis: int | None = None,
    ) -> IntArray:
        """Codes of integer inputs (|x_int| <= 2^62, else RangeError) through
        :meth:`int_thresholds` only: integer comparisons and counts, no float on the data.
        ``axis`` overrides the quantizer's channel axis for ``x_int``'s layout."""
        xi = as_int64(x_int, "x_int")
        if xi.size == 0:
            raise SpecError(f"{self.kind}.quantize_int: empty array")
        if bool((np.abs(xi) > INT_DOMAIN).any()):
            raise RangeError(f"{self.kind}.quantize_int: |x_int| exceeds 2^62")
        t = self.int_thresholds(in_scale, in_zero_point).reshape(self.n_groups, -1)
        rows, back = self._to_rows(xi, axis)
        cnt = np.empty(rows.shape, dtype=np.int64)
        for gi in range(rows.shape[0]):
            cnt[gi] = np.searchsorted(t[gi], rows[gi], side="right")
        lo_c, hi_c = self.code_range()
        codes = hi_c - cnt if self.descending else lo_c + cnt
        return np.asarray(back(codes), dtype=np.int64)

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.to_dict()!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Quantizer) and type(other) is type(self) and (
            other.to_dict() == self.to_dict()
        )

    __hash__ = None  # type: ignore[assignment]


def array_to_json(a: npt.NDArray[Any]) -> Any:
    """float64/int64 array -> nested lists (floats round-trip exactly through json)."""
    return a.tolist()


def float_array_from_json(v: Any, name: str) -> FloatArray:
    """Nested lists/number -> finite float64 array, else SpecError."""
    try:
        a = np.asarray(v, dtype=np.float64)
    except (TypeError, ValueError) as e:
        raise SpecError(f"{name}: not a numeric array ({e})") from e
    if not bool(np.isfinite(a).all()):
        raise SpecError(f"{name}: non-finite entries")
    return a


__all__ = [
    "INT_DOMAIN",
    "QUANTIZERS",
    "VERSION",
    "FloatArray",
    "Quantizer",
    "as_real",
    "check_bits",
    "check_dict",
    "check_float",
    "check_int",
    "check_positive",
    "quantizer_from_dict",
    "register",
]
