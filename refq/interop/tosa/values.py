"""The operands of a translated refq op: TOSA tensors (:class:`Val`), 64-bit values held in
two int32 tensors (:class:`Wide`) and program constants not yet placed in the graph
(:class:`Const`), with the conversions between them."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

from refq.interop.tosa import wide
from refq.interop.tosa.graph import ExportError, Graph, Val, fits
from refq.interop.tosa.wide import Wide
from refq.intmath import IntFormat

Value = Val | Wide


@dataclass(frozen=True)
class Const:
    """A program constant (weights, thresholds, tables) with its refq name and format; it
    becomes a TOSA constant only where a translation needs it as a tensor."""

    name: str
    values: npt.NDArray[np.int64]
    fmt: IntFormat

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(d) for d in self.values.shape)


Operand = Val | Wide | Const


def value_interval(v: Value) -> tuple[int, int]:
    return (v.lo, v.hi) if isinstance(v, Val) else (v.vlo, v.vhi)


def shape_of(v: Operand) -> tuple[int, ...]:
    return v.shape


def rank_of(v: Operand) -> int:
    return len(v.shape)


def tensor(g: Graph, v: Operand, rank: int | None = None) -> Value:
    """``v`` as graph tensors: a Const becomes one named TOSA constant (narrowest integer
    type of its values) or, beyond int32, two (``name:hi``, ``name:lo``); ``rank`` left-pads
    a Const's shape with 1s (NumPy broadcasting, which TOSA spells out)."""
    if not isinstance(v, Const):
        return v
    arr = np.asarray(v.values, dtype=np.int64)
    if rank is not None and arr.ndim < rank:
        arr = arr.reshape((1,) * (rank - arr.ndim) + arr.shape)
    lo = int(arr.min()) if arr.size else 0
    hi = int(arr.max()) if arr.size else 0
    if fits(lo, hi, "int32"):
        return g.const(arr, name=v.name)
    obj = arr.astype(object)
    hw = np.asarray(obj >> 32, dtype=np.int64)
    lw = np.asarray([((int(t) & 0xFFFFFFFF) ^ 0x80000000) - 0x80000000 for t in arr.ravel()],
                    dtype=np.int64).reshape(arr.shape)
    return Wide(g.const(hw, "int32", name=f"{v.name}:hi"), g.const(lw, "int32",
                                                                     name=f"{v.name}:lo"),
                lo, hi)


def as_i32(g: Graph, v: Operand) -> Val:
    """An int32 tensor of ``v`` (a Wide whose interval fits int32 gives its low word)."""
    t = tensor(g, v)
    if isinstance(t, Val):
        return g.i32(t)
    if not fits(t.vlo, t.vhi, "int32"):
        raise ExportError(f"{t.lo.name}: [{t.vlo}, {t.vhi}] does not fit int32")
    return wide.floor_shift(g, t, 0)


def as_wide(g: Graph, v: Operand) -> Wide:
    t = tensor(g, v)
    return t if isinstance(t, Wide) else wide.from_i32(g, t)


def reshape_value(g: Graph, v: Value, shape: tuple[int, ...]) -> Value:
    if isinstance(v, Val):
        return g.reshape(v, shape)
    return Wide(g.reshape(v.hi, shape), g.reshape(v.lo, shape), v.vlo, v.vhi)


def transpose_value(g: Graph, v: Value, perm: list[int]) -> Value:
    if isinstance(v, Val):
        return g.transpose(v, perm)
    return Wide(g.transpose(v.hi, perm), g.transpose(v.lo, perm), v.vlo, v.vhi)


__all__ = ["Const", "Operand", "Value", "as_i32", "as_wide", "rank_of", "reshape_value",
           "shape_of", "tensor", "transpose_value", "value_interval"]
