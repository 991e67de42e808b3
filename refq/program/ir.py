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
from refq.files.schema import AnyOf, Arr, Int, Invalid, Json, Null, Num, Obj, Str
from refq.intmath import IntFormat
from refq.ops._common import FORMAT_NAME

PROGRAM_FORMAT = 1
KINDS = ("input", "const", "value")
MAX_DIMS = 32
TENSOR_NAME = Str(max_len=512, doc="a tensor name")
TENSOR_SCHEMA = Obj({
    "shape": Arr(Int(-1, 1 << 40), hi=MAX_DIMS,
                 doc="dims >= 0; -1 only as dim 0 (the batch) of inputs and values"),
    "format": FORMAT_NAME,
    "kind": Str(enum=KINDS),
    "scale": AnyOf(Num(0, open_lo=True), Null(),
                   doc="real value of one LSB (information for people and gap reports)"),
    "zero_point": Int(),
    "doc": Str(),
}, title="tensor declaration")
"""The JSON form of a :class:`TensorDecl` (:meth:`TensorDecl.to_dict`)."""
OP_ENVELOPE = Obj({
    "kind": Str(enum=("kernel", "move")),
    "key": Str(max_len=256),
    "inputs": Arr(TENSOR_NAME),
    "outputs": Arr(TENSOR_NAME, lo=1),
    "params": Json(obj=True),
    "name": Str(max_len=512),
}, title="op")
"""The JSON form of any :class:`Op` (each key's own schema: :mod:`refq.program.schema`)."""


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
        """The strict inverse of :meth:`to_dict` (:data:`TENSOR_SCHEMA`, then the shape
        rules); SpecError naming the tensor."""
        try:
            TENSOR_SCHEMA.check(d, ())
        except Invalid as exc:
            raise SpecError(f"tensor {name!r}: {exc}") from None
        return cls.from_checked_dict(name, d)

    @classmethod
    def from_checked_dict(cls, name: str, d: dict[str, Any]) -> TensorDecl:
        """:meth:`from_dict` of a dict already checked against :data:`TENSOR_SCHEMA`."""
        shape = tuple(d["shape"])
        batch = d["kind"] in ("input", "value")
        if any(v < 0 for v in shape[1:]) or (shape[:1] == (-1,) and not batch):
            raise SpecError(f"tensor {name!r}: shape {list(shape)}: dims >= 0, -1 only as the "
                            "batch dimension (dim 0) of an input or value")
        scale = d["scale"]
        return cls(name, shape, IntFormat.parse(d["format"]), d["kind"],
                   None if scale is None else float(scale), d["zero_point"], d["doc"])


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
        """The strict inverse of :meth:`to_dict` (:data:`OP_ENVELOPE`; the params are
        checked against the key's own schema by :mod:`refq.program.schema`)."""
        try:
            OP_ENVELOPE.check(d, ())
        except Invalid as exc:
            raise SpecError(f"op #{i}: {exc}") from None
        return cls(d["kind"], d["key"], tuple(d["inputs"]), tuple(d["outputs"]),
                   dict(d["params"]), d["name"])


@dataclass
class Program:
    name: str
    tensors: dict[str, TensorDecl] = field(default_factory=dict)
    consts: dict[str, npt.NDArray[np.int64]] = field(default_factory=dict)
    ops: list[Op] = field(default_factory=list)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)
    meta: dict[str, Any] = field(default_factory=dict)
    source: str = field(default="", repr=False, compare=False)
    """The file the program was read from (named in run-time errors); not saved."""

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


__all__ = ["KINDS", "MAX_DIMS", "OP_ENVELOPE", "PROGRAM_FORMAT", "TENSOR_NAME",
           "TENSOR_SCHEMA", "Op", "Program", "TensorDecl"]
