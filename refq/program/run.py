"""The interpreter: execute a Program's ops in order with refq.ops kernels and the movement
ops, range-checking every tensor against its declared format, and return every named
intermediate. Integer-only: no float is touched (a test scans this module and the plan's).

The work is split as ONNX's reference evaluator splits ``run`` from ``_run``: a plan
(:mod:`refq.program.plan`, made once per program and cached) holds everything that does
not depend on the input values — carriers, parsed params, range proofs, liveness, fused
chains — and running is a plain loop over its steps.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import IntArray, as_int64, check_range
from refq.intmath.formats import check_bounds, checked_arrays
from refq.program.carriers import to_carrier, widen
from refq.program.ir import Program
from refq.program.plan import Plan, plan_for
from refq.program.steps import check_shape


def _input(value: Any, name: str, plan: Plan, program: Program) -> Any:
    """A program input checked against its declaration and stored in its carrier."""
    decl = program.tensors[name]
    arr = np.asarray(value) if isinstance(value, np.ndarray) else None
    if arr is not None and arr.dtype.kind in "iu" and arr.dtype != np.uint64:
        check_bounds(arr, decl.fmt, name, "input")  # any integer dtype, no widening copy
    else:
        arr = check_range(as_int64(value, name), decl.fmt, name, "input")
    check_shape(name, arr.shape, decl.shape, "input")
    return to_carrier(arr, plan.carriers[name])


def _at(program: Program, ops: tuple[int, ...]) -> str:
    """``<file>: at $.ops[i]: `` (a fused chain: ``$.ops[i..j]``) for a program read from a
    file."""
    where = f"{ops[0]}" if len(ops) == 1 else f"{ops[0]}..{ops[-1]}"
    return f"{program.source}: at $.ops[{where}]: "


def run(program: Program, inputs: Mapping[str, Any], *, keep: str = "all") -> dict[str, IntArray]:
    """Run ``program`` on ``inputs`` (name → integer array).

    Returns every tensor (``keep="all"``: inputs, consts excluded, every intermediate and
    output) or only the outputs (``keep="outputs"``), each as an int64 array. Each value is
    checked against its declared IntFormat (RangeError naming the op, tensor and first bad
    index) and shape — or proven to lie in it (:func:`refq.program.plan.static_proof`) —
    and then noted, so that a kernel's own validation of that same array against a format
    containing it does not scan it again (refq.intmath.formats.checked_arrays). Inside,
    tensors are held in their carrier dtypes (:mod:`refq.program.carriers`).
    """
    missing = [n for n in program.inputs if n not in inputs]
    if missing:
        raise SpecError(f"program {program.name}: missing inputs {missing}")
    mode = "outputs" if keep == "outputs" else "all"
    plan = plan_for(program, mode)
    env: dict[str, Any] = {}
    with checked_arrays() as checked:
        for name in program.inputs:
            env[name] = arr = _input(inputs[name], name, plan, program)
            checked.note(arr, program.tensors[name].fmt)
        env.update(plan.consts)
        for arr, fmt in plan.noted_consts:
            checked.note(arr, fmt)
        for step, dead in zip(plan.steps, plan.drops, strict=True):
            try:
                step(env, checked)
            except (SpecError, RangeError) as exc:
                if not program.source:
                    raise
                raise type(exc)(f"{_at(program, step.ops)}{exc}") from None
            for t in dead:
                env.pop(t, None)
    if mode == "outputs":
        return {n: widen(env[n]) for n in program.outputs}
    return {n: widen(v) for n, v in env.items() if n not in program.consts}


__all__ = ["run"]
