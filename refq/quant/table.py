"""Table quantizers: nonlinear quantizers defined by explicit tables.

A :class:`TableQuantizer` (per-tensor) carries

- ``thresholds``: float64, ascending, length n_codes - 1 (±inf allowed): the real decision
  points. Ascending quantizers: code = code_min + #{T <= x}; descending (log2):
  code = code_max - #{T <= x}.
- ``level_table``: float64, length n_codes: the reconstruction value of every code.

Both tables are written into ``to_dict`` and read back by ``from_dict``, so a spec pins
them and no consumer depends on a libm's last bit (DESIGN.md, numeric contract 4).

Most subclasses define their tables from a *formula* (the paper's or the official code's
float64 expression, vectorized, monotone in x): :func:`thresholds_from_formula` finds, for
every code boundary, the smallest float64 at which the formula passes it, by a bisection
over the ordered bit patterns of float64. The table then reproduces the formula on EVERY
float64 input, ties included (given the formula is monotone, which the tests check).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.base import FloatArray, Quantizer, bisect_first_passing

_SIGN = np.int64(-(2**63))
_MAG = np.int64(2**63 - 1)


def _key(x: FloatArray) -> IntArray:
    """Order-preserving int64 key of float64 values (-0.0 -> -1, +0.0 -> 0)."""
    i = np.ascontiguousarray(x, dtype=np.float64).view(np.int64)
    return np.where(i >= 0, i, -1 - (i & _MAG)).astype(np.int64)


def _unkey(k: IntArray) -> FloatArray:
    i = np.where(k >= 0, k, (-1 - k) + _SIGN).astype(np.int64)
    return np.ascontiguousarray(i).view(np.float64)


def thresholds_from_formula(
    formula: Callable[[FloatArray], IntArray], code_min: int, code_max: int, descending: bool
) -> FloatArray:
    """Smallest float64 at which ``formula`` passes each code boundary (see module doc).

    -inf when every float passes, +inf when none does. 64 vectorized bisection steps.
    """
    nb = code_max - code_min
    j = np.arange(nb, dtype=np.int64)
    target = (code_max - j - 1) if descending else (code_min + j + 1)

    def passed(k: IntArray) -> npt.NDArray[np.bool_]:
        with np.errstate(all="ignore"):
            c = formula(_unkey(k))
        return (c <= target) if descending else (c >= target)

    lo = np.full(nb, _key(np.array([-np.inf]))[0], dtype=np.int64)
    hi = np.full(nb, _key(np.array([np.inf]))[0], dtype=np.int64)
    p_lo, p_hi = passed(lo), passed(hi)
    hi = bisect_first_passing(lo, hi, passed, 70)
    t = _unkey(hi).copy()
    t[p_lo] = -np.inf
    t[~p_hi] = np.inf
    return np.asarray(t, dtype=np.float64)


def floats_to_json(a: FloatArray) -> list[Any]:
    """float64 vector -> list of floats, with "inf" / "-inf" strings for infinities."""
    return [("inf" if v > 0 else "-inf") if np.isinf(v) else float(v) for v in a.tolist()]


def floats_from_json(v: Any, name: str, allow_inf: bool) -> FloatArray:
    """Inverse of :func:`floats_to_json`, validated."""
    if not isinstance(v, list):
        raise SpecError(f"{name}: expected a list")
    out = []
    for e in v:
        is_inf = isinstance(e, str) and allow_inf and e in ("inf", "-inf")
        is_num = isinstance(e, (int, float)) and not isinstance(e, bool) and np.isfinite(e)
        if is_inf or is_num:
            out.append(float(e))
        else:
            raise SpecError(f"{name}: bad entry {e!r}")
    return np.array(out, dtype=np.float64)


class TableQuantizer(Quantizer):
    """Per-tensor quantizer given by ``thresholds`` and ``level_table`` (module docstring).

    Subclasses call :meth:`_set_tables` in ``__init__`` (from their formula, or from tables
    read by ``from_dict``) and provide ``_params()`` (the JSON-safe parameters).
    """

    thresholds: FloatArray
    level_table: FloatArray
    _cmin: int
    _cmax: int

    def _set_tables(
        self, code_min: int, code_max: int, thresholds: FloatArray, level_table: FloatArray
    ) -> None:
        n = code_max - code_min + 1
        t = np.asarray(thresholds, dtype=np.float64)
        lv = np.asarray(level_table, dtype=np.float64)
        if t.shape != (n - 1,) or lv.shape != (n,):
            raise SpecError(
                f"{self.kind}: tables of shapes {t.shape}, {lv.shape}; expected ({n - 1},), ({n},)"
            )
        if bool(np.isnan(t).any()) or bool((np.diff(t) < 0).any()):
            raise SpecError(f"{self.kind}: thresholds must be ascending, without NaN")
        if not bool(np.isfinite(lv).all()):
            raise SpecError(f"{self.kind}: levels must be finite")
        self._cmin, self._cmax = code_min, code_max
        self.thresholds = t
        self.level_table = lv

    def _tables_from_formula(self, code_min: int, code_max: int) -> None:
        t = thresholds_from_formula(self._formula, code_min, code_max, self.descending)
        codes = np.arange(code_min, code_max + 1, dtype=np.int64)
        self._set_tables(code_min, code_max, t, self._level_formula(codes))

    def _formula(self, x: FloatArray) -> IntArray:
        """The defining float64 formula x -> code (vectorized, monotone)."""
        raise NotImplementedError

    def _level_formula(self, codes: IntArray) -> FloatArray:
        """The defining float64 formula code -> level."""
        raise NotImplementedError

    def _params(self) -> dict[str, Any]:
        raise NotImplementedError

    def code_range(self) -> tuple[int, int]:
        return (self._cmin, self._cmax)

    def levels(self) -> FloatArray | None:
        return np.array(self.level_table, dtype=np.float64)

    def _codes_rows(self, rows: FloatArray) -> IntArray:
        cnt = np.searchsorted(self.thresholds, rows, side="right").astype(np.int64)
        return (self._cmax - cnt) if self.descending else (self._cmin + cnt)

    def _values_rows(self, q: IntArray) -> FloatArray:
        return np.asarray(self.level_table[q - self._cmin], dtype=np.float64)

    def reachable_codes(self) -> IntArray:
        """Codes some real input maps to (boundaries with equal thresholds skip codes)."""
        t = np.concatenate([[-np.inf], self.thresholds, [np.inf]])
        width_pos = t[1:] > t[:-1]
        idx = np.flatnonzero(width_pos)
        codes = (self._cmax - idx) if self.descending else (self._cmin + idx)
        return np.sort(codes).astype(np.int64)

    def to_dict(self) -> dict[str, Any]:
        d: dict[str, Any] = {"kind": self.kind, "version": 1}
        d.update(self._params())
        d["thresholds"] = floats_to_json(self.thresholds)
        d["levels"] = floats_to_json(self.level_table)
        return d

    def _load_tables(self, d: dict[str, Any]) -> None:
        """Replace the computed tables by the ones stored in ``d`` (if present)."""
        if "thresholds" in d or "levels" in d:
            t = floats_from_json(d.get("thresholds"), f"{self.kind}.thresholds", True)
            lv = floats_from_json(d.get("levels"), f"{self.kind}.levels", False)
            self._set_tables(self._cmin, self._cmax, t, lv)


__all__ = ["TableQuantizer", "floats_from_json", "floats_to_json", "thresholds_from_formula"]
