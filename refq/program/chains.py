"""Grouping a Program's ops into the steps of a plan: fused chains where they apply, plain
ops everywhere else (see :mod:`refq.program.plan`).

A chain starts at an op that has a fast form — a GEMM source (:data:`stages.SOURCES`) or a
stage reading a tensor of the environment — and, with ``fuse`` (``keep="outputs"``),
takes in the next op as long as that op is the only reader of the chain's current output,
reads it once, that output is no program output, and the op has a stage on that input. A
``threshold`` whose codes only the next ``lookup`` reads joins it as one stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refq.program.context import PlanContext
from refq.program.ir import Op
from refq.program.move_stages import threshold_lookup_stage
from refq.program.sources import EnvSource, source_for
from refq.program.stages import stage_for
from refq.program.steps import ChainStep, OpStep, Stage, Step


def _pair(ctx: PlanContext, i: int, ops: list[Op], last: Mapping[str, int],
          main: int) -> Stage | None:
    """A threshold at ``i`` (fed on input 0) whose codes only the lookup at ``i + 1`` reads."""
    if i + 1 >= len(ops) or main != 0:
        return None
    thr, lut = ops[i], ops[i + 1]
    if not (thr.kind == "move" and thr.key == "threshold" and lut.kind == "move"
            and lut.key == "lookup" and len(thr.outputs) == 1 and len(lut.inputs) == 2):
        return None
    code = thr.outputs[0]
    if lut.inputs[0] != code or lut.inputs[1] == code or last.get(code) != i + 1 \
            or code in ctx.program.outputs:
        return None
    return threshold_lookup_stage(ctx, thr, lut)


def _stage(ctx: PlanContext, i: int, ops: list[Op], last: Mapping[str, int], main: int,
           fuse: bool) -> tuple[Stage, int] | None:
    """The stage of op ``i`` fed on input ``main`` and the last op it covers."""
    if fuse:
        pair = _pair(ctx, i, ops, last, main)
        if pair is not None:
            return pair, i + 1
    stage = stage_for(ctx, i, ops[i], main)
    return None if stage is None else (stage, i)


def chain_steps(ctx: PlanContext, plain: list[Step], last: Mapping[str, int], *, fuse: bool,
                block_elems: int) -> list[Step]:
    """The steps of the program: :class:`ChainStep` s and the ``plain`` steps of the other
    ops, in program order."""
    program = ctx.program
    ops = program.ops
    steps: list[Step] = []
    i = 0
    while i < len(ops):
        op = ops[i]
        if not isinstance(plain[i], OpStep) or any(
                o not in program.tensors for o in op.outputs):
            steps.append(plain[i])
            i += 1
            continue
        source: Any = source_for(ctx, i, op)
        stages: list[Stage] = []
        j = i
        if source is None and op.inputs and len(op.outputs) == 1:
            first = _stage(ctx, i, ops, last, 0, fuse)
            if first is not None:
                source = EnvSource(op.inputs[0])
                stages.append(first[0])
                j = first[1]
        if source is None:
            steps.append(plain[i])
            i += 1
            continue
        while fuse and j + 1 < len(ops) and len(ops[j].outputs) == 1:
            out = ops[j].outputs[0]
            nxt = ops[j + 1]
            if out in program.outputs or last.get(out) != j + 1:
                break
            positions = [p for p, t in enumerate(nxt.inputs) if t == out]
            if len(positions) != 1 or len(nxt.outputs) != 1 or any(
                    o not in program.tensors for o in nxt.outputs):
                break
            got = _stage(ctx, j + 1, ops, last, positions[0], fuse)
            if got is None:
                break
            stages.append(got[0])
            j = got[1]
        final = ops[j].outputs[0]
        decl = program.tensors[final]
        shapes = tuple(program.tensors[o].shape for k in range(i, j + 1)
                       for o in ops[k].outputs)
        fallback = [s for s in plain[i : j + 1] if isinstance(s, OpStep)]
        steps.append(ChainStep(tuple(range(i, j + 1)), source, stages,
                               (final, shapes, decl.fmt, ctx.carriers[final]), fallback,
                               block_elems))
        i = j + 1
    return steps


__all__ = ["chain_steps"]
