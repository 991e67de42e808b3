"""refq Programs and kernel cases → TOSA graphs.

:func:`export_program` walks a Program's ops in order and emits each one's TOSA sequence
(a kernel variant's translation is its ``tosa.lowering`` entry in the variant registry,
refq.ops.registry; the movement and table ops are :data:`refq.interop.tosa.moves.MOVES`).
Every refq tensor becomes a TOSA tensor of the same name — in the narrowest TOSA integer
type holding its declared format (uint8 → int16: TOSA 1.0 has no unsigned tensors), or, for
a value that needs more than 32 bits, two int32 tensors ``name:hi`` and ``name:lo`` (value =
hi·2^32 + lo read unsigned). With ``keep="all"`` every one of them is a
graph output, so another implementation can be compared tensor by tensor.

The graph computes refq's values for every input on which refq itself runs (refq checks
each declared width; where the export relies on such a refq check to prove a TOSA
precondition, the check is listed in :attr:`Exported.assumptions`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.interop.tosa.graph import NUMPY, ExportError, Graph, Val, fits, smallest_dtype
from refq.interop.tosa.moves import MOVES
from refq.interop.tosa.values import Const, Operand, Value, as_wide, value_interval
from refq.interop.tosa.wide import Wide, floor_shift
from refq.intmath import IntFormat
from refq.ops.table import kernel
from refq.program.ir import Program

Translation = Callable[[Graph, Sequence[Operand], Any, IntFormat], Value]

LOWERING_KEY = "tosa.lowering"
"""The variant registry's meta key (refq.ops.registry) holding a variant's TOSA translation:
a :class:`~refq.ops.registry.Ref` to ``fn(graph, inputs, params, out_format) -> value``."""


def translation(key: str) -> Translation:
    """The TOSA translation of kernel variant ``key``, from its registry declaration;
    ExportError naming the variant when it declares none."""
    v = kernel(key)
    ref = v.meta.get(LOWERING_KEY)
    if ref is None:
        raise ExportError(f"kernel {key} declares no TOSA translation ({LOWERING_KEY})")
    fn: Translation = ref.resolve()
    return fn


def translations() -> dict[str, str]:
    """Every registered variant → its translation (``module:function``) or ``""``."""
    from refq.ops.registry import variants

    return {v.key: (v.meta[LOWERING_KEY].label if LOWERING_KEY in v.meta else "")
            for v in variants()}


@dataclass(frozen=True)
class TensorMap:
    """A refq tensor in the graph: its TOSA tensor(s) — one name, or (hi, lo) — and type."""

    name: str
    tosa: tuple[str, ...]
    dtype: str
    shape: tuple[int, ...]
    fmt: IntFormat

    @property
    def wide(self) -> bool:
        return len(self.tosa) == 2


@dataclass
class Exported:
    """A TOSA graph made from a refq program or kernel case."""

    name: str
    graph: bytes
    inputs: list[TensorMap]
    outputs: list[TensorMap]
    assumptions: list[str] = field(default_factory=list)
    op_counts: dict[str, int] = field(default_factory=dict)
    uses: dict[str, int] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

    @property
    def output_names(self) -> list[str]:
        return [t for m in self.outputs for t in m.tosa]

    def feed(self, values: Mapping[str, npt.ArrayLike]) -> list[npt.NDArray[Any]]:
        """The graph's input arrays (graph order, TOSA element types) from refq's inputs."""
        out = []
        for m in self.inputs:
            if m.name not in values:
                raise SpecError(f"{self.name}: missing input {m.name!r}")
            arr = np.asarray(values[m.name])
            if arr.dtype.kind not in "iu":
                raise SpecError(f"{self.name}: input {m.name!r} is not an integer array")
            if tuple(arr.shape) != m.shape:
                raise SpecError(f"{self.name}: input {m.name!r} has shape {arr.shape}, the "
                                f"graph takes {m.shape}")
            a64 = arr.astype(np.int64)
            if a64.size and (int(a64.min()) < m.fmt.min or int(a64.max()) > m.fmt.max):
                raise SpecError(f"{self.name}: input {m.name!r} outside {m.fmt}")
            out.append(a64.astype(NUMPY[m.dtype]))
        return out

    def assemble(self, arrays: Sequence[npt.ArrayLike]) -> dict[str, npt.NDArray[np.int64]]:
        """refq tensors (int64) from the graph's outputs in graph output order."""
        flat = list(arrays)
        if len(flat) != len(self.output_names):
            raise SpecError(f"{self.name}: {len(flat)} outputs, the graph has "
                            f"{len(self.output_names)}")
        out: dict[str, npt.NDArray[np.int64]] = {}
        i = 0
        for m in self.outputs:
            if m.wide:
                hi = np.asarray(flat[i]).astype(np.int64)
                lo = np.asarray(flat[i + 1]).astype(np.int64) & np.int64(0xFFFFFFFF)
                out[m.name] = (hi << np.int64(32)) | lo
                i += 2
            else:
                out[m.name] = np.asarray(flat[i]).astype(np.int64)
                i += 1
        return out


def storage_dtype(fmt: IntFormat, lo: int, hi: int) -> str | None:
    """TOSA element type of a refq tensor: the narrowest holding its declared format, or —
    for formats wider than 32 bits — its proven interval; None where 64 bits are needed."""
    if fmt.bits <= 32 or (fmt.bits == 32 and fmt.signed):
        return smallest_dtype(fmt.min, fmt.max) if fits(fmt.min, fmt.max, "int32") else (
            smallest_dtype(lo, hi) if fits(lo, hi, "int32") else None)
    return smallest_dtype(lo, hi) if fits(lo, hi, "int32") else None


class _Builder:
    def __init__(self, name: str, keep: str, rescale: str = "exact") -> None:
        if keep not in ("all", "outputs"):
            raise SpecError(f"keep must be 'all' or 'outputs', got {keep!r}")
        self.g = Graph(name, rescale_policy=rescale)
        self.keep = keep
        self.env: dict[str, Operand] = {}
        self.inputs: list[TensorMap] = []
        self.outputs: list[TensorMap] = []
        self.name = name

    def add_input(self, name: str, shape: tuple[int, ...], fmt: IntFormat) -> None:
        dt = smallest_dtype(fmt.min, fmt.max) if fits(fmt.min, fmt.max, "int32") else None
        if dt is None:
            raise ExportError(f"input {name}: {fmt} is wider than a TOSA int32 input")
        v = self.g.input(name, shape, dt, fmt.min, fmt.max)
        self.env[name] = v
        self.inputs.append(TensorMap(name, (name,), dt, shape, fmt))

    def store(self, name: str, v: Value, fmt: IntFormat, output: bool) -> None:
        lo, hi = value_interval(v)
        lo, hi = max(lo, fmt.min), min(hi, fmt.max)
        if lo > hi:
            raise ExportError(f"{name}: computed interval misses its format {fmt}")
        dt = storage_dtype(fmt, lo, hi)
        g = self.g
        if dt is not None:
            if isinstance(v, Wide):
                v = floor_shift(g, Wide(v.hi, v.lo, lo, hi), 0)
            named = g.cast(Val(v.name, v.shape, v.dtype, lo, hi), dt, name)
            self.env[name] = named
            tm = TensorMap(name, (name,), dt, v.shape, fmt)
            if output:
                g.output(named)
        else:
            w = as_wide(g, v)
            w = Wide(g.identity(w.hi, f"{name}:hi"), g.identity(w.lo, f"{name}:lo"), lo, hi)
            self.env[name] = w
            tm = TensorMap(name, (f"{name}:hi", f"{name}:lo"), "wide", w.shape, fmt)
            if output:
                g.output(w.hi)
                g.output(w.lo)
        if output:
            self.outputs.append(tm)

    def run_op(self, kind: str, key: str, args: list[Operand], params: dict[str, Any],
               label: str) -> tuple[Value, ...]:
        try:
            if kind == "kernel":
                fn = translation(key)
                k = kernel(key)
                p = k.params_type.from_dict(params)
                return (fn(self.g, args, p, k.out_format(p)),)
            if kind == "move":
                mv = MOVES.get(key)
                if mv is None:
                    raise ExportError(f"program op {key} has no TOSA translation")
                return mv(self.g, *args, **params)
        except ExportError as exc:
            raise ExportError(f"{label}: {exc}") from None
        raise ExportError(f"{label}: unknown op kind {kind!r}")

    def finish(self) -> Exported:
        g = self.g
        return Exported(self.name, g.serialize(), self.inputs, self.outputs,
                        list(dict.fromkeys(g.assumptions)), dict(sorted(g.op_counts.items())),
                        dict(sorted(g.uses.items())), list(dict.fromkeys(g.notes)))


def export_program(program: Program, *, batch: int = 1, keep: str = "all",
                   rescale: str = "exact") -> Exported:
    """``program`` as a TOSA graph for inputs of batch size ``batch``; ``keep="all"`` makes
    every refq tensor (inputs excluded) a graph output, ``"outputs"`` only the program's
    outputs; ``rescale`` is the RESCALE policy (refq.interop.tosa.graph.Graph). ExportError
    names the first op (and the reason) that TOSA cannot express."""
    program.validate()
    b = _Builder(program.name, keep, rescale)
    for name in program.inputs:
        d = program.tensors[name]
        shape = tuple(batch if (i == 0 and s == -1) else s for i, s in enumerate(d.shape))
        b.add_input(name, shape, d.fmt)
    for name, arr in program.consts.items():
        b.env[name] = Const(name, np.asarray(arr, dtype=np.int64), program.tensors[name].fmt)
    for i, op in enumerate(program.ops):
        label = f"op #{i} {op.key}" + (f" ({op.name})" if op.name else "")
        args = [b.env[t] for t in op.inputs]
        if len(op.outputs) == 1:
            f = program.tensors[op.outputs[0]].fmt
            b.g.declared = (f.min, f.max, f.name)
        outs = b.run_op(op.kind, op.key, args, dict(op.params), label)
        b.g.declared = None
        if len(outs) != len(op.outputs):
            raise ExportError(f"{label}: {len(outs)} results for outputs {op.outputs}")
        for name, v in zip(op.outputs, outs, strict=True):
            decl = program.tensors[name]
            _check_shape(name, v.shape, decl.shape, label)
            keep_it = keep == "all" or name in program.outputs
            b.store(name, v, decl.fmt, keep_it)
    return b.finish()


def _check_shape(name: str, got: tuple[int, ...], decl: tuple[int, ...], label: str) -> None:
    ok = len(got) == len(decl) and all(d in (-1, s) for s, d in zip(got, decl, strict=True))
    if not ok:
        raise ExportError(f"{label}: {name} has shape {got}, declared {decl}")


def export_kernel(key: str, params: Any, shapes: Mapping[str, Sequence[int]],
                  name: str | None = None, rescale: str = "exact") -> Exported:
    """One kernel (``op.variant``) on inputs of the given shapes as a TOSA graph with the
    kernel's named inputs and one output ``y`` (``rescale``: as for export_program)."""
    k = kernel(key)
    b = _Builder(name or key, "all", rescale)
    for n, fmt in zip(k.inputs, k.in_formats(params), strict=True):
        b.add_input(n, tuple(int(d) for d in shapes[n]), fmt)
    (y,) = b.run_op("kernel", key, [b.env[n] for n in k.inputs], params.to_dict(), key)
    b.store("y", y, k.out_format(params), True)
    return b.finish()


__all__ = ["LOWERING_KEY", "Exported", "TensorMap", "export_kernel", "export_program",
           "storage_dtype", "translation", "translations"]
