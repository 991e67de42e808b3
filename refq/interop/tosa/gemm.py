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

Operands one bit wider than int16 (:func:`split_int16`). FQ-ViT's log-int softmax feeds
attn@V with 2^-code values on a 2^-15 grid: the operand minus its zero point reaches 2^15 =
32768, one above int16. Such an operand d ∈ [-2^16, 2^16 - 2] is split exactly into two
int16 parts d = d1 + d2, d1 = clamp(d, -2^15, 2^15 - 1), d2 = d - d1, and
Σ_k d_k·e_k = Σ_k d1_k·e_k + Σ_k d2_k·e_k: one MATMUL per pair of parts (int8 where both parts
span at most 256 values, else int16 → int48), each partial sum proven within its accumulator
and brought to int32 (or 64 bits) exactly, then added exactly (:func:`product`).
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


I16 = (-(1 << 15), (1 << 15) - 1)


def split_int16(g: Graph, v: Val, zp: int, what: str) -> list[tuple[Val, int, int]]:
    """v - zp as parts (t, z, s) that MATMUL takes, with Σ 2^s·(t - z) = v - zp exactly.

    Where d = v - zp fits int16 (or v spans at most 256 values): ``[(v, zp, 0)]`` unchanged.
    Else, for d ∈ [lo, hi] ⊆ [-2^16, 2^16 - 2], two int32 tensors, zero point 0, s = 0:

        d1 = min(max(d, -2^15), 2^15 - 1)    ∈ [-2^15, 2^15 - 1]           (int16)
        d2 = d - d1                           ∈ [min(0, lo + 2^15), max(0, hi - 2^15 + 1)]

    Proof that d2 fits int16: if d > 2^15 - 1 then d1 = 2^15 - 1 and 0 < d2 = d - 2^15 + 1
    <= hi - 2^15 + 1 <= 2^15 - 1; if d < -2^15 then d1 = -2^15 and -2^15 <= lo + 2^15 <= d2
    = d + 2^15 < 0; otherwise d1 = d and d2 = 0. d1 + d2 = d by construction (both steps
    exact in int32: |d| <= 2^16). For FQ-ViT's attn@V operand, d ∈ [0, 2^15]: d1 =
    min(d, 32767), d2 = [d = 32768] ∈ {0, 1}.

    Any other d (a 16-bit operand with an extreme zero point, |d| < 2^17): the byte split
    d = 2^8·h + l, h = ⌊d / 2^8⌋ (ARITHMETIC_RIGHT_SHIFT) ∈ [⌊lo/2^8⌋, ⌊hi/2^8⌋] (int16),
    l = d AND 255 ∈ [0, 255] (int8 with zero point 128, i.e. l - 128 stored): parts
    (h, 0, 8) and (l - 128, -128, 0)."""
    lo, hi = v.lo - zp, v.hi - zp
    if fits(lo, hi, "int16") or v.hi - v.lo <= 255:
        return [(v, zp, 0)]
    if not fits(lo, hi, "int32") or abs(lo) >= 2**23 or abs(hi) >= 2**23:
        raise ExportError(f"{what}: operand - zero point in [{lo}, {hi}] needs more than "
                          "24 bits")
    d = g.addc(g.i32(v), -zp)
    if lo >= 2 * I16[0] and hi <= 2 * I16[1]:
        d1 = g.minimum(g.maximum(d, g.scalar(I16[0], d.rank)), g.scalar(I16[1], d.rank))
        d1 = g.with_interval(d1, max(lo, I16[0]), min(hi, I16[1]))
        d2 = g.sub(d, d1, proven=(min(0, lo - I16[0]), max(0, hi - I16[1])))
        return [(d1, 0, 0), (d2, 0, 0)]
    h = g.ars(d, 8)
    low = g.cast(g.addc(g.bandc(d, 255), -128), "int8")
    return [(h, 0, 8), (low, -128, 0)]


def _pair(g: Graph, a: Val, a_zp: int, b: Val, b_zp: int, acc_bits: int, what: str,
          exact: bool) -> Value:
    """Σ_k (a - a_zp)(b - b_zp) by one MATMUL (int8, or int16 → int48 brought to int32 or
    split into bytes for a 64-bit sum). ``exact``: the int48 → int32 step must be proven
    from the operand intervals (a part of a split sum, which refq does not check alone)."""
    a8, b8 = _int8_operand(g, a, a_zp), _int8_operand(g, b, b_zp)
    if a8 is not None and b8 is not None:
        return g.matmul(a8[0], b8[0], a8[1], b8[1])
    a16 = _int16_operand(g, a, a_zp, what)
    b16 = _int16_operand(g, b, b_zp, what)
    k = a.shape[2]
    bound = k * max(abs(a16.lo), abs(a16.hi)) * max(abs(b16.lo), abs(b16.hi))
    if bound < 2**31 or (acc_bits <= 32 and not exact):
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


def product(g: Graph, a: Val, b: Val, a_zp: int, b_zp: int, acc_bits: int,
            what: str) -> Value:
    """Σ_k (a - a_zp)(b - b_zp) for a (N, H, K), b (N, K, W): int32 Val or a Wide.

    Each operand is split by :func:`split_int16` (no split where it fits int16). By
    bilinearity Σ_k (a - a_zp)(b - b_zp) = Σ over pairs of parts of 2^(s+s')·Σ_k (t - z)(t'
    - z'): each pair one MATMUL (:func:`_pair`), scaled by 2^(s+s') (LOGICAL_LEFT_SHIFT where
    the interval proves int32, else as a 64-bit value), the partial sums added in int32 where
    their intervals prove it, else as 64-bit values — every step exact."""
    parts_a = split_int16(g, a, a_zp, what)
    parts_b = split_int16(g, b, b_zp, what)
    split = len(parts_a) * len(parts_b) > 1
    total: Value | None = None
    for pa, za, sa in parts_a:
        for pb, zb, sb in parts_b:
            part = _scaled(g, _pair(g, pa, za, pb, zb, acc_bits, what, exact=split), sa + sb)
            total = part if total is None else _add(g, total, part)
    assert total is not None
    return total


def _scaled(g: Graph, x: Value, s: int) -> Value:
    """x·2^s exactly (s <= 16)."""
    if s == 0:
        return x
    if isinstance(x, Val):
        if fits(x.lo << s, x.hi << s, "int32"):
            return g.shl(x, s)
        return wide.from_shifted(g, x, s)
    return wide.mul_const(g, x, 1 << s)


def _add(g: Graph, x: Value, y: Value) -> Value:
    """x + y exactly: int32 ADD where the intervals prove it, else 64-bit."""
    if isinstance(x, Val) and isinstance(y, Val) and fits(x.lo + y.lo, x.hi + y.hi, "int32"):
        return g.add(x, y)
    wx = x if isinstance(x, Wide) else wide.from_i32(g, x)
    wy = y if isinstance(y, Wide) else wide.from_i32(g, y)
    return wide.add(g, wx, wy)


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


__all__ = ["linear", "matmul", "product", "split_int16"]
