"""The arithmetic a quantizer's formula is evaluated in: float64, or the float32 of the
official torch forwards — and the one home of the exact rounding and logarithm helpers that
the formulas share.

``arith`` (every quantizer with an official forward takes it; default ``"float64"``):

``"float64"``       every operation of the official expression in IEEE float64, in the
                    official order (a division written ``a / b`` is the correctly rounded
                    quotient).
``"float32_cuda"``  the official torch forward as published (tensors on a CUDA GPU): the input
                    is first rounded to float32, every product, quotient and sum is an IEEE
                    float32 operation in the official order, parameters are float32 tensors,
                    and a division by a Python number (``t / 7``, ``t / 0.0212``) is what
                    PyTorch's CUDA kernel computes for a CPU-scalar divisor:
                    ``t · fl32(1 / fl32(b))`` (aten/src/ATen/native/cuda/BinaryDivTrueKernel.cu,
                    ``div_true_kernel_cuda``: "compute a * reciprocal(b) ... may lose one bit").
``"float32_cpu"``   the same forward run by torch on a CPU, where that division is the
                    correctly rounded float32 quotient ``fl32(t / fl32(b))``.

The two float32 forms differ only where an official forward divides by a Python number
(docs/quantizers.md lists where). Logarithms are correctly rounded in every form
(:func:`apply_log`): torch's own ``log``/``log2`` are not (SLEEF on CPU, libdevice on CUDA,
within 1 ulp), so at the few inputs whose logarithm lies within an ulp of a decision
boundary the official run may differ from any fixed reference; docs/quantizers.md gives the
measured rates.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from decimal import Context, Decimal
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.rounding import Rounding

Arith = Literal["float64", "float32_cuda", "float32_cpu"]
ARITHS: tuple[str, ...] = get_args(Arith)
FloatArray = npt.NDArray[np.floating[Any]]
LogKind = Literal["log2", "ln"]


def check_arith(a: Any, name: str = "arith") -> Arith:
    """``a`` if it names an arithmetic (:data:`ARITHS`), else SpecError."""
    if not isinstance(a, str) or a not in ARITHS:
        raise SpecError(f"{name}: expected one of {list(ARITHS)}, got {a!r}")
    return a  # type: ignore[return-value]


# ------------------------------------------------------------------------------ rounding


def round_real(v: FloatArray, rounding: Rounding) -> FloatArray:
    """Round float values to integers (same dtype) with a named rounding, exactly.

    Half-modes compare the exact fractional part ``v - floor(v)`` (exact in the input's
    dtype: Sterbenz) with 0.5 — no addition of 0.5, which is inexact near 0.5 - 2^-54.
    Monotone non-decreasing for every mode; ±inf map to themselves, NaN to NaN.
    """
    with np.errstate(invalid="ignore"):
        if rounding == "floor":
            return np.floor(v)
        if rounding == "ceil":
            return np.ceil(v)
        if rounding == "trunc":
            return np.trunc(v)
        f = np.floor(v)
        d = np.where(np.isfinite(v), v - f, 0.0)
        above = d > 0.5
        tie = d == 0.5
        if rounding == "half_up":
            up = above | tie
        elif rounding == "half_away":
            up = above | (tie & (f >= 0))
        else:  # half_even
            up = above | (tie & (np.fmod(f, 2.0) != 0))
        return np.asarray(f + up.astype(f.dtype), dtype=f.dtype)


# ----------------------------------------------------------------------------- the forms


@dataclass(frozen=True)
class Fp:
    """The operations of one arithmetic (module docstring) on NumPy arrays.

    Values are held in ``dtype`` (float64 or float32) while a formula runs; results leave as
    float64 (every float32 value is exact in float64). NumPy's float32 ``+ - * /`` are the
    IEEE float32 operations, so a float32 expression evaluated here op by op is the torch
    float32 expression.
    """

    arith: Arith

    @property
    def dtype(self) -> type[np.floating[Any]]:
        return np.float64 if self.arith == "float64" else np.float32

    @property
    def is32(self) -> bool:
        return self.arith != "float64"

    def x(self, v: npt.ArrayLike) -> FloatArray:
        """An input or a parameter tensor as this arithmetic holds it (float32: rounded)."""
        if self.arith == "float64":
            return np.asarray(v, dtype=np.float64)
        with np.errstate(over="ignore"):
            return np.asarray(v, dtype=np.float64).astype(np.float32)

    def div_py(self, a: FloatArray, b: float) -> FloatArray:
        """``a / b`` where the official source divides by a Python number ``b``."""
        if self.arith == "float32_cuda":
            inv = np.float32(1.0) / np.float32(b)
            return np.asarray(a * inv, dtype=np.float32)
        return np.asarray(a / self.dtype(b), dtype=self.dtype)

    def param32_ok(self, v: float, name: str) -> None:
        """SpecError if a positive parameter is not a finite positive number in float32."""
        if self.is32:
            with np.errstate(over="ignore", under="ignore"):
                f = float(np.float32(v))
            if not (np.isfinite(f) and f > 0):
                raise SpecError(f"{name}: {v!r} is {f!r} in float32 (arith={self.arith!r})")


# --------------------------------------------------------------------------- logarithms

_LOG_ULPS = 4
"""Half-width (ulps of the float64 result) of the window in which NumPy's log/log2 is
trusted to contain the exact value (measured max error ≈ 0.6 ulp on 2·10^5 points)."""


def _decimal_log(v: float, kind: LogKind, prec: int) -> Decimal:
    ctx = Context(prec=prec)
    d = ctx.ln(Decimal(v))
    return ctx.divide(d, ctx.ln(Decimal(2))) if kind == "log2" else d


def _log_cr_scalar(v: float, kind: LogKind, is32: bool) -> float:
    """The correctly rounded (to nearest even) float64 or float32 log of a float > 0.

    The logarithm of a float that is not an exact power of two (log2) or 1 (ln) is
    irrational, so a precise enough decimal evaluation decides the rounding; the precision
    doubles until the value is clear of every rounding midpoint."""
    if kind == "log2":
        m, e = np.frexp(v)
        if m == 0.5:
            return float(e - 1)
    elif v == 1.0:
        return 0.0
    prec = 40
    while True:
        d = _decimal_log(v, kind, prec)
        f = float(d)
        if is32:
            g = float(np.float32(f))
            lo = float(np.nextafter(np.float32(g), np.float32(-np.inf)))
            hi = float(np.nextafter(np.float32(g), np.float32(np.inf)))
        else:
            g = f
            lo, hi = float(np.nextafter(g, -np.inf)), float(np.nextafter(g, np.inf))
        mids = [(Decimal(g) + Decimal(lo)) / 2, (Decimal(g) + Decimal(hi)) / 2]
        tol = abs(d).scaleb(-prec + 6) if d != 0 else Decimal(10) ** (-prec)
        if all(abs(d - m) > tol for m in mids):
            if d < mids[0]:
                return lo
            if d > mids[1]:
                return hi
            return g
        prec *= 2


_EXTENDED = np.finfo(np.longdouble).nmant >= 63
"""Whether NumPy's longdouble is x87 extended (64-bit significand) on this platform."""


def log_cr(t: npt.ArrayLike, kind: LogKind, is32: bool) -> FloatArray:
    """Correctly rounded ``log2(t)`` or ``ln(t)`` element-wise, as float64 values (float32
    values when ``is32``): -inf at 0, NaN below 0, the same on every platform.

    float32: as in :func:`apply_log`. float64: the extended-precision log (where longdouble
    has a 64-bit significand) rounded to float64, exact unless it lies within a few of its
    ulps of a float64 midpoint; those elements (and every element on platforms without
    extended precision) are decided by a decimal evaluation."""
    ta = np.asarray(t, dtype=np.float64)
    if is32:
        return apply_log(ta, kind, lambda r: r, True).astype(np.float64)
    fn = np.log2 if kind == "log2" else np.log
    with np.errstate(divide="ignore", invalid="ignore"):
        r = fn(ta)
    fin = np.isfinite(r) & (ta > 0)
    if _EXTENDED:
        with np.errstate(divide="ignore", invalid="ignore"):
            rl = fn(ta.astype(np.longdouble))
            f = rl.astype(np.float64)
            side = np.where(rl > f, np.inf, -np.inf)
            mid = (f.astype(np.longdouble) + np.nextafter(f, side).astype(np.longdouble)) / 2
            amb = fin & (np.abs(rl - mid) <= _LOG_ULPS * np.spacing(np.abs(rl)))
        r = np.where(fin, f, r)
    else:  # pragma: no cover - platforms whose longdouble is float64
        amb = fin
    for i in np.flatnonzero(amb.ravel()):
        r.ravel()[i] = _log_cr_scalar(float(ta.ravel()[i]), kind, False)
    return np.asarray(r, dtype=np.float64)


def apply_log(
    t: FloatArray, kind: LogKind, post: Callable[[FloatArray], FloatArray], is32: bool
) -> FloatArray:
    """``post(log(t))`` with ``log`` the correctly rounded ``log2`` or ``ln`` (float64, or
    float32 when ``is32``), for an element-wise MONOTONE ``post``.

    float32: NumPy's float64 log rounded to float32 is correct unless the float64 value lies
    within a few ulps of a float32 midpoint; those elements are decided exactly.
    float64: the exact log lies within ±``_LOG_ULPS`` ulps of NumPy's value; where ``post``
    agrees at both ends of that window (all but the few elements whose log is within ulps of
    a decision boundary of ``post``) the result is decided; the rest are decided exactly.
    """
    ta = np.asarray(t, dtype=np.float64)
    fn = np.log2 if kind == "log2" else np.log
    with np.errstate(divide="ignore", invalid="ignore"):
        r = fn(ta)
    fin = np.isfinite(r) & (ta > 0)
    if is32:
        r32 = r.astype(np.float32)
        r3 = r32.astype(np.float64)
        side = np.where(r > r3, np.float32(np.inf), np.float32(-np.inf)).astype(np.float32)
        nb = np.nextafter(r32, side).astype(np.float64)
        with np.errstate(invalid="ignore"):  # ±inf, NaN (t <= 0): not finite, kept as is
            mid = (r3 + nb) / 2.0
            amb = fin & (np.abs(r - mid) <= _LOG_ULPS * np.spacing(np.abs(r)))
        out = r3.copy()
        for i in np.flatnonzero(amb.ravel()):
            out.ravel()[i] = _log_cr_scalar(float(ta.ravel()[i]), kind, True)
        return post(out.astype(np.float32))
    lo, hi = r.copy(), r.copy()
    for _ in range(_LOG_ULPS):
        lo, hi = np.nextafter(lo, -np.inf), np.nextafter(hi, np.inf)
    with np.errstate(invalid="ignore"):
        p_lo, p_hi = post(lo), post(hi)
    amb = fin & ~((p_lo == p_hi) | (np.isnan(p_lo) & np.isnan(p_hi)))
    if bool(amb.any()):
        r = r.copy()
        r[amb] = log_cr(ta[amb], kind, False)
    return post(r)


__all__ = ["ARITHS", "Arith", "Fp", "apply_log", "check_arith", "log_cr", "round_real"]
