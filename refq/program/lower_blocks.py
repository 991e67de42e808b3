"""Lowering of the ViT/DeiT pieces: LayerNorm, attention, MLP, residual adds.

Every real → integer conversion goes through :class:`refq.program.lower_quant.Builder`
(weights, requantization multipliers, thresholds, tables) or the refq.params derivations
(softmax, add multipliers); see docs/lowering.md for the formats chosen.
"""

from __future__ import annotations

import math

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from refq.errors import SpecError
from refq.intmath import INT32, IntFormat
from refq.ops.gelu import GeluLutParams
from refq.params import add_params, layernorm_params, refq_softmax_params
from refq.program.lower_quant import WIDE, Acc, Act, Builder, uniform_codes

LN_FRAC = {"refq": 15, "ibert": 30, "ivit": 30}
"""Output fraction bits of each LayerNorm kernel: out · √C / 2^F = (x - μ)/σ."""
RESID_BITS = 20
"""Residual stream (embed, add1, add2) when the spec does not quantize it: int20."""


def layernorm(b: Builder, x: Act, pname: str, tap: str) -> Act:
    """Integer LayerNorm statistics (kernel variant ``spec.kernels['layernorm']``), then the
    affine γ·n + β as one exact ``affine`` op (γ as a 16-bit fixed-point integer, β at the
    product scale), then the tap's quantizer."""
    variant = b.spec.kernels.get("layernorm", "refq")
    if variant not in LN_FRAC:
        raise SpecError(f"lower: layernorm variant {variant!r} not in {sorted(LN_FRAC)}")
    c = x.shape[-1]
    f = LN_FRAC[variant]
    if x.fmt.bits > 32:
        raise SpecError(f"lower: {tap}: LayerNorm input {x.fmt} wider than int32")
    lp = layernorm_params(in_format=x.fmt, zero_point=x.zp, frac_bits=f,
                          out_bits=32 if f <= 15 else 48)
    n_name = tap + ".n"
    b.value(n_name, x.shape, IntFormat(lp.out_bits, True), math.sqrt(c) / 2.0**f)
    b.kernel(f"layernorm.{variant}", lp, [x.name], n_name, tap)
    gamma = np.asarray(b.params[pname + ".weight"], dtype=np.float64)
    beta = np.asarray(b.params[pname + ".bias"], dtype=np.float64)
    gmax = float(np.max(np.abs(gamma)))
    g = math.floor(math.log2(32767.0 / gmax)) if gmax > 0 else 0
    m = np.rint(gamma * 2.0**g).astype(np.int64)
    s_y = math.sqrt(c) / 2.0 ** (f + g)
    bias = np.rint(beta / s_y).astype(np.int64)
    mc = b.const(pname + ".gamma", m)
    bc = b.const(pname + ".beta", bias, WIDE)
    y = tap + ".affine"
    fmt = IntFormat(49 if f <= 15 else 62, True)
    b.value(y, x.shape, fmt, s_y)
    b.move("affine", [n_name, mc, bc], [y], tap)
    return b.to_tap(Acc(y, np.array([s_y]), fmt, x.shape), tap, bits=16)


def residual_add(b: Builder, a: Act, r: Act, tap: str) -> Act:
    """out = a + r at the tap's scale (``add.ivit``: one dyadic pair per branch, half-even):
    the tap's uniform per-tensor codes, or int20 (internal), or — for another quantizer —
    int24 then the quantizer by thresholds."""
    q = b.spec.activations.get(tap)
    u = uniform_codes(q) if q is not None else None
    if q is None:
        s, fmt, zp, name = b.internal_scale(tap, RESID_BITS), IntFormat(RESID_BITS, True), 0, tap
    elif u is not None and u.code_range() == (IntFormat(u.bits, u.signed).min,
                                              IntFormat(u.bits, u.signed).max):
        s, fmt, zp, name = float(u.scale), IntFormat(u.bits, u.signed), int(u.zero_point), tap
    else:
        s, fmt, zp, name = b.internal_scale(tap, 24), IntFormat(24, True), 0, tap + ".pre"
    ap = add_params(a.scale, r.scale, s, "ivit", a_format=a.fmt, b_format=r.fmt,
                    a_zero_point=a.zp, b_zero_point=r.zp, out_zero_point=zp, out_format=fmt,
                    bits=16)
    b.value(name, a.shape, fmt, s, zp)
    b.kernel("add.ivit", ap, [a.name, r.name], name, tap)
    out = Act(name, s, zp, fmt, a.shape)
    if name == tap:
        return out
    assert q is not None
    return b.threshold_decode(out, q, tap)


def _heads(b: Builder, h: int, d: int) -> object:
    def lay(src: Act, name: str) -> Act:
        bsz, n, _ = src.shape
        return b.relayout(src, name, (bsz, n, h, d), [0, 2, 1, 3], (bsz, h, n, d))

    return lay


def attention(b: Builder, x: Act, pre: str, heads: int) -> Act:
    """qkv linear → per-head q, k, v (their quantizers) → q·kᵀ → integer softmax → its
    quantizer → attn·V → heads merged (attn@v quantizer) → proj."""
    a = pre + "attn."
    bsz, n, c = x.shape
    d = c // heads
    acc = b.linear(x, a + "qkv", a + "qkv")
    parts = [a + "q.acc", a + "k.acc", a + "v.acc"]
    for p in parts:
        b.value(p, (bsz, n, c), acc.fmt)
    b.move("split", [acc.name], parts, a + "qkv", axis=-1, sections=3)
    lay = _heads(b, heads, d)
    qkv = []
    for i, (p, t) in enumerate(zip(parts, ("q", "k", "v"), strict=True)):
        src = Acc(p, acc.scales[i * c:(i + 1) * c], acc.fmt, (bsz, n, c))
        qkv.append(b.to_tap(src, a + t, bits=16, layout=lay))  # type: ignore[arg-type]
    q, k, v = qkv
    kt = Act(a + "k.T", k.scale, k.zp, k.fmt, (bsz, heads, d, n))
    b.value(kt.name, kt.shape, k.fmt, k.scale, k.zp)
    b.move("transpose", [k.name], [kt.name], perm=[0, 1, 3, 2])
    s = b.matmul(q, kt, a + "q@k.acc", (bsz, heads, n, n), d, a + "q@k")
    s = Acc(s.name, s.scales * d**-0.5, s.fmt, s.shape)
    logits = b.to_tap(s, a + "q@k", bits=16)
    sm = softmax(b, logits, a)
    o = b.matmul(sm, v, a + "attn@v.acc", (bsz, heads, n, d), n, a + "attn@v")
    ot = a + "attn@v.t"
    b.value(ot, (bsz, n, heads, d), o.fmt)
    b.move("transpose", [o.name], [ot], perm=[0, 2, 1, 3])
    om = a + "attn@v.m"
    b.value(om, (bsz, n, c), o.fmt)
    b.move("reshape", [ot], [om], shape=[-1, n, c])
    merged = b.to_tap(Acc(om, o.scales, o.fmt, (bsz, n, c)), a + "attn@v", bits=16)
    proj = b.linear(merged, a + "proj", a + "proj.acc")
    return b.to_tap(proj, a + "proj", bits=16)


def softmax(b: Builder, x: Act, a: str) -> Act:
    """Integer softmax (``spec.kernels['softmax']``, only ``refq`` is lowered) on the logits,
    16-bit output (scale 1/(2^16-1)) when a quantizer follows, then that quantizer by
    exact thresholds on the softmax grid."""
    variant = b.spec.kernels.get("softmax", "refq")
    if variant != "refq":
        raise SpecError(f"lower: softmax variant {variant!r} is not lowered (only 'refq')")
    tap = a + "softmax"
    q = b.spec.activations.get(tap)
    out_bits = 8 if q is None else 16
    if x.fmt.bits > 17:
        raise SpecError(f"lower: {tap}: softmax input {x.fmt} wider than 17 bits")
    sp = refq_softmax_params(x.scale, out_bits=out_bits, in_format=x.fmt)
    name = tap if q is None else tap + ".raw"
    s_out = 1.0 / ((1 << out_bits) - 1)
    fmt = IntFormat(out_bits, False)
    b.value(name, x.shape, fmt, s_out)
    b.kernel("softmax.refq", sp, [x.name], name, tap)
    out = Act(name, s_out, 0, fmt, x.shape)
    if q is None:
        return out
    return b.to_tap(Acc(name, np.array([s_out]), fmt, x.shape), tap)


def gelu_float(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return out


def mlp(b: Builder, x: Act, pre: str) -> Act:
    """fc1 → its quantizer (or int12) → GELU by table (``gelu.lut``: the table maps each
    input code to the post-GELU quantizer's code, or to its level at 2^-k, or to int16) →
    fc2."""
    m = pre + "mlp."
    variant = b.spec.kernels.get("gelu", "lut")
    if variant != "lut":
        raise SpecError(f"lower: gelu variant {variant!r} is not lowered (only 'lut')")
    acc = b.linear(x, m + "fc1", m + "fc1.acc")
    h = b.to_tap(acc, m + "fc1", bits=12)
    if h.fmt.bits > 16:
        raise SpecError(f"lower: {m}fc1: GELU table input {h.fmt} wider than 16 bits")
    codes = np.arange(h.fmt.min, h.fmt.max + 1, dtype=np.int64)
    g = gelu_float(h.scale * (codes - h.zp).astype(np.float64))
    tap = m + "gelu"
    q = b.spec.activations.get(tap)
    u = uniform_codes(q) if q is not None else None
    if u is not None:
        table = u.quantize(g)
        fmt, s, zp, name = IntFormat(u.bits, u.signed), float(u.scale), int(u.zero_point), tap
    elif q is not None and q.axis is None and q.group_size is None:
        lv = np.asarray(q.fake_quant(g))
        amax = float(np.max(np.abs(lv)))
        k = math.floor(math.log2(32767.0 / amax)) if amax > 0 else 0
        table = np.rint(lv * 2.0**k).astype(np.int64)
        fmt, s, zp, name = IntFormat(16, True), 2.0**-k, 0, tap
    else:
        s = b.internal_scale(tap, 16)
        table = np.clip(np.rint(g / s), -32768, 32767).astype(np.int64)
        fmt, zp, name = IntFormat(16, True), 0, (tap if q is None else tap + ".pre")
    lp = GeluLutParams(tuple(int(v) for v in table), h.fmt, fmt)
    b.value(name, h.shape, fmt, s, zp)
    b.kernel("gelu.lut", lp, [h.name], name, tap)
    out = Act(name, s, zp, fmt, h.shape)
    if name != tap:
        assert q is not None
        out = b.threshold_decode(out, q, tap)
    acc2 = b.linear(out, m + "fc2", m + "fc2.acc")
    return b.to_tap(acc2, m + "fc2", bits=16)


def block(b: Builder, h: Act, i: int, heads: int) -> Act:
    pre = f"blocks.{i}."
    y = layernorm(b, h, pre + "norm1", pre + "norm1")
    h = residual_add(b, h, attention(b, y, pre, heads), pre + "add1")
    y = layernorm(b, h, pre + "norm2", pre + "norm2")
    return residual_add(b, h, mlp(b, y, pre), pre + "add2")


_ = INT32
__all__ = ["LN_FRAC", "RESID_BITS", "attention", "block", "layernorm", "mlp", "residual_add",
           "softmax"]
