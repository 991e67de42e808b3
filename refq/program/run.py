"""The interpreter: execute a Program's ops in order with refq.ops kernels and the movement
ops, range-checking every tensor against its declared format, and return every named
intermediate. Integer-only: no float is touched (a test scans this module)."""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath import IntArray, IntFormat, as_int64, check_range
from refq.intmath.formats import checked_arrays
from refq.ops.registry import lookup
from refq.program.ir import Op, Program
from refq.program.movement import VALUE_PRESERVING, movement, threshold_lookup


def _check_shape(name: str, got: tuple[int, ...], declared: tuple[int, ...], op: str) -> None:
    ok = len(got) == len(declared) and all(d in (-1, g) for g, d in zip(got, declared, strict=True))
    if not ok:
        raise SpecError(f"{op}: tensor {name!r} has shape {got}, declared {declared}")


def _params(program: Program, op: Op) -> Any:
    """``op``'s kernel parameters, parsed and validated once per Program.

    Cached on ``program._params_cache`` by the op object, with a deep copy of the
    ``op.params`` it was parsed from: the entry is reused only while that op object is
    still there and its params compare equal to the copy (one C-level comparison instead of
    re-validating every per-channel tuple), so an edited op is parsed afresh.
    """
    hit = program._params_cache.get(id(op))
    if hit is not None and hit[0] is op and hit[1] == op.params:
        return hit[2]
    parsed = lookup(op.key).params_type.from_dict(op.params)
    program._params_cache[id(op)] = (op, copy.deepcopy(op.params), parsed)
    return parsed


def _execute(program: Program, op: Op, args: list[IntArray]) -> tuple[IntArray, ...]:
    if op.kind == "kernel":
        k = lookup(op.key)
        if len(args) != len(k.inputs):
            raise SpecError(
                f"op {op.name or op.key}: {len(args)} inputs, kernel takes {list(k.inputs)}"
            )
        params = _params(program, op)
        return (k.compute(dict(zip(k.inputs, args, strict=True)), params),)
    if op.kind == "move":
        return movement(op.key)(*args, **op.params)
    raise SpecError(f"op {op.name or op.key}: unknown kind {op.kind!r}")


def _within(lo: int, hi: int, fmt: IntFormat) -> bool:
    return fmt.min <= lo and hi <= fmt.max


def _proven_in_range(program: Program, op: Op, args: list[IntArray], fmt: IntFormat) -> bool:
    """Whether the op's output lies in ``fmt`` by construction, so the element-wise
    range check would always pass: a value-preserving movement op
    (:data:`refq.program.movement.VALUE_PRESERVING`) whose input's declared format fits
    ``fmt``; a kernel whose variant declares its output range (``output`` saturated,
    checked or proven — :mod:`refq.ops.registry`) in an ``out_format`` that fits ``fmt``;
    ``threshold`` (codes 0..len(thresholds)); ``lookup`` (values of its table, whose own
    range is checked here — a small array)."""
    if op.kind == "move" and op.key in VALUE_PRESERVING:
        return all(
            i not in program.consts and _within(program.tensors[i].fmt.min,
                                                program.tensors[i].fmt.max, fmt)
            for i in op.inputs
        )
    if len(op.outputs) != 1:
        return False
    if op.kind == "kernel":
        v = lookup(op.key)
        if v.output == "unchecked":
            return False
        out = v.out_format(_params(program, op))
        return isinstance(out, IntFormat) and _within(out.min, out.max, fmt)
    if op.kind == "move" and op.key == "threshold" and len(args) == 2:
        return _within(0, int(args[1].size), fmt)
    if op.kind == "move" and op.key == "lookup" and len(args) == 2 and args[1].size:
        return _within(int(args[1].min()), int(args[1].max()), fmt)
    return False


_NARROW = (np.int8, np.int16, np.int32)


def _narrow_copy(arr: IntArray) -> IntArray | npt.NDArray[np.signedinteger[Any]]:
    """A read-only copy of ``arr`` in the narrowest of int8/int16/int32 that holds its
    actual min and max (so every value converts exactly), or ``arr`` itself if none does."""
    if arr.size == 0:
        return arr
    lo, hi = int(arr.min()), int(arr.max())
    for dt in _NARROW:
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            out: npt.NDArray[np.signedinteger[Any]] = arr.astype(dt)
            out.flags.writeable = False
            return out
    return arr


def _gemm_weights(program: Program) -> dict[str, npt.NDArray[np.signedinteger[Any]]]:
    """Narrow-dtype copies of the consts used as the weight ``w`` of a ``linear`` kernel,
    made once per Program and cached on it (``Program._run_cache``).

    The values are identical (``_narrow_copy``: the dtype holds the const's own min and
    max); linear still checks them against its ``b_format`` (refq.ops.linear: skipped only
    when the dtype cannot leave it), so results and errors are those of the int64 const —
    only the per-call widening, scan and narrowing of the int64 weights are saved. A cache
    entry is reused only while ``program.consts[name]`` is the same array object, and that
    array is made read-only when cached, so it cannot change under the copy.
    """
    cache = program._run_cache
    out: dict[str, npt.NDArray[np.signedinteger[Any]]] = {}
    for op in program.ops:
        if op.kind != "kernel" or op.key.split(".")[0] != "linear" or len(op.inputs) < 2:
            continue
        name = op.inputs[1]
        src = program.consts.get(name)
        if src is None or name in out:
            continue
        hit = cache.get(name)
        if hit is None or hit[0] is not src:
            src.flags.writeable = False
            hit = (src, _narrow_copy(src))
            cache[name] = hit
        out[name] = hit[1]
    return out


def _drop_dead(env: dict[str, IntArray], program: Program, op: Op, idx: int,
               last: Mapping[str, int]) -> None:
    """Free the inputs of op ``idx`` that no later op reads (``keep="outputs"`` only)."""
    for t in op.inputs:
        if last.get(t, -1) == idx and t not in program.consts:
            env.pop(t, None)


def _fusable_threshold_lookups(program: Program, last: Mapping[str, int]) -> set[int]:
    """Indices of ``threshold`` ops whose codes are read only by the next op, a ``lookup``
    of a constant table, and are not a program output: with ``keep="outputs"`` the codes
    are never returned, so the pair runs as one :func:`threshold_lookup` gather. The
    lookup's output is still shape- and range-checked as the lookup's would be."""
    out: set[int] = set()
    ops = program.ops
    for i in range(len(ops) - 1):
        op, nxt = ops[i], ops[i + 1]
        if not (op.kind == "move" and op.key == "threshold" and nxt.kind == "move"
                and nxt.key == "lookup" and len(op.outputs) == 1 and len(op.inputs) == 2
                and len(nxt.inputs) == 2 and len(nxt.outputs) == 1):
            continue
        code = op.outputs[0]
        if (nxt.inputs[0] == code and last.get(code) == i + 1 and code not in program.outputs
                and nxt.inputs[1] in program.consts and op.inputs[1] in program.consts
                and set(nxt.params) == {"offset"}):
            out.add(i)
    return out


def run(program: Program, inputs: Mapping[str, Any], *, keep: str = "all") -> dict[str, IntArray]:
    """Run ``program`` on ``inputs`` (name → integer array).

    Returns every tensor (``keep="all"``: inputs, consts excluded, every intermediate and
    output) or only the outputs (``keep="outputs"``). Each value is checked against its
    declared IntFormat (RangeError naming the op, tensor and first bad index) and shape —
    or proven to lie in it (``_proven_in_range``) — and then noted, so that a kernel's own
    validation of that same array against a format containing it does not scan it again
    (refq.intmath.formats.checked_arrays).
    """
    missing = [n for n in program.inputs if n not in inputs]
    if missing:
        raise SpecError(f"program {program.name}: missing inputs {missing}")
    env: dict[str, IntArray] = {}
    with checked_arrays() as checked:
        for name in program.inputs:
            decl = program.tensors[name]
            arr = check_range(as_int64(inputs[name], name), decl.fmt, name, "input")
            _check_shape(name, arr.shape, decl.shape, "input")
            env[name] = arr
            checked.note(arr, decl.fmt)
        env.update(program.consts)
        weights = _gemm_weights(program)
        skip = -1
        last: dict[str, int] = {}
        if keep == "outputs":  # free each intermediate after its last use (peak memory)
            for i, op in enumerate(program.ops):
                for t in op.inputs:
                    last[t] = i
            for t in program.outputs:
                last[t] = len(program.ops)
        fused: set[int] = _fusable_threshold_lookups(program, last) if keep == "outputs" else set()
        for idx, op in enumerate(program.ops):
            if idx == skip:  # the lookup already computed with its threshold (see below)
                _drop_dead(env, program, op, idx, last)
                continue
            label = f"{op.key} ({op.name})" if op.name else op.key
            try:
                args = [env[i] for i in op.inputs]
                outs: tuple[IntArray, ...] | None = None
                if idx in fused:  # threshold whose codes only the next op, a lookup, reads
                    nxt = program.ops[idx + 1]
                    table = env[nxt.inputs[1]]
                    value = threshold_lookup(args[0], args[1], table, offset=nxt.params["offset"])
                    if value is not None:  # from here on: the lookup's output, checked as such
                        skip = idx + 1
                        op, args, outs = nxt, [value, table], (value,)
                        label = f"{op.key} ({op.name})" if op.name else op.key
                narrow_w = op.kind == "kernel" and len(args) > 1 and op.inputs[1] in weights
                if outs is None and narrow_w:
                    outs = _execute(program, op, [args[0], weights[op.inputs[1]], *args[2:]])
                elif outs is None:
                    outs = _execute(program, op, args)
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
                if not _proven_in_range(program, op, args, decl.fmt):
                    check_range(arr, decl.fmt, name, label)
                env[name] = arr
                checked.note(arr, decl.fmt)  # kernels reading it skip their own scan
            _drop_dead(env, program, program.ops[idx], idx, last)
    if keep == "outputs":
        return {n: env[n] for n in program.outputs}
    return {n: v for n, v in env.items() if n not in program.consts}


__all__ = ["run"]
