"""The interpreter's execution plan: everything about a Program that does not depend on the
input values, computed once and reused by every :func:`refq.program.run` call.

A plan holds, per program and ``keep`` mode:

- each tensor's carrier dtype (:mod:`refq.program.carriers`);
- each kernel op's parsed and validated params;
- the range proofs of op outputs that need no input values (``proven``: the output lies in
  its declared format by construction — a saturating or checking kernel whose output
  format fits the declaration, a value-preserving movement op, a table lookup whose
  constant table fits, thresholds counting into a wide enough code);
- liveness (the last op reading each tensor, for ``keep="outputs"``);
- the steps: plain :class:`~refq.program.steps.OpStep` s, and — where an op's result is
  read by the next op only and never returned (``keep="outputs"``) — fused
  :class:`~refq.program.steps.ChainStep` s that run such runs of ops on row blocks
  (:mod:`refq.program.stages`). Every op with a fast stage runs as a chain of one op too
  (in either mode): its row blocks are computed in cache and stored in the carrier.

Plans are cached per Program object and thread (a plan's steps own reusable block
buffers) and rebuilt when the program changes: its op list,
each op's params (compared with a copy taken when the plan was made), its tensor
declarations, inputs, outputs or const arrays (by identity; const arrays are made
read-only when a plan is built, so that they cannot change under the plan's derived
copies). Caches live here, not on the Program.
"""

from __future__ import annotations

import copy
import threading
import weakref
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from refq.intmath import IntFormat
from refq.ops.registry import lookup
from refq.program.carriers import carrier, within
from refq.program.chains import chain_steps
from refq.program.context import PlanContext, runtime_proof, static_proof
from refq.program.ir import Op, Program, TensorDecl
from refq.program.movement import VALUE_PRESERVING
from refq.program.steps import ChainStep, OpStep, Step, op_runner

BLOCK_ELEMS = 1 << 16
"""Elements per row block of a fused chain (rows x channels): the block, its int64
temporaries and the next op's stay in the L2 cache."""


@dataclass
class Plan:
    """The steps of one Program in one ``keep`` mode, and what they were derived from."""

    keep: str
    steps: list[Step]
    drops: list[tuple[str, ...]]
    """Per step: the tensors no later step reads (freed after it; ``keep="outputs"``)."""
    carriers: dict[str, np.dtype[Any]]
    consts: dict[str, Any]
    noted_consts: list[tuple[Any, IntFormat]]
    """Consts verified (plan time) within their declared format: noted on every run."""
    stats: dict[str, int] = field(default_factory=dict)

    def declined(self) -> int:
        """How many times a chain of this plan gave up and ran its plain steps."""
        return sum(s.declined for s in self.steps if isinstance(s, ChainStep))


def _kernel_runner(op: Op) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The plain runner of a kernel op, with params parsed once; a lookup or parse error
    is raised when the op runs (as the interpreter always did), not when planning."""
    try:
        variant = lookup(op.key)
        params = variant.params_type.from_dict(op.params)
    except Exception as exc:
        error = exc

        def fail(args: list[Any]) -> tuple[Any, ...]:
            raise error

        return fail
    return op_runner(op, variant, params)


def _op_step(ctx: PlanContext, idx: int, op: Op) -> OpStep:
    program = ctx.program
    decls = []
    for name in op.outputs:
        d = program.tensors.get(name)
        if d is None:
            raise _Undeclared(name)
        decls.append((name, d.shape, d.fmt, ctx.carriers[name]))
    proven: list[bool | None] = [
        static_proof(ctx, idx, op, d[2]) if len(op.outputs) == 1 or op.key in VALUE_PRESERVING
        else False for d in decls
    ]
    in_fmts = [None if i in program.consts or i not in program.tensors
               else program.tensors[i].fmt for i in op.inputs]
    runner = _kernel_runner(op) if op.kind == "kernel" else op_runner(op, None, None)
    return OpStep(idx, op, runner, decls, proven, in_fmts)


class _Undeclared(Exception):
    """An op output without a declaration (the plan runs the ops up to it, then fails)."""


def _fail_step(idx: int, name: str) -> Step:
    class Missing:
        ops: tuple[int, ...] = (idx,)
        declined = 0

        def __call__(self, env: Any, checked: Any) -> None:
            raise KeyError(name)

    return Missing()


def build(program: Program, keep: str) -> Plan:
    """The plan of ``program`` for ``keep`` (module docstring)."""
    carriers = {n: carrier(d.fmt) for n, d in program.tensors.items()}
    ctx = PlanContext(program, carriers)
    plain: list[Step] = []
    for idx, op in enumerate(program.ops):
        try:
            plain.append(_op_step(ctx, idx, op))
        except _Undeclared as exc:
            plain.append(_fail_step(idx, str(exc)))
    last: dict[str, int] = {}
    if keep == "outputs":
        for i, op in enumerate(program.ops):
            for t in op.inputs:
                last[t] = i
        for t in program.outputs:
            last[t] = len(program.ops)
    steps = chain_steps(ctx, plain, last, fuse=keep == "outputs", block_elems=BLOCK_ELEMS)
    drops: list[tuple[str, ...]] = []
    for step in steps:
        end = step.ops[-1]
        dead = []
        if keep == "outputs":
            for i in step.ops:
                for t in program.ops[i].inputs:
                    if last.get(t, -1) <= end and t not in program.consts and t not in dead:
                        dead.append(t)
        drops.append(tuple(dead))
    noted = []
    for name, arr in program.consts.items():
        arr.flags.writeable = False  # derived copies (narrow weights, tables) stay valid
        d = program.tensors.get(name)
        if d is not None and (arr.size == 0 or within(int(arr.min()), int(arr.max()), d.fmt)):
            noted.append((arr, d.fmt))
    return Plan(keep, steps, drops, carriers, dict(program.consts), noted)


# --- the cache -------------------------------------------------------------------------------


@dataclass
class _Snapshot:
    ops: list[Op]
    params: list[dict[str, Any]]
    tensors: list[tuple[str, TensorDecl]]
    consts: list[tuple[str, Any]]
    inputs: list[str]
    outputs: list[str]

    @classmethod
    def of(cls, p: Program) -> _Snapshot:
        return cls(list(p.ops), [copy.deepcopy(op.params) for op in p.ops],
                   list(p.tensors.items()), list(p.consts.items()), list(p.inputs),
                   list(p.outputs))

    def matches(self, p: Program) -> bool:
        if (len(p.ops) != len(self.ops) or len(p.tensors) != len(self.tensors)
                or len(p.consts) != len(self.consts) or p.inputs != self.inputs
                or p.outputs != self.outputs):
            return False
        if any(a is not b for a, b in zip(p.ops, self.ops, strict=True)):
            return False
        if any(a is not b[1] or a is None for a, b in
               zip((p.tensors.get(n) for n, _ in self.tensors), self.tensors, strict=True)):
            return False
        if any(p.consts.get(n) is not a for n, a in self.consts):
            return False
        return all(op.params == snap for op, snap in zip(p.ops, self.params, strict=True))


class _Plans(threading.local):
    """This thread's plans: a plan's steps own reusable block buffers, so two threads
    running the same Program each run their own plan."""

    def __init__(self) -> None:
        self.cache: dict[int, tuple[weakref.ref[Program], _Snapshot, dict[str, Plan]]] = {}


_PLANS = _Plans()


def plan_for(program: Program, keep: str) -> Plan:
    """The cached plan of ``program`` for ``keep`` (this thread's), rebuilt when the program
    changed."""
    cache = _PLANS.cache
    key = id(program)
    hit = cache.get(key)
    if hit is not None and hit[0]() is program and hit[1].matches(program):
        plans = hit[2]
    else:
        def gone(ref: weakref.ref[Program], key: int = key) -> None:
            entry = cache.get(key)
            if entry is not None and entry[0] is ref:
                del cache[key]

        plans = {}
        cache[key] = (weakref.ref(program, gone), _Snapshot.of(program), plans)
    plan = plans.get(keep)
    if plan is None:
        plan = plans[keep] = build(program, keep)
    return plan


__all__ = ["BLOCK_ELEMS", "Plan", "PlanContext", "build", "plan_for", "runtime_proof",
           "static_proof"]
