"""ONNX graphs on onnxruntime: the small in-memory models the onnxruntime adapter runs
(MatMulInteger, MatMulInteger + Add, QLinearMatMul, QuantizeLinear, DequantizeLinear) on the
CPU provider, with cached sessions, and :func:`run_family` mapping a case of the adapter's
own family (:mod:`refq.crosscheck.adapters.onnx_cases`) onto them.

onnx and onnxruntime are an optional extra (``pip install refq[onnx]``): they are imported
when :class:`OnnxGraphs` is created, and a missing one raises BackendError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.onnx_cases import DQ_FORMATS, Q_FORMATS, UINT16
from refq.crosscheck.adapters.onnx_oracles import f32_bits, f32_from_bits
from refq.errors import BackendError
from refq.golden.case import Case
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat

OPSET = 21
ONNX_INT = {INT8: "INT8", UINT8: "UINT8"}


class OnnxGraphs:
    """Builds and runs ONNX graphs on onnxruntime's CPUExecutionProvider."""

    name = "onnxruntime"

    def __init__(self, threads: int = 1) -> None:
        try:
            import onnx
            import onnxruntime
        except ImportError as exc:
            raise BackendError(
                f"onnxruntime needs the onnx extra: pip install 'refq[onnx]' ({exc})"
            ) from None
        self._onnx = onnx
        self._ort = onnxruntime
        self.threads = threads
        self._sessions: dict[tuple[Any, ...], Any] = {}

    # ---------------------------------------------------------------- versions
    def versions(self) -> dict[str, str]:
        return {"onnx": str(self._onnx.__version__), "onnxruntime": str(self._ort.__version__)}

    # ---------------------------------------------------------------- sessions
    def session(self, key: tuple[Any, ...], build: Any) -> Any:
        """A cached InferenceSession for graph ``key`` (built by ``build()`` -> ModelProto)."""
        if key not in self._sessions:
            model = build()
            opts = self._ort.SessionOptions()
            opts.intra_op_num_threads = self.threads
            opts.inter_op_num_threads = 1
            try:
                self._sessions[key] = self._ort.InferenceSession(
                    model.SerializeToString(), opts, providers=["CPUExecutionProvider"]
                )
            except Exception as exc:  # ORT raises its own exception types
                raise BackendError(f"onnxruntime refused graph {key}: {exc}") from None
        return self._sessions[key]

    def model(
        self, nodes: list[Any], inputs: list[tuple[str, str]], outputs: list[tuple[str, str]]
    ) -> Any:
        """A ModelProto of ``nodes`` with typed, shape-free inputs/outputs (name, TensorProto
        type name)."""
        h = self._onnx.helper
        tp = self._onnx.TensorProto
        graph = h.make_graph(
            nodes,
            "refq",
            [h.make_tensor_value_info(n, getattr(tp, t), None) for n, t in inputs],
            [h.make_tensor_value_info(n, getattr(tp, t), None) for n, t in outputs],
        )
        return h.make_model(graph, opset_imports=[h.make_opsetid("", OPSET)])

    def node(self, op: str, ins: list[str], outs: list[str], **attrs: Any) -> Any:
        return self._onnx.helper.make_node(op, ins, outs, **attrs)

    # ---------------------------------------------------------------- graphs
    def matmul_integer(
        self,
        a: npt.NDArray[Any],
        b: npt.NDArray[Any],
        za: npt.NDArray[Any],
        zb: npt.NDArray[Any],
        fa: IntFormat,
        fb: IntFormat,
    ) -> npt.NDArray[np.int32]:
        """MatMulInteger(a, b, za, zb) -> int32 (zero points as scalar inputs)."""
        ta, tb = ONNX_INT[fa], ONNX_INT[fb]
        sess = self.session(
            ("MatMulInteger", ta, tb),
            lambda: self.model(
                [self.node("MatMulInteger", ["a", "b", "za", "zb"], ["y"])],
                [("a", ta), ("b", tb), ("za", ta), ("zb", tb)],
                [("y", "INT32")],
            ),
        )
        y: npt.NDArray[np.int32] = sess.run(None, {"a": a, "b": b, "za": za, "zb": zb})[0]
        return y

    def linear_integer(
        self,
        x: npt.NDArray[Any],
        w: npt.NDArray[Any],
        bias: npt.NDArray[np.int32],
        zx: npt.NDArray[Any],
        zw: npt.NDArray[Any],
        fx: IntFormat,
        fw: IntFormat,
    ) -> npt.NDArray[np.int32]:
        """Add(MatMulInteger(x, Transpose(w), zx, zw), bias) -> int32."""
        tx, tw = ONNX_INT[fx], ONNX_INT[fw]
        sess = self.session(
            ("Linear", tx, tw),
            lambda: self.model(
                [
                    self.node("Transpose", ["w"], ["wt"], perm=[1, 0]),
                    self.node("MatMulInteger", ["x", "wt", "zx", "zw"], ["acc"]),
                    self.node("Add", ["acc", "bias"], ["y"]),
                ],
                [("x", tx), ("w", tw), ("bias", "INT32"), ("zx", tx), ("zw", tw)],
                [("y", "INT32")],
            ),
        )
        y: npt.NDArray[np.int32] = sess.run(
            None, {"x": x, "w": w, "bias": bias, "zx": zx, "zw": zw}
        )[0]
        return y

    def qlinear_matmul(
        self,
        a: npt.NDArray[Any],
        sa: np.float32,
        za: npt.NDArray[Any],
        b: npt.NDArray[Any],
        sb: np.float32,
        zb: npt.NDArray[Any],
        sy: np.float32,
        zy: npt.NDArray[Any],
        fa: IntFormat,
        fb: IntFormat,
        fy: IntFormat,
    ) -> npt.NDArray[np.integer[Any]]:
        """QLinearMatMul(a, sa, za, b, sb, zb, sy, zy) -> int8/uint8 (scalars as inputs)."""
        ta, tb, ty = ONNX_INT[fa], ONNX_INT[fb], ONNX_INT[fy]
        sess = self.session(
            ("QLinearMatMul", ta, tb, ty),
            lambda: self.model(
                [self.node("QLinearMatMul", ["a", "sa", "za", "b", "sb", "zb", "sy", "zy"], ["y"])],
                [
                    ("a", ta),
                    ("sa", "FLOAT"),
                    ("za", ta),
                    ("b", tb),
                    ("sb", "FLOAT"),
                    ("zb", tb),
                    ("sy", "FLOAT"),
                    ("zy", ty),
                ],
                [("y", ty)],
            ),
        )
        feeds = {
            "a": a,
            "sa": np.array(sa, np.float32),
            "za": za,
            "b": b,
            "sb": np.array(sb, np.float32),
            "zb": zb,
            "sy": np.array(sy, np.float32),
            "zy": zy,
        }
        y: npt.NDArray[np.integer[Any]] = sess.run(None, feeds)[0]
        return y

    def quantize_linear(
        self,
        x: npt.NDArray[np.float32],
        scale: npt.NDArray[np.float32],
        zp: npt.NDArray[Any],
        fy: IntFormat,
        axis: int = 1,
    ) -> npt.NDArray[np.integer[Any]]:
        """QuantizeLinear(x, scale, zp) (per-tensor if ``scale`` is 0-d, else along ``axis``)."""
        ty = {8: "INT8", 16: "INT16"}[fy.bits] if fy.signed else {8: "UINT8", 16: "UINT16"}[fy.bits]
        sess = self.session(
            ("QuantizeLinear", ty, scale.ndim, axis),
            lambda: self.model(
                [self.node("QuantizeLinear", ["x", "s", "z"], ["y"], axis=axis)],
                [("x", "FLOAT"), ("s", "FLOAT"), ("z", ty)],
                [("y", ty)],
            ),
        )
        y: npt.NDArray[np.integer[Any]] = sess.run(None, {"x": x, "s": scale, "z": zp})[0]
        return y

    def dequantize_linear(
        self,
        x: npt.NDArray[Any],
        scale: npt.NDArray[np.float32],
        zp: npt.NDArray[Any],
        fx: IntFormat,
        axis: int = 1,
    ) -> npt.NDArray[np.float32]:
        """DequantizeLinear(x, scale, zp) -> float32."""
        names = {
            (8, True): "INT8",
            (8, False): "UINT8",
            (16, True): "INT16",
            (16, False): "UINT16",
            (32, True): "INT32",
        }
        tx = names[(fx.bits, fx.signed)]
        sess = self.session(
            ("DequantizeLinear", tx, scale.ndim, axis),
            lambda: self.model(
                [self.node("DequantizeLinear", ["x", "s", "z"], ["y"], axis=axis)],
                [("x", tx), ("s", "FLOAT"), ("z", tx)],
                [("y", "FLOAT")],
            ),
        )
        y: npt.NDArray[np.float32] = sess.run(None, {"x": x, "s": scale, "z": zp})[0]
        return y


def _dt(fmt: IntFormat) -> Any:
    return {INT8: np.int8, UINT8: np.uint8, INT16: np.int16, UINT16: np.uint16, INT32: np.int32}[
        fmt
    ]


def run_family(backend: OnnxGraphs, case: Case) -> dict[str, npt.NDArray[np.integer[Any]]]:
    """Run a family case on onnxruntime; float outputs come back as int32 bit patterns."""
    v = case.meta["variant"]
    p = case.meta["params"]
    if v == "quantize_linear":
        fmt = Q_FORMATS[p["out_format"]]
        x = f32_from_bits(case.tensors["x_bits"].values)
        s = f32_from_bits(p["scale"])
        z = np.asarray(p["zero_point"], _dt(fmt))
        axis = p.get("axis")
        if len(s) == 1:
            s, z = s.reshape(()), z.reshape(())
        y = backend.quantize_linear(x, s, z, fmt, 1 if axis is None else int(axis))
        return {"y": y}
    if v == "dequantize_linear":
        fmt = DQ_FORMATS[p["in_format"]]
        x = case.tensors["x"].values.astype(_dt(fmt))
        s = f32_from_bits(p["scale"])
        z = np.asarray(p["zero_point"], _dt(fmt))
        axis = p.get("axis")
        if len(s) == 1:
            s, z = s.reshape(()), z.reshape(())
        yf = backend.dequantize_linear(x, s, z, fmt, 1 if axis is None else int(axis))
        return {"y_bits": f32_bits(yf)}
    if v == "qlinear_matmul":
        fa, fb, fy = (IntFormat.parse(p[k]) for k in ("a_format", "b_format", "out_format"))
        sc = f32_from_bits(p["scales"])
        y = backend.qlinear_matmul(
            case.tensors["a"].values.astype(_dt(fa)),
            sc[0],
            np.array(p["a_zero_point"], _dt(fa)),
            case.tensors["b"].values.astype(_dt(fb)),
            sc[1],
            np.array(p["b_zero_point"], _dt(fb)),
            sc[2],
            np.array(p["y_zero_point"], _dt(fy)),
            fa,
            fb,
            fy,
        )
        return {"y": y}
    raise BackendError(f"onnxruntime: unknown onnx-family variant {v!r}")


__all__ = ["ONNX_INT", "OPSET", "OnnxGraphs", "run_family"]
