"""Write small int8 ``.tflite`` models directly as flatbuffers (``tflite`` schema package +
``flatbuffers``), so that every scale, zero point and constant is exactly the one given.

Why not a converter: TensorFlow's / LiteRT's converters choose the quantization parameters
themselves (from a representative data set) and may fold, fuse or re-quantize; a
cross-check needs the exact float32 scales whose derived integer multipliers it predicts.

A model is one subgraph: :class:`TensorDef` entries (shape, type, optional float32 scales
and zero points per tensor or per channel along ``quantized_dimension``, optional constant
data) and :class:`OpDef` entries (a builtin operator, tensor indices, builtin options).
:func:`build_model` returns the flatbuffer bytes (file identifier ``TFL3``, schema
version 3). Needs the ``litert`` extra (``tflite``, ``flatbuffers``); imported lazily by
:mod:`refq.crosscheck.adapters.litert_backend`.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError

TENSOR_TYPES = {"float32": 0, "int32": 2, "uint8": 3, "int64": 4, "int16": 7, "int8": 9}
"""tflite TensorType codes of the element types refq's cases use."""
_NP = {
    "float32": np.float32, "int32": np.int32, "uint8": np.uint8, "int64": np.int64,
    "int16": np.int16, "int8": np.int8,
}


@dataclass(frozen=True)
class TensorDef:
    """A tensor: ``dtype`` one of :data:`TENSOR_TYPES`; ``scale``/``zero_point`` None for an
    unquantized tensor; ``data`` the constant's values (None for activations)."""

    shape: tuple[int, ...]
    dtype: str
    scale: tuple[float, ...] | None = None
    zero_point: tuple[int, ...] | None = None
    quantized_dimension: int = 0
    data: npt.NDArray[Any] | None = None
    name: str = ""


@dataclass(frozen=True)
class OpDef:
    """An operator: a builtin name of ``tflite.BuiltinOperator`` (e.g. ``FULLY_CONNECTED``),
    input/output tensor indices (-1: an omitted optional input) and builtin options as
    ``(options type name, {field: value})`` or None."""

    op: str
    inputs: tuple[int, ...]
    outputs: tuple[int, ...]
    options: tuple[str, dict[str, Any]] | None = None
    version: int = 1


@dataclass
class _Vectors:
    """Helpers over a flatbuffers.Builder (vectors must be built before their table)."""

    b: Any
    done: list[int] = field(default_factory=list)

    def ints(self, start: Callable[[Any, int], Any], values: Sequence[int], kind: str) -> int:
        start(self.b, len(values))
        prepend = {"i32": self.b.PrependInt32, "i64": self.b.PrependInt64}[kind]
        for v in reversed(values):
            prepend(int(v))
        return int(self.b.EndVector())

    def floats(self, start: Callable[[Any, int], Any], values: Sequence[float]) -> int:
        start(self.b, len(values))
        for v in reversed(values):
            self.b.PrependFloat32(float(v))
        return int(self.b.EndVector())

    def offsets(self, start: Callable[[Any, int], Any], offs: Sequence[int]) -> int:
        start(self.b, len(offs))
        for o in reversed(offs):
            self.b.PrependUOffsetTRelative(o)
        return int(self.b.EndVector())


def _modules() -> Any:
    try:
        import flatbuffers
        import tflite
    except ImportError as exc:
        raise BackendError(
            f"litert backend needs the litert extra: pip install 'refq[litert]' ({exc})"
        ) from None
    return flatbuffers, tflite


def _options(tfl: Any, b: Any, name: str, values: dict[str, Any]) -> tuple[int, int]:
    """(union type code, table offset) of builtin options ``name`` with ``values``."""
    import importlib

    mod = importlib.import_module(f"tflite.{name}")
    getattr(mod, f"{name}Start")(b)
    for key, v in values.items():
        add = getattr(mod, f"{name}Add{key}")
        add(b, v)
    off = int(getattr(mod, f"{name}End")(b))
    codes = importlib.import_module("tflite.BuiltinOptions").BuiltinOptions
    return int(getattr(codes, name)), off


def build_model(
    tensors: Sequence[TensorDef],
    ops: Sequence[OpDef],
    inputs: Sequence[int],
    outputs: Sequence[int],
) -> bytes:
    """The flatbuffer bytes of a one-subgraph model (module docstring)."""
    flatbuffers, tfl = _modules()
    import importlib

    def schema(name: str) -> Any:  # the generated module (the package exports classes)
        return importlib.import_module(f"tflite.{name}")

    Buffer, Model, Operator, OperatorCode = (
        schema(n) for n in ("Buffer", "Model", "Operator", "OperatorCode")
    )
    QuantizationParameters, SubGraph, Tensor = (
        schema(n) for n in ("QuantizationParameters", "SubGraph", "Tensor")
    )

    b = flatbuffers.Builder(1024)
    v = _Vectors(b)
    # buffers: 0 is the empty sentinel; one per constant tensor
    buffer_of: dict[int, int] = {}
    buf_offs = []
    Buffer.BufferStart(b)
    buf_offs.append(int(Buffer.BufferEnd(b)))
    for i, t in enumerate(tensors):
        if t.data is None:
            continue
        raw = np.ascontiguousarray(np.asarray(t.data, dtype=_NP[t.dtype])).tobytes()
        b.StartVector(1, len(raw), 16)
        b.head = b.head - len(raw)
        b.Bytes[b.head : b.head + len(raw)] = raw
        data = int(b.EndVector())
        Buffer.BufferStart(b)
        Buffer.BufferAddData(b, data)
        buffer_of[i] = len(buf_offs)
        buf_offs.append(int(Buffer.BufferEnd(b)))
    tensor_offs = []
    for i, t in enumerate(tensors):
        if t.dtype not in TENSOR_TYPES:
            raise BackendError(f"tflite model: unsupported tensor type {t.dtype!r}")
        name = b.CreateString(t.name or f"t{i}")
        shape = v.ints(Tensor.TensorStartShapeVector, t.shape, "i32")
        quant = None
        if t.scale is not None:
            zps = t.zero_point if t.zero_point is not None else (0,) * len(t.scale)
            sc = v.floats(QuantizationParameters.QuantizationParametersStartScaleVector, t.scale)
            zp = v.ints(QuantizationParameters.QuantizationParametersStartZeroPointVector, zps,
                        "i64")
            QuantizationParameters.QuantizationParametersStart(b)
            QuantizationParameters.QuantizationParametersAddScale(b, sc)
            QuantizationParameters.QuantizationParametersAddZeroPoint(b, zp)
            QuantizationParameters.QuantizationParametersAddQuantizedDimension(
                b, t.quantized_dimension
            )
            quant = int(QuantizationParameters.QuantizationParametersEnd(b))
        Tensor.TensorStart(b)
        Tensor.TensorAddShape(b, shape)
        Tensor.TensorAddType(b, TENSOR_TYPES[t.dtype])
        Tensor.TensorAddBuffer(b, buffer_of.get(i, 0))
        Tensor.TensorAddName(b, name)
        if quant is not None:
            Tensor.TensorAddQuantization(b, quant)
        tensor_offs.append(int(Tensor.TensorEnd(b)))
    codes: list[str] = []
    for o in ops:
        if o.op not in codes:
            codes.append(o.op)
    code_offs = []
    for name in codes:
        code = int(getattr(schema("BuiltinOperator").BuiltinOperator, name))
        version = max(o.version for o in ops if o.op == name)
        OperatorCode.OperatorCodeStart(b)
        OperatorCode.OperatorCodeAddDeprecatedBuiltinCode(b, min(code, 127))
        OperatorCode.OperatorCodeAddBuiltinCode(b, code)
        OperatorCode.OperatorCodeAddVersion(b, version)
        code_offs.append(int(OperatorCode.OperatorCodeEnd(b)))
    op_offs = []
    for o in ops:
        ins = v.ints(Operator.OperatorStartInputsVector, o.inputs, "i32")
        outs = v.ints(Operator.OperatorStartOutputsVector, o.outputs, "i32")
        opt = _options(tfl, b, *o.options) if o.options is not None else None
        Operator.OperatorStart(b)
        Operator.OperatorAddOpcodeIndex(b, codes.index(o.op))
        Operator.OperatorAddInputs(b, ins)
        Operator.OperatorAddOutputs(b, outs)
        if opt is not None:
            Operator.OperatorAddBuiltinOptionsType(b, opt[0])
            Operator.OperatorAddBuiltinOptions(b, opt[1])
        op_offs.append(int(Operator.OperatorEnd(b)))
    t_vec = v.offsets(SubGraph.SubGraphStartTensorsVector, tensor_offs)
    i_vec = v.ints(SubGraph.SubGraphStartInputsVector, inputs, "i32")
    o_vec = v.ints(SubGraph.SubGraphStartOutputsVector, outputs, "i32")
    op_vec = v.offsets(SubGraph.SubGraphStartOperatorsVector, op_offs)
    SubGraph.SubGraphStart(b)
    SubGraph.SubGraphAddTensors(b, t_vec)
    SubGraph.SubGraphAddInputs(b, i_vec)
    SubGraph.SubGraphAddOutputs(b, o_vec)
    SubGraph.SubGraphAddOperators(b, op_vec)
    sg = int(SubGraph.SubGraphEnd(b))
    sg_vec = v.offsets(Model.ModelStartSubgraphsVector, [sg])
    code_vec = v.offsets(Model.ModelStartOperatorCodesVector, code_offs)
    buf_vec = v.offsets(Model.ModelStartBuffersVector, buf_offs)
    desc = b.CreateString("refq")
    Model.ModelStart(b)
    Model.ModelAddVersion(b, 3)
    Model.ModelAddOperatorCodes(b, code_vec)
    Model.ModelAddSubgraphs(b, sg_vec)
    Model.ModelAddDescription(b, desc)
    Model.ModelAddBuffers(b, buf_vec)
    b.Finish(Model.ModelEnd(b), file_identifier=b"TFL3")
    return bytes(b.Output())


__all__ = ["TENSOR_TYPES", "OpDef", "TensorDef", "build_model"]
