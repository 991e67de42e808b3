"""Quantiles exactly as the official calibration codes compute them: ``torch.quantile`` on
CPU (linear interpolation), and its ``np.percentile`` fallback for large tensors.

torch.quantile (torch 2.x, ``aten/src/ATen/native/Sorting.cpp`` ``quantile_compute``; the
lerp of ``aten/src/ATen/native/cpu/LerpKernel.cpp``) sorts the n values into s and, in the
input's dtype (``arith``), computes

    h = q·(n-1)          one rounding (float32: q is first rounded to float32)
    i = trunc(h), j = ceil(h), w = h - i                                (exact)
    d = s[j] - s[i]      one rounding
    result = fma(w, d, s[i])        if w < 0.5
             fma(w - 1, d, s[j])    otherwise          (w - 1 exact)

where ``fma`` is ONE rounding of the exact w·d + base: torch's vectorised lerp calls
``fmadd``, and on this kind of x86-64 CPU the scalar tail is contracted to an FMA too.
refq evaluates the fma exactly with integers (no ``math.fma``, which needs Python 3.13)
and rounds once, to float64 or to float32. Measured: equal to torch 2.13 CPU on 9600
random cases (half float64, half float32), where an unfused ``lo + w·d`` differs in 8 of
1800 (float64).

Above :data:`TORCH_NUMEL_LIMIT` elements torch.quantile raises ("input tensor is too
large"); RepQ-ViT's and I&S-ViT's ``init_quantization_scale`` then call
``np.percentile(copy, p·100)`` (``p·100`` a float64 product, NumPy's linear method) on a
copy in the tensor's dtype and store the result as a float32 tensor:
:func:`official_quantile` does the same (copy in ``arith``'s dtype, result rounded to
float32).
"""

from __future__ import annotations

import math
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray
from refq.errors import SpecError

Arith = Literal["float64", "float32"]
ARITHS: tuple[str, ...] = get_args(Arith)
TORCH_NUMEL_LIMIT = 2**24
"""torch.quantile accepts at most 2^24 elements (measured: 2^24 + 1 raises)."""


def check_arith(arith: object) -> Arith:
    """``arith`` if it names an arithmetic, else SpecError."""
    if arith not in ARITHS:
        raise SpecError(f"arith must be one of {ARITHS}, got {arith!r}")
    return arith  # type: ignore[return-value]


def _exact(a: float, b: float, c: float) -> tuple[int, int]:
    """(num, den) with num/den = a·b + c exactly (den a power of two)."""
    na, da = a.as_integer_ratio()
    nb, db = b.as_integer_ratio()
    nc, dc = c.as_integer_ratio()
    num, den = na * nb, da * db
    if den >= dc:
        return num + nc * (den // dc), den
    return num * (dc // den) + nc, dc


def fma64(a: float, b: float, c: float) -> float:
    """a·b + c rounded ONCE to float64 (half to even)."""
    num, den = _exact(a, b, c)
    return num / den  # CPython's int / int is correctly rounded


def fma32(a: float, b: float, c: float) -> float:
    """a·b + c rounded ONCE to float32 (half to even), returned as a Python float."""
    num, den = _exact(a, b, c)
    return round_ratio_f32(num, den)


def round_ratio_f32(num: int, den: int) -> float:
    """num/den (den a power of two) rounded once to float32, half to even (subnormals
    included; no overflow check: callers pass float32-range values)."""
    if num == 0:
        return 0.0
    sign = -1.0 if num < 0 else 1.0
    a = abs(num)
    k = den.bit_length() - 1  # den = 2^k
    e = max(a.bit_length() - 1 - k, -126)  # exponent of the leading bit (float32 normal)
    shift = k + e - 23  # value / 2^(e-23) = a / 2^shift: the 24-bit significand
    if shift <= 0:
        m = a << -shift
    else:
        m = a >> shift
        rem = a - (m << shift)
        half = 1 << (shift - 1)
        if rem > half or (rem == half and m & 1):
            m += 1
    return sign * math.ldexp(float(m), e - 23)


def torch_lerp(lo: npt.ArrayLike, hi: npt.ArrayLike, w: npt.ArrayLike,
               arith: Arith = "float64") -> FloatArray:
    """torch.lerp(lo, hi, w) on CPU, element by element (module docstring): one rounding of
    w·(hi-lo) + lo (w < 0.5) or (w-1)·(hi-lo) + hi, in ``arith``; float64 result."""
    a = check_arith(arith)
    dt: Any = np.float64 if a == "float64" else np.float32
    lo_a = np.asarray(lo, dtype=dt)
    hi_a = np.asarray(hi, dtype=dt)
    w_a = np.broadcast_to(np.asarray(w, dtype=dt), lo_a.shape)
    d = (hi_a - lo_a).astype(dt)
    fma = fma64 if a == "float64" else fma32
    out = np.empty(lo_a.shape, dtype=np.float64)
    flat = out.reshape(-1)
    for k, (lv, hv, wv, dv) in enumerate(zip(lo_a.reshape(-1).tolist(), hi_a.reshape(-1).tolist(),
                                             w_a.reshape(-1).tolist(), d.reshape(-1).tolist(),
                                             strict=True)):
        flat[k] = fma(wv, dv, lv) if wv < 0.5 else fma(wv - 1.0, dv, hv)
    return out


def torch_quantile_sorted(srt: FloatArray, q: float, arith: Arith = "float64") -> FloatArray:
    """torch.quantile(row, q) of each row of ``srt`` (rows already sorted along the last
    axis, values representable in ``arith``); float64 results (float32 values for
    ``arith="float32"``)."""
    a = check_arith(arith)
    n = srt.shape[-1]
    if a == "float64":
        h = float(q) * (n - 1)
    else:
        h = float(np.float32(np.float32(q) * np.float32(n - 1)))
    i = min(math.floor(h), n - 1)
    j = min(math.ceil(h), n - 1)
    w = h - i
    return torch_lerp(srt[..., i], srt[..., j], np.full(srt.shape[:-1], w), a)


def numpy_percentile_fallback(flat: FloatArray, q: float, arith: Arith = "float64") -> float:
    """The official fallback: ``float32(np.percentile(copy, q·100))`` with the copy in
    ``arith``'s dtype (module docstring)."""
    dt: Any = np.float64 if check_arith(arith) == "float64" else np.float32
    v = float(np.percentile(np.asarray(flat, dtype=dt), q * 100))
    return float(np.float32(v))


def official_quantile(x: npt.ArrayLike, q: float, arith: Arith = "float64",
                      srt: FloatArray | None = None) -> float:
    """What ``torch.quantile(x.reshape(-1), q)`` returns in the official codes, including
    their ``np.percentile`` fallback above :data:`TORCH_NUMEL_LIMIT` elements. ``srt``: the
    sorted values, if the caller has them (same multiset as ``x``)."""
    a = check_arith(arith)
    flat = np.asarray(x, dtype=np.float64).reshape(-1)
    if flat.size == 0:
        raise SpecError("quantile of an empty tensor")
    if flat.size > TORCH_NUMEL_LIMIT:
        return numpy_percentile_fallback(flat, q, a)
    s = np.sort(flat.astype(np.float32 if a == "float32" else np.float64)) if srt is None else srt
    return float(torch_quantile_sorted(np.asarray(s, dtype=np.float64)[None, :], q, a)[0])


def official_quantile_rows(rows: FloatArray, q: float, arith: Arith = "float64",
                           srt: FloatArray | None = None) -> FloatArray:
    """:func:`official_quantile` of every row of the 2-D ``rows`` (``srt``: the rows sorted,
    if the caller has them)."""
    a = check_arith(arith)
    if rows.shape[-1] > TORCH_NUMEL_LIMIT:
        return np.array([numpy_percentile_fallback(r, q, a) for r in rows])
    s = np.sort(rows, axis=-1) if srt is None else srt
    return torch_quantile_sorted(s, q, a)


__all__ = ["ARITHS", "TORCH_NUMEL_LIMIT", "Arith", "check_arith", "fma32", "fma64",
           "numpy_percentile_fallback", "official_quantile", "official_quantile_rows",
           "round_ratio_f32", "torch_lerp", "torch_quantile_sorted"]
