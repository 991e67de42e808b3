"""TOSA graphs → refq Programs: ask refq what a TOSA graph should compute.

:func:`import_tosa` reads a TOSA 1.x flatbuffer (bytes or a ``.tosa`` file) or TOSA MLIR text
(any form tosa-opt parses; it is serialized with ``tosa-opt --tosa-serialize``) and returns
a :class:`~refq.program.Program` that refq's interpreter runs. The path covered is the one a
TFLite → TOSA (or torch → TOSA) int8 flow produces for a quantized transformer:

=================================  ===========================================================
TOSA                               refq Program op
=================================  ===========================================================
MATMUL int8 (zero points) / int16  ``matmul.gemm`` (int32 / 48-bit accumulator)
RESCALE SINGLE_ROUND               ``requantize.dyadic``, rounding half_up: ⌊(x·m + 2^(s-1))
                                   / 2^s⌋ is refq's round_half_up(x·m / 2^s); saturated to the
                                   output type (per-channel multipliers and shifts kept)
RESCALE DOUBLE_ROUND               ``requantize.double`` (TFLite shift 31 - s) where m is 0 or
                                   in [2^30, 2^31) and 31 - s in [-31, 30]
TABLE int8                         ``lookup`` with offset -128 (index x + 128)
GATHER of a constant (1, K, 1)     ``lookup`` (offset 0), then ``reshape``
ADD int32                          ``add_exact``
RESHAPE, TRANSPOSE                 ``reshape``, ``transpose``
CAST (int → int), IDENTITY         ``reshape`` to the same shape, declared in the output type
REDUCE_SUM                         ``mean_pool`` (shift 0), then ``reshape`` (axis kept)
SLICE of one index along one axis  ``select``, then ``reshape``
CONST                              a program constant
=================================  ===========================================================

Every other operator — and RESCALE with unsigned inputs/outputs or INEXACT_ROUND, TABLE on
int16 (TOSA interpolates), a non-constant zero point or table, control flow — is refused
with a SpecError naming the operator, its output tensor and the reason.

Where TOSA declares a value UNPREDICTABLE (an int32 ADD that overflows, a RESCALE input
outside [-2^(s-1), 2^(s-1))), refq's interpreter computes the exact value or raises
RangeError against the declared type (a CAST that TOSA truncates raises here); on every
input the TOSA graph handles, the Program computes the same integers.
"""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError, SpecError
from refq.interop.tosa.graph import load_serializer
from refq.interop.tosa.mlir import TIMEOUT_S, tosa_opt
from refq.intmath import IntFormat
from refq.ops.linear import GemmParams
from refq.ops.requantize import RequantParams
from refq.program.ir import Op, Program

_FORMATS = {"INT8": IntFormat(8, True), "INT16": IntFormat(16, True),
            "INT32": IntFormat(32, True), "INT48": IntFormat(48, True)}
_NUMPY = {"INT8": np.int8, "INT16": np.int16, "INT32": np.int32, "INT64": np.int64,
          "SHAPE": np.int64}


def _dtype_name(dt: Any) -> str:
    return str(dt).split(".")[-1]


def _load(source: bytes | str | Path) -> Any:
    ts = load_serializer()
    with tempfile.TemporaryDirectory(prefix="refq-tosa-import-") as tmp:
        fb = Path(tmp) / "graph.tosa"
        if isinstance(source, bytes):
            fb.write_bytes(source)
        else:
            text = None
            path = Path(source) if isinstance(source, Path) or "\n" not in str(source) else None
            if path is not None and path.is_file():
                if path.suffix == ".mlir":
                    text = path.read_text()
                else:
                    fb.write_bytes(path.read_bytes())
            else:
                text = str(source)
            if text is not None:
                _serialize_mlir(text, Path(tmp), fb)
        ser = ts.TosaSerializer("")
        if not ser.loadTosaFlatbuffer(str(fb)):
            raise SpecError("import_tosa: not a TOSA flatbuffer tosa-tools can read")
    return ser


def _serialize_mlir(text: str, tmp: Path, out: Path) -> None:
    src = tmp / "graph.mlir"
    src.write_text(text)
    cmd = [tosa_opt(), f"--tosa-serialize=tosa-flatbuffer-filename={out} "
           "retain-graph-input-output-names=true", str(src)]
    try:
        proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                              check=False)
    except subprocess.TimeoutExpired:
        raise BackendError(f"tosa-opt timed out after {TIMEOUT_S} s") from None
    if proc.returncode != 0 or not out.is_file():
        raise SpecError(f"import_tosa: tosa-opt cannot serialize the MLIR: "
                        f"{proc.stderr.strip()[:400]}")


class _Importer:
    def __init__(self, block: Any, name: str) -> None:
        self.block = block
        self.prog = Program(name)
        self.consts: dict[str, npt.NDArray[np.int64]] = {}
        self.shape_consts: dict[str, list[int]] = {}
        self.n = 0

    def tensor(self, name: str) -> Any:
        return self.block.getTensorByName(name)

    def fmt(self, name: str, where: str) -> IntFormat:
        dt = _dtype_name(self.tensor(name).dtype)
        if dt not in _FORMATS:
            raise SpecError(f"import_tosa: {where}: tensor {name!r} of type {dt} (refq Programs "
                            "hold int8/int16/int32/int48 tensors)")
        return _FORMATS[dt]

    def shape(self, name: str) -> tuple[int, ...]:
        return tuple(int(d) for d in self.tensor(name).shape)

    def data(self, name: str, where: str) -> npt.NDArray[np.int64]:
        if name in self.consts:
            return self.consts[name]
        if name in self.shape_consts:
            return np.asarray(self.shape_consts[name], dtype=np.int64)
        raise SpecError(f"import_tosa: {where}: {name!r} must be a constant")

    def declare(self, name: str, fmt: IntFormat, shape: tuple[int, ...] | None = None) -> str:
        if name not in self.prog.tensors:
            self.prog.declare(name, shape if shape is not None else self.shape(name), fmt)
        return name

    def temp(self, shape: tuple[int, ...], fmt: IntFormat) -> str:
        self.n += 1
        name = f"_import{self.n}"
        self.prog.declare(name, shape, fmt)
        return name

    def use(self, name: str) -> str:
        """A tensor read by an op: constants become program constants on first use."""
        if name in self.consts and name not in self.prog.tensors:
            arr = self.consts[name]
            dt = _dtype_name(self.tensor(name).dtype)
            self.prog.const(name, arr, _FORMATS.get(dt, IntFormat(32, True)))
        return name

    def add(self, kind: str, key: str, ins: list[str], outs: list[str],
            params: dict[str, Any], label: str) -> None:
        self.prog.add(Op(kind, key, tuple(self.use(i) for i in ins), tuple(outs), params,
                         label))


def _const(imp: _Importer, op: Any) -> None:
    (out,) = op.outputs
    if op_name(op) == "CONST_SHAPE":
        raw = np.asarray(imp.block.getShapeByName(out).data, dtype=np.uint8).tobytes()
        rank = int(imp.block.getShapeByName(out).rank)
        imp.shape_consts[out] = [int(v) for v in np.frombuffer(raw, dtype="<i8")[:rank]]
        return
    t = imp.tensor(out)
    dt = _dtype_name(t.dtype)
    raw = np.asarray(t.data, dtype=np.uint8).tobytes()
    if dt not in _NUMPY:
        raise SpecError(f"import_tosa: CONST {out!r} of type {dt}")
    shape = imp.shape(out)
    count = int(np.prod(shape, dtype=np.int64))
    arr = np.frombuffer(raw, dtype=np.dtype(_NUMPY[dt]).newbyteorder("<"))
    if arr.size < count:
        raise SpecError(f"import_tosa: CONST {out!r}: {arr.size} values for shape {shape}")
    imp.consts[out] = arr[:count].astype(np.int64).reshape(shape)  # data may be padded


def _matmul(imp: _Importer, op: Any) -> None:
    a, b, azp, bzp = op.inputs
    (out,) = op.outputs
    fa, fb = imp.fmt(a, "MATMUL"), imp.fmt(b, "MATMUL")
    za = int(imp.data(azp, "MATMUL zero point").ravel()[0])
    zb = int(imp.data(bzp, "MATMUL zero point").ravel()[0])
    p = GemmParams(fa, fb, za, zb, 32 if fa.bits == 8 else 48)
    imp.declare(out, IntFormat(p.acc_bits, True))
    imp.add("kernel", "matmul.gemm", [a, b], [out], p.to_dict(), "MATMUL")


def _rescale(imp: _Importer, op: Any) -> None:
    x, mult, shift, izp, ozp = op.inputs
    (out,) = op.outputs
    at = op.attributes
    if at.input_unsigned or at.output_unsigned:
        raise SpecError(f"import_tosa: RESCALE {out!r}: unsigned input/output is not "
                        "imported (TOSA reinterprets the int8/int16 bits)")
    mode = str(at.rounding_mode).split(".")[-1].split(":")[0]
    ms = [int(v) for v in imp.data(mult, "RESCALE multiplier").ravel()]
    ss = [int(v) for v in imp.data(shift, "RESCALE shift").ravel()]
    fmt = imp.fmt(out, "RESCALE")
    izp = int(imp.data(izp, "RESCALE input zero point").ravel()[0])
    ozp = int(imp.data(ozp, "RESCALE output zero point").ravel()[0])
    if mode == "SINGLE_ROUND":
        p = RequantParams("dyadic", tuple(ms), tuple(ss), "half_up", izp, ozp, fmt)
        key = "requantize.dyadic"
    elif mode == "DOUBLE_ROUND":
        if any(m and not (1 << 30) <= m < 1 << 31 for m in ms) or any(
                not -31 <= 31 - s <= 30 for s in ss):
            raise SpecError(f"import_tosa: RESCALE DOUBLE_ROUND {out!r}: multiplier outside "
                            "[2^30, 2^31) or shift outside 1..62 has no TFLite form")
        p = RequantParams("double", tuple(ms), tuple(31 - s for s in ss), None, izp, ozp, fmt)
        key = "requantize.double"
    else:
        raise SpecError(f"import_tosa: RESCALE {out!r}: rounding mode {mode} is not imported")
    imp.declare(out, fmt)
    imp.add("kernel", key, [x], [out], p.to_dict(), "RESCALE")


def _table(imp: _Importer, op: Any) -> None:
    x, table = op.inputs
    (out,) = op.outputs
    if imp.fmt(x, "TABLE").bits != 8:
        raise SpecError(f"import_tosa: TABLE {out!r}: int16 TABLE interpolates (not a lookup)")
    imp.data(table, "TABLE")
    imp.declare(out, imp.fmt(out, "TABLE"))
    imp.add("move", "lookup", [x, table], [out], {"offset": -128}, "TABLE")


def _gather(imp: _Importer, op: Any) -> None:
    values, idx = op.inputs
    (out,) = op.outputs
    vs = imp.shape(values)
    if len(vs) != 3 or vs[0] != 1 or vs[2] != 1:
        raise SpecError(f"import_tosa: GATHER {out!r}: only a constant (1, K, 1) table")
    table = f"{values}.table"  # the (1, K, 1) values as the 1-D table lookup reads
    if table not in imp.prog.tensors:
        imp.prog.const(table, imp.data(values, "GATHER values").ravel(),
                       imp.fmt(values, "GATHER values"))
    fmt = imp.fmt(out, "GATHER")
    mid = imp.temp(imp.shape(idx), fmt)
    imp.add("move", "lookup", [idx, table], [mid], {"offset": 0}, "GATHER")
    imp.declare(out, fmt)
    imp.add("move", "reshape", [mid], [out], {"shape": list(imp.shape(out))}, "GATHER")


def _add(imp: _Importer, op: Any) -> None:
    a, b = op.inputs
    (out,) = op.outputs
    imp.declare(out, imp.fmt(out, "ADD"))
    imp.add("move", "add_exact", [a, b], [out], {}, "ADD")


def _reshape(imp: _Importer, op: Any) -> None:
    x = op.inputs[0]
    (out,) = op.outputs
    imp.declare(out, imp.fmt(out, op_name(op)))
    imp.add("move", "reshape", [x], [out], {"shape": list(imp.shape(out))}, op_name(op))


def _transpose(imp: _Importer, op: Any) -> None:
    (x,) = op.inputs
    (out,) = op.outputs
    imp.declare(out, imp.fmt(out, "TRANSPOSE"))
    imp.add("move", "transpose", [x], [out], {"perm": [int(p) for p in op.attributes.perms]},
            "TRANSPOSE")


def _reduce_sum(imp: _Importer, op: Any) -> None:
    (x,) = op.inputs
    (out,) = op.outputs
    axis = int(op.attributes.axis)
    fmt = imp.fmt(out, "REDUCE_SUM")
    shape = imp.shape(x)
    mid = imp.temp(tuple(d for i, d in enumerate(shape) if i != axis), fmt)
    imp.add("move", "mean_pool", [x], [mid], {"axis": axis, "shift": 0}, "REDUCE_SUM")
    imp.declare(out, fmt)
    imp.add("move", "reshape", [mid], [out], {"shape": list(imp.shape(out))}, "REDUCE_SUM")


def _slice(imp: _Importer, op: Any) -> None:
    x, start, size = op.inputs
    (out,) = op.outputs
    st = [int(v) for v in imp.data(start, "SLICE start")]
    sz = [int(v) for v in imp.data(size, "SLICE size")]
    shape = imp.shape(x)
    cut = [i for i, (s, n, d) in enumerate(zip(st, sz, shape, strict=True)) if (s, n) != (0, d)]
    if len(cut) != 1 or sz[cut[0]] != 1:
        raise SpecError(f"import_tosa: SLICE {out!r}: only one index along one axis")
    ax = cut[0]
    fmt = imp.fmt(out, "SLICE")
    mid = imp.temp(tuple(d for i, d in enumerate(shape) if i != ax), fmt)
    imp.add("move", "select", [x], [mid], {"axis": ax, "index": st[ax]}, "SLICE")
    imp.declare(out, fmt)
    imp.add("move", "reshape", [mid], [out], {"shape": list(imp.shape(out))}, "SLICE")


def op_name(op: Any) -> str:
    return str(op.op).split(".")[-1]


IMPORTERS: dict[str, Callable[[_Importer, Any], None]] = {
    "CONST": _const,
    "CONST_SHAPE": _const,
    "MATMUL": _matmul,
    "RESCALE": _rescale,
    "TABLE": _table,
    "GATHER": _gather,
    "ADD": _add,
    "RESHAPE": _reshape,
    "CAST": _reshape,
    "IDENTITY": _reshape,
    "TRANSPOSE": _transpose,
    "REDUCE_SUM": _reduce_sum,
    "SLICE": _slice,
}
"""TOSA operator → its refq Program form (module docstring)."""


def import_tosa(source: bytes | str | Path, name: str | None = None) -> Program:
    """The refq Program computing the TOSA graph ``source`` (module docstring)."""
    ser = _load(source)
    regions = list(ser.regions)
    blocks = [b for r in regions for b in r.basicBlocks]
    if len(blocks) != 1:
        raise SpecError(f"import_tosa: {len(blocks)} basic blocks (control flow is not "
                        "imported)")
    block = blocks[0]
    imp = _Importer(block, name or str(block.name))
    for n in block.inputs:
        imp.prog.declare(n, imp.shape(n), imp.fmt(n, "graph input"), "input")
    for op in block.operators:
        kind = op_name(op)
        fn = IMPORTERS.get(kind)
        if fn is None:
            outs = ", ".join(op.outputs)
            raise SpecError(f"import_tosa: TOSA {kind} (output {outs}) has no refq Program "
                            f"equivalent; imported: {sorted(IMPORTERS)}")
        fn(imp, op)
    imp.prog.outputs = [str(n) for n in block.outputs]
    imp.prog.validate()
    return imp.prog


__all__ = ["IMPORTERS", "import_tosa"]
