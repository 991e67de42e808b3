"""refq's GEMMs (``linear.gemm``, ``matmul.gemm``) as TOSA MATMULs.

Operands. TOSA MATMUL multiplies int8 x int8 (zero points allowed, int32 accumulator) or
int16 x int16 (no zero points, int48 accumulator). An operand of at most 256 distinct values
(int8, uint8, int4, uint4, ...) becomes int8 by subtracting a constant d (d = 0 for int8,
128 for uint8) and its zero point becomes zp - d, so (x - zp) = (x8 - (zp - d)) exactly; a
wider operand (int12, int16) is passed as x - zp in int16, and the other operand follows.

Accumulators. int8 MATMUL gives the exact int32 sum (every partial sum is proven within
int32 from the operand intervals: TOSA requires it, refq does not). int16 MATMUL gives
int48; a refq accumulator declared int32 is brought to int32 by RESCALE (scale16, multiplier
4, shift 2: ⌊(4v + 2)/4⌋ = v); a 48-bit accumulator is split instead — each int16 operand as
256·hi + lo with int8 halves, four int8 MATMULs, recombined exactly into a 64-bit value
(refq.interop.tosa.wide). The bias is added in int32, then refq's optional requantization.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refq.interop.tosa import wide
from refq.interop.tosa.graph import ExportError, Graph, Val, fits
from refq.interop.tosa.requant import requantize
from refq.interop.tosa.values import Operand, Value, as_i32, reshape_value
from refq.interop.tosa.wide import Wide
from refq.intmath import IntFormat
from refq.ops.linear import GemmParams


def _int8_operand(g: Graph, v: Val, zp: int) -> tuple[Val, int] | None:
    """(int8 tensor t, zero point z) with v - zp = t - z, or None if ``v`` spans > 256."""
    if v.hi - v.lo > 255:
        return None
    if fits(v.lo, v.hi, "int8") and fits(zp, zp, "int8"):
        return g.cast(v, "int8"), zp
    d = v.lo + 128
    t = g.cast(g.addc(g.i32(v), -d), "int8")
    return t, zp - d


def _int16_operand(g: Graph, v: Val, zp: int, what: str) -> Val:
    lo, hi = v.lo - zp, v.hi - zp
    if not fits(lo, hi, "int16"):
        raise ExportError(f"{what}: operand - zero point in [{lo}, {hi}] needs more than "
                          "int16 (TOSA MATMUL takes int8 or int16)")
    if zp == 0 and v.dtype in ("int8", "int16"):
        return g.cast(v, "int16")
    return g.cast(g.addc(g.i32(v), -zp), "int16")


def _split16(g: Graph, v: Val) -> tuple[tuple[Val, int], tuple[Val, int]]:
    """An int16 tensor as 256·h + l: (h int8, zero point 0) and (l - 128 int8, zp -128)."""
    vi = g.i32(v)
    h = g.cast(g.ars(vi, 8), "int8")
    low = g.cast(g.addc(g.bandc(vi, 255), -128), "int8")
    return (h, 0), (low, -128)


def product(g: Graph, a: Val, b: Val, a_zp: int, b_zp: int, acc_bits: int,
            what: str) -> Value:
    """Σ_k (a - a_zp)(b - b_zp) for a (N, H, K), b (N, K, W): int32 Val or a Wide."""
    a8, b8 = _int8_operand(g, a, a_zp), _int8_operand(g, b, b_zp)
    if a8 is not None and b8 is not None:
        return g.matmul(a8[0], b8[0], a8[1], b8[1])
    a16 = _int16_operand(g, a, a_zp, what)
    b16 = _int16_operand(g, b, b_zp, what)
    k = a.shape[2]
    bound = k * max(abs(a16.lo), abs(a16.hi)) * max(abs(b16.lo), abs(b16.hi))
    if acc_bits <= 32 or bound < 2**31:
        acc = g.matmul(a16, b16)
        why = f"{what}: int16 accumulator within int32 (refq-checked: acc_bits {acc_bits})"
        return g.rescale(acc, [4], [2], "int32", assume=why)
    (ah, ahz), (al, alz) = _split16(g, a16)
    (bh, bhz), (bl, blz) = _split16(g, b16)
    hh = g.matmul(ah, bh, ahz, bhz)
    hl = g.matmul(ah, bl, ahz, blz)
    lh = g.matmul(al, bh, alz, bhz)
    ll = g.matmul(al, bl, alz, blz)
    w = wide.add(g, wide.from_shifted(g, hh, 16), wide.from_shifted(g, hl, 8))
    w = wide.add(g, w, wide.from_shifted(g, lh, 8))
    w = wide.add(g, w, wide.from_i32(g, ll))
    return Wide(w.hi, w.lo, max(w.vlo, -bound), min(w.vhi, bound))


def _finish(g: Graph, acc: Value, bias: Val | None, p: GemmParams, what: str) -> Value:
    lim = (-(1 << (p.acc_bits - 1)), (1 << (p.acc_bits - 1)) - 1)
    if bias is not None:
        b = g.i32(bias)
        if isinstance(acc, Val) and (fits(acc.lo + b.lo, acc.hi + b.hi, "int32")
                                     or p.acc_bits <= 32):
            acc = g.add(acc, b, within=(*lim, f"{what}: accumulator + bias within "
                                        f"int{p.acc_bits} (refq-checked)"))
        else:
            w = acc if isinstance(acc, Wide) else wide.from_i32(g, acc)
            acc = wide.add(g, w, wide.from_i32(g, b))
    if isinstance(acc, Wide):
        lo, hi = max(acc.vlo, lim[0]), min(acc.vhi, lim[1])
        acc = Wide(acc.hi, acc.lo, lo, hi)
        if fits(lo, hi, "int32"):
            acc = wide.floor_shift(g, acc, 0)
    if p.requant is not None:
        return requantize(g, [acc], p.requant, p.requant.out_format)
    return acc


def linear(g: Graph, ins: Sequence[Operand], p: GemmParams, out: IntFormat) -> Value:
    """``linear.gemm``: x (..., K) @ w (N, K)^T + bias (N,)."""
    x, w, bias = (as_i32(g, v) for v in ins)
    k = x.shape[-1]
    n = w.shape[0]
    lead = x.shape[:-1]
    m = int(np.prod(lead, dtype=np.int64)) if lead else 1
    xa = g.reshape(x, (1, m, k))
    wt = g.reshape(g.transpose(w, (1, 0)), (1, k, n))
    acc = product(g, xa, wt, p.a_zero_point, p.b_zero_point, p.acc_bits, "linear.gemm")
    bias2 = g.reshape(bias, (1, 1, n))
    res = _finish(g, acc, bias2, p, "linear.gemm")
    return reshape_value(g, res, (*lead, n))


def matmul(g: Graph, ins: Sequence[Operand], p: GemmParams, out: IntFormat) -> Value:
    """``matmul.gemm``: batched a (..., M, K) @ b (..., K, N)."""
    a, b = (as_i32(g, v) for v in ins)
    if a.shape[:-2] != b.shape[:-2]:
        raise ExportError(f"matmul.gemm: batch shapes {a.shape[:-2]} and {b.shape[:-2]} "
                          "differ (TOSA MATMUL does not broadcast)")
    lead = a.shape[:-2]
    nb = int(np.prod(lead, dtype=np.int64)) if lead else 1
    mm, k, nn = a.shape[-2], a.shape[-1], b.shape[-1]
    acc = product(g, g.reshape(a, (nb, mm, k)), g.reshape(b, (nb, k, nn)), p.a_zero_point,
                  p.b_zero_point, p.acc_bits, "matmul.gemm")
    res = _finish(g, acc, None, p, "matmul.gemm")
    return reshape_value(g, res, (*lead, mm, nn))


__all__ = ["linear", "matmul", "product"]
