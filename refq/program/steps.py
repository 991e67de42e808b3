"""The steps of an execution plan (:mod:`refq.program.plan`): one op run by its kernel or
movement function (:class:`OpStep`, the plain path), or a chain of ops run together on
cache-sized row blocks (:class:`ChainStep`, the fused path).

Both keep the interpreter's contract: every output is shape-checked and range-checked
against its declared format (or proven to lie in it), and an error names the op, the
tensor and the first bad index. A chain only ever produces the plain path's integers: each
stage checks (or has proven at plan time) everything the plain ops check, and on any doubt
(a check that fails, a shape it does not handle) it gives up and the plain steps of its
ops run instead — so values and errors are those of the plain path by construction.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath import IntFormat, check_bounds
from refq.intmath.formats import CheckedArrays
from refq.program.carriers import to_carrier, widen
from refq.program.context import runtime_proof
from refq.program.ir import Op
from refq.program.movement import movement

Env = dict[str, Any]
"""Tensor name → its array in its carrier dtype (consts: their int64 arrays)."""

DTYPE_FREE = frozenset({"reshape", "transpose", "split", "prepend", "patchify", "select"})
"""Movement ops that work on any integer dtype unchanged (pure data movement)."""


class Decline(Exception):
    """A fused stage cannot vouch for its result: run the plain steps instead."""


def label(op: Op) -> str:
    return f"{op.key} ({op.name})" if op.name else op.key


def check_shape(name: str, got: tuple[int, ...], declared: tuple[int, ...], op: str) -> None:
    ok = len(got) == len(declared) and all(d in (-1, g) for g, d in zip(got, declared, strict=True))
    if not ok:
        raise SpecError(f"{op}: tensor {name!r} has shape {got}, declared {declared}")


def shape_ok(got: tuple[int, ...], declared: tuple[int, ...]) -> bool:
    return len(got) == len(declared) and all(
        d in (-1, g) for g, d in zip(got, declared, strict=True))


class Step(Protocol):
    ops: tuple[int, ...]
    """Indices of the program ops this step runs."""

    def __call__(self, env: Env, checked: CheckedArrays) -> None: ...


class OpStep:
    """One op by its kernel (inputs widened to int64, as the kernels take them) or its
    movement function (data movement on the carriers themselves), outputs checked against
    their declared formats unless ``proven`` (plan time, per output), then stored in
    their carriers."""

    def __init__(
        self,
        idx: int,
        op: Op,
        run_op: Callable[[list[Any]], tuple[Any, ...]],
        decls: list[tuple[str, tuple[int, ...], IntFormat, np.dtype[Any]]],
        proven: list[bool | None],
        in_fmts: list[IntFormat | None],
    ) -> None:
        self.ops: tuple[int, ...] = (idx,)
        self.op = op
        self.label = label(op)
        self.run_op = run_op
        self.decls = decls
        self.proven = proven
        self.in_fmts = in_fmts
        self.dtype_free = op.kind == "move" and op.key in DTYPE_FREE

    def __call__(self, env: Env, checked: CheckedArrays) -> None:
        op = self.op
        try:
            args = [env[i] for i in op.inputs]
        except KeyError as exc:
            raise SpecError(f"op {self.label}: input {exc} is not defined") from None
        if not self.dtype_free:
            wide = [widen(a) for a in args]
            for a, w, fmt in zip(args, wide, self.in_fmts, strict=True):
                if w is not a and fmt is not None:
                    checked.note(w, fmt)  # kernels reading it skip their own scan
            args = wide
        try:
            outs = self.run_op(args)
        except KeyError as exc:
            raise SpecError(f"op {self.label}: input {exc} is not defined") from None
        except RangeError as exc:
            raise RangeError(f"op {self.label}: {exc}") from None
        except (ValueError, IndexError, TypeError) as exc:
            if op.kind != "move":
                raise
            raise SpecError(f"op {self.label}: {exc}") from None  # NumPy on a hand-built op
        if len(outs) != len(op.outputs):
            raise SpecError(
                f"op {self.label}: produced {len(outs)} outputs, declared {op.outputs}")
        for (name, shape, fmt, dt), proven, value in zip(self.decls, self.proven, outs,
                                                        strict=True):
            arr = np.asarray(value)
            if arr.dtype.kind not in "iu" or arr.dtype == np.uint64:
                arr = np.asarray(value, dtype=np.int64)
            check_shape(name, arr.shape, shape, self.label)
            if not (proven or (proven is None and self._proven_now(args))):
                check_bounds(arr, fmt, name, self.label)
            env[name] = stored = to_carrier(arr, dt)
            checked.note(stored, fmt)

    def _proven_now(self, args: list[Any]) -> bool:
        """Proofs that need the argument values (a non-constant table or thresholds)."""
        return runtime_proof(self.op, args, self.decls[0][2])


def op_runner(op: Op, variant: Any, params: Any) -> Callable[[list[Any]], tuple[Any, ...]]:
    """The plain computation of ``op``: its kernel on named inputs, or its movement op."""
    if op.kind == "kernel":
        n_in = len(variant.inputs)

        def run_kernel(args: list[Any]) -> tuple[Any, ...]:
            if len(args) != n_in:
                raise SpecError(
                    f"op {op.name or op.key}: {len(args)} inputs, kernel takes "
                    f"{list(variant.inputs)}")
            return (variant.compute(dict(zip(variant.inputs, args, strict=True)), params),)

        return run_kernel
    if op.kind == "move":
        fn = movement(op.key)
        kw = op.params

        def run_move(args: list[Any]) -> tuple[Any, ...]:
            return fn(*args, **kw)

        return run_move

    def unknown(args: list[Any]) -> tuple[Any, ...]:
        raise SpecError(f"op {op.name or op.key}: unknown kind {op.kind!r}")

    return unknown


# --- chains --------------------------------------------------------------------------------


class Source(Protocol):
    """Where a chain's row blocks come from: a tensor of the environment, or a GEMM."""

    def prepare(self, env: Env) -> tuple[int, ...]:
        """Validate the inputs and return the full output shape (lead..., C); Decline."""
        ...

    def blocks(self, env: Env, rows: int) -> Iterator[tuple[int, int, npt.NDArray[Any]]]:
        """(r0, r1, block) over the rows of the output flattened to (R, C)."""
        ...


class Stage(Protocol):
    """One op applied to a row block: ``(block, r0, r1, env) -> block`` of the same rows.
    The result lies in the op's declared output format (checked here or proven at plan
    time); raise Decline (or let a RangeError through) when it cannot be vouched for."""

    def prepare(self, env: Env, shape: tuple[int, ...]) -> None: ...

    def __call__(self, block: npt.NDArray[Any], r0: int, r1: int,
                 env: Env) -> npt.NDArray[Any]: ...


class ChainStep:
    """Ops ``ops`` run as one pass over row blocks of about ``block_elems`` elements: the
    source yields blocks, every stage maps a block to the next op's, and the last one is
    stored in the final output's carrier. Only the final output is materialised (its
    intermediates are read by no one else: plan time). On Decline, RangeError or SpecError
    the ``fallback`` steps (the plain path of the same ops) run instead."""

    def __init__(
        self,
        ops: tuple[int, ...],
        source: Source,
        stages: list[Stage],
        out: tuple[str, tuple[tuple[int, ...], ...], IntFormat, np.dtype[Any]],
        fallback: list[OpStep],
        block_elems: int,
    ) -> None:
        self.ops = ops
        self.source = source
        self.stages = stages
        self.out_name, self.shapes, self.out_fmt, self.out_dtype = out
        self.fallback = fallback
        self.block_elems = block_elems
        self.declined = 0

    def __call__(self, env: Env, checked: CheckedArrays) -> None:
        try:
            out = self._fused(env)
        except (Decline, RangeError, SpecError, KeyError):
            out = None
        if out is None:
            self.declined += 1
            for step in self.fallback:
                step(env, checked)
            return
        env[self.out_name] = out
        checked.note(out, self.out_fmt)

    def _fused(self, env: Env) -> npt.NDArray[Any] | None:
        shape = self.source.prepare(env)
        if any(not shape_ok(shape, s) for s in self.shapes) or 0 in shape or not shape:
            return None
        for stage in self.stages:
            stage.prepare(env, shape)
        c = shape[-1]
        out = np.empty(shape, dtype=self.out_dtype)
        o2 = out.reshape(-1, c)
        rows = max(1, self.block_elems // c)
        for r0, r1, blk in self.source.blocks(env, rows):
            for stage in self.stages:
                blk = stage(blk, r0, r1, env)
            np.copyto(o2[r0:r1], blk, casting="unsafe")  # within the output's format
        return out


def env_rows(env: Env, name: str, c: int) -> npt.NDArray[Any]:
    """The tensor ``name`` as a 2-D (R, C) array (a view where its layout allows)."""
    arr: npt.NDArray[Any] = env[name]
    return arr.reshape(-1, c)


__all__ = [
    "DTYPE_FREE",
    "ChainStep",
    "Decline",
    "Env",
    "OpStep",
    "Source",
    "Stage",
    "Step",
    "check_shape",
    "env_rows",
    "label",
    "op_runner",
    "shape_ok",
]

