"""Coverage models: per kernel variant, the named intermediates of one call, sampled from its
inputs, params and output for the bins the variant declares (``meta["coverage.bins"]``).

A model is ``model(args, kwargs, y) -> {intermediate: sample}`` (samples:
:mod:`refq.golden.coverage_bins`); ``args`` are the call's positional arguments, the params
last. It re-derives each intermediate with the integer operations of the kernel's docstring
contract (refq.intmath; never a kernel of the registry, which would be observed again), so
no kernel's arithmetic is touched; ``tests/golden/test_coverage.py`` checks, for the models
that rebuild a variant's whole pipeline, that their final value equals the kernel's output
element for element. Models read their arguments only (never write them).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.golden.coverage_bins import Clamp, Division, Ends, Flags, Sample, Shift, Top, row_flags
from refq.intmath import INT32, IntFormat, isqrt, round_shift
from refq.ops.layernorm import align
from refq.ops.registry import lookup

Arr = npt.NDArray[np.int64]
Samples = dict[str, Sample]


def _i64(a: Any) -> Arr:
    return np.asarray(a, dtype=np.int64)


def _fmt_ends(x: Any, fmt: IntFormat, zero: int | None = None) -> Ends:
    return Ends(_i64(x), fmt.min, fmt.max, zero)


def _per_channel(values: tuple[int, ...], x: Arr, axis: int) -> Arr:
    """A per-channel params tuple as an int64 array broadcasting along ``axis`` of ``x``."""
    v = _i64(values)
    if len(values) == 1 or x.ndim == 0:
        return v.reshape(()) if len(values) == 1 else v
    shape = [1] * x.ndim
    shape[axis] = len(values)
    return v.reshape(shape)


# ------------------------------------------------------------------ requantize
def _requant_inputs(args: tuple[Any, ...], kwargs: Mapping[str, Any]) -> tuple[Arr, Any, Arr,
                                                                              Arr]:
    x, p = _i64(args[0]), args[-1]
    axis = int(kwargs.get("axis", args[2] if len(args) > 2 else -1))
    m, s = _per_channel(p.multiplier, x, axis), _per_channel(p.shift, x, axis)
    return x - np.int64(p.in_zero_point), p, m, s


def requantize_dyadic(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """x - zp, the product x·b, its rounding by 2^c, the pre-saturation value, c's range."""
    xz, p, b, c = _requant_inputs(args, kwargs)
    prod = xz * b
    pre = round_shift(prod, c, p.rounding) + np.int64(p.out_zero_point)
    return {"x - in_zero_point": Ends(xz, INT32.min, INT32.max, 0),
            "x·b": Top(prod, 64),
            "x·b / 2^c": Shift(prod, c),
            "out": Clamp(pre, p.out_format.min, p.out_format.max),
            "c": Ends(c, 0, 63)}


def requantize_single(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """TFLITE_SINGLE_ROUNDING: (x·M + 2^(30-shift)) >> (31-shift), one half-up rounding."""
    xz, p, m, s = _requant_inputs(args, kwargs)
    prod = xz * m
    pre = round_shift(prod, 31 - s, "half_up") + np.int64(p.out_zero_point)
    return {"x - in_zero_point": Ends(xz, INT32.min, INT32.max, 0),
            "x·M / 2^(31-shift)": Shift(prod, 31 - s),
            "out": Clamp(pre, p.out_format.min, p.out_format.max),
            "shift": Ends(s, -31, 30)}


def requantize_double(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """TFLite default: SRDHM(x·2^left, M) (ties away), then RoundingDivideByPOT(·, right)."""
    xz, p, m, s = _requant_inputs(args, kwargs)
    left, right = np.maximum(s, 0), np.maximum(-s, 0)
    scaled = xz << left
    prod = scaled * m  # |prod| < 2^62: the doubling high mul divides 2·prod by 2^31
    high = round_shift(prod, np.int64(31), "half_up")  # gemmlowp nudge 1 - 2^30 below 0
    high = np.minimum(high, np.int64(INT32.max))  # SRDHM saturates only at (-2^31)·(-2^31)
    pre = round_shift(high, right, "half_away") + np.int64(p.out_zero_point)
    return {"x - in_zero_point": Ends(xz, INT32.min, INT32.max, 0),
            "SRDHM: x·2^left·M / 2^31": Shift(prod, np.int64(31)),
            "RDBPOT: high / 2^right": Shift(high, right),
            "out": Clamp(pre, p.out_format.min, p.out_format.max),
            "shift": Ends(s, -31, 30)}


def _significand_drop(v: Arr, bits: int) -> Arr:
    """The low bits a rounding of |v| to ``bits`` significant bits drops (0 if it fits)."""
    return np.maximum(_bit_length(np.abs(v)) - np.int64(bits), 0)


def requantize_fp32(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """binary32 multiplier (``fp32``, ``fp32_zp``): x to 24 significant bits, rn24(x)·m to 24
    significant bits (ties of both), the output saturation; ``fp32`` also the final
    half_even rounding by 2^c."""
    from refq.ops.requantize_fp32 import fp32_scale, fp32_zp_round, round_significand

    xz, p, m, c = _requant_inputs(args, kwargs)
    r1 = round_significand(xz)
    prod = r1 * m
    p2 = round_significand(prod)
    out: Samples = {"x - in_zero_point": Ends(xz, INT32.min, INT32.max, 0),
                    "x to binary32": Shift(xz, _significand_drop(xz, 24)),
                    "rn24(x)·m to binary32": Shift(prod, _significand_drop(prod, 24)),
                    "c": Ends(c, 0, 63)}
    if p.family == "fp32":
        pre = fp32_scale(xz, m, c) + np.int64(p.out_zero_point)
        out["rn24(rn24(x)·m) / 2^c"] = Shift(p2, c)
    else:
        pre = fp32_zp_round(xz, m, c, p.out_zero_point)
    out["out"] = Clamp(pre, p.out_format.min, p.out_format.max)
    return out


def requantize_fp64(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """binary64 multiplier: input ends, the output saturation, c at its range ends (the
    53-bit product rounding needs two limbs: not sampled)."""
    from refq.ops.requantize_fp64 import fp64_scale

    xz, p, m, c = _requant_inputs(args, kwargs)
    pre = fp64_scale(xz, m, c) + np.int64(p.out_zero_point)
    return {"x - in_zero_point": Ends(xz, INT32.min, INT32.max, 0),
            "out": Clamp(pre, p.out_format.min, p.out_format.max),
            "c": Ends(c, 0, 126)}


def requantize_double_up(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """Two ties-up roundings: (x·2^l·M + 2^30) >> 31 and (y1 + 2^(r-1)) >> r."""
    xz, p, m, s = _requant_inputs(args, kwargs)
    left, right = np.maximum(s, 0), np.maximum(-s, 0)
    prod = (xz << left) * m
    y1 = round_shift(prod, np.int64(31), "half_up")
    pre = round_shift(y1, right, "half_up") + np.int64(p.out_zero_point)
    return {"x - in_zero_point": Ends(xz, INT32.min, INT32.max, 0),
            "x·2^l·M / 2^31": Shift(prod, np.int64(31)),
            "y1 / 2^r": Shift(y1, right),
            "out": Clamp(pre, p.out_format.min, p.out_format.max),
            "shift": Ends(s, -31, 30)}


# ------------------------------------------------------------------ GEMM
def _gemm_common(a: Arr, b: Arr, p: Any, acc: Arr | None, names: tuple[str, str]) -> Samples:
    out: Samples = {names[0]: _fmt_ends(a, p.a_format, p.a_zero_point),
                    names[1]: _fmt_ends(b, p.b_format, p.b_zero_point)}
    if acc is not None:
        out["acc"] = Top(acc, p.acc_bits)
    return out


def linear_gemm(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """Operand ends (min, zero point, max) and the accumulator's top bit (acc + bias)."""
    x, w, p = _i64(args[0]), _i64(args[1]), args[-1]
    bias = kwargs.get("bias", args[2] if len(args) > 3 else None)
    acc = None
    if x.shape[-1] <= 4096:  # exact int64 products: |x - zx|·|w - zw|·K < 2^34·2^12
        acc = np.matmul(x - np.int64(p.a_zero_point), (w - np.int64(p.b_zero_point)).T)
        if bias is not None:
            acc = acc + _i64(bias)
    return _gemm_common(x, w, p, acc, ("x", "w"))


def matmul_gemm(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    a, b, p = _i64(args[0]), _i64(args[1]), args[-1]
    acc = None
    if a.shape[-1] <= 4096:
        acc = np.matmul(a - np.int64(p.a_zero_point), b - np.int64(p.b_zero_point))
    return _gemm_common(a, b, p, acc, ("a", "b"))


# ------------------------------------------------------------------ residual add
def add_ivit(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """Each branch's own rounding (a·ba / 2^ca, b·bb / 2^cb) and the output saturation."""
    a, b, p = _i64(args[0]), _i64(args[1]), args[-1]
    pa = (a - np.int64(p.a_zero_point)) * np.int64(p.a_multiplier)
    pb = (b - np.int64(p.b_zero_point)) * np.int64(p.b_multiplier)
    pre = (round_shift(pa, np.int64(p.a_shift), p.rounding)
           + round_shift(pb, np.int64(p.b_shift), p.rounding) + np.int64(p.out_zero_point))
    return {"a": _fmt_ends(a, p.a_format, p.a_zero_point),
            "b": _fmt_ends(b, p.b_format, p.b_zero_point),
            "(a - za)·ba / 2^ca": Shift(pa, np.int64(p.a_shift)),
            "(b - zb)·bb / 2^cb": Shift(pb, np.int64(p.b_shift)),
            "out": Clamp(pre, p.out_format.min, p.out_format.max)}


def add_shared_shift(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """The one accumulator (its top bit), its rounding by 2^c and the output saturation."""
    a, b, p = _i64(args[0]), _i64(args[1]), args[-1]
    acc = ((a - np.int64(p.a_zero_point)) * np.int64(p.a_multiplier)
           + (b - np.int64(p.b_zero_point)) * np.int64(p.b_multiplier))
    pre = round_shift(acc, np.int64(p.a_shift), p.rounding) + np.int64(p.out_zero_point)
    return {"a": _fmt_ends(a, p.a_format, p.a_zero_point),
            "b": _fmt_ends(b, p.b_format, p.b_zero_point),
            "acc": Top(acc, p.acc_bits),
            "acc / 2^c": Shift(acc, np.int64(p.a_shift)),
            "out": Clamp(pre, p.out_format.min, p.out_format.max)}


# ------------------------------------------------------------------ softmax, GELU
def softmax_rows(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any, *,
                 variant: str) -> Samples:
    """The boundary points every softmax shares: input ends, special rows, output ends
    (the code of probability 0 — the format minimum, or for ``lis``, whose codes are -log2
    p, the maximum — and the code of probability 1)."""
    x, p = _i64(args[0]), args[-1]
    fmt = lookup(f"softmax.{variant}").out_format(p)
    hi = 1 << p.bits if variant == "lis" else fmt.max  # lis: codes 0..2^bits (2^bits: 0)
    return {"x": _fmt_ends(x, p.in_format),
            "rows": row_flags(x, y, hi if variant == "lis" else fmt.min),
            "out": Ends(_i64(y), fmt.min, hi)}


def softmax_refq(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """refq softmax: every rounding (t / 2^(c-L), T[j] / 2^min(k, 20), e·(2^b-1) / Σ), the
    table index ends, k's clamp at 20 — the whole pipeline (the last Division rounded half up
    is the kernel's output)."""
    x, p = _i64(args[0]), args[-1]
    d = x.max(axis=-1, keepdims=True) - x if x.size else x
    t = d * np.int64(p.log2e_multiplier)
    lsh = np.int64(p.log2e_shift - p.table_bits)
    u = round_shift(t, lsh, "half_up")
    k, j = u >> np.int64(p.table_bits), u & np.int64(len(p.table) - 1)
    tj = _i64(p.table)[j]
    e = round_shift(tj, np.minimum(k, np.int64(20)), "half_up")
    total = e.sum(axis=-1, keepdims=True)
    scaled = e * np.int64((1 << p.out_bits) - 1)
    samples = softmax_rows(args, kwargs, y, variant="refq")
    samples.update({"t / 2^(c-L)": Shift(t, lsh),
                    "j": Ends(j, 0, len(p.table) - 1),
                    "k": Clamp(k, 0, 20),
                    "T[j] / 2^min(k, 20)": Shift(tj, np.minimum(k, np.int64(20))),
                    "e·(2^b - 1) / Σe": Division(scaled, np.maximum(total, 1))})
    return samples


def gelu_lut(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """Table index ends (x at the format's ends) and the zero input."""
    x, p = _i64(args[0]), args[-1]
    return {"x": _fmt_ends(x, p.in_format, 0),
            "T[x - in_min]": Ends(_i64(y), p.out_format.min, p.out_format.max)}


def gelu_ibert(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """Input ends, the erf polynomial's clamp min(|q|, -b_int), the output's top bit."""
    x, p = _i64(args[0]), args[-1]
    return {"x": _fmt_ends(x, p.in_format, 0),
            "|q| for min(|q|, -b_int)": Clamp(np.abs(x), 0, -p.b_int),
            "out": Top(_i64(y), p.out_bits)}


def gelu_shiftgelu(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """Input ends, the shift-exp's clamp at n·x0_int, special rows, the output's top bit."""
    x, p = _i64(args[0]), args[-1]
    d = x - x.max(axis=-1, keepdims=True) if x.size else x
    d2 = d + (d >> np.int64(1)) - (d >> np.int64(4))
    return {"x": _fmt_ends(x, p.in_format, 0),
            "d + ⌊d/2⌋ - ⌊d/16⌋ at n·x0_int": Clamp(d2, p.n * p.x0_int, 0),
            "rows": row_flags(x, np.zeros(0)),
            "out": Top(_i64(y), 32)}


def hls4ml_rows(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any, *,
                op: str) -> Samples:
    """hls4ml softmaxes and LayerNorm (ap_fixed types): boundary points only — input ends
    (in_type), special rows, output ends (out_type); their table indices and ap_fixed casts
    are not modelled."""
    x, p = _i64(args[0]), args[-1]
    fin, fout = p.types["in_type"].fmt, p.types["out_type"].fmt
    rows = row_flags(x, y, 0) if op == "softmax" else _ln_rows(x)
    return {"x": _fmt_ends(x, fin), "rows": rows, "out": _fmt_ends(y, fout)}


def requantize_ap_fixed(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """ap_fixed cast: boundary points only — input ends (in_format) and output ends
    (out_type's raw codes); the quantization and overflow modes' internals are not
    modelled."""
    x, p = _i64(args[0]), args[-1]
    return {"x": _fmt_ends(x, p.in_format), "out": _fmt_ends(y, p.out_format)}


# ------------------------------------------------------------------ LayerNorm
def _ln_rows(x: Arr) -> Flags:
    """all_equal: zero variance; one_dominant: every element but one equal (one outlier)."""
    if x.ndim == 0 or x.shape[-1] < 2:
        return Flags({"all_equal": np.zeros(0, bool), "one_dominant": np.zeros(0, bool)})
    srt = np.sort(x, axis=-1)
    equal = srt[..., 0] == srt[..., -1]
    low_out = (srt[..., 1] == srt[..., -1]) & (srt[..., 0] != srt[..., 1])
    high_out = (srt[..., 0] == srt[..., -2]) & (srt[..., -1] != srt[..., -2])
    return Flags({"all_equal": equal, "one_dominant": low_out | high_out})


def _ln_common(x: Arr, p: Any) -> Samples:
    return {"x": _fmt_ends(x, p.in_format, p.zero_point),
            "rows": _ln_rows(x),
            "channel_shift": Ends(_i64(p.channel_shift), 0, 16)}


def layernorm_mean(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """ibert / ivit: the rounded mean Σa / C (half_even) besides the common points."""
    x, p = _i64(args[0]), args[-1]
    a = _i64(align(x, p, "coverage"))
    samples = _ln_common(x, p)
    samples["mean = Σa / C"] = Division(a.sum(axis=-1), np.int64(a.shape[-1]))
    return samples


def _bit_length(v: Arr) -> Arr:
    n = np.zeros(v.shape, dtype=np.int64)
    for step in (32, 16, 8, 4, 2, 1):
        big = (v >> np.int64(n + step - 1)) > 0 if step > 1 else (v >> n) > 0
        n = np.where(big, n + step, n)
    return n


def layernorm_refq(args: tuple[Any, ...], kwargs: Mapping[str, Any], y: Any) -> Samples:
    """refq LayerNorm: the one rounding y·2^(F+k) / s (half_even), rebuilt in full (the
    Division rounded half_even, plus the bias, is the kernel's output)."""
    x, p = _i64(args[0]), args[-1]
    a = _i64(align(x, p, "coverage"))
    c = a.shape[-1]
    yy = a * np.int64(c) - a.sum(axis=-1, keepdims=True)
    v = (yy * yy).sum(axis=-1, keepdims=True)
    k = np.maximum(np.int64(0), (np.int64(62) - _bit_length(np.maximum(v, 1))) >> 1)
    s = np.maximum(isqrt(v << (2 * k)), 1)
    num = (yy << k) << np.int64(p.frac_bits)
    samples = _ln_common(x, p)
    samples["y·2^(F+k) / s"] = Division(num, s)
    samples["v = Σy²"] = Top(v, 63)
    return samples


__all__ = [
    "add_ivit",
    "add_shared_shift",
    "gelu_ibert",
    "gelu_lut",
    "gelu_shiftgelu",
    "layernorm_mean",
    "layernorm_refq",
    "linear_gemm",
    "matmul_gemm",
    "requantize_double",
    "requantize_double_up",
    "requantize_dyadic",
    "requantize_fp32",
    "requantize_fp64",
    "requantize_single",
    "softmax_refq",
    "softmax_rows",
]
