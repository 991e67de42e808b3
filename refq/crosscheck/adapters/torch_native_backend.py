"""The torch-native backend: refq cases run through PyTorch's own quantized CPU kernels
(``torch.ops.quantized``), once per engine of ``torch.backends.quantized.supported_engines``
(x86, fbgemm, onednn, qnnpack here), and ``torch._int_mm`` (cuBLAS int8 GEMM) on CUDA.

Which cases map (``supports`` is exact; everything else is reported as skipped):

- ``linear.gemm`` requantized by the engine's rule (:data:`LINEAR_RULES`: ``fp32`` on x86,
  fbgemm and qnnpack; ``fp32_zp`` — the output zero point added before the rounding — on
  onednn), per tensor or per channel → ``quantized::linear``. Activations quint8 (every
  engine) or qint8 (onednn), weights qint8 (onednn: zero point 0), output the activation's
  type. Scales s_x = 1, s_w[j] = m_j·2^-c_j, s_out = 1, so every engine's float derivation
  (``(s_x·s_w)/s_out`` in float or double) yields the case's multiplier exactly. refq's
  int32 bias (and the requantization's input zero point) is not passed as PyTorch's float
  bias (which engines add in float32): it is folded, exactly, into extra input columns
  (:func:`~refq.crosscheck.adapters.engine_common.solve_columns`).
- ``requantize.<rule>`` with a uint8 (int8: onednn) output → the same op on synthesized
  operands: one activation row per element whose dot product with shared weights is exactly
  the element (``x - in_zero_point``), one output channel per multiplier; the diagonal is
  read back.
- ``matmul.gemm`` with a power-of-two ``fp32_zp`` (m = 1) requantization, operands both
  uint8 or both int8, K·max|a - za|·max|b - zb| < 2^24 → ``quantized::matmul``. On x86
  builds this op dequantizes to float32, runs ``torch.matmul`` and ``quantize_per_tensor``
  (qmatmul.cpp without USE_RUY_QMATMUL), which adds the zero point before rounding: exact
  under that bound with power-of-two scales, which is what ``supports`` requires.
- on CUDA (``device="cuda"``): ``matmul.gemm`` / ``linear.gemm`` without requantization,
  int8 operands with zero points 0 → ``torch._int_mm`` (int8 × int8 → int32; cuBLAS needs
  M > 16 and K, N multiples of 8, so operands are zero-padded).

``defect="zero_point"`` builds a deliberately wrong adapter (the output zero point handed to
the engine is off by one): the negative control the tests require the suite to catch.

torch is the ``torch`` extra: imported when a backend is created (BackendError if missing).
"""

from __future__ import annotations

import contextlib
import warnings
from collections.abc import Iterator
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.engine_common import AllAgree, solve_columns
from refq.crosscheck.backend import Outputs, SuiteExtras
from refq.errors import BackendError
from refq.golden.case import Case
from refq.intmath import INT8, UINT8, IntFormat

DEFECTS = ("", "zero_point")
LINEAR_RULES = {"x86": "fp32", "fbgemm": "fp32", "qnnpack": "fp32", "onednn": "fp32_zp"}
"""The refq requantize variant of each engine's quantized::linear (measured, module doc)."""
_FLOAT_EXACT = 1 << 24  # binary32 represents every integer of magnitude <= 2^24


def _torch() -> Any:
    try:
        import torch
    except ImportError as exc:  # pragma: no cover - depends on the environment
        raise BackendError(f"torch-native backend needs the torch extra ({exc})") from None
    return torch


def engines() -> tuple[str, ...]:
    """The quantized engines this torch build offers (``supported_engines`` minus 'none')."""
    torch = _torch()
    return tuple(e for e in torch.backends.quantized.supported_engines if e != "none")


def _fmt(v: Any) -> IntFormat:
    return v if isinstance(v, IntFormat) else IntFormat.parse(str(v))


class TorchNativeEngine:
    """One quantized engine (``fbgemm``, ``x86``, ``onednn``, ``qnnpack``) as a backend."""

    def __init__(self, engine: str, defect: str = "") -> None:
        self.torch = _torch()
        if engine not in engines():
            raise BackendError(
                f"torch-native: engine {engine!r} not in this build's {engines()}"
            )
        if defect not in DEFECTS:
            raise BackendError(f"torch-native: unknown defect {defect!r}")
        self.engine = engine
        self.defect = defect
        self.name = f"torch-native-{engine}" + (f"-wrong-{defect}" if defect else "")

    def suite_extras(self) -> SuiteExtras:
        from refq.crosscheck.adapters.torch_native_cases import extras

        return extras(self.engine)

    # ------------------------------------------------------------------ support
    def _act_formats(self) -> tuple[IntFormat, ...]:
        return (UINT8, INT8) if self.engine == "onednn" else (UINT8,)

    def supports(self, case: Case) -> bool:
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        p = case.meta.get("params", {})
        try:
            if key == "linear.gemm":
                return self._linear_plan(case) is not None
            if key == f"requantize.{self.linear_rule}":
                return self._requant_plan(case) is not None
            if key == "matmul.gemm":
                return self._matmul_ok(p, case)
        except (KeyError, TypeError, ValueError):
            return False
        return False

    @property
    def linear_rule(self) -> str:
        """The refq variant of this engine's ``quantized::linear`` requantization
        (:data:`LINEAR_RULES`)."""
        return LINEAR_RULES.get(self.engine, "fp32")

    def _fp32_requant(self, rq: Any, family: str | None = None) -> bool:
        """A requantization by ``family`` (default: this engine's linear rule) with nonzero
        multipliers (a zero scale is refused by torch's quantized tensors)."""
        return (isinstance(rq, dict) and rq.get("family") == (family or self.linear_rule)
                and all(int(m) > 0 for m in rq["multiplier"]))

    def _linear_plan(self, case: Case) -> tuple[Any, ...] | None:
        p = case.meta["params"]
        rq = p.get("requant")
        if not self._fp32_requant(rq):
            return None
        fa, fb, out = _fmt(p["a_format"]), _fmt(p["b_format"]), _fmt(rq["out_format"])
        if fa not in self._act_formats() or fb != INT8 or out != fa:
            return None
        if int(p.get("acc_bits", 32)) > 32:
            return None
        za, zw = int(p["a_zero_point"]), int(p["b_zero_point"])
        if self.engine == "onednn" and zw != 0:
            return None
        bias = case.tensors["bias"].values.astype(np.int64)
        n = case.tensors["w"].values.shape[0]
        targets = np.broadcast_to(bias, (n,)) - int(rq.get("in_zero_point", 0))
        deltas = sorted({fa.max - za, fa.min - za} - {0}, key=lambda d: -abs(d))
        units = [d for d in (1, -1) if fa.min <= za + d <= fa.max]
        cols = solve_columns([int(t) for t in targets], [*deltas, *units],
                             fb.min - zw, fb.max - zw)
        return None if cols is None else cols

    def _requant_plan(self, case: Case) -> tuple[Any, ...] | None:
        p = case.meta["params"]
        out = _fmt(p["out_format"])
        if out not in self._act_formats() or not self._fp32_requant(p):
            return None
        x = case.tensors["x"].values.astype(np.int64) - int(p.get("in_zero_point", 0))
        za = 128 if out == UINT8 else 0
        lo, hi = out.min - za, out.max - za
        cols = solve_columns([int(v) for v in x.reshape(-1)], [127, -128, 1, -1], lo, hi)
        return None if cols is None else (cols, za)

    def _matmul_ok(self, p: dict[str, Any], case: Case) -> bool:
        rq: dict[str, Any] = p.get("requant") or {}
        if not self._fp32_requant(rq, "fp32_zp") or len(rq["multiplier"]) != 1:
            return False
        if int(rq["multiplier"][0]) != 1 or int(rq.get("in_zero_point", 0)) != 0:
            return False
        fa, fb, out = _fmt(p["a_format"]), _fmt(p["b_format"]), _fmt(rq["out_format"])
        if fa != fb or fa not in (UINT8, INT8) or out != fa:
            return False
        a, b = case.tensors["a"].values, case.tensors["b"].values
        if a.ndim != b.ndim:
            return False
        bound = (a.shape[-1] * _mag(fa, int(p["a_zero_point"]))
                 * _mag(fb, int(p["b_zero_point"])))
        return bool(bound < _FLOAT_EXACT)

    # ------------------------------------------------------------------ run
    def run(self, case: Case) -> Outputs:
        if not self.supports(case):
            raise BackendError(f"{self.name}: case {case.name} is not supported")
        key = f"{case.meta['op']}.{case.meta['variant']}"
        with self._engine():
            if key == "linear.gemm":
                return {"y": self._linear(case)}
            if key.startswith("requantize."):
                return {"y": self._requantize(case)}
            return {"y": self._matmul(case)}

    @contextlib.contextmanager
    def _engine(self) -> Iterator[None]:
        q = self.torch.backends.quantized
        before = q.engine
        q.engine = self.engine
        try:
            with warnings.catch_warnings():  # quantized tensor creation is deprecated
                warnings.simplefilter("ignore")
                yield
        finally:
            q.engine = before

    def _zero_point(self, zp: int) -> int:
        return zp + 1 if self.defect == "zero_point" else zp

    def _qtensor(self, v: npt.NDArray[np.int64], fmt: IntFormat, scale: float, zp: int) -> Any:
        torch = self.torch
        dtype = torch.uint8 if fmt == UINT8 else torch.int8
        return torch._make_per_tensor_quantized_tensor(
            torch.from_numpy(np.ascontiguousarray(v.astype(np.uint8 if fmt == UINT8 else np.int8))
                             ).to(dtype), scale, zp)

    def _weights(self, w: npt.NDArray[np.int64], zw: int, scales: list[float]) -> Any:
        torch = self.torch
        wt = torch.from_numpy(np.ascontiguousarray(w.astype(np.int8)))
        if len(scales) == 1:
            return torch._make_per_tensor_quantized_tensor(wt, scales[0], zw)
        return torch._make_per_channel_quantized_tensor(
            wt,
            torch.tensor(scales, dtype=torch.double),
            torch.full((len(scales),), zw, dtype=torch.long),
            0,
        )

    def _linear_op(
        self, x: npt.NDArray[np.int64], fa: IntFormat, za: int, w: npt.NDArray[np.int64],
        zw: int, rq: dict[str, Any],
    ) -> npt.NDArray[np.int64]:
        """quantized::linear(x, w) with the scales of the module docstring; (M, N)."""
        ms = [int(v) for v in rq["multiplier"]]
        cs = [int(v) for v in rq["shift"]]
        n = w.shape[0]
        ms = ms * n if len(ms) == 1 else ms
        cs = cs * n if len(cs) == 1 else cs
        # s_x = 1, s_w[j] = m_j · 2^-c_j, s_out = 1: every float derivation is exact
        w_scales = [m * 2.0**-c for m, c in zip(ms, cs, strict=True)]
        qx = self._qtensor(x, fa, 1.0, za)
        qw = self._weights(w, zw, w_scales if len(set(w_scales)) > 1 else w_scales[:1])
        packed = self.torch.ops.quantized.linear_prepack(qw, None)
        out_zp = self._zero_point(int(rq["out_zero_point"]))
        y = self.torch.ops.quantized.linear(qx, packed, 1.0, out_zp)
        return np.asarray(y.int_repr().numpy(), dtype=np.int64)

    def _linear(self, case: Case) -> npt.NDArray[np.int64]:
        p = case.meta["params"]
        rq = p["requant"]
        fa = _fmt(p["a_format"])
        za, zw = int(p["a_zero_point"]), int(p["b_zero_point"])
        x = case.tensors["x"].values.astype(np.int64)
        w = case.tensors["w"].values.astype(np.int64)
        plan = self._linear_plan(case)
        assert plan is not None
        e, d = plan  # bias columns: (x - za) = d for every row, (w - zw) = e per channel
        lead = x.shape[:-1]
        x2 = x.reshape(-1, x.shape[-1])
        x_aug = np.concatenate([x2, np.broadcast_to(za + d, (x2.shape[0], d.size))], axis=1)
        w_aug = np.concatenate([w, e + zw], axis=1)
        y = self._linear_op(x_aug, fa, za, w_aug, zw, rq)
        return y.reshape((*lead, w.shape[0]))

    def _requantize(self, case: Case) -> npt.NDArray[np.int64]:
        p = case.meta["params"]
        out = _fmt(p["out_format"])
        x = case.tensors["x"].values
        plan = self._requant_plan(case)
        assert plan is not None
        (e, d), za = plan
        c = x.shape[-1] if x.ndim and len(p["multiplier"]) > 1 else 1
        rows = za + e  # one activation row per element, row-major over x
        w = np.broadcast_to(d, (c, d.size))  # the same weights for every channel
        rq = {k: p[k] for k in ("multiplier", "shift", "out_zero_point")}
        y = self._linear_op(rows, out, za, np.ascontiguousarray(w), 0, rq)  # (x.size, c)
        idx = np.arange(x.size)
        chan = idx % c if c > 1 else np.zeros_like(idx)
        return np.asarray(y[idx, chan].reshape(x.shape), dtype=np.int64)

    def _matmul(self, case: Case) -> npt.NDArray[np.int64]:
        p = case.meta["params"]
        rq = p["requant"]
        fa = _fmt(p["a_format"])
        a = case.tensors["a"].values.astype(np.int64)
        b = case.tensors["b"].values.astype(np.int64)
        qa = self._qtensor(a, fa, 1.0, int(p["a_zero_point"]))
        qb = self._qtensor(b, fa, 1.0, int(p["b_zero_point"]))
        scale = 2.0 ** int(rq["shift"][0])
        y = self.torch.ops.quantized.matmul(qa, qb, scale,
                                            self._zero_point(int(rq["out_zero_point"])))
        return np.asarray(y.int_repr().numpy(), dtype=np.int64)


def _mag(fmt: IntFormat, zp: int) -> int:
    return max(abs(fmt.min - zp), abs(fmt.max - zp))


class TorchIntMM:
    """``torch._int_mm`` (cuBLAS int8 GEMM on CUDA) for zero-point-free int8 GEMM cases.
    ``device="cpu"`` runs the same code path on torch's CPU ``_int_mm`` (how the adapter is
    tested on machines without a GPU; it says nothing about cuBLAS)."""

    def suite_extras(self) -> SuiteExtras:
        from refq.crosscheck.adapters.torch_native_cases import extras

        return extras("cuda")

    def __init__(self, device: str = "cuda") -> None:
        self.torch = _torch()
        if device.startswith("cuda") and not self.torch.cuda.is_available():
            raise BackendError("torch-native-cuda: torch.cuda is not available here")
        self.device = device
        self.name = "torch-native-cuda" if device.startswith("cuda") else f"torch-int-mm-{device}"

    def supports(self, case: Case) -> bool:
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        p = case.meta.get("params", {})
        if key not in ("matmul.gemm", "linear.gemm") or p.get("requant") is not None:
            return False
        try:
            fa, fb = _fmt(p["a_format"]), _fmt(p["b_format"])
        except (KeyError, ValueError):
            return False
        return (fa == fb == INT8 and int(p["a_zero_point"]) == 0 == int(p["b_zero_point"])
                and int(p.get("acc_bits", 32)) <= 32)

    def run(self, case: Case) -> Outputs:
        torch = self.torch
        if case.meta["op"] == "linear":
            a = case.tensors["x"].values
            b = case.tensors["w"].values.T
        else:
            a, b = case.tensors["a"].values, case.tensors["b"].values
        lead = np.broadcast_shapes(a.shape[:-2], b.shape[:-2]) if a.ndim > 2 else ()
        a3 = np.broadcast_to(a, (*lead, *a.shape[-2:])).reshape(-1, *a.shape[-2:])
        b3 = np.broadcast_to(b, (*lead, *b.shape[-2:])).reshape(-1, *b.shape[-2:])
        outs = [self._mm(torch, ai, bi, self.device) for ai, bi in zip(a3, b3, strict=True)]
        y = np.stack(outs).reshape((*lead, a.shape[-2], b.shape[-1]))
        if case.meta["op"] == "linear":
            y = y + case.tensors["bias"].values.astype(np.int64)
        return {"y": y}

    @staticmethod
    def _mm(torch: Any, a: npt.NDArray[Any], b: npt.NDArray[Any], device: str
            ) -> npt.NDArray[np.int64]:
        m, k = a.shape
        n = b.shape[1]
        mp, kp, np_ = max(m, 17), -(-k // 8) * 8, -(-n // 8) * 8  # cuBLAS shape rules
        ap = np.zeros((mp, kp), np.int8)
        bp = np.zeros((kp, np_), np.int8)
        ap[:m, :k] = a
        bp[:k, :n] = b
        y = torch._int_mm(torch.from_numpy(ap).to(device), torch.from_numpy(bp).to(device))
        return np.asarray(y.cpu().numpy()[:m, :n], dtype=np.int64)


def engine_backend(engine: str, defect: str = "") -> TorchNativeEngine:
    return TorchNativeEngine(engine, defect)


def torch_native() -> AllAgree:
    """Every engine of this build: a case passes when every engine that supports it returns
    refq's output (disagreeing engines raise BackendError naming both)."""
    from refq.crosscheck.adapters.torch_native_cases import extras

    return AllAgree("torch-native", [TorchNativeEngine(e) for e in engines()], extras)


def fbgemm() -> TorchNativeEngine:
    return TorchNativeEngine("fbgemm")


def x86() -> TorchNativeEngine:
    return TorchNativeEngine("x86")


def onednn() -> TorchNativeEngine:
    return TorchNativeEngine("onednn")


def qnnpack() -> TorchNativeEngine:
    return TorchNativeEngine("qnnpack")


def cuda() -> TorchIntMM:
    return TorchIntMM()


__all__ = [
    "DEFECTS",
    "TorchIntMM",
    "TorchNativeEngine",
    "cuda",
    "engine_backend",
    "engines",
    "fbgemm",
    "onednn",
    "qnnpack",
    "torch_native",
    "x86",
]
