"""What the plan builders know about a program before it runs: its declarations, consts and
parsed params (:class:`PlanContext`), and the range proofs of op outputs that follow from
them (:func:`static_proof`) or from a non-constant argument (:func:`runtime_proof`)."""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.intmath import IntFormat
from refq.ops.registry import lookup
from refq.program.carriers import within
from refq.program.ir import Op, Program, TensorDecl
from refq.program.movement import VALUE_PRESERVING


class PlanContext:
    """What stage builders may read about a program at plan time."""

    def __init__(self, program: Program, carriers: dict[str, np.dtype[Any]]) -> None:
        self.program = program
        self.carriers = carriers
        self._params: dict[int, Any] = {}

    def decl(self, name: str) -> TensorDecl | None:
        return self.program.tensors.get(name)

    def const(self, name: str) -> Any:
        """The const array ``name`` (read-only), or None when it is no const."""
        return self.program.consts.get(name)

    def params(self, idx: int) -> Any:
        """Parsed params of kernel op ``idx`` (None: they do not parse, or no kernel)."""
        if idx not in self._params:
            op = self.program.ops[idx]
            try:
                self._params[idx] = lookup(op.key).params_type.from_dict(op.params)
            except Exception:
                self._params[idx] = None
        return self._params[idx]


def static_proof(ctx: PlanContext, idx: int, op: Op, fmt: IntFormat) -> bool | None:
    """Whether op ``idx``'s (single) output lies in ``fmt`` by construction: True / False,
    or None when only the argument values can tell (a non-constant table or thresholds).

    A value-preserving movement op whose inputs' declared formats fit ``fmt``; a kernel
    whose variant declares its output range (``output`` saturated, checked or proven —
    :mod:`refq.ops.registry`) in an ``out_format`` that fits ``fmt``; ``threshold`` (codes
    0..len(thresholds)); ``lookup`` (values of its constant table)."""
    program = ctx.program
    if op.kind == "move" and op.key in VALUE_PRESERVING:
        return all(
            i not in program.consts and i in program.tensors
            and within(program.tensors[i].fmt.min, program.tensors[i].fmt.max, fmt)
            for i in op.inputs
        )
    if len(op.outputs) != 1:
        return False
    if op.kind == "kernel":
        params = ctx.params(idx)
        if params is None:
            return False
        v = lookup(op.key)
        if v.output == "unchecked":
            return False
        try:
            out = v.out_format(params)
        except Exception:
            return False
        return isinstance(out, IntFormat) and within(out.min, out.max, fmt)
    if op.kind == "move" and op.key in ("threshold", "lookup") and len(op.inputs) == 2:
        arg = ctx.const(op.inputs[1])
        if arg is None:
            return None
        if op.key == "threshold":
            return within(0, int(arg.size), fmt)
        return bool(arg.size) and within(int(arg.min()), int(arg.max()), fmt)
    return False


def runtime_proof(op: Op, args: list[Any], fmt: IntFormat) -> bool:
    """:func:`static_proof` for the ops whose proof reads a non-constant argument."""
    if op.key == "threshold" and len(args) == 2:
        return within(0, int(args[1].size), fmt)
    if op.key == "lookup" and len(args) == 2 and args[1].size:
        return within(int(args[1].min()), int(args[1].max()), fmt)
    return False


__all__ = ["PlanContext", "runtime_proof", "static_proof"]
