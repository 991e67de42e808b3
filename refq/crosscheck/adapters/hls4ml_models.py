"""refq programs as hls4ml models: a layer list whose every ap_fixed type is stated, so the
raw codes hls4ml's g++-compiled emulation computes are refq's integers exactly.

Each refq tensor becomes one hls4ml layer output (so every intermediate is compared) with an
ap_fixed type whose raw code is the refq code (the type's binary point is bookkeeping:
predict() takes and returns raw·2^-F as doubles, exact for W <= 53). The ops are row-local
on the last axis; an input of shape (..., C) runs as rows of C values. Mapping:

=======================  ===========================================================
refq op                  hls4ml layer (types)
=======================  ===========================================================
linear.gemm              Dense: weights w - zw, bias b - Σ(w - zw)·zx (zero points
                         folded, exact), accum = result = ap_fixed<acc_bits, ...>
requantize.dyadic        ApplyAlpha: scale b·2^(cmax - c) at 2^-cmax, bias for the input
                         zero point; result ap_[u]fixed<W,W,Q,AP_SAT> with Q the rounding
                         (half_even AP_RND_CONV, half_away AP_RND_INF, half_up AP_RND,
                         floor AP_TRN, trunc AP_TRN_ZERO); an output zero point only for
                         roundings that commute with integer shifts (floor, half_up)
requantize.ap_fixed      Activation('linear') with result type out_type (multiplier 1,
                         no zero point), else ApplyAlpha (scale = multiplier)
gelu.lut                 UnaryLUT (table indexed by the input's raw bits, reordered)
softmax.hls4ml_*         Softmax (implementation, table sizes and types of the params)
layernorm.hls4ml         LayerNormalization (types, table size and range of the params)
=======================  ===========================================================

Anything else is unsupported with a reason (:class:`Unmappable`). Kernel tables that differ
from the ones hls4ml computes (refq.params.hls4ml) are unsupported too: hls4ml cannot take
a table from outside.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import IntFormat
from refq.intmath.apfixed import ApType
from refq.ops import (
    ApFixedRequantParams,
    GeluLutParams,
    GemmParams,
    Hls4mlLayerNormParams,
    Hls4mlSoftmaxParams,
    RequantParams,
)
from refq.program.ir import Op, Program

ROUNDING_MODE = {"half_even": "AP_RND_CONV", "half_away": "AP_RND_INF", "half_up": "AP_RND",
                 "floor": "AP_TRN", "trunc": "AP_TRN_ZERO"}
SHIFT_INVARIANT = ("half_up", "floor")
"""Roundings with round(v) + z = round(v + z) for integers z (an output zero point folds
into the bias)."""


class Unmappable(SpecError):
    """A program (or op) that no hls4ml layer reproduces; the message says which and why."""


def int_type(fmt: IntFormat, frac: int = 0, q: str = "AP_TRN", o: str = "AP_WRAP") -> ApType:
    return ApType(fmt.bits, fmt.bits - frac, fmt.signed, q, o)  # type: ignore[arg-type]


def hls_type(t: ApType) -> str:
    """hls4ml's spelling (it has no AP_WRAP_SM: ``SaturationMode`` lacks it and the string
    'AP_WRAP_SM' parses to 'WRSM')."""
    if t.overflow == "AP_WRAP_SM":
        raise Unmappable(f"{t.name}: hls4ml types have no AP_WRAP_SM")
    base = "ap_fixed" if t.signed else "ap_ufixed"
    return f"{base}<{t.width},{t.int_bits},{t.quantization},{t.overflow}>"


def _cname(name: str) -> str:
    return "t_" + re.sub(r"[^A-Za-z0-9]", "_", name)


@dataclass
class HlsGraph:
    """A layer list, its per-layer precision config and, per refq tensor, its layer and
    ap_fixed type."""

    layers: list[dict[str, Any]] = field(default_factory=list)
    precision: dict[str, dict[str, Any]] = field(default_factory=dict)
    types: dict[str, ApType] = field(default_factory=dict)
    layer_of: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    def key(self) -> str:
        """A content hash of the model (layers with their data, types): the compile cache key."""
        h = hashlib.sha256()
        for layer in self.layers:
            for k, v in sorted(layer.items()):
                h.update(k.encode())
                h.update(v.tobytes() if isinstance(v, np.ndarray) else repr(v).encode())
        h.update(json.dumps(self.precision, sort_keys=True, default=str).encode())
        return h.hexdigest()[:16]


def _const(program: Program, name: str, op: Op) -> npt.NDArray[np.int64]:
    if name not in program.consts:
        raise Unmappable(f"{op.key} ({op.name}): {name!r} must be a constant (hls4ml weights "
                         "are compiled in)")
    return program.consts[name].astype(np.int64)


class _Mapper:
    def __init__(self, program: Program) -> None:
        self.p = program
        self.g = HlsGraph()
        self.readers: dict[str, list[Op]] = {}
        for op in program.ops:
            for i in op.inputs:
                self.readers.setdefault(i, []).append(op)

    def need(self, name: str, t: ApType, op: Op) -> None:
        """Tensor ``name`` must have type ``t`` (graph inputs take it)."""
        have = self.g.types.get(name)
        if have is None:
            if name not in self.p.inputs:
                raise Unmappable(f"{op.key}: input {name!r} is not produced by a mapped op")
            if self.p.tensors[name].fmt != t.fmt:
                raise Unmappable(f"{op.key}: input {name!r} is {self.p.tensors[name].fmt}, "
                                 f"the layer needs {t.name}")
            self.g.types[name] = t
            layer = _cname(name)
            self.g.layer_of[name] = layer
            shape = [int(self.p.tensors[name].shape[-1])]
            self.g.layers.insert(len(self.g.inputs), {"class_name": "InputLayer", "name": layer,
                                                      "input_shape": shape})
            self.g.precision[layer] = {"Precision": {"result": hls_type(t)}}
            self.g.inputs.append(name)
        elif have.fmt != t.fmt or have.frac_bits != t.frac_bits:
            raise Unmappable(f"{op.key}: {name!r} is {have.name} here, the layer needs {t.name}")

    def in_type(self, name: str, op: Op, frac: int = 0) -> ApType:
        if name in self.g.types:
            return self.g.types[name]
        t = int_type(self.p.tensors[name].fmt, frac)
        self.need(name, t, op)
        return t

    def add(self, out: str, layer: dict[str, Any], t: ApType, prec: dict[str, Any],
            extra: dict[str, Any] | None = None) -> None:
        name = _cname(out)
        layer = {"name": name, **layer}
        self.g.layers.append(layer)
        self.g.precision[name] = {"Precision": {"result": hls_type(t), **prec}, **(extra or {})}
        self.g.types[out] = t
        self.g.layer_of[out] = name
        self.g.outputs.append(out)

    # ------------------------------------------------------------------ ops
    def linear(self, op: Op) -> None:
        p = GemmParams.from_dict(op.params)
        if p.requant is not None:
            raise Unmappable(f"linear.gemm ({op.name}): an inner requantization is not mapped")
        x, w = op.inputs[0], op.inputs[1]
        wv = _const(self.p, w, op) - p.b_zero_point
        bias = _const(self.p, op.inputs[2], op) if len(op.inputs) > 2 else np.zeros(
            wv.shape[0], dtype=np.int64)
        bias = bias - wv.sum(axis=1) * p.a_zero_point
        tx = self.in_type(x, op)
        out = op.outputs[0]
        f = tx.frac_bits
        nxt = self.readers.get(out, [])
        if len(nxt) == 1 and nxt[0].key == "requantize.ap_fixed":
            f = ApFixedRequantParams.from_dict(nxt[0].params).frac_bits
        fw = f - tx.frac_bits  # weights' binary point: product raw = x_raw·w_raw at 2^-f
        wbits = max(int(np.abs(wv).max()).bit_length() + 1, 2)
        bbits = max(int(np.abs(bias).max()).bit_length() + 1, 2)
        acc = ApType(p.acc_bits, p.acc_bits - f, True)
        layer = {"class_name": "Dense", "inputs": [self.g.layer_of[x]], "n_in": wv.shape[1],
                 "n_out": wv.shape[0], "weight_data": wv.T.astype(np.float64) * 2.0 ** -fw,
                 "bias_data": bias.astype(np.float64) * 2.0 ** -f}
        prec = {"weight": f"ap_fixed<{wbits},{wbits - fw}>",
                "bias": f"ap_fixed<{bbits},{bbits - f}>", "accum": hls_type(acc)}
        self.add(out, layer, acc, prec)

    def dyadic(self, op: Op) -> None:
        p = RequantParams.from_dict(op.params)
        if p.family != "dyadic":
            raise Unmappable(f"requantize.{p.family}: TFLite fixed-point requantization has no "
                             "hls4ml layer")
        if p.rounding not in ROUNDING_MODE:
            raise Unmappable(f"requantize.dyadic ({op.name}): {p.rounding} has no ap_fixed mode")
        if p.out_zero_point and p.rounding not in SHIFT_INVARIANT:
            raise Unmappable(f"requantize.dyadic ({op.name}): an output zero point after "
                             f"{p.rounding} rounding has no ApplyAlpha form (ap_fixed rounds "
                             "once; the zero point would move its ties)")
        x, out = op.inputs[0], op.outputs[0]
        tx = self.in_type(x, op)
        m = np.asarray(p.multiplier, dtype=np.int64)
        c = np.asarray(p.shift, dtype=np.int64)
        c_max = int(c.max())
        c_full = self.p.tensors[x].shape[-1]
        scale = np.broadcast_to(m << (c_max - c), (c_full,)).astype(np.int64)
        f = tx.frac_bits + c_max
        bias = -p.in_zero_point * scale + (p.out_zero_point << f)
        sbits = int(scale.max()).bit_length()
        bbits = max(int(np.abs(bias).max()).bit_length() + 1, 2)
        fmt = p.out_format
        t = int_type(fmt, 0, ROUNDING_MODE[p.rounding], "AP_SAT")
        layer = {"class_name": "ApplyAlpha", "inputs": [self.g.layer_of[x]], "n_in": c_full,
                 "n_filt": -1, "scale_data": scale.astype(np.float64) * 2.0 ** -c_max,
                 "bias_data": bias.astype(np.float64) * 2.0 ** -f}
        prec = {"scale": f"ap_ufixed<{sbits},{sbits - c_max}>",
                "bias": f"ap_fixed<{bbits},{bbits - f}>"}
        self.add(out, layer, t, prec)

    def apfixed(self, op: Op) -> None:
        p = ApFixedRequantParams.from_dict(op.params)
        x, out = op.inputs[0], op.outputs[0]
        tx = self.in_type(x, op, p.frac_bits)
        if tx.frac_bits != p.frac_bits:
            raise Unmappable(f"requantize.ap_fixed ({op.name}): {x!r} has {tx.frac_bits} "
                             f"fractional bits, the op reads {p.frac_bits}")
        t = p.apfixed
        if p.multiplier == (1,) and p.in_zero_point == 0:
            linear: dict[str, Any] = {"class_name": "Activation", "inputs": [self.g.layer_of[x]],
                                      "activation": "linear"}
            self.add(out, linear, t, {})
            return
        c_full = self.p.tensors[x].shape[-1]
        scale = np.broadcast_to(np.asarray(p.multiplier, dtype=np.int64), (c_full,))
        bias = -p.in_zero_point * scale
        sbits = int(np.abs(scale).max()).bit_length() + 1
        bbits = max(int(np.abs(bias).max()).bit_length() + 1, 2)
        layer = {"class_name": "ApplyAlpha", "inputs": [self.g.layer_of[x]], "n_in": c_full,
                 "n_filt": -1, "scale_data": scale.astype(np.float64),
                 "bias_data": bias.astype(np.float64) * 2.0 ** -p.frac_bits}
        prec = {"scale": f"ap_fixed<{sbits},{sbits}>",
                "bias": f"ap_fixed<{bbits},{bbits - p.frac_bits}>"}
        self.add(out, layer, t, prec)

    def gelu(self, op: Op) -> None:
        p = GeluLutParams.from_dict(op.params)
        x, out = op.inputs[0], op.outputs[0]
        tx = self.in_type(x, op)
        if tx.frac_bits != 0 or tx.fmt != p.in_format:
            raise Unmappable(f"gelu.lut ({op.name}): input {tx.name} is not {p.in_format}")
        w = p.in_format.bits
        raw = np.arange(1 << w, dtype=np.int64)
        value = raw - ((raw >> (w - 1)) << w) if p.in_format.signed else raw
        table = np.asarray(p.table, dtype=np.int64)[value - p.in_format.min]
        t = int_type(p.out_format)
        layer = {"class_name": "UnaryLUT", "inputs": [self.g.layer_of[x]],
                 "n_in": int(self.p.tensors[x].shape[-1]), "table_data": table.astype(np.float64),
                 "activation": "unary_lut"}
        self.add(out, layer, t, {"table": hls_type(t)})

    def softmax(self, op: Op) -> None:
        from refq.params.hls4ml import hls4ml_softmax_params

        p = Hls4mlSoftmaxParams.from_dict(op.params)
        x, out = op.inputs[0], op.outputs[0]
        n = int(self.p.tensors[x].shape[-1])
        if x not in self.g.types:
            self.need(x, p.types["in_type"], op)
        if self.g.types[x].name != p.in_type:
            raise Unmappable(f"{op.key}: input is {self.g.types[x].name}, params say {p.in_type}")
        ref = hls4ml_softmax_params(p.implementation, p.in_type, p.out_type, n=n,
                                    table_size=len(p.inv_table), exp_table_type=p.exp_table_type,
                                    inv_table_type=p.inv_table_type, accum_type=p.accum_type,
                                    inv_inp_type=p.inv_inp_type)
        if ref != p:
            raise Unmappable(f"{op.key} ({op.name}): tables, sizes or inp_norm type differ from "
                             "what hls4ml computes for these types")
        layer = {"class_name": "Softmax", "inputs": [self.g.layer_of[x]], "activation": "softmax",
                 "implementation": p.implementation, "axis": -1}
        prec = {"exp_table": hls_type(p.types["exp_table_type"]),
                "inv_table": hls_type(p.types["inv_table_type"]),
                "inv_inp": hls_type(p.types["inv_inp_type"]),
                "accum": hls_type(p.types["accum_type"])}
        extra = {"table_size": len(p.inv_table), "exp_table_size": len(p.exp_table)}
        self.add(out, layer, p.types["out_type"], prec, extra)

    def layernorm(self, op: Op) -> None:
        from refq.params.hls4ml import hls4ml_layernorm_params

        p = Hls4mlLayerNormParams.from_dict(op.params)
        x, out = op.inputs[0], op.outputs[0]
        if x not in self.g.types:
            self.need(x, p.types["in_type"], op)
        if self.g.types[x].name != p.in_type:
            raise Unmappable(f"{op.key}: input is {self.g.types[x].name}, params say {p.in_type}")
        t = p.types
        gamma = np.asarray(p.scale, dtype=np.float64) * 2.0 ** -t["scale_type"].frac_bits
        beta = np.asarray(p.bias, dtype=np.float64) * 2.0 ** -t["bias_type"].frac_bits
        ref = hls4ml_layernorm_params(p.in_type, p.out_type, gamma, beta,
                                      accum_type=p.accum_type, table_type=p.table_type,
                                      scale_type=p.scale_type, bias_type=p.bias_type,
                                      table_size=len(p.table),
                                      table_range_power2=p.table_range_power2)
        if ref.table != p.table or ref.k_inv != p.k_inv:
            raise Unmappable(f"{op.key} ({op.name}): table or 1/C differ from hls4ml's (ε = "
                             "10^-3 assumed)")
        c = len(p.scale)
        layer: dict[str, Any] = {
            "class_name": "LayerNormalization", "inputs": [self.g.layer_of[x]], "n_in": c,
                 "seq_len": 1, "axis": 2, "epsilon_power_of_10": 3, "gamma_data": gamma,
                 "beta_data": beta}
        prec = {"accum": hls_type(t["accum_type"]), "table": hls_type(t["table_type"]),
                "scale": hls_type(t["scale_type"]), "bias": hls_type(t["bias_type"])}
        extra = {"table_size": len(p.table), "table_range_power2": p.table_range_power2}
        self.add(out, layer, t["out_type"], prec, extra)

    def run(self) -> HlsGraph:
        table = {"linear.gemm": self.linear, "requantize.dyadic": self.dyadic,
                 "requantize.double": self.dyadic, "requantize.single": self.dyadic,
                 "requantize.ap_fixed": self.apfixed, "gelu.lut": self.gelu,
                 "softmax.hls4ml_stable": self.softmax, "softmax.hls4ml_latency": self.softmax,
                 "softmax.hls4ml_legacy": self.softmax,
                 "layernorm.hls4ml": self.layernorm}
        for op in self.p.ops:
            fn = table.get(op.key) if op.kind == "kernel" else None
            if fn is None:
                raise Unmappable(f"{op.kind} {op.key} ({op.name}) has no hls4ml layer here")
            if len(op.outputs) != 1:
                raise Unmappable(f"{op.key}: one output per layer")
            fn(op)
        return self.g


def map_program(program: Program) -> HlsGraph:
    """The hls4ml layer list of ``program`` (module docstring); Unmappable says why not."""
    return _Mapper(program).run()


__all__ = ["ROUNDING_MODE", "HlsGraph", "Unmappable", "hls_type", "int_type", "map_program"]
