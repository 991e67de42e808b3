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

from refq.crosscheck.adapters.onnx_cases import family_supports, predicted_known
from refq.crosscheck.adapters.onnx_graphs import ONNX_INT, OPSET, OnnxGraphs, run_family
from refq.crosscheck.adapters.onnx_oracles import f32_exact, u8s8_pair_saturates
from refq.crosscheck.backend import Outputs
from refq.errors import BackendError
from refq.golden.case import Case
from refq.intmath import INT8, UINT8, IntFormat


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


def _fmt(d: Any) -> IntFormat:
    return d if isinstance(d, IntFormat) else IntFormat.parse(str(d))


class OnnxRuntimeBackend(OnnxGraphs):
    """refq cases as ONNX models on onnxruntime's CPUExecutionProvider (module docstring)."""

    def __init__(self, avoid_known: bool = False, threads: int = 1) -> None:
        super().__init__(threads)
        self.avoid_known = avoid_known
        if avoid_known:
            self.name = "onnxruntime-avoid-known"

    # ---------------------------------------------------------------- supports
    def supports(self, case: Case) -> bool:
        meta = case.meta
        op, variant = meta.get("op"), meta.get("variant")
        if op == "onnx":
            ok = family_supports(case)
            if ok and self.avoid_known:
                return not predicted_known(case)
            return ok
        if op not in ("matmul", "linear") or variant != "gemm":
            return False
        p = meta.get("params", {})
        try:
            fa, fb = _fmt(p["a_format"]), _fmt(p["b_format"])
        except Exception:
            return False
        if fa not in ONNX_INT or fb not in ONNX_INT or int(p.get("acc_bits", 32)) > 32:
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


__all__ = ["OPSET", "OnnxRuntimeBackend", "f32_exact", "u8s8_pair_saturates"]
