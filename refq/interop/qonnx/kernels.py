"""Kernel ops of a refq Program as QONNX/ONNX nodes (refq.interop.qonnx.graph.Builder).

Requantizations (``requantize.dyadic`` / ``ap_fixed``, ``add.*``, a GEMM's ``requant``) use
qonnx ``Quant`` (scale 1: a rounding plus a clamp to the output format) on the exact
float64 value x·b·2^-c where a bound proves that value exact (|x·b| + 2^c < 2^52) and the
output format fits float32; otherwise the same rounding is emitted on int64 (Mod / Div /
comparisons, :meth:`Builder.round_shift_i64`) and the step is named as an int64 island.
GEMMs are float32 MatMuls where K·max|a|·max|b| + max|bias| <= 2^24, else int64 MatMuls.
``softmax.refq`` and ``layernorm.refq`` are int64 islands by construction (their
intermediates reach 2^41 and 2^62); LayerNorm's isqrt seeds with a float64 Sqrt and is made
exact by integer correction steps (s² <= m < (s + 1)²). Kernels without a translation raise
SpecError naming the op and the reason.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq.errors import SpecError
from refq.interop.qonnx.bounds import accumulator_bound, fmt_bound
from refq.interop.qonnx.engines import ENGINE_FAMILIES, ENGINES, engine_requant
from refq.interop.qonnx.graph import Builder, Ctx, Note, fits_f32, per_channel_array
from refq.interop.qonnx.islands import ISLANDS, tflite_requant
from refq.intmath import IntFormat
from refq.intmath.apfixed import ApType
from refq.ops import (
    AddParams,
    ApFixedRequantParams,
    GeluLutParams,
    GemmParams,
    LayerNormParams,
    RefqSoftmaxParams,
    RequantParams,
)
from refq.ops.table import kernel
from refq.program.ir import Op

FLOAT_LIMIT = 1 << 52
"""|x·b| + 2^c below this keeps x·b·2^-c and its ±1/2 offset exact in float64."""


_per_channel = per_channel_array


def _note(b: Builder, out: str, op: Op, reason: str) -> None:
    b.notes.append(Note(out, f"{op.key} ({op.name})" if op.name else op.key, "int64-path", reason))


def requant(ctx: Ctx, op: Op, x: str, xbound: int, mult: tuple[int, ...], shift: tuple[int, ...],
            mode: str, in_zp: int, out_zp: int, out: IntFormat, out_name: str) -> str:
    """saturate(round((x - in_zp)·mult / 2^shift) + out_zp, out) — a value in ``out``'s
    container (float32 via Quant where exact, else int64)."""
    b = ctx[0]
    m, s = _per_channel(mult), _per_channel(shift)
    prod = (xbound + abs(in_zp)) * max(abs(v) for v in mult)
    small = out.bits <= (24 if out_zp == 0 else 22) and fits_f32(out)
    if small and prod + (1 << int(s.max())) < FLOAT_LIMIT and int(s.max()) <= 62:
        v = b.cast(x, "f64")
        if in_zp:
            v = b.one("Sub", [v, b.const(float(in_zp), "f64", "zp")], "f64")
        scale = m.astype(np.float64) * np.ldexp(1.0, -s)
        v = b.one("Mul", [v, b.const(scale, "f64", "mult")], "f64")
        if out_zp == 0:
            return b.quant(v, out.bits, out.signed, mode)
        q = b.quant(v, out.bits + 2, True, mode)  # |q| < 2^(W+1): the clamp cannot bite
        q = b.one("Add", [q, b.const(float(out_zp), "f32", "zp")], "f32")
        return b.quant(q, out.bits, out.signed, "half_even")  # integers: a pure clamp
    why = (f"|x·b| may reach 2^{max(prod, 1).bit_length()} (> 2^52, float64 not exact)"
           if small else f"output {out.name} wider than float32's exact integers"
           if not fits_f32(out) else f"output {out.name} with zero point needs > 22 bits")
    _note(b, out_name, op, why)
    v = b.cast(x, "i64")
    if in_zp:
        v = b.one("Sub", [v, b.const(in_zp, "i64", "zp")], "i64")
    v = b.one("Mul", [v, b.const(m, "i64", "mult")], "i64")
    v = b.round_shift_i64(v, s, mode)
    if out_zp:
        v = b.one("Add", [v, b.const(out_zp, "i64", "zp")], "i64")
    return b.clip_i64(v, out.min, out.max)


def requantize_dyadic(ctx: Ctx, op: Op) -> None:
    b, _prog, bounds, cont = ctx
    p = RequantParams.from_dict(op.params)
    if p.family != "dyadic":
        raise SpecError(f"qonnx export: {op.key}: TFLite {p.family}-rounding requantization "
                        "(32-bit doubling high multiply, then a rounding divide) has no exact "
                        "Quant form and no int64 translation here")
    x, out = op.inputs[0], op.outputs[0]
    y = requant(ctx, op, x, bounds[x], p.multiplier, p.shift, p.rounding or "half_even",
                p.in_zero_point, p.out_zero_point, p.out_format, out)
    b.finish(y, out, cont[out])


def requantize_apfixed(ctx: Ctx, op: Op) -> None:
    b, _prog, bounds, cont = ctx
    p = ApFixedRequantParams.from_dict(op.params)
    t: ApType = p.apfixed
    s = p.frac_bits - t.frac_bits
    x, out = op.inputs[0], op.outputs[0]
    if t.overflow == "AP_WRAP_SM" or s < 0:
        raise SpecError(f"qonnx export: {op.key}: {t.name} from {p.frac_bits} fractional bits "
                        "(sign-magnitude wrap or a left shift) is not translated")
    prod = (bounds[x] + abs(p.in_zero_point)) * max(abs(v) for v in p.multiplier)
    if t.overflow in ("AP_SAT", "AP_SAT_SYM") and min(p.multiplier) >= 0:
        fmt = t.fmt
        narrow = t.overflow == "AP_SAT_SYM" and t.signed
        if fits_f32(fmt) and t.width <= 24 and prod + (1 << s) < FLOAT_LIMIT:
            v = b.cast(x, "f64")
            if p.in_zero_point:
                v = b.one("Sub", [v, b.const(float(p.in_zero_point), "f64", "zp")], "f64")
            scale = np.asarray(p.multiplier, dtype=np.float64) * np.ldexp(1.0, -s)
            v = b.one("Mul", [v, b.const(scale if scale.size > 1 else scale[0], "f64", "mult")],
                      "f64")
            b.finish(b.quant(v, t.width, t.signed, t.quantization, narrow=narrow), out, cont[out])
            return
    _note(b, out, op, f"{t.name}: {t.overflow} or |x·m| up to 2^{max(prod, 1).bit_length()}")
    v = b.cast(x, "i64")
    if p.in_zero_point:
        v = b.one("Sub", [v, b.const(p.in_zero_point, "i64", "zp")], "i64")
    v = b.one("Mul", [v, b.const(_per_channel(p.multiplier), "i64", "mult")], "i64")
    q = b.round_shift_i64(v, np.asarray(s), t.quantization)
    fmt = t.fmt
    if t.overflow == "AP_SAT":
        y = b.clip_i64(q, fmt.min, fmt.max)
    elif t.overflow == "AP_SAT_SYM":
        y = b.clip_i64(q, fmt.min + 1 if t.signed else fmt.min, fmt.max)
    elif t.overflow == "AP_SAT_ZERO":
        bad = b.one("Or", [b.one("Less", [q, b.const(fmt.min, "i64", "lo")], "bool"),
                           b.one("Greater", [q, b.const(fmt.max, "i64", "hi")], "bool")], "bool")
        y = b.one("Where", [bad, b.const(0, "i64", "zero"), q], "i64")
    else:  # AP_WRAP: ((q - min) mod 2^W) + min; q - min fits int64 (|q| <= 2^62 + 1)
        if t.width == 64:
            y = q
        else:
            r = b.one("Mod", [b.one("Sub", [q, b.const(fmt.min, "i64", "lo")], "i64"),
                              b.const(1 << t.width, "i64", "mod")], "i64", fmod=0)
            y = b.one("Add", [r, b.const(fmt.min, "i64", "lo")], "i64")
    b.finish(y, out, cont[out])


def _gemm(ctx: Ctx, op: Op, linear: bool) -> None:
    b, prog, bounds, cont = ctx
    p = GemmParams.from_dict(op.params)
    a, w = op.inputs[0], op.inputs[1]
    out = op.outputs[0]
    acc_bound = accumulator_bound(prog, op, bounds)
    dt = "f32" if acc_bound <= 1 << 24 else "i64"
    if dt == "i64":
        _note(b, out, op, f"accumulator may reach 2^{acc_bound.bit_length()} (> 2^24): int64 "
                          "MatMul")
    av = b.cast(a, dt)
    if p.a_zero_point:
        av = b.one("Sub", [av, b.const(p.a_zero_point, dt, "zp")], dt)
    wv = b.cast(w, dt)
    if p.b_zero_point:
        wv = b.one("Sub", [wv, b.const(p.b_zero_point, dt, "zp")], dt)
    if linear:
        wv = b.one("Transpose", [wv], dt, perm=[1, 0])
    acc = b.one("MatMul", [av, wv], dt)
    if linear and len(op.inputs) > 2:
        acc = b.one("Add", [acc, b.cast(op.inputs[2], dt)], dt)
    if p.requant is None:
        b.finish(acc, out, cont[out])
        return
    r = p.requant
    if r.family in ENGINE_FAMILIES:
        b.finish(engine_requant(b, op, acc, r), out, cont[out])
        return
    if r.family != "dyadic":
        b.finish(tflite_requant(b, op, acc, r), out, cont[out])
        return
    y = requant(ctx, op, acc, acc_bound, r.multiplier, r.shift, r.rounding or "half_even",
                r.in_zero_point, r.out_zero_point, r.out_format, out)
    b.finish(y, out, cont[out])


def add(ctx: Ctx, op: Op) -> None:
    b, _prog, bounds, cont = ctx
    p = AddParams.from_dict(op.params)
    a, c = op.inputs
    out = op.outputs[0]
    if p.scheme == "shared_shift":
        va = b.one("Mul", [b.one("Sub", [b.cast(a, "i64"), b.const(p.a_zero_point, "i64", "zp")],
                                 "i64"), b.const(p.a_multiplier, "i64", "mult")], "i64")
        vb = b.one("Mul", [b.one("Sub", [b.cast(c, "i64"), b.const(p.b_zero_point, "i64", "zp")],
                                 "i64"), b.const(p.b_multiplier, "i64", "mult")], "i64")
        acc_b = (bounds[a] + abs(p.a_zero_point)) * p.a_multiplier + (
            bounds[c] + abs(p.b_zero_point)) * p.b_multiplier
        y = requant(ctx, op, b.one("Add", [va, vb], "i64"), acc_b, (1,), (p.a_shift,),
                    p.rounding, 0, p.out_zero_point, p.out_format, out)
        b.finish(y, out, cont[out])
        return
    # ivit: two separately rounded branches, then the zero point and one saturation
    fmt = p.out_format
    branches = []
    for name, zp, m, s in ((a, p.a_zero_point, p.a_multiplier, p.a_shift),
                           (c, p.b_zero_point, p.b_multiplier, p.b_shift)):
        wide = IntFormat(min(((bounds[name] + abs(zp)) * m >> s).bit_length() + 3, 64), True)
        branches.append((requant(ctx, op, name, bounds[name], (m,), (s,), p.rounding, zp, 0,
                                 wide, out), wide))
    total = sum(fmt_bound(w) for _, w in branches) + abs(p.out_zero_point)
    if all(b.dtype[v] == "f32" for v, _ in branches) and total <= 1 << 24 and fits_f32(fmt):
        y = b.one("Add", [branches[0][0], branches[1][0]], "f32")
        if p.out_zero_point:
            y = b.one("Add", [y, b.const(float(p.out_zero_point), "f32", "zp")], "f32")
        y = b.quant(y, fmt.bits, fmt.signed, "half_even")  # integers: a pure clamp
    else:
        y = b.one("Add", [b.cast(branches[0][0], "i64"), b.cast(branches[1][0], "i64")], "i64")
        if p.out_zero_point:
            y = b.one("Add", [y, b.const(p.out_zero_point, "i64", "zp")], "i64")
        y = b.clip_i64(y, fmt.min, fmt.max)
    b.finish(y, out, cont[out])


def softmax_refq(ctx: Ctx, op: Op) -> None:
    """refq softmax on int64 (refq.ops.softmax_refq, step by step)."""
    b, _prog, _bounds, cont = ctx
    p = RefqSoftmaxParams.from_dict(op.params)
    out = op.outputs[0]
    _note(b, out, op, "t = (max - x)·m reaches 2^41; the exp table and the division stay on "
                      "int64")
    x = b.cast(op.inputs[0], "i64")
    mx = b.one("ReduceMax", [x], "i64", axes=[-1], keepdims=1)
    t = b.one("Mul", [b.one("Sub", [mx, x], "i64"), b.const(p.log2e_multiplier, "i64", "m")],
              "i64")
    L = p.table_bits
    u = b.round_shift_i64(t, np.asarray(p.log2e_shift - L), "half_up")
    k = b.one("Div", [u, b.const(1 << L, "i64", "pow2")], "i64")  # u >= 0: floor
    j = b.one("Mod", [u, b.const(1 << L, "i64", "pow2")], "i64", fmod=0)
    tj = b.one("Gather", [b.const(np.asarray(p.table), "i64", "table"), j], "i64", axis=0)
    kc = b.one("Min", [k, b.const(20, "i64", "kmax")], "i64")
    pw = np.left_shift(np.int64(1), np.arange(21, dtype=np.int64))
    div = b.one("Gather", [b.const(pw, "i64", "pow2"), kc], "i64", axis=0)
    half = b.one("Gather", [b.const(pw >> 1, "i64", "half"), kc], "i64", axis=0)
    e = b.one("Div", [b.one("Add", [tj, half], "i64"), div], "i64")  # round_half_up(T[j]/2^k)
    total = b.one("ReduceSum", [e, b.const([-1], "i64", "axes")], "i64", keepdims=1)
    n = b.one("Mul", [e, b.const((1 << p.out_bits) - 1, "i64", "scale")], "i64")
    two = b.const(2, "i64", "two")
    num = b.one("Add", [b.one("Mul", [n, two], "i64"), total], "i64")
    y = b.one("Div", [num, b.one("Mul", [total, two], "i64")], "i64")  # ⌊(2n + Σ) / 2Σ⌋
    b.finish(y, out, cont[out])


def gelu_lut(ctx: Ctx, op: Op) -> None:
    b, _prog, _bounds, cont = ctx
    p = GeluLutParams.from_dict(op.params)
    out = op.outputs[0]
    idx = b.one("Sub", [b.cast(op.inputs[0], "i64"), b.const(p.in_format.min, "i64", "off")],
                "i64")
    table = b.const(np.asarray(p.table), cont[out], "table")
    b.finish(b.one("Gather", [table, idx], cont[out], axis=0), out, cont[out])


def layernorm_refq(ctx: Ctx, op: Op) -> None:
    """refq exact-statistics LayerNorm on int64 (refq.ops.layernorm.layernorm_refq)."""
    b, prog, _bounds, cont = ctx
    p = LayerNormParams.from_dict(op.params)
    out = op.outputs[0]
    _note(b, out, op, "Σy² reaches 2^62: statistics, isqrt and the rounded division on int64 "
                      "(float64 Sqrt only seeds the isqrt, corrected to s² <= m < (s+1)²)")
    c = prog.tensors[op.inputs[0]].shape[-1]
    a = b.cast(op.inputs[0], "i64")
    if p.zero_point:
        a = b.one("Sub", [a, b.const(p.zero_point, "i64", "zp")], "i64")
    if any(p.channel_shift):
        sh = np.left_shift(np.int64(1), _per_channel(p.channel_shift))
        a = b.one("Mul", [a, b.const(sh, "i64", "align")], "i64")
    axes = b.const([-1], "i64", "axes")
    y = b.one("Sub", [b.one("Mul", [a, b.const(c, "i64", "C")], "i64"),
                      b.one("ReduceSum", [a, axes], "i64", keepdims=1)], "i64")
    v = b.one("ReduceSum", [b.one("Mul", [y, y], "i64"), axes], "i64", keepdims=1)
    v1 = b.one("Max", [v, b.const(1, "i64", "one")], "i64")
    pow2 = np.left_shift(np.int64(1), np.arange(63, dtype=np.int64))
    ge = b.one("GreaterOrEqual", [b.one("Unsqueeze", [v1, axes], "i64"),
                                  b.const(pow2, "i64", "pow2")], "bool")
    bl = b.one("ReduceSum", [b.cast(ge, "i64"), axes], "i64", keepdims=0)  # bit length of v
    k = b.one("Max", [b.one("Div", [b.one("Sub", [b.const(62, "i64", "c62"), bl], "i64"),
                                    b.const(2, "i64", "two")], "i64"),
                      b.const(0, "i64", "zero")], "i64")
    pow4 = np.left_shift(np.int64(1), 2 * np.arange(32, dtype=np.int64))
    m = b.one("Mul", [v, b.one("Gather", [b.const(pow4, "i64", "pow4"), k], "i64", axis=0)],
              "i64")
    s = b.cast(b.one("Floor", [b.one("Sqrt", [b.cast(m, "f64")], "f64")], "f64"), "i64")
    one = b.const(1, "i64", "one")
    for _ in range(2):  # isqrt: s² <= m < (s + 1)², from within ±1
        s = b.one("Sub", [s, b.cast(b.one("Greater", [b.one("Mul", [s, s], "i64"), m], "bool"),
                                    "i64")], "i64")
        s1 = b.one("Add", [s, one], "i64")
        s = b.one("Add", [s, b.cast(b.one("LessOrEqual", [b.one("Mul", [s1, s1], "i64"), m],
                                          "bool"), "i64")], "i64")
    s = b.one("Max", [s, one], "i64")
    pw = b.one("Gather", [b.const(pow2, "i64", "pow2"),
                          b.one("Add", [k, b.const(p.frac_bits, "i64", "F")], "i64")], "i64",
               axis=0)
    n = b.one("Mul", [y, pw], "i64")  # y·2^(F+k), |.| <= 2^(31+F)
    an = b.one("Abs", [n], "i64")
    q = b.one("Div", [an, s], "i64")
    r2 = b.one("Mul", [b.one("Sub", [an, b.one("Mul", [q, s], "i64")], "i64"),
                       b.const(2, "i64", "two")], "i64")
    odd = b.one("Equal", [b.one("Mod", [q, b.const(2, "i64", "two")], "i64", fmod=0), one], "bool")
    up = b.one("Or", [b.one("Greater", [r2, s], "bool"),
                      b.one("And", [b.one("Equal", [r2, s], "bool"), odd], "bool")], "bool")
    q = b.one("Add", [q, b.cast(up, "i64")], "i64")
    neg = b.one("Less", [n, b.const(0, "i64", "zero")], "bool")
    y_out = b.one("Where", [neg, b.one("Neg", [q], "i64"), q], "i64")  # half-even is odd-symmetric
    if any(p.bias):
        y_out = b.one("Add", [y_out, b.const(_per_channel(p.bias), "i64", "bias")], "i64")
    b.finish(y_out, out, cont[out])


KERNELS: dict[str, Callable[[Ctx, Op], None]] = {
    "requantize.dyadic": requantize_dyadic,
    "requantize.ap_fixed": requantize_apfixed,
    "linear.gemm": lambda ctx, op: _gemm(ctx, op, True),
    "matmul.gemm": lambda ctx, op: _gemm(ctx, op, False),
    "add.ivit": add,
    "add.shared_shift": add,
    "softmax.refq": softmax_refq,
    "gelu.lut": gelu_lut,
    "layernorm.refq": layernorm_refq,
    **ISLANDS,
    **ENGINES,
}


def translate_kernel(ctx: Ctx, op: Op) -> None:
    fn = KERNELS.get(op.key)
    if fn is None:
        kernel(op.key)  # an unknown key is a SpecError of its own
        raise SpecError(f"qonnx export: kernel {op.key} ({op.name}) is not translated: its "
                        "integer steps have no Quant form and no int64 translation is written")
    fn(ctx, op)


__all__ = ["KERNELS", "translate_kernel"]
