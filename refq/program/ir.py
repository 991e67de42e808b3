"""The integer program: named integer tensors with declared formats, ordered ops with
integer attributes, constant tensors (weights, biases, tables).

A Program is what an accelerator or an integer engine executes. Real scales appear only as
information (``TensorDecl.scale``), never in computation. Op kinds are the kernels of
:data:`refq.ops.table.KERNELS` (``kind = "kernel"``, ``key = "op.variant"``, ``params`` =
the Params' ``to_dict``) and the data-movement and table ops of :mod:`refq.program.movement`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import IntFormat

PROGRAM_FORMAT = 1
KINDS = ("input", "const", "value")


@dataclass(frozen=True)
class TensorDecl:
    """A named integer tensor. ``shape`` may use -1 for the batch dimension (dim 0) of
    inputs and values. ``scale``/``zero_point`` say what real number one LSB stands for —
    information for humans and for the integerization-gap report, never used by run()."""

    name: str
    shape: tuple[int, ...]
    fmt: IntFormat
    kind: str = "value"
    scale: float | None = None
    zero_point: int = 0
    doc: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "shape": list(self.shape),
            "format": self.fmt.name,
            "kind": self.kind,
            "scale": self.scale,
            "zero_point": self.zero_point,
            "doc": self.doc,
        }

    @classmethod
    def from_dict(cls, name: str, d: Any) -> TensorDecl:
        try:
            scale = d["scale"]
            if scale is not None and not isinstance(scale, (int, float)):
                raise TypeError("scale")
            return cls(
                name,
                tuple(int(v) for v in d["shape"]),
                IntFormat.parse(d["format"]),
                str(d["kind"]),
                None if scale is None else float(scale),
                int(d["zero_point"]),
                str(d.get("doc", "")),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"tensor {name!r}: malformed declaration ({exc})") from None


@dataclass(frozen=True)
class Op:
    """One step: ``kind`` ("kernel" or a movement op), ``key`` (kernel ``op.variant`` or the
    movement op's name), named inputs and outputs, JSON-safe integer ``params``, and the tap
    ``name`` of the float model it realises (for gap reports and golden vectors)."""

    kind: str
    key: str
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    params: dict[str, Any] = field(default_factory=dict)
    name: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "key": self.key,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "params": self.params,
            "name": self.name,
        }

    @classmethod
    def from_dict(cls, i: int, d: Any) -> Op:
        try:
            return cls(
                str(d["kind"]),
                str(d["key"]),
                tuple(str(v) for v in d["inputs"]),
                tuple(str(v) for v in d["outputs"]),
                dict(d["params"]),
                str(d["name"]),
            )
        except (KeyError, TypeError, ValueError) as exc:
            raise SpecError(f"op #{i}: malformed ({exc})") from None


@dataclass
class Program:
    name: str
    tensors: dict[str, TensorDecl] = field(default_factory=dict)
    consts: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)

    # -- building -------------------------------------------------------------------------
    def declare(
        self,
        name: str,
        shape: tuple[int, ...],
        fmt: IntFormat,
        kind: str = "value",
        scale: float | None = None,
        zero_point: int = 0,
        doc: str = "",
    ) -> str:
        if name in self.tensors:
            raise SpecError(f"program {self.name}: tensor {name!r} declared twice")
        if kind not in KINDS:
            raise SpecError(f"tensor {name!r}: kind {kind!r} not in {KINDS}")
        self.tensors[name] = TensorDecl(
            name, tuple(int(d) for d in shape), fmt, kind, scale, zero_point, doc
        )
        if kind == "input":
            self.inputs.append(name)
        return name

    def const(
        self,
        name: str,
        values: npt.ArrayLike,
        fmt: IntFormat,
        doc: str = "",
        scale: float | None = None,
        zero_point: int = 0,
    ) -> str:
        arr = np.asarray(values)
        if arr.dtype.kind not in "iu":
            raise SpecError(f"const {name!r}: expected integers, got dtype {arr.dtype}")
        arr = arr.astype(np.int64)
        self.declare(name, arr.shape, fmt, "const", scale, zero_point, doc)
        self.consts[name] = arr
        return name

    def add(self, op: Op) -> Op:
        self.ops.append(op)
        return op

    # -- checking -------------------------------------------------------------------------
    def validate(self) -> None:
        """Every name declared once, defined before use, consts within their formats."""
        defined = set(self.inputs) | set(self.consts)
        for name, decl in self.tensors.items():
            if decl.kind == "const":
                if name not in self.consts:
                    raise SpecError(f"const {name!r} declared without values")
                arr = self.consts[name]
                if tuple(arr.shape) != decl.shape:
                    raise SpecError(f"const {name!r}: shape {arr.shape}, declared {decl.shape}")
                if arr.size and (int(arr.min()) < decl.fmt.min or int(arr.max()) > decl.fmt.max):
                    raise SpecError(f"const {name!r}: values outside {decl.fmt}")
        for i, op in enumerate(self.ops):
            for t in op.inputs:
                if t not in defined:
                    raise SpecError(
                        f"op #{i} ({op.key} {op.name}): input {t!r} used before it is defined"
                    )
            for t in op.outputs:
                if t not in self.tensors:
                    raise SpecError(f"op #{i} ({op.key} {op.name}): output {t!r} not declared")
                if t in defined:
                    raise SpecError(f"op #{i} ({op.key} {op.name}): output {t!r} written twice")
                defined.add(t)
        for t in self.outputs:
            if t not in defined:
                raise SpecError(f"program output {t!r} is never computed")


__all__ = ["KINDS", "PROGRAM_FORMAT", "Op", "Program", "TensorDecl"]
