"""Proven magnitude bounds of a program's tensors: the facts that decide where the QONNX
export may compute in float (graph.py) and where it must stay on int64.

bound(t) >= max |t| for every input of the declared formats: a tensor's declared format
(its range is checked by refq.program.run), tightened for GEMM accumulators (K·max|a - za|
·max|w - zw| + max|bias|, the weights' own values when they are constants), exact adds and
affine steps; a constant's bound is its own largest magnitude.
"""

from __future__ import annotations

from refq.intmath import IntFormat
from refq.program.ir import Op, Program


def fmt_bound(fmt: IntFormat) -> int:
    return max(-fmt.min, fmt.max)


def _const_or_fmt(program: Program, name: str, bounds: dict[str, int], zp: int = 0) -> int:
    """max |t - zp| over a constant's values, else over its declared format."""
    if name in program.consts:
        v = program.consts[name]
        return max(abs(int(v.min()) - zp), abs(int(v.max()) - zp)) if v.size else 0
    fmt = program.tensors[name].fmt
    widest = max(abs(fmt.min - zp), abs(fmt.max - zp))
    return min(widest, bounds.get(name, fmt_bound(fmt)) + abs(zp))


def _gemm_bound(program: Program, op: Op, bounds: dict[str, int]) -> int | None:
    p = op.params
    a, b = op.inputs[0], op.inputs[1]
    za, zb = int(p.get("a_zero_point", 0)), int(p.get("b_zero_point", 0))
    ba = _const_or_fmt(program, a, bounds, za)
    bb = _const_or_fmt(program, b, bounds, zb)
    shape = program.tensors[b].shape
    k = shape[1] if op.key.startswith("linear") else shape[-2]
    if k < 0:
        return None
    total = k * ba * bb
    if len(op.inputs) > 2:
        total += _const_or_fmt(program, op.inputs[2], bounds)
    return total


def tensor_bounds(program: Program) -> dict[str, int]:
    """bound(t) for every tensor of ``program`` (module docstring)."""
    bounds: dict[str, int] = {}
    for name, decl in program.tensors.items():
        if name in program.consts:
            v = program.consts[name]
            bounds[name] = max(-int(v.min()), int(v.max())) if v.size else 0
        else:
            bounds[name] = fmt_bound(decl.fmt)
    for op in program.ops:
        derived = _derived(program, op, bounds)
        if derived is None:
            continue
        for o in op.outputs:
            bounds[o] = min(bounds[o], derived)
    return bounds


def _derived(program: Program, op: Op, bounds: dict[str, int]) -> int | None:
    ins = [bounds[i] for i in op.inputs]
    if op.kind == "kernel" and op.key in ("linear.gemm", "matmul.gemm"):
        if op.params.get("requant") is not None:
            return None
        return _gemm_bound(program, op, bounds)
    if op.kind != "move":
        return None
    if op.key in ("reshape", "transpose", "split", "select", "patchify"):
        return ins[0]
    if op.key == "prepend":
        return max(ins)
    if op.key == "add_exact":
        return ins[0] + ins[1]
    if op.key == "affine":
        return ins[0] * ins[1] + ins[2]
    if op.key == "shift_left":
        return ins[0] << int(op.params["shift"])
    return None


def accumulator_bound(program: Program, op: Op, bounds: dict[str, int]) -> int:
    """bound of a GEMM op's accumulator (before its optional requantization)."""
    b = _gemm_bound(program, op, bounds)
    acc = IntFormat(int(op.params.get("acc_bits", 32)), True)
    return fmt_bound(acc) if b is None else min(b, fmt_bound(acc))


__all__ = ["accumulator_bound", "fmt_bound", "tensor_bounds"]
