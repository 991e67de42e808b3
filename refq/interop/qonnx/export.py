"""A refq Program → a QONNX model; golden cases and sets → QONNX folders.

Every refq tensor keeps its name: graph inputs are the program inputs, initializers the
program constants, and each op's outputs are nodes' outputs of the same names (auxiliary
values are named ``<hint>::<n>``). Each named tensor carries its refq format as a qonnx
datatype annotation (``INT8``, ``UINT4``, ``INT49`` ...). Shapes are the program's with the
batch dimension fixed (qonnx's executor needs every shape).

``notes.json`` beside each exported model lists the named points of the export: the
int64 islands (where float arithmetic would not be exact, with the bound that decided) and
the differences of contract (:data:`CONTRACT`).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError, SpecError
from refq.files.atomic import atomic_folder
from refq.golden.case import Case, read_case
from refq.golden.manifest import check_files, read_manifest
from refq.interop.qonnx.bounds import tensor_bounds
from refq.interop.qonnx.graph import OPSET, QONNX_DOMAIN, Builder, Note, fits_f32
from refq.interop.qonnx.kernels import translate_kernel
from refq.interop.qonnx.moves import translate_move
from refq.program.ir import Op, Program, TensorDecl

CONTRACT: tuple[str, ...] = (
    "range checks: refq.program.run raises RangeError where a value leaves its declared "
    "format (an accumulator past int<acc_bits>, a lookup index outside its table); the graph "
    "has no such check and computes on (int64 wraps, Gather fails) — equal on every valid "
    "input, different only where refq refuses",
    "qonnx Quant outputs float32 (its execute_node casts): a Quant is used only where the "
    "output format fits float32's integers (|x| <= 2^24) and its float64 input is exact",
)
"""The differences of contract every export has (also written to notes.json)."""


@dataclass
class QonnxModel:
    """An exported program: the ONNX model, its named points, every tensor's container."""

    model: Any
    notes: list[Note] = field(default_factory=list)
    containers: dict[str, str] = field(default_factory=dict)

    def notes_dict(self) -> dict[str, Any]:
        return {"contract": list(CONTRACT), "points": [n.to_dict() for n in self.notes],
                "containers": dict(sorted(self.containers.items()))}


def _qonnx_type(decl: TensorDecl) -> str:
    return f"{'INT' if decl.fmt.signed else 'UINT'}{decl.fmt.bits}"


def _with_batch(program: Program, batch: int) -> Program:
    """``program`` with every -1 (batch) dimension set to ``batch``."""
    out = Program(program.name, meta=dict(program.meta))
    for name, d in program.tensors.items():
        shape = tuple(batch if v == -1 else v for v in d.shape)
        if d.kind == "const":
            out.const(name, program.consts[name], d.fmt, d.doc, d.scale, d.zero_point)
        else:
            out.declare(name, shape, d.fmt, d.kind, d.scale, d.zero_point, d.doc)
    out.ops = [Op(o.kind, o.key, o.inputs, o.outputs, o.params, o.name) for o in program.ops]
    out.outputs = list(program.outputs)
    return out


def to_qonnx(program: Program, batch: int = 1) -> QonnxModel:
    """Translate ``program`` (module docstring); SpecError names an op that has no
    translation and why."""
    from onnx import TensorProto, helper

    from refq.interop.qonnx import _qonnx_api

    prog = _with_batch(program, batch)
    prog.validate()
    cont = {n: ("f32" if fits_f32(d.fmt) else "i64") for n, d in prog.tensors.items()}
    bounds = tensor_bounds(prog)
    b = Builder()
    for name in prog.consts:
        b.named_const(name, prog.consts[name], cont[name])
    for name in prog.inputs:
        b.dtype[name] = cont[name]
    ctx = (b, prog, bounds, cont)
    for op in prog.ops:
        if op.kind == "kernel":
            translate_kernel(ctx, op)
        elif op.kind == "move":
            translate_move(ctx, op)
        else:
            raise SpecError(f"qonnx export: op kind {op.kind!r} ({op.name}) is not translated")
    elem = {"f32": TensorProto.FLOAT, "i64": TensorProto.INT64}

    def vi(n: str) -> Any:
        return helper.make_tensor_value_info(n, elem[cont[n]], list(prog.tensors[n].shape))

    values = [n for op in prog.ops for n in op.outputs if n not in prog.outputs]
    graph = helper.make_graph(
        b.nodes, prog.name, [vi(n) for n in prog.inputs], [vi(n) for n in prog.outputs],
        initializer=b.inits, value_info=[vi(n) for n in values],
    )
    model = helper.make_model(
        graph, producer_name="refq",
        opset_imports=[helper.make_opsetid("", OPSET), helper.make_opsetid(QONNX_DOMAIN, 1)],
    )
    model = _qonnx_api().infer_shapes(model)
    for name, decl in prog.tensors.items():
        _qonnx_api().annotate(model, name, _qonnx_type(decl))
    return QonnxModel(model.model, b.notes, cont)


def case_program(case: Case) -> tuple[Program, dict[str, npt.NDArray[Any]]]:
    """The program of a program/block case, or a one-op program of a kernel case."""
    from refq.golden.cases_program import program_of
    from refq.golden.kernels import kernel_of

    if "program" in case.meta:
        return program_of(case)
    k = kernel_of(case)
    prog = Program(case.name)
    inputs = {}
    for n in k.inputs:
        t = case.tensors[n]
        prog.declare(n, tuple(t.values.shape), t.fmt, "input")
        inputs[n] = t.values.astype(np.int64)
    y = case.tensors["y"]
    prog.declare("y", tuple(y.values.shape), y.fmt)
    prog.add(Op("kernel", k.key, k.inputs, ("y",), dict(case.meta["params"]), k.key))
    prog.outputs = ["y"]
    return prog, inputs


def _batch_of(prog: Program, inputs: dict[str, npt.NDArray[Any]]) -> int:
    for n in prog.inputs:
        if prog.tensors[n].shape and prog.tensors[n].shape[0] == -1:
            return int(inputs[n].shape[0])
    return 1


def export_case(case: Case) -> QonnxModel:
    prog, inputs = case_program(case)
    return to_qonnx(prog, _batch_of(prog, inputs))


def write_model(m: QonnxModel, folder: Path) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "model.onnx").write_bytes(m.model.SerializeToString())
    (folder / "notes.json").write_text(json.dumps(m.notes_dict(), indent=1, sort_keys=True) + "\n")


@dataclass
class SetExport:
    exported: list[str] = field(default_factory=list)
    refused: dict[str, str] = field(default_factory=dict)


def export_set(root: Path, out: Path, force: bool = False) -> SetExport:
    """Every case of the golden set ``root`` as ``out/<case>/model.onnx`` + ``notes.json``;
    cases that cannot be expressed are listed in ``out/REFUSED.json`` (case → op and reason)
    and returned. The set's hashes are checked first."""
    root = Path(root)
    manifest = read_manifest(root)
    problems = check_files(root, manifest)
    if problems:
        raise GoldenError(f"{root} fails its manifest: {problems[0]}")
    result = SetExport()
    with atomic_folder(Path(out), force=force) as tmp:
        for name in sorted(manifest["cases"]):
            case = read_case(root / name)
            try:
                m = export_case(case)
            except SpecError as exc:
                result.refused[name] = str(exc)
                continue
            write_model(m, tmp / name)
            result.exported.append(name)
        (tmp / "REFUSED.json").write_text(json.dumps(result.refused, indent=1, sort_keys=True)
                                          + "\n")
    return result


__all__ = ["CONTRACT", "QonnxModel", "SetExport", "case_program", "export_case", "export_set",
           "to_qonnx", "write_model"]
