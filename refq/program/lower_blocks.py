"""Lowering of the ViT/DeiT pieces: LayerNorm, attention, MLP, residual adds.

Every real → integer conversion goes through :class:`refq.program.lower_quant.Builder`
(weights, requantization multipliers, thresholds, tables) or the lowering of the chosen
kernel variants (:mod:`refq.program.lower_kernels`, through each variant's
``meta["lower"]``); see docs/lowering.md for the formats chosen.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import IntFormat
from refq.program.lower_quant import WIDE, Acc, Act, Builder, uniform_codes

RESID_BITS = 20
"""Residual stream (embed, add1, add2) when the spec does not quantize it: int20."""


def layernorm(b: Builder, x: Act, pname: str, tap: str) -> Act:
    """Integer LayerNorm statistics (the chosen ``layernorm`` variant, its params and output
    fraction bits F from its lowering), then the affine γ·n + β as one exact ``affine`` op
    (γ as a 16-bit fixed-point integer, β at the product scale), then the tap's quantizer."""
    v = b.variant("layernorm")
    c = x.shape[-1]
    if x.fmt.bits > 32:
        raise SpecError(f"lower: {tap}: LayerNorm input {x.fmt} wider than int32")
    placed = b.place(v, tap, x.fmt, x.zp, c)
    lp = placed.params
    f = int(placed.extra["frac_bits"])
    n_name = tap + ".n"
    b.value(n_name, x.shape, IntFormat(lp.out_bits, True), math.sqrt(c) / 2.0**f)
    b.kernel(v.key, lp, [x.name], n_name, tap)
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
    """out = a + r at the tap's scale (the chosen ``add`` variant; ``add.ivit``: one dyadic
    pair per branch, half-even): the tap's uniform per-tensor codes, or int20 (internal), or
    — for another quantizer — int24 then the quantizer by thresholds."""
    q = b.spec.activations.get(tap)
    u = uniform_codes(q) if q is not None else None
    # an internal scale is at least 2^-15 of each input's (the dyadic add multipliers have
    # 16 bits; only a coarse quantized input, e.g. a 4-bit patch embedding, raises it)
    floor_s = max(a.scale, r.scale) / 2.0**15
    if q is None:
        s = max(b.internal_scale(tap, RESID_BITS), floor_s)
        fmt, zp, name = IntFormat(RESID_BITS, True), 0, tap
    elif u is not None and u.code_range() == (IntFormat(u.bits, u.signed).min,
                                              IntFormat(u.bits, u.signed).max):
        s, fmt, zp, name = float(u.scale), IntFormat(u.bits, u.signed), int(u.zero_point), tap
    else:
        s = max(b.internal_scale(tap, 24), floor_s)
        fmt, zp, name = IntFormat(24, True), 0, tap + ".pre"
    v = b.variant("add")
    ap = b.place(v, tap, a, r, s, fmt, zp).params
    b.value(name, a.shape, fmt, s, zp)
    b.kernel(v.key, ap, [a.name, r.name], name, tap)
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


def attention(b: Builder, x: Act, pre: str, heads: int,
              logits: Callable[[Act], Act] | None = None) -> Act:
    """qkv linear → per-head q, k, v (their quantizers) → q·kᵀ → integer softmax → its
    quantizer → attn·V → heads merged (attn@v quantizer) → proj. ``logits`` (Swin: the
    relative position bias and the shifted-window mask, :mod:`refq.program.lower_swin`)
    maps the q@k tap to the softmax input."""
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
        src = replace(acc, name=p, scales=acc.scales[i * c:(i + 1) * c], shape=(bsz, n, c))
        qkv.append(b.to_tap(src, a + t, bits=16, layout=lay))  # type: ignore[arg-type]
    q, k, v = qkv
    kt = Act(a + "k.T", k.scale, k.zp, k.fmt, (bsz, heads, d, n))
    b.value(kt.name, kt.shape, k.fmt, k.scale, k.zp)
    b.move("transpose", [k.name], [kt.name], perm=[0, 1, 3, 2])
    s = b.matmul(q, kt, a + "q@k.acc", (bsz, heads, n, n), d, a + "q@k")
    s = replace(s, scales=s.scales * d**-0.5)
    smv = b.variant("softmax")
    qk = b.to_tap(s, a + "q@k", bits=int(smv.meta.get("lower.in_bits", 16)))
    sm = softmax(b, qk if logits is None else logits(qk), a)
    o = b.matmul(sm, v, a + "attn@v.acc", (bsz, heads, n, d), n, a + "attn@v")
    ot = a + "attn@v.t"
    b.value(ot, (bsz, n, heads, d), o.fmt)
    b.move("transpose", [o.name], [ot], perm=[0, 2, 1, 3])
    om = a + "attn@v.m"
    b.value(om, (bsz, n, c), o.fmt)
    b.move("reshape", [ot], [om], shape=[-1, n, c])
    merged = b.to_tap(replace(o, name=om, shape=(bsz, n, c)), a + "attn@v", bits=16)
    proj = b.linear(merged, a + "proj", a + "proj.acc")
    return b.to_tap(proj, a + "proj", bits=16)


def softmax(b: Builder, x: Act, a: str) -> Act:
    """Integer softmax (the chosen ``softmax`` variant, placed by its lowering: its params
    at the logits' scale and format, and the real value of its output) on the logits, then
    the softmax tap's quantizer by exact thresholds on the output grid, if there is one.
    A variant whose output is codes (``softmax.lis``: log2 codes, ``extra["decode"]``)
    emits them and a lookup into their levels; those codes must be the tap quantizer's
    (:func:`_decode_codes`)."""
    v = b.variant("softmax")
    tap = a + "softmax"
    q = b.spec.activations.get(tap)
    placed = b.place(v, tap, x.scale, x.fmt, q is not None)
    fmt = v.out_format(placed.params)
    if "decode" in placed.extra:
        return _decode_codes(b, v, placed, x, fmt, tap, q)
    name = tap if q is None else tap + ".raw"
    b.value(name, x.shape, fmt, placed.scale, placed.zp)
    b.kernel(v.key, placed.params, [x.name], name, tap)
    out = Act(name, placed.scale, placed.zp, fmt, x.shape)
    if q is None:
        return out
    return b.to_tap(Acc(name, np.array([placed.scale]), fmt, x.shape), tap)


def _decode_codes(b: Builder, v: Any, placed: Any, x: Act, fmt: IntFormat, tap: str,
                  q: Any) -> Act:
    """A softmax whose kernel outputs codes: ``tap.code`` (the kernel's output), then
    ``tap`` = lookup of the codes in ``extra["decode"]`` (levels at ``placed.scale``). The
    tap's quantizer must be the one whose codes these are (``extra["codes_of"]``, checked
    by that callable), so the decoded levels are its levels."""
    check = placed.extra.get("codes_of")
    if check is not None:
        check(q)
    codes = tap + ".code"
    b.value(codes, x.shape, fmt)
    b.kernel(v.key, placed.params, [x.name], codes, tap)
    table = np.asarray(placed.extra["decode"], dtype=np.int64)
    tfmt = IntFormat(max(1, int(table.max())).bit_length(), False)
    tab = b.const(tap + ".table", table, tfmt)
    b.value(tap, x.shape, tfmt, placed.scale, placed.zp)
    b.move("lookup", [codes, tab], [tap], tap, offset=0)
    return Act(tap, placed.scale, placed.zp, tfmt, x.shape)


def mlp(b: Builder, x: Act, pre: str) -> Act:
    """fc1 → the chosen GELU variant placed by its lowering (``gelu.lut``: the table maps each
    input code to the post-GELU quantizer's code, or to its level at 2^-k, or to int16;
    ``gelu.ibert``/``gelu.shiftgelu``: the kernel on an int16 grid of fc1, then the post-GELU
    quantizer) → fc2."""
    m = pre + "mlp."
    v = b.variant("gelu")
    acc = b.linear(x, m + "fc1", m + "fc1.acc")
    out = _gelu(b, v, acc, m)
    acc2 = b.linear(out, m + "fc2", m + "fc2.acc")
    return b.to_tap(acc2, m + "fc2", bits=16)


def _gelu(b: Builder, v: Any, acc: Acc, m: str) -> Act:
    """The GELU lowering of variant ``v`` (its ``meta["lower"]``: ``fn(b, v, acc, m)``)."""
    ref = v.meta.get("lower")
    if ref is None:
        raise SpecError(f"lower: variant {v.key} is not lowered")
    out: Act = ref(b, v, acc, m)
    return out


def block(b: Builder, h: Act, i: int, heads: int) -> Act:
    pre = f"blocks.{i}."
    y = layernorm(b, h, pre + "norm1", pre + "norm1")
    h = residual_add(b, h, attention(b, y, pre, heads), pre + "add1")
    y = layernorm(b, h, pre + "norm2", pre + "norm2")
    return residual_add(b, h, mlp(b, y, pre), pre + "add2")


__all__ = ["RESID_BITS", "attention", "block", "layernorm", "mlp", "residual_add",
           "softmax"]
