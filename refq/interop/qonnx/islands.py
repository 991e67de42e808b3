"""int64 translations of the kernels whose integer steps have no ``Quant`` form: the TFLite
requantizers and softmax (gemmlowp fixed point), I-BERT's and I-ViT's softmax, GELU and
LayerNorm. Each mirrors its refq.ops function step by step with exact int64 ONNX ops:
``Div`` of int64 truncates toward zero (C), ``Mod`` with fmod=0 takes the divisor's sign
(Python), so ⌊a/b⌋ = (a - a mod b) / b exactly and a & (2^k - 1) = a mod 2^k. Every op here is
named an int64 island in notes.json.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq.errors import SpecError
from refq.interop.qonnx.graph import Builder, Ctx, Note
from refq.interop.qonnx.graph import per_channel_array as _per_channel
from refq.ops import (
    IBertGeluParams,
    IBertSoftmaxParams,
    LayerNormParams,
    RequantParams,
    ShiftGeluParams,
    ShiftmaxParams,
    TfliteSoftmaxParams,
)
from refq.ops.softmax_tflite import (
    ACCUMULATION_INTEGER_BITS,
    DIFF_FRACTIONAL_BITS,
    Q0_31_EXP_MINUS_ONE_EIGHTH,
    Q0_31_EXP_MINUS_POW2,
    Q0_31_ONE_THIRD,
    SCALED_DIFF_INTEGER_BITS,
)
from refq.program.ir import Op

I32_MIN, I32_MAX = -(2**31), 2**31 - 1
Q2_29_48_OVER_17 = 1515870810
Q2_29_NEG_32_OVER_17 = -1010580540


class Int:
    """Exact int64 arithmetic on a Builder (values are graph names)."""

    def __init__(self, b: Builder) -> None:
        self.b = b

    def c(self, v: object) -> str:
        return self.b.const(np.asarray(v, dtype=np.int64), "i64", "c")

    def op(self, kind: str, *args: str, **attrs: object) -> str:
        return self.b.one(kind, list(args), "i64", **attrs)

    def cmp(self, kind: str, a: str, b: str) -> str:
        return self.b.one(kind, [a, b], "bool")

    def where(self, cond: str, a: str, b: str) -> str:
        return self.b.one("Where", [cond, a, b], "i64")

    def add(self, a: str, b: str) -> str:
        return self.op("Add", a, b)

    def sub(self, a: str, b: str) -> str:
        return self.op("Sub", a, b)

    def mul(self, a: str, b: str) -> str:
        return self.op("Mul", a, b)

    def floor_div(self, a: str, d: str) -> str:
        """⌊a / d⌋ for d > 0 or d < 0 (the remainder takes d's sign, so a - r is exact)."""
        return self.op("Div", self.sub(a, self.op("Mod", a, d, fmod=0)), d)

    def bool_int(self, v: str) -> str:
        return self.b.cast(v, "i64")

    def pow2_of(self, e: str, top: int = 62) -> str:
        """2^e for an int64 tensor e in 0..top."""
        table = np.left_shift(np.int64(1), np.arange(top + 1, dtype=np.int64))
        return self.b.one("Gather", [self.c(table), e], "i64", axis=0)

    def isqrt(self, m: str) -> str:
        """⌊√m⌋ for 0 <= m < 2^62: a float64 Sqrt seed (within ±1), made exact by integer
        correction steps until s² <= m < (s + 1)²."""
        b = self.b
        s = b.cast(b.one("Floor", [b.one("Sqrt", [b.cast(m, "f64")], "f64")], "f64"), "i64")
        one = self.c(1)
        for _ in range(2):
            s = self.sub(s, self.bool_int(self.cmp("Greater", self.mul(s, s), m)))
            s1 = self.add(s, one)
            s = self.add(s, self.bool_int(self.cmp("LessOrEqual", self.mul(s1, s1), m)))
        return s

    def bit_length(self, v: str) -> str:
        """Bit length of each v >= 0 (the count of powers 2^0..2^62 that are <= v)."""
        pow2 = np.left_shift(np.int64(1), np.arange(63, dtype=np.int64))
        axes = self.c([-1])
        ge = self.cmp("GreaterOrEqual", self.op("Unsqueeze", v, axes), self.c(pow2))
        return self.op("ReduceSum", self.bool_int(ge), axes, keepdims=0)

    # ---------------------------------------------------------- gemmlowp fixed point
    def srdhm(self, a: str, b: str) -> str:
        """SaturatingRoundingDoublingHighMul: (a·b + nudge) / 2^31, C division (trunc)."""
        ab = self.mul(a, b)
        nudge = self.where(self.cmp("GreaterOrEqual", ab, self.c(0)), self.c(1 << 30),
                           self.c(1 - (1 << 30)))
        q = self.op("Div", self.add(ab, nudge), self.c(1 << 31))
        both = self.b.one("And", [self.cmp("Equal", a, self.c(I32_MIN)),
                                  self.cmp("Equal", b, self.c(I32_MIN))], "bool")
        return self.where(both, self.c(I32_MAX), q)

    def rdbpot(self, x: str, p: str) -> str:
        """RoundingDivideByPOT by p = 2^e (a tensor): ⌊x/p⌋ + (x mod p > (p - 1) >> 1 +
        [x < 0]) — gemmlowp's mask, remainder and threshold."""
        mask = self.sub(p, self.c(1))
        rem = self.op("Mod", x, p, fmod=0)
        thr = self.add(self.floor_div(mask, self.c(2)),
                       self.bool_int(self.cmp("Less", x, self.c(0))))
        return self.add(self.floor_div(x, p), self.bool_int(self.cmp("Greater", rem, thr)))

    def rdbpot_const(self, x: str, e: object) -> str:
        return self.rdbpot(x, self.b.const(np.left_shift(np.int64(1), np.asarray(e)), "i64",
                                           "pow2"))

    def sat_mul_pot(self, x: str, e: int) -> str:
        thr = (1 << (31 - e)) - 1
        y = self.mul(x, self.c(1 << e))
        y = self.where(self.cmp("Less", x, self.c(-thr)), self.c(I32_MIN), y)
        return self.where(self.cmp("Greater", x, self.c(thr)), self.c(I32_MAX), y)

    def half_sum(self, a: str, b: str) -> str:
        s = self.add(a, b)
        t = self.add(s, self.where(self.cmp("GreaterOrEqual", s, self.c(0)), self.c(1),
                                   self.c(-1)))
        return self.op("Div", t, self.c(2))  # C division: truncation toward zero

    def one_over_one_plus_x(self, a: str) -> str:
        half_den = self.half_sum(a, self.c(I32_MAX))
        x = self.add(self.c(Q2_29_48_OVER_17), self.srdhm(half_den, self.c(Q2_29_NEG_32_OVER_17)))
        for _ in range(3):
            t = self.sub(self.c(1 << 29), self.srdhm(half_den, x))
            x = self.add(x, self.sat_mul_pot(self.srdhm(x, t), 2))
        return self.sat_mul_pot(x, 1)

    def exp_quarter(self, a: str) -> str:
        x = self.add(a, self.c(1 << 28))
        x2 = self.srdhm(x, x)
        x3 = self.srdhm(x2, x)
        x4 = self.srdhm(x2, x2)
        x4_4 = self.rdbpot_const(x4, 2)
        poly = self.rdbpot_const(self.add(self.srdhm(self.add(x4_4, x3), self.c(Q0_31_ONE_THIRD)),
                                          x2), 1)
        e = self.c(Q0_31_EXP_MINUS_ONE_EIGHTH)
        return self.add(e, self.srdhm(e, self.add(x, poly)))

    def exp_on_negative_values(self, a: str) -> str:
        quarter = 1 << (DIFF_FRACTIONAL_BITS - 2)
        a_mod = self.sub(self.op("Mod", a, self.c(quarter), fmod=0), self.c(quarter))
        result = self.exp_quarter(self.sat_mul_pot(a_mod, SCALED_DIFF_INTEGER_BITS))
        rem = self.sub(a_mod, a)  # >= 0
        for exponent, mult in Q0_31_EXP_MINUS_POW2:
            bit = 1 << (DIFF_FRACTIONAL_BITS + exponent)
            on = self.cmp("Equal", self.op("Mod", self.floor_div(rem, self.c(bit)), self.c(2),
                                            fmod=0), self.c(1))
            result = self.where(on, self.srdhm(result, self.c(mult)), result)
        return self.where(self.cmp("Equal", a, self.c(0)), self.c(I32_MAX), result)


def _note(b: Builder, op: Op, reason: str) -> None:
    name = f"{op.key} ({op.name})" if op.name else op.key
    b.notes.append(Note(op.outputs[0], name, "int64-path", reason))


def _int64_input(ctx: Ctx, op: Op, reason: str) -> tuple[Builder, Int, str]:
    """The start of an op computed on int64: the note saying why (``reason``), the
    builder, its exact int64 arithmetic and the op's first input cast to int64."""
    b = ctx[0]
    _note(b, op, reason)
    return b, Int(b), b.cast(op.inputs[0], "i64")


def _finish(ctx: Ctx, op: Op, y: str) -> None:
    b, _, _, cont = ctx
    b.finish(y, op.outputs[0], cont[op.outputs[0]])


def requantize_tflite(ctx: Ctx, op: Op) -> None:
    """TFLite MultiplyByQuantizedMultiplier (double: SRDHM then RoundingDivideByPOT; single:
    one nudge and a floor shift), the zero points, saturation."""
    p = RequantParams.from_dict(op.params)
    _finish(ctx, op, tflite_requant(ctx[0], op, op.inputs[0], p))


def tflite_requant(b: Builder, op: Op, value: str, p: RequantParams) -> str:
    """The TFLite requantization of ``value`` by ``p`` (an int64 value, saturated)."""
    if p.family not in ("double", "single"):
        raise SpecError(f"qonnx export: {op.key}: requantize family {p.family!r} is not a "
                        "TFLite fixed-point requantization")
    z = Int(b)
    _note(b, op, f"TFLite {p.family} rounding: gemmlowp fixed point on int64")
    x = b.cast(value, "i64")
    if p.in_zero_point:
        x = z.sub(x, z.c(p.in_zero_point))
    m = _per_channel(p.multiplier)
    s = _per_channel(p.shift)
    if p.family == "double":
        left = np.maximum(s, 0)
        scaled = z.mul(x, z.c(np.left_shift(np.int64(1), left)))
        y = z.rdbpot_const(z.srdhm(scaled, z.c(m)), np.maximum(-s, 0))
    else:
        total = 31 - s
        y = z.add(z.mul(x, z.c(m)), z.c(np.left_shift(np.int64(1), total - 1)))
        y = z.floor_div(y, z.c(np.left_shift(np.int64(1), total)))
    if p.out_zero_point:
        y = z.add(y, z.c(p.out_zero_point))
    return b.clip_i64(y, p.out_format.min, p.out_format.max)


def _i_exp(z: Int, x: str, x0: int, b_int: int, c_int: int, n: int) -> str:
    """I-BERT i-exp of x - max(x) (refq.ops.softmax_ibert.i_exp)."""
    d = z.sub(x, z.op("ReduceMax", x, axes=[-1], keepdims=1))
    d = z.op("Max", d, z.c(n * x0))
    q = z.floor_div(d, z.c(x0))
    r = z.sub(d, z.mul(z.c(x0), q))
    poly = z.add(z.mul(z.add(r, z.c(b_int)), r), z.c(c_int))
    return z.op("Max", z.mul(poly, z.pow2_of(z.sub(z.c(n), q))), z.c(0))


def softmax_ibert(ctx: Ctx, op: Op) -> None:
    p = IBertSoftmaxParams.from_dict(op.params)
    b, z, q = _int64_input(ctx, op, "I-BERT i-exp reaches ~2^40: int64")
    e = _i_exp(z, q, p.x0_int, p.b_int, p.c_int, p.n)
    e16 = b.round_shift_i64(z.mul(e, z.c(p.exp_multiplier)), np.asarray(p.exp_shift),
                            "half_even")
    e16 = b.clip_i64(e16, -(2**15), 2**15 - 1)
    total = z.op("ReduceSum", e16, z.c([-1]), keepdims=1)
    factor = z.op("Div", z.c(2**32), total)  # total > 0 (refq checks): floor
    out = z.floor_div(z.mul(e16, factor), z.c(1 << (32 - p.out_bits)))
    _finish(ctx, op, b.clip_i64(out, 0, (1 << p.out_bits) - 1))


def gelu_ibert(ctx: Ctx, op: Op) -> None:
    p = IBertGeluParams.from_dict(op.params)
    _, z, q = _int64_input(ctx, op, "I-BERT i-GELU: int64")
    a = z.op("Min", z.op("Abs", q), z.c(-p.b_int))
    ab = z.add(a, z.c(p.b_int))
    y = z.mul(z.op("Sign", q), z.add(z.mul(ab, ab), z.c(p.c_int)))
    y = z.floor_div(y, z.c(1 << p.erf_shift))
    _finish(ctx, op, z.mul(q, z.add(y, z.c(p.shift_int))))


def _shift_exp_sat(z: Int, d: str, x0: int, n: int) -> str:
    """I-ViT shift-exp of any sign, saturated to [0, 2^31 - 1] (refq.ops.gelu)."""
    d = z.sub(z.add(d, z.floor_div(d, z.c(2))), z.floor_div(d, z.c(16)))
    d = z.op("Max", d, z.c(n * x0))
    q = z.floor_div(d, z.c(x0))
    r = z.sub(d, z.mul(z.c(x0), q))
    sh = z.sub(z.c(n), q)
    base = z.sub(r, z.c(2 * x0))
    big = z.cmp("GreaterOrEqual", sh, z.c(32))
    e = z.floor_div(z.mul(base, z.pow2_of(z.where(big, z.c(0), sh), 31)), z.c(2))
    return z.where(big, z.c(I32_MAX), z.op("Min", e, z.c(I32_MAX)))


def gelu_shiftgelu(ctx: Ctx, op: Op) -> None:
    p = ShiftGeluParams.from_dict(op.params)
    _, z, q = _int64_input(ctx, op, "I-ViT ShiftGELU: shift-exps and a division on int64")
    m = z.op("ReduceMax", q, axes=[-1], keepdims=1)
    e1 = _shift_exp_sat(z, z.sub(q, m), p.x0_int, p.n)
    e2 = _shift_exp_sat(z, z.op("Neg", m), p.x0_int, p.n)
    total = z.op("Min", z.add(e1, e2), z.c(I32_MAX))
    factor = z.op("Div", z.c(I32_MAX), z.op("Max", total, z.c(1)))
    sig = z.floor_div(z.mul(e1, factor), z.c(1 << (32 - p.out_bits)))
    _finish(ctx, op, z.mul(q, sig))


def _shiftmax(ctx: Ctx, op: Op, deploy: bool) -> None:
    p = ShiftmaxParams.from_dict(op.params)
    _, z, x = _int64_input(ctx, op, "I-ViT Shiftmax: shift-exp and a division on int64")
    d = z.sub(x, z.op("ReduceMax", x, axes=[-1], keepdims=1))
    d = z.sub(z.add(d, z.floor_div(d, z.c(2))), z.floor_div(d, z.c(16)))
    d = z.op("Max", d, z.c(p.n * p.x0_int))
    q = z.floor_div(d, z.c(p.x0_int))
    r = z.sub(d, z.mul(z.c(p.x0_int), q))
    pw = z.pow2_of(z.sub(z.c(p.n), q), 31)
    if deploy:
        e = z.mul(z.sub(z.floor_div(r, z.c(2)), z.c(p.x0_int)), pw)
    else:
        e = z.floor_div(z.mul(z.sub(r, z.c(2 * p.x0_int)), pw), z.c(2))
    e = z.op("Max", e, z.c(0))
    total = z.op("Min", z.op("ReduceSum", e, z.c([-1]), keepdims=1), z.c(I32_MAX))
    factor = z.op("Div", z.c(I32_MAX), z.op("Max", total, z.c(1)))
    _finish(ctx, op, z.floor_div(z.mul(e, factor), z.c(1 << (32 - p.out_bits))))


def softmax_tflite(ctx: Ctx, op: Op) -> None:
    p = TfliteSoftmaxParams.from_dict(op.params)
    b, z, x = _int64_input(ctx, op,
                           "TFLite softmax: gemmlowp fixed-point exp and reciprocal on int64")
    diff = z.sub(x, z.op("ReduceMax", x, axes=[-1], keepdims=1))
    valid = z.cmp("GreaterOrEqual", diff, z.c(p.diff_min))
    shifted = z.mul(z.where(valid, diff, z.c(0)), z.c(1 << p.input_left_shift))
    e = z.exp_on_negative_values(z.srdhm(shifted, z.c(p.input_multiplier)))
    e = z.where(valid, e, z.c(0))
    total = z.op("ReduceSum", z.rdbpot_const(e, ACCUMULATION_INTEGER_BITS), z.c([-1]),
                 keepdims=1)
    headroom = z.sub(z.c(32), z.bit_length(z.op("Max", total, z.c(1))))  # 31 - ilog2(Σ)
    shifted_sum = z.sub(z.mul(total, z.pow2_of(headroom, 31)), z.c(1 << 31))
    rec = z.one_over_one_plus_x(shifted_sum)
    expo = z.sub(z.c(ACCUMULATION_INTEGER_BITS + 31 - 8), headroom)
    out = z.rdbpot(z.srdhm(rec, e), z.pow2_of(expo, 31))
    out = z.add(out, z.c(p.out_format.min if p.out_format.signed else 0))
    out = b.clip_i64(out, p.out_format.min, p.out_format.max)
    _finish(ctx, op, z.where(valid, out, z.c(p.out_format.min)))


def _ln_center(ctx: Ctx, op: Op, p: LayerNormParams) -> tuple[Int, str]:
    """(x - zp) << channel_shift, minus round_half_even(Σ / C)."""
    b, prog, _, _ = ctx
    z = Int(b)
    a = b.cast(op.inputs[0], "i64")
    if p.zero_point:
        a = z.sub(a, z.c(p.zero_point))
    if any(p.channel_shift):
        a = z.mul(a, z.c(np.left_shift(np.int64(1), _per_channel(p.channel_shift))))
    c = prog.tensors[op.inputs[0]].shape[-1]
    s = z.op("ReduceSum", a, z.c([-1]), keepdims=1)
    q = z.floor_div(s, z.c(c))
    r2 = z.mul(z.sub(s, z.mul(q, z.c(c))), z.c(2))
    odd = z.cmp("Equal", z.op("Mod", q, z.c(2), fmod=0), z.c(1))
    up = b.one("Or", [z.cmp("Greater", r2, z.c(c)),
                      b.one("And", [z.cmp("Equal", r2, z.c(c)), odd], "bool")], "bool")
    return z, z.sub(a, z.add(q, z.bool_int(up)))


def _ln_out(ctx: Ctx, op: Op, z: Int, p: LayerNormParams, y: str, factor: str) -> None:
    out = z.floor_div(z.mul(y, factor), z.c(2))
    if any(p.bias):
        out = z.add(out, z.c(_per_channel(p.bias)))
    _finish(ctx, op, out)


def layernorm_ibert(ctx: Ctx, op: Op) -> None:
    p = LayerNormParams.from_dict(op.params)
    _note(ctx[0], op, "I-BERT LayerNorm: integer statistics, isqrt and division on int64")
    z, y = _ln_center(ctx, op, p)
    ys = z.floor_div(y, z.c(1 << p.var_shift))
    v = z.op("ReduceSum", z.mul(ys, ys), z.c([-1]), keepdims=1)
    std = z.op("Max", z.mul(z.isqrt(v), z.c(1 << p.var_shift)), z.c(1))
    _ln_out(ctx, op, z, p, y, z.op("Div", z.c(2**31), std))


def layernorm_ivit(ctx: Ctx, op: Op) -> None:
    p = LayerNormParams.from_dict(op.params)
    _note(ctx[0], op, "I-ViT LayerNorm: 10 integer Newton steps and a division on int64")
    z, y = _ln_center(ctx, op, p)
    v = z.op("ReduceSum", z.mul(y, y), z.c([-1]), keepdims=1)
    k = z.c(1 << 16)  # broadcast to v's shape by the first step
    for _ in range(10):
        k = z.op("Div", z.add(k, z.op("Div", v, k)), z.c(2))  # all >= 0: C division = floor
    _ln_out(ctx, op, z, p, y, z.op("Div", z.c(2**31 - 1), k))


ISLANDS: dict[str, Callable[[Ctx, Op], None]] = {
    "requantize.double": requantize_tflite,
    "requantize.single": requantize_tflite,
    "softmax.ibert": softmax_ibert,
    "softmax.shiftmax": lambda ctx, op: _shiftmax(ctx, op, False),
    "softmax.shiftmax_deploy": lambda ctx, op: _shiftmax(ctx, op, True),
    "softmax.tflite": softmax_tflite,
    "gelu.ibert": gelu_ibert,
    "gelu.shiftgelu": gelu_shiftgelu,
    "layernorm.ibert": layernorm_ibert,
    "layernorm.ivit": layernorm_ivit,
}

__all__ = ["ISLANDS", "Int", "tflite_requant"]
