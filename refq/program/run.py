"""The interpreter: execute a Program's ops in order with refq.ops kernels and the movement
ops, range-checking every tensor against its declared format, and return every named
intermediate. Integer-only: no float is touched (a test scans this module)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import IntArray, IntFormat, as_int64, check_range
from refq.ops.table import kernel
from refq.program.ir import Op, Program
from refq.program.movement import movement


def _check_shape(name: str, got: tuple[int, ...], declared: tuple[int, ...], op: str) -> None:
    ok = len(got) == len(declared) and all(d in (-1, g) for g, d in zip(got, declared, strict=True))
    if not ok:
        raise SpecError(f"{op}: tensor {name!r} has shape {got}, declared {declared}")


_SATURATING = ("requantize", "add")
"""Kernel families whose output is saturated to ``params.out_format`` (refq.ops docs)."""


def _execute(op: Op, args: list[IntArray]) -> tuple[IntArray, ...]:
    if op.kind == "kernel":
        k = kernel(op.key)
        if len(args) != len(k.inputs):
            raise SpecError(
                f"op {op.name or op.key}: {len(args)} inputs, kernel takes {list(k.inputs)}"
            )
        params = k.params_type.from_dict(op.params)
        return (k.compute(dict(zip(k.inputs, args, strict=True)), params),)
    if op.kind == "move":
        return movement(op.key)(*args, **op.params)
    raise SpecError(f"op {op.name or op.key}: unknown kind {op.kind!r}")


def _within(lo: int, hi: int, fmt: IntFormat) -> bool:
    return fmt.min <= lo and hi <= fmt.max


def _proven_in_range(op: Op, args: list[IntArray], fmt: IntFormat) -> bool:
    """Whether the op's single output lies in ``fmt`` by construction, so the element-wise
    range check would always pass: a saturating kernel whose ``out_format`` fits ``fmt``;
    ``threshold`` (codes 0..len(thresholds)); ``lookup`` (values of its table, whose own
    range is checked here — a small array)."""
    if len(op.outputs) != 1:
        return False
    if op.kind == "kernel" and op.key.split(".")[0] in _SATURATING:
        out = getattr(kernel(op.key).params_type.from_dict(op.params), "out_format", None)
        return isinstance(out, IntFormat) and _within(out.min, out.max, fmt)
    if op.kind == "move" and op.key == "threshold" and len(args) == 2:
        return _within(0, int(args[1].size), fmt)
    if op.kind == "move" and op.key == "lookup" and len(args) == 2 and args[1].size:
        return _within(int(args[1].min()), int(args[1].max()), fmt)
    return False


def run(program: Program, inputs: Mapping[str, Any], *, keep: str = "all") -> dict[str, IntArray]:
    """Run ``program`` on ``inputs`` (name → integer array).

    Returns every tensor (``keep="all"``: inputs, consts excluded, every intermediate and
    output) or only the outputs (``keep="outputs"``). Each value is checked against its
    declared IntFormat (RangeError naming the op, tensor and first bad index) and shape.
    """
    missing = [n for n in program.inputs if n not in inputs]
    if missing:
        raise SpecError(f"program {program.name}: missing inputs {missing}")
    env: dict[str, IntArray] = {}
    for name in program.inputs:
        decl = program.tensors[name]
        arr = check_range(as_int64(inputs[name], name), decl.fmt, name, "input")
        _check_shape(name, arr.shape, decl.shape, "input")
        env[name] = arr
    env.update(program.consts)
    last: dict[str, int] = {}
    if keep == "outputs":  # free each intermediate after its last use (peak memory)
        for i, op in enumerate(program.ops):
            for t in op.inputs:
                last[t] = i
        for t in program.outputs:
            last[t] = len(program.ops)
    for idx, op in enumerate(program.ops):
        label = f"{op.key} ({op.name})" if op.name else op.key
        try:
            args = [env[i] for i in op.inputs]
            outs = _execute(op, args)
        except KeyError as exc:
            raise SpecError(f"op {label}: input {exc} is not defined") from None
        except RangeError as exc:
            raise RangeError(f"op {label}: {exc}") from None
        if len(outs) != len(op.outputs):
            raise SpecError(f"op {label}: produced {len(outs)} outputs, declared {op.outputs}")
        for name, value in zip(op.outputs, outs, strict=True):
            decl = program.tensors[name]
            arr = np.asarray(value, dtype=np.int64)
            _check_shape(name, arr.shape, decl.shape, label)
            if not _proven_in_range(op, args, decl.fmt):
                check_range(arr, decl.fmt, name, label)
            env[name] = arr
        for t in op.inputs:
            if last.get(t, -1) == idx and t not in program.consts:
                env.pop(t, None)
    if keep == "outputs":
        return {n: env[n] for n in program.outputs}
    return {n: v for n, v in env.items() if n not in program.consts}


__all__ = ["run"]
