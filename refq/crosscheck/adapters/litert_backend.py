"""The LiteRT (TFLite) backend: refq cases as small int8/int16 ``.tflite`` models, run by
``ai_edge_litert``'s interpreter with one of three op resolvers:

``ref``        ``OpResolverType.BUILTIN_REF``: the reference kernels (``reference_ops``) —
               what refq's TFLite variants claim to be.
``default``    ``OpResolverType.BUILTIN``: the optimized kernels plus the default XNNPACK
               delegate (what an application gets).
``optimized``  ``OpResolverType.BUILTIN_WITHOUT_DEFAULT_DELEGATES``: the optimized kernels
               alone (on x86: ruy for GEMM).

The models are written directly as flatbuffers
(:mod:`refq.crosscheck.adapters.tflite_flatbuffer`) so every float32 scale is chosen here.

Each resolver requantizes an op by one rule, with the multiplier derived from the float32
scales in its own way (measured on this wheel, docs/backends/litert.md); :data:`RULES`:

=====================  ===========================  ==================================
op, resolver           refq family                  scale → parameter derivation
=====================  ===========================  ==================================
FULLY_CONNECTED ref    ``fp64`` (round half away)   double(s_x)·double(s_w)/double(s_o)
FULLY_CONNECTED opt.   ``double_up`` (ruy x86)      QM(double(f32(s_x·s_w))/double(s_o))
FULLY_CONNECTED dflt   ``fp32`` (XNNPACK)           f32(f32(s_x·s_w)/s_o)
BATCH_MATMUL ref/opt.  ``double`` (gemmlowp)        QM(double(f32(s_a·s_b))/double(s_o))
BATCH_MATMUL dflt      ``fp32`` (XNNPACK)           f32(f32(s_a·s_b)/s_o)
=====================  ===========================  ==================================

(QM: TFLite's QuantizeMultiplier; f32: rounding to float32; the uint8 FULLY_CONNECTED
follows the int8 rows.)

A case maps to a resolver only if its family is that resolver's rule for the op and the
resolver's derivation reproduces the case's integer parameters exactly from scales chosen
here (:func:`scales_for_family`) or carried by the case (``meta["litert"]``, from the
adapter's own strategies); every other case is reported as skipped. So each resolver is
checked against the refq family that predicts it, and the rule table itself is the finding
(refq's ``single`` family matches no kernel of this double-rounding build).

Which cases map (``supports`` is exact):

- ``requantize.<rule>`` with an int8/uint8 output → FULLY_CONNECTED with zero inputs and
  weights and the values as the int32 bias (acc = bias), one op per channel multiplier
  (``fp64``, ``fp32``, ``double_up``); ``requantize.double`` → BATCH_MATMUL on synthesized
  operands whose dot products are the values (ref / optimized).
- ``linear.gemm`` (requantized by the resolver's FULLY_CONNECTED rule): int8 x (any zero
  point) × int8 w (zero point 0) → int8; uint8 × uint8 (any zero points) → uint8. The
  requantization's input zero point is folded into the bias.
- ``matmul.gemm``: int8 × int8 without requantization → BATCH_MATMUL with an int32 output
  (which ignores nonzero zero points: a known engine bug); with a per-tensor requantization
  by the resolver's BATCH_MATMUL rule → BATCH_MATMUL int8.
- ``softmax.tflite`` (int8 → int8 or uint8 → uint8) → SOFTMAX with float32 (beta, input
  scale) whose double product reproduces the case's input multiplier and shift.
- ``gelu.lut`` cases carrying their scales (``meta["litert"]``) → GELU (approximate=False).

``defect="zero_point"`` declares the output zero point off by one: the deliberately wrong
adapter the tests require the suite to catch.

Needs the ``litert`` extra (ai-edge-litert, tflite, flatbuffers); imported when a backend
is created (BackendError if missing).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.engine_common import AllAgree, solve_columns
from refq.crosscheck.adapters.litert_rules import (
    RULE_CPU,
    RULES,
    derive,
    f32,
    scales_for,
    scales_for_family,
)
from refq.crosscheck.adapters.tflite_flatbuffer import OpDef, TensorDef, build_model
from refq.crosscheck.backend import Outputs, SuiteExtras
from refq.crosscheck.cpu import condition_holds, cpu_flags
from refq.errors import BackendError
from refq.golden.case import Case
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat

RESOLVERS = {
    "ref": "BUILTIN_REF",
    "default": "BUILTIN",
    "optimized": "BUILTIN_WITHOUT_DEFAULT_DELEGATES",
}
DEFECTS = ("", "zero_point")
_DTYPE = {INT8: "int8", UINT8: "uint8", INT16: "int16", INT32: "int32"}
_NP = {"int8": np.int8, "uint8": np.uint8, "int16": np.int16, "int32": np.int32,
       "int64": np.int64}


def _interpreter_module() -> Any:
    try:
        from ai_edge_litert import interpreter
    except ImportError as exc:
        raise BackendError(
            f"litert backend needs the litert extra: pip install 'refq[litert]' ({exc})"
        ) from None
    return interpreter


def _fmt(v: Any) -> IntFormat:
    return v if isinstance(v, IntFormat) else IntFormat.parse(str(v))


# ------------------------------------------------------------------ model plans
@dataclass
class Plan:
    """A model, its input feeds, and how to turn its outputs into the case's ``y``."""

    model: bytes
    feeds: list[npt.NDArray[Any]]
    finish: Callable[[list[npt.NDArray[Any]]], npt.NDArray[np.int64]]


def _fc_op(inputs: tuple[int, ...], out: int) -> OpDef:
    return OpDef("FULLY_CONNECTED", inputs, (out,), ("FullyConnectedOptions", {}))


class _Builder:
    """Tensors and ops of one model under construction."""

    def __init__(self) -> None:
        self.tensors: list[TensorDef] = []
        self.ops: list[OpDef] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []
        self.feeds: list[npt.NDArray[Any]] = []

    def tensor(self, t: TensorDef) -> int:
        self.tensors.append(t)
        return len(self.tensors) - 1

    def input(self, t: TensorDef, value: npt.NDArray[Any]) -> int:
        i = self.tensor(t)
        self.inputs.append(i)
        self.feeds.append(np.ascontiguousarray(value, dtype=_NP[t.dtype]))
        return i

    def output(self, t: TensorDef) -> int:
        i = self.tensor(t)
        self.outputs.append(i)
        return i

    def model(self) -> bytes:
        return build_model(self.tensors, self.ops, self.inputs, self.outputs)


def _requant_of(p: dict[str, Any]) -> tuple[list[int], list[int], str, int, IntFormat, int]:
    return ([int(v) for v in p["multiplier"]], [int(v) for v in p["shift"]], str(p["family"]),
            int(p.get("out_zero_point", 0)), _fmt(p["out_format"]), int(p.get("in_zero_point", 0)))


class LiteRtResolver:
    """One LiteRT op resolver (``ref``, ``default``, ``optimized``) as a backend."""

    def __init__(self, resolver: str = "ref", defect: str = "", threads: int = 1) -> None:
        if resolver not in RESOLVERS:
            raise BackendError(f"litert: resolver {resolver!r} not in {sorted(RESOLVERS)}")
        if defect not in DEFECTS:
            raise BackendError(f"litert: unknown defect {defect!r}")
        self._mod = _interpreter_module()
        self.resolver = resolver
        self.defect = defect
        self.threads = threads
        self.name = f"litert-{resolver}" + (f"-wrong-{defect}" if defect else "")
        self._last: tuple[Case, Plan | None] | None = None  # supports() then run(): one plan

    def suite_extras(self) -> SuiteExtras:
        from refq.crosscheck.adapters.litert_cases import extras

        return extras(self.resolver)

    def versions(self) -> dict[str, str]:
        import importlib.metadata as md

        return {n: md.version(n) for n in ("ai-edge-litert", "tflite", "flatbuffers")}

    # ------------------------------------------------------------------ protocol
    def supports(self, case: Case) -> bool:
        return self._plan(case) is not None

    def run(self, case: Case) -> Outputs:
        plan = self._plan(case)
        if plan is None:
            raise BackendError(f"{self.name}: case {case.name} is not supported")
        resolver = getattr(self._mod.OpResolverType, RESOLVERS[self.resolver])
        try:
            it = self._mod.Interpreter(model_content=plan.model, num_threads=self.threads,
                                       experimental_op_resolver_type=resolver)
            it.allocate_tensors()
            for detail, value in zip(it.get_input_details(), plan.feeds, strict=True):
                it.set_tensor(detail["index"], value)
            it.invoke()
            outs = [np.array(it.get_tensor(d["index"])) for d in it.get_output_details()]
        except (RuntimeError, ValueError) as exc:  # the interpreter refused the model
            raise BackendError(f"{self.name}: LiteRT refused case {case.name}: {exc}") from None
        return {"y": plan.finish(outs)}

    def _plan(self, case: Case) -> Plan | None:
        if self._last is not None and self._last[0] is case:  # held, so never a reused id
            return self._last[1]
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        planner = {
            "requantize.fp64": self._requantize, "requantize.fp32": self._requantize,
            "requantize.double_up": self._requantize, "requantize.double": self._requantize,
            "linear.gemm": self._linear, "matmul.gemm": self._matmul,
            "softmax.tflite": self._softmax, "gelu.lut": self._gelu,
        }.get(key)
        plan = None
        if planner is not None:
            try:
                plan = planner(case)
            except (KeyError, TypeError, ValueError):
                plan = None
        self._last = (case, plan)
        return plan

    def _out_zp(self, zp: int) -> int:
        return zp + 1 if self.defect == "zero_point" else zp

    def rule(self, op: str) -> str | None:
        """The refq family this resolver requantizes ``op`` with (:data:`RULES`), None where
        this CPU is not one the rule was measured on (:data:`RULE_CPU`)."""
        when = RULE_CPU.get(self.resolver)
        flags = cpu_flags()
        if when is not None and flags is not None and not condition_holds(when, flags):
            return None
        return RULES.get((op, self.resolver))

    # ------------------------------------------------------------------ requantize
    def _requantize(self, case: Case) -> Plan | None:
        ms, ss, family, zo, out, in_zp = _requant_of(case.meta["params"])
        if out not in (INT8, UINT8) or (out == UINT8 and family != self.rule("fully_connected")):
            return None
        x = case.tensors["x"].values.astype(np.int64) - in_zp
        channels = x.shape[-1] if x.ndim and len(ms) > 1 else 1
        cols = x.reshape(-1, channels) if x.ndim else x.reshape(1, 1)
        if family == self.rule("fully_connected"):
            build = self._requant_fc
        elif family == self.rule("batch_matmul"):
            build = self._requant_bmm
        else:
            return None
        b = _Builder()
        for j in range(channels):
            sc = scales_for_family(family, ms[j if len(ms) > 1 else 0],
                                   ss[j if len(ss) > 1 else 0])
            if sc is None or not build(b, cols[:, j], sc, zo, out):
                return None

        def finish(outs: list[npt.NDArray[Any]]) -> npt.NDArray[np.int64]:
            y = np.stack([o.reshape(-1) for o in outs], axis=-1).astype(np.int64)
            return np.asarray(y.reshape(x.shape), dtype=np.int64)

        return Plan(b.model(), b.feeds, finish)

    def _requant_fc(self, b: _Builder, acc: npt.NDArray[np.int64],
                    scales: tuple[float, float, float], zo: int, out: IntFormat) -> bool:
        """One FULLY_CONNECTED whose accumulators are ``acc``: zero input and weights (at
        their zero points), the values as the int32 bias; int8 or (legacy) uint8."""
        s_x, s_w, s_o = scales
        n = acc.size
        dt, zw = ("uint8", 128) if out == UINT8 else ("int8", 0)
        xi = b.input(TensorDef((1, 1), dt, (s_x,), (0,)), np.zeros((1, 1)))
        wi = b.tensor(TensorDef((n, 1), dt, (s_w,), (zw,), data=np.full((n, 1), zw)))
        bi = b.tensor(TensorDef((n,), "int32", (f32(s_x * s_w),), (0,), data=acc))
        oi = b.output(TensorDef((1, n), dt, (s_o,), (self._out_zp(zo),)))
        b.ops.append(_fc_op((xi, wi, bi), oi))
        return True

    def _requant_bmm(self, b: _Builder, acc: npt.NDArray[np.int64],
                     scales: tuple[float, float, float], zo: int, out: IntFormat) -> bool:
        """One BATCH_MATMUL whose dot products are ``acc``: a row per value against shared
        columns (:func:`~refq.crosscheck.adapters.engine_common.solve_columns`)."""
        cols = solve_columns([int(v) for v in acc], [127, -128, 1, -1], -128, 127)
        if cols is None or out != INT8:
            return False
        e, d = cols
        s_a, s_b, s_o = scales
        n, k = e.shape
        ai = b.input(TensorDef((1, n, k), "int8", (s_a,), (0,)), e.reshape(1, n, k))
        bi = b.input(TensorDef((1, k, 1), "int8", (s_b,), (0,)), d.reshape(1, k, 1))
        oi = b.output(TensorDef((1, n, 1), "int8", (s_o,), (self._out_zp(zo),)))
        b.ops.append(OpDef("BATCH_MATMUL", (ai, bi), (oi,), ("BatchMatMulOptions", {})))
        return True

    # ------------------------------------------------------------------ linear
    def _linear(self, case: Case) -> Plan | None:
        p = case.meta["params"]
        rq = p.get("requant")
        if not isinstance(rq, dict):
            return None
        ms, ss, family, zo, out, in_zp = _requant_of(rq)
        fa, fb = _fmt(p["a_format"]), _fmt(p["b_format"])
        za, zw = int(p["a_zero_point"]), int(p["b_zero_point"])
        kind = {(INT8, INT8, INT8): "int8", (UINT8, UINT8, UINT8): "uint8"}.get((fa, fb, out))
        op = {"int8": "fully_connected", "uint8": "fully_connected_uint8"}.get(kind or "")
        if op is None or family != self.rule(op) or (kind == "int8" and zw != 0):
            return None
        x = case.tensors["x"].values.astype(np.int64)
        w = case.tensors["w"].values.astype(np.int64)
        n, k = w.shape
        bias = np.broadcast_to(case.tensors["bias"].values.astype(np.int64), (n,)) - in_zp
        scales = self._gemm_scales(case, family, ms, ss)
        if scales is None:
            return None
        s_x, s_w, s_o = scales
        x2 = x.reshape(-1, k)
        b = _Builder()
        dtype = "uint8" if kind == "uint8" else "int8"
        xi = b.input(TensorDef(x2.shape, dtype, (s_x,), (za,)), x2)
        wi = b.tensor(TensorDef((n, k), dtype, tuple(s_w), (zw,) * len(s_w), 0, data=w))
        bi = b.tensor(TensorDef((n,), "int32", tuple(f32(s_x * v) for v in s_w),
                                (0,) * len(s_w), 0, data=bias))
        oi = b.output(TensorDef((x2.shape[0], n), dtype, (s_o,), (self._out_zp(zo),)))
        b.ops.append(_fc_op((xi, wi, bi), oi))
        lead = x.shape[:-1]
        return Plan(b.model(), b.feeds,
                    lambda outs: outs[0].astype(np.int64).reshape((*lead, n)))

    def _gemm_scales(self, case: Case, family: str, ms: list[int], ss: list[int]
                     ) -> tuple[float, list[float], float] | None:
        """(input scale, weight scales, output scale) from which ``family``'s derivation
        yields the multipliers: the case's own (``meta["litert"]``, checked) or, per tensor,
        found by :func:`scales_for_family`."""
        given = case.meta.get("litert")
        want = list(zip(ms, ss, strict=True))
        if isinstance(given, dict):
            s_x = float(given["input_scale"])
            s_w = [float(v) for v in given["weight_scales"]]
            s_o = float(given.get("output_scale", 1.0))
            derived = [derive(family, s_x, v, s_o) for v in s_w]
            return (s_x, s_w, s_o) if derived == want else None
        if len(ms) != 1:
            return None  # per-channel multipliers need scales chosen up front
        sc = scales_for_family(family, ms[0], ss[0])
        return None if sc is None else (sc[0], [sc[1]], sc[2])

    # ------------------------------------------------------------------ matmul
    def _matmul(self, case: Case) -> Plan | None:
        p = case.meta["params"]
        fa, fb = _fmt(p["a_format"]), _fmt(p["b_format"])
        if (fa, fb) != (INT8, INT8) or int(p.get("acc_bits", 32)) > 32:
            return None
        a = case.tensors["a"].values.astype(np.int64)
        bm = case.tensors["b"].values.astype(np.int64)
        if a.ndim != bm.ndim or a.ndim > 5 or a.shape[:-2] != bm.shape[:-2]:
            return None
        rq = p.get("requant")
        za, zb = int(p["a_zero_point"]), int(p["b_zero_point"])
        out_shape = (*a.shape[:-1], bm.shape[-1])
        b = _Builder()
        if rq is None:
            s_a, s_b, out_t = 1.0, 1.0, TensorDef(out_shape, "int32")
        else:
            ms, ss, family, zo, out, in_zp = _requant_of(rq)
            if family != self.rule("batch_matmul") or len(ms) != 1 or out != INT8 or in_zp:
                return None
            given = case.meta.get("litert")
            sc: tuple[float, float, float] | None
            if isinstance(given, dict):
                sc = (float(given["a_scale"]), float(given["b_scale"]),
                      float(given["output_scale"]))
                if derive(family, *sc) != (ms[0], ss[0]):
                    return None
            else:
                sc = scales_for_family(family, ms[0], ss[0])
                if sc is None:
                    return None
            s_a, s_b, s_o = sc
            out_t = TensorDef(out_shape, "int8", (s_o,), (self._out_zp(zo),))
        ai = b.input(TensorDef(a.shape, "int8", (s_a,), (za,)), a)
        bi = b.input(TensorDef(bm.shape, "int8", (s_b,), (zb,)), bm)
        oi = b.output(out_t)
        b.ops.append(OpDef("BATCH_MATMUL", (ai, bi), (oi,), ("BatchMatMulOptions", {})))
        return Plan(b.model(), b.feeds, lambda outs: outs[0].astype(np.int64))

    # ------------------------------------------------------------------ softmax
    def _softmax(self, case: Case) -> Plan | None:
        p = case.meta["params"]
        fin, out = _fmt(p["in_format"]), _fmt(p["out_format"])
        if (fin, out) not in ((INT8, INT8), (UINT8, UINT8)):
            return None  # LiteRT: int8 → int8 or uint8 → uint8
        given = case.meta.get("litert")
        if isinstance(given, dict):
            beta, s_in = float(given["beta"]), float(given["input_scale"])
        else:
            sc = scales_for(int(p["input_multiplier"]), int(p["input_left_shift"]), extra=26)
            if sc is None:
                return None
            beta, s_in = sc
        from refq.params import tflite_softmax_params

        derived = tflite_softmax_params(Fraction(s_in), Fraction(beta), in_format=fin,
                                        out_format=out)
        if (derived.input_multiplier, derived.input_left_shift, derived.diff_min) != (
            int(p["input_multiplier"]), int(p["input_left_shift"]), int(p["diff_min"])
        ):
            return None
        x = case.tensors["x"].values.astype(np.int64)
        zo = -128 if out == INT8 else 0
        b = _Builder()
        xi = b.input(TensorDef(x.shape, _DTYPE[fin], (s_in,), (0,)), x)
        oi = b.output(TensorDef(x.shape, _DTYPE[out], (1 / 256,), (self._out_zp(zo),)))
        b.ops.append(OpDef("SOFTMAX", (xi,), (oi,), ("SoftmaxOptions", {"Beta": beta})))
        return Plan(b.model(), b.feeds, lambda outs: outs[0].astype(np.int64))

    # ------------------------------------------------------------------ gelu
    def _gelu(self, case: Case) -> Plan | None:
        given = case.meta.get("litert")
        p = case.meta["params"]
        if not isinstance(given, dict) or _fmt(p["in_format"]) != INT8:
            return None
        if _fmt(p["out_format"]) != INT8:
            return None
        x = case.tensors["x"].values.astype(np.int64)
        b = _Builder()
        xi = b.input(TensorDef(x.shape, "int8", (float(given["input_scale"]),),
                               (int(given["input_zero_point"]),)), x)
        oi = b.output(TensorDef(x.shape, "int8", (float(given["output_scale"]),),
                                (self._out_zp(int(given["output_zero_point"])),)))
        b.ops.append(OpDef("GELU", (xi,), (oi,), ("GeluOptions", {"Approximate": False})))
        return Plan(b.model(), b.feeds, lambda outs: outs[0].astype(np.int64))


def reference() -> LiteRtResolver:
    return LiteRtResolver("ref")


def default() -> LiteRtResolver:
    return LiteRtResolver("default")


def optimized() -> LiteRtResolver:
    return LiteRtResolver("optimized")


def litert() -> AllAgree:
    """The reference kernels and the default resolver together: a case passes when both
    return refq's output; where they disagree with each other the case raises BackendError
    naming both (run ``litert-ref`` / ``litert-default`` to see which agrees)."""
    from refq.crosscheck.adapters.litert_cases import extras

    return AllAgree("litert", [LiteRtResolver("ref"), LiteRtResolver("default")],
                    lambda: extras(None))


__all__ = [
    "DEFECTS",
    "RESOLVERS",
    "RULES",
    "LiteRtResolver",
    "Plan",
    "default",
    "derive",
    "litert",
    "optimized",
    "reference",
    "scales_for",
    "scales_for_family",
]
