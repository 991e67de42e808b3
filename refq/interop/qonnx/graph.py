"""The graph builder of the QONNX export: containers, constants, nodes, and the exact
integer helpers (rounded right shift, saturation) every kernel translation shares.

Containers (where a float stops being exact, decided once per tensor): a refq tensor whose
declared format fits float32's integers (|x| <= 2^24: signed up to 25 bits, unsigned up to
24) is a FLOAT tensor holding its integer codes — QONNX's convention, and what qonnx's
``Quant`` always outputs (its ``execute_node`` casts the result to float32); a wider one
(accumulators, LayerNorm statistics) is an INT64 tensor. Float arithmetic is emitted only
where a bound proves it exact (float64 inside a node up to 2^53, float32 up to 2^24),
otherwise the same step is emitted on int64.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import IntFormat
from refq.program.ir import Program

QONNX_DOMAIN = "qonnx.custom_op.general"
OPSET = 17
F32_EXACT = 1 << 24
F64_EXACT = 1 << 53

QUANT_ROUNDING: dict[str, tuple[str, float]] = {
    # refq rounding / ap_fixed quantization → (qonnx Quant rounding_mode, pre-offset)
    "half_even": ("ROUND", 0.0),
    "half_away": ("HALF_UP", 0.0),  # qonnx HALF_UP: sign(x)·⌊|x| + 1/2⌋ (ties away)
    "trunc": ("DOWN", 0.0),
    "floor": ("FLOOR", 0.0),
    "ceil": ("CEIL", 0.0),
    "half_up": ("FLOOR", 0.5),  # ⌊x + 1/2⌋: no qonnx mode rounds ties toward +∞
    "AP_RND_CONV": ("ROUND", 0.0),
    "AP_RND_INF": ("HALF_UP", 0.0),
    "AP_RND_ZERO": ("HALF_DOWN", 0.0),  # sign(x)·⌈|x| - 1/2⌉ (ties toward zero)
    "AP_TRN": ("FLOOR", 0.0),
    "AP_TRN_ZERO": ("DOWN", 0.0),
    "AP_RND": ("FLOOR", 0.5),
    "AP_RND_MIN_INF": ("CEIL", -0.5),  # ⌈x - 1/2⌉ (ties toward -∞)
}


def per_channel_array(values: tuple[int, ...]) -> npt.NDArray[np.int64]:
    """A params tuple as a constant: a scalar for one value, else a vector along the last
    axis (refq's per-channel parameters)."""
    a = np.asarray(values, dtype=np.int64)
    return a if a.size > 1 else a.reshape(())


def fits_f32(fmt: IntFormat) -> bool:
    """Whether every value of ``fmt`` is a float32 exactly."""
    return max(-fmt.min, fmt.max) <= F32_EXACT


@dataclass
class Note:
    """One named point of the export: where the graph leaves the float/Quant idiom (an
    integer island) and why, or a difference of contract."""

    tensor: str
    op: str
    kind: str  # "int64-path" | "contract"
    reason: str

    def to_dict(self) -> dict[str, str]:
        return {"tensor": self.tensor, "op": self.op, "kind": self.kind, "reason": self.reason}


@dataclass
class Builder:
    """Nodes and initializers of one graph; ``dtype`` maps every named value to "f32",
    "f64", "i64" or "bool"."""

    nodes: list[Any] = field(default_factory=list)
    inits: list[Any] = field(default_factory=list)
    dtype: dict[str, str] = field(default_factory=dict)
    notes: list[Note] = field(default_factory=list)
    _n: int = 0

    # -------------------------------------------------------------- names and values
    def tmp(self, hint: str) -> str:
        self._n += 1
        return f"{hint}::{self._n}"

    def const(self, values: Any, dtype: str, hint: str = "c") -> str:
        from onnx import numpy_helper

        np_type = {"f32": np.float32, "f64": np.float64, "i64": np.int64}[dtype]
        arr = np.asarray(values)
        if dtype == "i64":
            out = np.asarray(arr, dtype=np.int64)
        else:
            out = np.asarray(arr, dtype=np_type)
            if not np.array_equal(out.astype(np.float64), np.asarray(arr, dtype=np.float64)):
                raise SpecError(f"qonnx export: constant {hint} is not exact in {dtype}")
        name = self.tmp(hint)
        self.inits.append(numpy_helper.from_array(out, name))
        self.dtype[name] = dtype
        return name

    def named_const(self, name: str, values: npt.NDArray[np.int64], dtype: str) -> str:
        from onnx import numpy_helper

        np_type = np.float32 if dtype == "f32" else np.int64
        self.inits.append(numpy_helper.from_array(np.asarray(values, dtype=np_type), name))
        self.dtype[name] = dtype
        return name

    def node(self, op: str, inputs: list[str], dtype: str, n_out: int = 1,
             outputs: list[str] | None = None, domain: str = "", **attrs: Any) -> list[str]:
        from onnx import helper

        outs = outputs or [self.tmp(op.lower()) for _ in range(n_out)]
        self.nodes.append(helper.make_node(op, inputs, outs, domain=domain or None, **attrs))
        for o in outs:
            self.dtype[o] = dtype
        return outs

    def one(self, op: str, inputs: list[str], dtype: str, **attrs: Any) -> str:
        return self.node(op, inputs, dtype, **attrs)[0]

    def cast(self, name: str, dtype: str) -> str:
        """``name`` as ``dtype`` (a Cast node unless it already is)."""
        from onnx import TensorProto

        if self.dtype[name] == dtype:
            return name
        to = {"f32": TensorProto.FLOAT, "f64": TensorProto.DOUBLE, "i64": TensorProto.INT64,
              "bool": TensorProto.BOOL}[dtype]
        return self.one("Cast", [name], dtype, to=to)

    def finish(self, value: str, out: str, dtype: str) -> None:
        """Make ``out`` (a refq tensor name) the value ``value`` in container ``dtype``."""
        from onnx import TensorProto

        if self.dtype[value] == dtype:
            self.node("Identity", [value], dtype, outputs=[out])
        else:
            to = {"f32": TensorProto.FLOAT, "i64": TensorProto.INT64}[dtype]
            self.node("Cast", [value], dtype, outputs=[out], to=to)

    # -------------------------------------------------------------- exact integer helpers
    def round_shift_i64(self, p: str, shift: npt.NDArray[np.int64], mode: str) -> str:
        """p / 2^shift rounded by ``mode`` (a refq rounding or an ap_fixed quantization
        mode), on int64: r = p mod 2^s (ONNX Mod, sign of the divisor: 0 <= r < 2^s),
        floor = (p - r) / 2^s (an exact division), then the increment decided by r against
        2^(s-1) — the same decisions as refq.intmath.rounding / apfixed. ``shift`` is a
        scalar or a per-channel vector (last axis), 0..62."""
        s = np.asarray(shift, dtype=np.int64)
        if s.size and (int(s.min()) < 0 or int(s.max()) > 62):
            raise SpecError("qonnx export: shifts must lie in 0..62 on the int64 path")
        p = self.cast(p, "i64")
        if not s.any():
            return p
        div = self.const(np.left_shift(np.int64(1), s), "i64", "pow2")
        r = self.one("Mod", [p, div], "i64", fmod=0)
        fl = self.one("Div", [self.one("Sub", [p, r], "i64"), div], "i64")
        if mode in ("floor", "AP_TRN"):
            return fl
        zero = self.const(0, "i64", "zero")
        nz = self.one("Greater", [r, zero], "bool")
        neg = self.one("Less", [p, zero], "bool")
        if mode == "ceil":
            inc = nz
        elif mode in ("trunc", "AP_TRN_ZERO"):
            inc = self.one("And", [nz, neg], "bool")
        else:
            half = self.const(np.right_shift(np.left_shift(np.int64(1), s), 1), "i64", "half")
            above = self.one("Greater", [r, half], "bool")
            tie = self.one("And", [self.one("Equal", [r, half], "bool"), nz], "bool")
            if mode in ("half_up", "AP_RND"):
                side = None
            elif mode in ("half_away", "AP_RND_INF"):
                side = self.one("Not", [neg], "bool")
            elif mode == "AP_RND_ZERO":
                side = neg
            elif mode == "AP_RND_MIN_INF":
                side = "never"
            elif mode in ("half_even", "AP_RND_CONV"):
                two = self.const(2, "i64", "two")
                odd = self.one("Equal", [self.one("Mod", [fl, two], "i64", fmod=0),
                                         self.const(1, "i64", "one")], "bool")
                side = odd
            else:
                raise SpecError(f"qonnx export: unknown rounding {mode!r}")
            if side is None:
                inc = self.one("Or", [above, tie], "bool")
            elif side == "never":
                inc = above
            else:
                inc = self.one("Or", [above, self.one("And", [tie, side], "bool")], "bool")
        return self.one("Add", [fl, self.cast(inc, "i64")], "i64")

    def clip_i64(self, x: str, lo: int, hi: int) -> str:
        """min(max(x, lo), hi) on int64 (saturation to a format)."""
        x = self.cast(x, "i64")
        y = self.one("Max", [x, self.const(lo, "i64", "lo")], "i64")
        return self.one("Min", [y, self.const(hi, "i64", "hi")], "i64")

    def quant(self, x: str, bits: int, signed: bool, mode: str, narrow: bool = False) -> str:
        """qonnx ``Quant`` with scale 1 and zero point 0: clamp to the ``bits``-bit range
        (narrow: symmetric) and round by ``mode`` (QUANT_ROUNDING; a pre-offset ±1/2 is
        added first where qonnx has no such mode). ``x`` is float64 or float32 holding exact
        values (the caller proves it); the output is qonnx's float32."""
        qmode, offset = QUANT_ROUNDING[mode]
        if offset:
            x = self.one("Add", [x, self.const(offset, "f64", "half")], "f64")
        one = self.const(1.0, "f32", "scale")
        zero = self.const(0.0, "f32", "zeropt")
        bw = self.const(float(bits), "f32", "bitwidth")
        return self.one("Quant", [x, one, zero, bw], "f32", domain=QONNX_DOMAIN,
                        signed=int(signed), narrow=int(narrow), rounding_mode=qmode)


__all__ = ["F32_EXACT", "F64_EXACT", "OPSET", "QONNX_DOMAIN", "QUANT_ROUNDING", "Builder", "Ctx",
           "Note", "fits_f32", "per_channel_array"]


Ctx = tuple[Builder, "Program", dict[str, int], dict[str, str]]
"""(builder, program, tensor bounds, tensor containers): what every op translation gets."""
