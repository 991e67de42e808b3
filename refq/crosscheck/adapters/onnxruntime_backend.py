"""The onnxruntime backend: refq cases run as small in-memory ONNX models on the CPU provider.

Which cases map (``supports`` is exact; every other case is reported as skipped):

- refq kernel ``matmul.gemm`` without requantization, operands int8/uint8, accumulator of at
  most 32 bits → ``MatMulInteger(a, b, a_zero_point, b_zero_point)`` (int32 out).
- refq kernel ``linear.gemm`` without requantization (same formats) →
  ``MatMulInteger(x, Transpose(w), zx, zw)`` then ``Add`` of the int32 bias.
- refq kernel ``matmul.gemm`` with a per-tensor ``dyadic`` requantization rounding
  ``half_even`` with input zero point 0 and an int8/uint8 output, whose multiplier
  b/2^c is a normal float32 → ``QLinearMatMul`` with a_scale = b/2^c, b_scale = y_scale = 1
  (ONNX: y = saturate(round_half_even(acc · a_scale·b_scale/y_scale) + y_zero_point)).
- the adapter's own case family (op ``onnx``, see :mod:`refq.crosscheck.adapters.onnx_cases`):
  ``quantize_linear``, ``dequantize_linear``, ``qlinear_matmul`` and ``matmul_integer`` cases
  whose expected outputs come from exact Python-integer / Fraction oracles of the ONNX
  formulas.

refq's TFLite requantizers (``double``/``single``) have no ONNX counterpart (ONNX
requantizes with a real scale), so cases using them are not supported.

``OnnxRuntimeBackend(avoid_known=True)`` additionally declines the cases that a known
disagreement of this machine predicts (u8×s8 MatMulInteger/QLinearMatMul whose 16-bit pair
sums saturate, see :func:`u8s8_pair_saturates`), so the rest of a key can be shown to agree;
the default backend runs them and the suite reports them as known disagreements.

onnx and onnxruntime are an optional extra (``pip install refq[onnx]``): they are imported
when the backend is created, and a missing one raises BackendError.
"""

from __future__ import annotations

from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.backend import Outputs
from refq.errors import BackendError
from refq.golden.case import Case
from refq.intmath import INT8, UINT8, IntFormat

OPSET = 21
_ONNX_INT = {INT8: "INT8", UINT8: "UINT8"}


def _np_dtype(fmt: IntFormat) -> type[np.integer[Any]]:
    table: dict[tuple[int, bool], type[np.integer[Any]]] = {
        (8, True): np.int8,
        (8, False): np.uint8,
        (16, True): np.int16,
        (16, False): np.uint16,
        (32, True): np.int32,
    }
    try:
        return table[(fmt.bits, fmt.signed)]
    except KeyError:
        raise BackendError(f"onnxruntime: no tensor type for {fmt.name}") from None


def f32_exact(q: Fraction) -> bool:
    """Whether the rational ``q`` is a normal float32 exactly (so ORT sees it unrounded)."""
    if q == 0:
        return False
    f = np.float32(float(q))
    return bool(np.isfinite(f)) and abs(f) >= np.finfo(np.float32).tiny and Fraction(float(f)) == q


def u8s8_pair_saturates(
    a: npt.NDArray[np.integer], b: npt.NDArray[np.integer], a_fmt: IntFormat, b_fmt: IntFormat
) -> bool:
    """Whether an AVX2 u8×s8 kernel (vpmaddubsw) would saturate a 16-bit pair sum.

    The kernel adds the products of adjacent k pairs (k = 2j, 2j+1) of the RAW operands (zero
    points are corrected afterwards) into an int16 with saturation. ``a`` (..., M, K) uint8,
    ``b`` (..., K, N) int8. True iff some pair sum lies outside [-32768, 32767].
    """
    if not (a_fmt == UINT8 and b_fmt == INT8):
        return False
    k = a.shape[-1]
    a64 = a.astype(np.int64)
    b64 = b.astype(np.int64)
    if k % 2:
        a64 = np.concatenate([a64, np.zeros((*a64.shape[:-1], 1), np.int64)], axis=-1)
        b64 = np.concatenate([b64, np.zeros((*b64.shape[:-2], 1, b64.shape[-1]), np.int64)], -2)
    ap = a64.reshape(*a64.shape[:-1], -1, 2)  # (..., M, K/2, 2)
    bp = np.swapaxes(b64, -1, -2).reshape(*b64.shape[:-2], b64.shape[-1], -1, 2)  # (..., N, K/2, 2)
    pair = np.einsum("...mjt,...njt->...mnj", ap, bp)
    return bool(np.any((pair > 32767) | (pair < -32768)))


def _fmt(d: Any) -> IntFormat:
    return d if isinstance(d, IntFormat) else IntFormat.parse(str(d))


class OnnxRuntimeBackend:
    """refq cases as ONNX models on onnxruntime's CPUExecutionProvider (module docstring)."""

    name = "onnxruntime"

    def __init__(self, avoid_known: bool = False, threads: int = 1) -> None:
        try:
            import onnx
            import onnxruntime
        except ImportError as exc:
            raise BackendError(
                f"onnxruntime backend needs the onnx extra: pip install 'refq[onnx]' ({exc})"
            ) from None
        self._onnx = onnx
        self._ort = onnxruntime
        self.avoid_known = avoid_known
        self.threads = threads
        self._sessions: dict[tuple[Any, ...], Any] = {}
        if avoid_known:
            self.name = "onnxruntime-avoid-known"

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

    # ---------------------------------------------------------------- supports
    def supports(self, case: Case) -> bool:
        meta = case.meta
        op, variant = meta.get("op"), meta.get("variant")
        if op == "onnx":
            from refq.crosscheck.adapters.onnx_cases import family_supports

            ok = family_supports(case)
            if ok and self.avoid_known:
                from refq.crosscheck.adapters.onnx_cases import predicted_known

                return not predicted_known(case)
            return ok
        if op not in ("matmul", "linear") or variant != "gemm":
            return False
        p = meta.get("params", {})
        try:
            fa, fb = _fmt(p["a_format"]), _fmt(p["b_format"])
        except Exception:
            return False
        if fa not in _ONNX_INT or fb not in _ONNX_INT or int(p.get("acc_bits", 32)) > 32:
            return False
        rq = p.get("requant")
        if rq is not None and not (op == "matmul" and self._qlinear_ok(rq, fa, fb)):
            return False
        if self.avoid_known:
            x = case.tensors["a" if op == "matmul" else "x"].values
            w = case.tensors["b" if op == "matmul" else "w"].values
            if op == "linear":
                w = w.T
            if u8s8_pair_saturates(x, w, fa, fb):
                return False
        return True

    @staticmethod
    def _qlinear_ok(rq: dict[str, Any], fa: IntFormat, fb: IntFormat) -> bool:
        if rq.get("family") != "dyadic" or rq.get("rounding") != "half_even":
            return False
        if len(rq.get("multiplier", ())) != 1 or int(rq.get("in_zero_point", 0)) != 0:
            return False
        if _fmt(rq.get("out_format")) != fa or (fa, fb) not in (
            (INT8, INT8),
            (UINT8, INT8),
            (UINT8, UINT8),
        ):
            return False
        return f32_exact(Fraction(int(rq["multiplier"][0]), 2 ** int(rq["shift"][0])))

    # ---------------------------------------------------------------- run
    def run(self, case: Case) -> Outputs:
        if not self.supports(case):
            raise BackendError(f"onnxruntime: case {case.name} is not supported")
        if case.meta.get("op") == "onnx":
            from refq.crosscheck.adapters.onnx_cases import run_family

            return run_family(self, case)
        p = case.meta["params"]
        fa, fb = _fmt(p["a_format"]), _fmt(p["b_format"])
        za = np.array(int(p["a_zero_point"]), _np_dtype(fa))
        zb = np.array(int(p["b_zero_point"]), _np_dtype(fb))
        if case.meta["op"] == "linear":
            x = case.tensors["x"].values.astype(_np_dtype(fa))
            w = case.tensors["w"].values.astype(_np_dtype(fb))
            bias = case.tensors["bias"].values.astype(np.int32)
            y = self.linear_integer(x, w, bias, za, zb, fa, fb)
            return {"y": y}
        a = case.tensors["a"].values.astype(_np_dtype(fa))
        b = case.tensors["b"].values.astype(_np_dtype(fb))
        rq = p.get("requant")
        if rq is None:
            return {"y": self.matmul_integer(a, b, za, zb, fa, fb)}
        out = _fmt(rq["out_format"])
        scale = np.float32(int(rq["multiplier"][0]) / 2.0 ** int(rq["shift"][0]))
        zy = np.array(int(rq["out_zero_point"]), _np_dtype(out))
        yq = self.qlinear_matmul(a, scale, za, b, np.float32(1), zb, np.float32(1), zy, fa, fb, out)
        return {"y": yq}

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
        ta, tb = _ONNX_INT[fa], _ONNX_INT[fb]
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
        tx, tw = _ONNX_INT[fx], _ONNX_INT[fw]
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
    ) -> npt.NDArray[np.integer]:
        """QLinearMatMul(a, sa, za, b, sb, zb, sy, zy) -> int8/uint8 (scalars as inputs)."""
        ta, tb, ty = _ONNX_INT[fa], _ONNX_INT[fb], _ONNX_INT[fy]
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
        y: npt.NDArray[np.integer] = sess.run(None, feeds)[0]
        return y

    def quantize_linear(
        self,
        x: npt.NDArray[np.float32],
        scale: npt.NDArray[np.float32],
        zp: npt.NDArray[Any],
        fy: IntFormat,
        axis: int = 1,
    ) -> npt.NDArray[np.integer]:
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
        y: npt.NDArray[np.integer] = sess.run(None, {"x": x, "s": scale, "z": zp})[0]
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


__all__ = ["OPSET", "OnnxRuntimeBackend", "f32_exact", "u8s8_pair_saturates"]
