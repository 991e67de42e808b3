"""Data-movement and table ops of a refq Program (refq.program.movement) as ONNX / qonnx
nodes: Reshape, Transpose, Split, Concat, Gather, qonnx ``MultiThreshold`` for decision
thresholds, and exact integer arithmetic for the shift / add / affine steps."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq.errors import SpecError
from refq.interop.qonnx.graph import QONNX_DOMAIN, Builder, Ctx, Note
from refq.program.ir import Op


def _same(ctx: Ctx, op: Op, value: str) -> None:
    b, _, _, cont = ctx
    b.finish(value, op.outputs[0], cont[op.outputs[0]])


def reshape(ctx: Ctx, op: Op) -> None:
    b = ctx[0]
    shape = [0 if (i == 0 and d == -1) else int(d) for i, d in enumerate(op.params["shape"])]
    x = op.inputs[0]
    _same(ctx, op, b.one("Reshape", [x, b.const(shape, "i64", "shape")], b.dtype[x]))


def transpose(ctx: Ctx, op: Op) -> None:
    b = ctx[0]
    x = op.inputs[0]
    _same(ctx, op, b.one("Transpose", [x], b.dtype[x], perm=[int(v) for v in op.params["perm"]]))


def split(ctx: Ctx, op: Op) -> None:
    b, prog, _, cont = ctx
    x = op.inputs[0]
    axis, n = int(op.params["axis"]), int(op.params["sections"])
    size = prog.tensors[x].shape[axis] // n
    parts = b.node("Split", [x, b.const([size] * n, "i64", "split")], b.dtype[x], n_out=n,
                   axis=axis)
    for part, out in zip(parts, op.outputs, strict=True):
        b.finish(part, out, cont[out])


def prepend(ctx: Ctx, op: Op) -> None:
    b, _, _, cont = ctx
    x, token = op.inputs
    dt = cont[op.outputs[0]]
    tok = b.cast(token, dt)
    batch = ctx[1].tensors[x].shape[0]
    if batch != 1:
        tok = b.one("Tile", [tok, b.const([batch, 1, 1], "i64", "reps")], dt)
    _same(ctx, op, b.one("Concat", [tok, b.cast(x, dt)], dt, axis=1))


def patchify(ctx: Ctx, op: Op) -> None:
    b, prog, _, _ = ctx
    x = op.inputs[0]
    p = int(op.params["patch"])
    bs, c, h, w = prog.tensors[x].shape
    dt = b.dtype[x]
    y = b.one("Reshape", [x, b.const([bs, c, h // p, p, w // p, p], "i64", "shape")], dt)
    y = b.one("Transpose", [y], dt, perm=[0, 2, 4, 1, 3, 5])
    y = b.one("Reshape", [y, b.const([bs, (h // p) * (w // p), c * p * p], "i64", "shape")], dt)
    _same(ctx, op, y)


def select(ctx: Ctx, op: Op) -> None:
    b = ctx[0]
    x = op.inputs[0]
    idx = b.const(np.int64(op.params["index"]), "i64", "index")
    _same(ctx, op, b.one("Gather", [x, idx], b.dtype[x], axis=int(op.params["axis"])))


def mean_pool(ctx: Ctx, op: Op) -> None:
    b = ctx[0]
    x = b.cast(op.inputs[0], "i64")
    total = b.one("ReduceSum", [x, b.const([int(op.params["axis"])], "i64", "axes")], "i64",
                  keepdims=0)
    _same(ctx, op, b.round_shift_i64(total, np.asarray(int(op.params["shift"])), "floor"))


def threshold(ctx: Ctx, op: Op) -> None:
    """The count of thresholds t <= x (refq: ``threshold``) as qonnx ``MultiThreshold``.

    The thresholds are clamped into [min, max + 1] of x's declared format first (the same
    count for every x of that format), so they are exact wherever x is. qonnx executes
    MultiThreshold in NumPy and returns ``out_scale·count + out_bias`` — float64 for a
    non-float32 input — so an int64 input is given as float64 (exact below 2^53); a format
    wider than 53 bits is counted with int64 comparisons instead (named)."""
    b, prog, _, cont = ctx
    x, t = op.inputs
    fmt = prog.tensors[x].fmt
    clamped = b.one("Reshape", [b.clip_i64(t, fmt.min, fmt.max + 1),
                                b.const([1, -1], "i64", "shape")], "i64")  # exact on int64
    out = op.outputs[0]
    ofmt = prog.tensors[out].fmt
    if max(-fmt.min, fmt.max + 1) > 1 << 53:
        b.notes.append(Note(out, op.key, "int64-path", f"input {fmt.name} wider than float64's "
                                                       "exact integers: int64 comparisons"))
        ge = b.one("GreaterOrEqual", [b.one("Unsqueeze", [b.cast(x, "i64"),
                                                          b.const([-1], "i64", "axes")], "i64"),
                                      clamped], "bool")
        y = b.one("ReduceSum", [b.cast(ge, "i64"), b.const([-1], "i64", "axes")], "i64",
                  keepdims=0)
        b.finish(y, out, cont[out])
        return
    dt = "f32" if b.dtype[x] == "f32" else "f64"
    y = b.one("MultiThreshold", [b.cast(x, dt), b.cast(clamped, dt)], dt, domain=QONNX_DOMAIN,
              out_dtype=f"{'INT' if ofmt.signed else 'UINT'}{ofmt.bits}")
    b.finish(y, out, cont[out])


def lookup(ctx: Ctx, op: Op) -> None:
    b, prog, _, cont = ctx
    x, table = op.inputs
    if prog.tensors[table].shape and len(prog.tensors[table].shape) != 1:
        raise SpecError(f"qonnx export: lookup ({op.name}): only 1-D tables are translated "
                        f"(got {prog.tensors[table].shape})")
    idx = b.one("Sub", [b.cast(x, "i64"), b.const(int(op.params["offset"]), "i64", "off")], "i64")
    out = op.outputs[0]
    _same(ctx, op, b.one("Gather", [b.cast(table, cont[out]), idx], cont[out], axis=0))


def _exact_binary(ctx: Ctx, op: Op, make: Callable[[Builder, str, list[str]], str],
                  bound: int) -> None:
    """An exact integer expression in float32 when ``bound`` <= 2^24 and the output is a
    float32 container, else on int64 (named)."""
    b, _, _, cont = ctx
    out = op.outputs[0]
    dt = "f32" if cont[out] == "f32" and bound <= 1 << 24 else "i64"
    if dt == "i64" and cont[out] == "f32":
        b.notes.append(Note(out, op.key, "int64-path", f"may reach 2^{bound.bit_length()}"))
    b.finish(make(b, dt, [b.cast(i, dt) for i in op.inputs]), out, cont[out])


def shift_left(ctx: Ctx, op: Op) -> None:
    s = int(op.params["shift"])
    _exact_binary(ctx, op, lambda b, dt, xs: b.one(
        "Mul", [xs[0], b.const(1 << s, dt, "pow2")], dt), ctx[2][op.outputs[0]])


def add_exact(ctx: Ctx, op: Op) -> None:
    _exact_binary(ctx, op, lambda b, dt, xs: b.one("Add", xs, dt), ctx[2][op.outputs[0]])


def affine(ctx: Ctx, op: Op) -> None:
    _exact_binary(ctx, op, lambda b, dt, xs: b.one(
        "Add", [b.one("Mul", [xs[0], xs[1]], dt), xs[2]], dt), ctx[2][op.outputs[0]])


MOVES: dict[str, Callable[[Ctx, Op], None]] = {
    "reshape": reshape, "transpose": transpose, "split": split, "prepend": prepend,
    "patchify": patchify, "select": select, "mean_pool": mean_pool, "threshold": threshold,
    "lookup": lookup, "shift_left": shift_left, "add_exact": add_exact, "affine": affine,
}


def translate_move(ctx: Ctx, op: Op) -> None:
    fn = MOVES.get(op.key)
    if fn is None:
        raise SpecError(f"qonnx export: program op {op.key} ({op.name}) is not translated")
    fn(ctx, op)


__all__ = ["MOVES", "translate_move"]
