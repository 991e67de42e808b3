"""The engine requantizations (``requantize.fp32``, ``fp32_zp``, ``fp64``, ``double_up``;
refq.ops.requantize_fp32 / _fp64 / _double_up) as QONNX/ONNX nodes, standalone or inside a
GEMM.

- ``fp32`` / ``fp32_zp``: the engine's own binary32 arithmetic, stated as ONNX float32 ops —
  ``Cast`` int64 → float (nearest binary32, ties to even: CVTDQ2PS), ``Mul`` by the exact
  binary32 multiplier m·2^-c (the product rounded to binary32: MULPS), for ``fp32_zp`` an
  ``Add`` of the zero point in binary32 — then a qonnx ``Quant`` with ``ROUND`` (numpy's
  rint, ties to even: CVTPS2DQ) and the clamp. Each ONNX op is one IEEE-754
  round-to-nearest-even operation, which is what refq models in integers (rn24). No value
  leaves binary32's normal range (refq.ops.requantize_fp32 docstring).
- ``fp64``: ``Cast`` to double (exact for int32), ``Mul`` by the binary64 scale m·2^-c (the
  product rounded to binary64), then round half away from zero built exactly — ⌊|v|⌋ and
  the remainder |v| − ⌊|v|⌋ (exact: Sterbenz) against 1/2 — not qonnx's ``HALF_UP``, which
  rounds |v| + 1/2 first (docs/backends/qonnx.md). The clamp is applied in float64 before
  the cast back to int64 (the product may pass 2^63).
- ``double_up``: two ties-up shifts on int64 — ⌊(x·2^l·M + 2^30) / 2^31⌋, then
  ⌊(y1 + 2^(r−1)) / 2^r⌋ — exact floor divisions (``Mod`` with the divisor's sign).

Every translation is named in notes.json. Range checks (x − in_zero_point within int32,
x·2^l within int32) are refq's alone: difference of contract 1.
"""

from __future__ import annotations

import numpy as np

from refq.errors import SpecError
from refq.interop.qonnx.graph import Builder, Ctx, Note, fits_f32
from refq.interop.qonnx.graph import per_channel_array as _per_channel
from refq.interop.qonnx.islands import Int
from refq.ops import RequantParams
from refq.program.ir import Op

ENGINE_FAMILIES = ("fp32", "fp32_zp", "fp64", "double_up")


def _note(b: Builder, op: Op, reason: str) -> None:
    name = f"{op.key} ({op.name})" if op.name else op.key
    b.notes.append(Note(op.outputs[0], name, "int64-path", reason))


def _float_scale(p: RequantParams, dtype: str, b: Builder) -> str:
    m = _per_channel(p.multiplier).astype(np.float64)
    s = _per_channel(p.shift)
    return b.const(np.ldexp(m, -s), dtype, "scale")  # exact: m < 2^24 (2^53), const checks


def _fp32(b: Builder, op: Op, x: str, p: RequantParams) -> str:
    out, zp = p.out_format, p.out_zero_point
    if not fits_f32(out) or out.bits > (24 if zp == 0 or p.family == "fp32_zp" else 22):
        raise SpecError(f"qonnx export: {op.key}: output {out.name} wider than float32's "
                        "exact integers")
    steps = "Cast, Mul, Add" if p.family == "fp32_zp" else "Cast, Mul"
    _note(b, op, f"engine {p.family} rule: float32 {steps} as the CPU rounds them, then "
                 "Quant ROUND")
    v = b.one("Mul", [b.cast(x, "f32"), _float_scale(p, "f32", b)], "f32")
    if p.family == "fp32_zp":
        if zp:
            v = b.one("Add", [v, b.const(float(zp), "f32", "zp")], "f32")
        return b.quant(v, out.bits, out.signed, "half_even")
    if zp == 0:
        return b.quant(v, out.bits, out.signed, "half_even")
    q = b.quant(v, out.bits + 2, True, "half_even")  # |q| < 2^(W+1): the clamp cannot bite
    q = b.one("Add", [q, b.const(float(zp), "f32", "zp")], "f32")
    return b.quant(q, out.bits, out.signed, "half_even")  # integers: a pure clamp


def _fp64(b: Builder, op: Op, x: str, p: RequantParams) -> str:
    out, zp = p.out_format, p.out_zero_point
    _note(b, op, "engine fp64 rule: float64 Mul, then round half away from zero from "
                 "⌊|v|⌋ and its exact remainder; clamp in float64")
    v = b.one("Mul", [b.cast(x, "f64"), _float_scale(p, "f64", b)], "f64")
    a = b.one("Abs", [v], "f64")
    fl = b.one("Floor", [a], "f64")
    up = b.one("GreaterOrEqual", [b.one("Sub", [a, fl], "f64"), b.const(0.5, "f64", "half")],
               "bool")
    mag = b.one("Add", [fl, b.cast(up, "f64")], "f64")
    neg = b.one("Less", [v, b.const(0.0, "f64", "zero")], "bool")
    y = b.one("Where", [neg, b.one("Neg", [mag], "f64"), mag], "f64")
    y = b.one("Max", [y, b.const(float(out.min - zp), "f64", "lo")], "f64")
    y = b.one("Min", [y, b.const(float(out.max - zp), "f64", "hi")], "f64")
    y = b.cast(y, "i64")
    return b.one("Add", [y, b.const(zp, "i64", "zp")], "i64") if zp else y


def _double_up(b: Builder, op: Op, x: str, p: RequantParams) -> str:
    z = Int(b)
    _note(b, op, "engine double_up rule: two ties-up shifts on int64")
    s = _per_channel(p.shift)
    left, right = np.maximum(s, 0), np.maximum(-s, 0)
    a = z.mul(b.cast(x, "i64"), z.c(np.left_shift(np.int64(1), left)))
    y1 = z.floor_div(z.add(z.mul(a, z.c(_per_channel(p.multiplier))), z.c(1 << 30)),
                     z.c(1 << 31))
    if right.any():
        nudge = np.where(right > 0, np.left_shift(np.int64(1), np.maximum(right - 1, 0)), 0)
        y1 = z.floor_div(z.add(y1, z.c(nudge)), z.c(np.left_shift(np.int64(1), right)))
    if p.out_zero_point:
        y1 = z.add(y1, z.c(p.out_zero_point))
    return b.clip_i64(y1, p.out_format.min, p.out_format.max)


def engine_requant(b: Builder, op: Op, value: str, p: RequantParams) -> str:
    """The ``p.family`` engine requantization of ``value`` (the accumulator): the output
    codes, saturated, in a float32 or int64 container."""
    if p.family not in ENGINE_FAMILIES:
        raise SpecError(f"qonnx export: {op.key}: requantize family {p.family!r} has no "
                        "engine translation")
    x = b.cast(value, "i64")
    if p.in_zero_point:
        x = b.one("Sub", [x, b.const(p.in_zero_point, "i64", "zp")], "i64")
    if p.family in ("fp32", "fp32_zp"):
        return _fp32(b, op, x, p)
    if p.family == "fp64":
        return _fp64(b, op, x, p)
    return _double_up(b, op, x, p)


def requantize_engine(ctx: Ctx, op: Op) -> None:
    b, _prog, _bounds, cont = ctx
    p = RequantParams.from_dict(op.params)
    out = op.outputs[0]
    b.finish(engine_requant(b, op, op.inputs[0], p), out, cont[out])


ENGINES = {f"requantize.{family}": requantize_engine for family in ENGINE_FAMILIES}

__all__ = ["ENGINES", "ENGINE_FAMILIES", "engine_requant"]
