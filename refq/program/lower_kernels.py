"""How each kernel variant sits at its tap when a model is lowered (real → integer params).

A variant's declaration points here with ``meta["lower"]`` (:mod:`refq.ops.registry`); the
lowering of its family (:mod:`refq.program.lower_blocks`, :mod:`refq.program.lower_quant`)
calls that function with the tap's real scale and integer format and gets the variant's
params and the real value of its output (scale, zero point). A variant whose input or output
contract cannot sit at the tap — a scale its derivation refuses, an input format it cannot
take, a multiplier that would flush to zero — raises SpecError naming the variant and the
tap (:func:`refuse`).

Family conventions (``v`` the variant, ``tap`` the tap name):

- softmax: ``fn(v, tap, scale, in_fmt, quantized) -> Placed``; the logits come at
  ``meta["lower.in_bits"]`` bits; ``quantized``: a quantizer follows the output.
- gelu: ``fn(b, v, acc, prefix) -> Act``: emits the fc1 tap, the GELU and the post-GELU
  tap from the fc1 accumulator ``acc`` (``b`` the :class:`~refq.program.lower_quant.Builder`).
- layernorm: ``fn(v, tap, x_fmt, zero_point, channels) -> Placed`` (``frac_bits`` in extra).
- requantize: ``fn(v, tap, reals, src_fmt, out_fmt, zero_point, rounding) -> Placed``.
- add: ``fn(v, tap, a, r, out_scale, out_fmt, out_zero_point) -> Placed``.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt
from scipy.special import erf

from refq.errors import SpecError
from refq.intmath import INT32, UINT8, IntFormat
from refq.ops.gelu import GeluLutParams
from refq.ops.registry import Variant
from refq.params import (
    add_params,
    ibert_gelu_params,
    ibert_softmax_params,
    layernorm_params,
    lis_params,
    refq_softmax_params,
    requant_params,
    shiftgelu_params,
    shiftmax_params,
    tflite_softmax_params,
)
from refq.params.gelu import ibert_erf_scale
from refq.program.lower_quant import Acc, Act, Builder, code_output
from refq.quant import Log2Quantizer


@dataclass(frozen=True)
class Placed:
    """A variant's params at a tap and the real value of its output: ``scale·(q - zp)``."""

    params: Any
    scale: float = 1.0
    zp: int = 0
    extra: dict[str, Any] = field(default_factory=dict)


def refuse(v: Variant, tap: str, why: str) -> SpecError:
    return SpecError(f"lower: {v.key} cannot sit at tap {tap!r}: {why}")


def _derive(v: Variant, tap: str, fn: Any, *args: Any, **kwargs: Any) -> Any:
    """``fn(*args, **kwargs)``, a SpecError of it re-raised naming the variant and tap."""
    try:
        return fn(*args, **kwargs)
    except SpecError as exc:
        raise refuse(v, tap, str(exc)) from None


def _max_bits(v: Variant, tap: str, fmt: IntFormat, bits: int) -> None:
    if fmt.bits > bits:
        raise refuse(v, tap, f"input {fmt} is wider than {bits} bits")


# ------------------------------------------------------------------ softmax
def softmax_refq(v: Variant, tap: str, scale: float, in_fmt: IntFormat,
                 quantized: bool) -> Placed:
    """uint8 output (uint16 when a quantizer follows), scale 1/(2^b - 1)."""
    _max_bits(v, tap, in_fmt, 17)
    b = 16 if quantized else 8
    p = _derive(v, tap, refq_softmax_params, scale, out_bits=b, in_format=in_fmt)
    return Placed(p, 1.0 / ((1 << b) - 1))


def softmax_ibert(v: Variant, tap: str, scale: float, in_fmt: IntFormat,
                  quantized: bool) -> Placed:
    """uint8 output (uint16 when a quantizer follows), scale 2^-b. exp16 = exp·m/2^c is
    exact in int64 only while max exp·m < 2^63: max exp = c_int·2^n (at d = 0, c_int ~
    2.8/S²), so the multiplier gets min(16, 63 - bits of c_int·2^n) bits and a scale that
    leaves fewer than 8 is refused (the I-BERT code computes this product in float64). The
    logits come on a 12-bit grid (``meta["lower.in_bits"]``: S ~ 1e-2 at ViT logit ranges,
    where the multiplier keeps all 16 bits)."""
    b = 16 if quantized else 8
    p = _derive(v, tap, ibert_softmax_params, scale, out_bits=b, in_format=in_fmt)
    exp_bits = min(16, 63 - (p.c_int << p.n).bit_length())
    if exp_bits < 8:
        raise refuse(v, tap, f"exp reaches 2^{(p.c_int << p.n).bit_length()}: its 16-bit "
                     f"QuantAct multiplier would have {exp_bits} bits (scale {scale:.3g} too "
                     "small)")
    if exp_bits < 16:
        p = _derive(v, tap, ibert_softmax_params, scale, out_bits=b, in_format=in_fmt,
                    exp_bits=exp_bits)
    return Placed(p, 2.0**-b)


def softmax_shiftmax(v: Variant, tap: str, scale: float, in_fmt: IntFormat,
                     quantized: bool, deploy: bool = False) -> Placed:
    """The variant's own output: uint15 (training, b = 16) or uint7 (deploy, b = 8),
    scale 2^-(b-1)."""
    p = _derive(v, tap, shiftmax_params, scale, deploy=deploy, in_format=in_fmt)
    return Placed(p, 2.0 ** -(p.out_bits - 1))


def softmax_tflite(v: Variant, tap: str, scale: float, in_fmt: IntFormat,
                   quantized: bool) -> Placed:
    """The int8 kernel with a uint8 output (zero point 0), scale 1/256."""
    p = _derive(v, tap, tflite_softmax_params, scale, in_format=in_fmt, out_format=UINT8)
    return Placed(p, 1.0 / 256)


def softmax_lis(v: Variant, tap: str, scale: float, in_fmt: IntFormat,
                quantized: bool) -> Placed:
    """FQ-ViT's log-int softmax on the logits codes (their zero point cancels in x - max x):
    uint5 codes, k < 16 for 2^-k and 16 for 0 — the codes of FQ-ViT's uint4 softmax
    quantizer, ``Log2Quantizer(4, "2", 1.0, "extra")``, which the tap must hold
    (``extra["codes_of"]``); decoded exactly at the scale 2^-15 into uint16 levels 2^(15-k)
    (``extra["decode"]``)."""
    if not quantized:
        raise refuse(v, tap, "its output is log2 codes: the spec must put FQ-ViT's uint4 "
                     "Log2Quantizer on the softmax tap")
    _max_bits(v, tap, in_fmt, 32)
    p = _derive(v, tap, lis_params, scale, bits=4, in_format=in_fmt)
    top = 1 << p.bits
    k = top - 1

    def codes_of(q: Any) -> None:
        if not (isinstance(q, Log2Quantizer) and q.base == "2" and q.zero == "extra"
                and q.scale == 1.0 and q.bits == p.bits):
            raise refuse(v, tap, f"the tap's quantizer must be Log2Quantizer({p.bits}, '2', "
                         f"1.0, 'extra') (the LIS codes), got {q!r}")

    table = tuple([1 << (k - c) for c in range(top)] + [0])
    return Placed(p, 2.0**-k, 0, {"decode": table, "codes_of": codes_of})


# ------------------------------------------------------------------ GELU
def gelu_float(x: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    out: npt.NDArray[np.float64] = 0.5 * x * (1.0 + erf(x / math.sqrt(2.0)))
    return out


def gelu_lut(b: Builder, v: Variant, acc: Acc, m: str) -> Act:
    """fc1 → its quantizer (or int12) → GELU by table: the table maps each input code to the
    post-GELU quantizer's code, or to its level at 2^-k, or to int16."""
    h = b.to_tap(acc, m + "fc1", bits=12)
    if h.fmt.bits > 16:
        raise refuse(v, m + "fc1", f"a GELU table input of {h.fmt} (wider than 16 bits)")
    codes = np.arange(h.fmt.min, h.fmt.max + 1, dtype=np.int64)
    g = gelu_float(h.scale * (codes - h.zp).astype(np.float64))
    tap = m + "gelu"
    q = b.spec.activations.get(tap)
    u = code_output(q) if q is not None else None
    if u is not None:
        table = u.quantize(g)
        fmt, s, zp, name = IntFormat(u.bits, u.signed), float(u.scale), int(u.zero_point), tap
    elif q is not None and q.axis is None and q.group_size is None:
        lv = np.asarray(q.fake_quant(g))
        amax = float(np.max(np.abs(lv)))
        k = math.floor(math.log2(32767.0 / amax)) if amax > 0 else 0
        table = np.rint(lv * 2.0**k).astype(np.int64)
        fmt, s, zp, name = IntFormat(16, True), 2.0**-k, 0, tap
    else:
        s = b.internal_scale(tap, 16)
        table = np.clip(np.rint(g / s), -32768, 32767).astype(np.int64)
        fmt, zp, name = IntFormat(16, True), 0, (tap if q is None else tap + ".pre")
    lp = GeluLutParams(tuple(int(t) for t in table), h.fmt, fmt)
    b.value(name, h.shape, fmt, s, zp)
    b.kernel(v.key, lp, [h.name], name, tap)
    out = Act(name, s, zp, fmt, h.shape)
    if name != tap:
        assert q is not None
        out = b.threshold_decode(out, q, tap)
    return out


def _gelu_kernel(b: Builder, v: Variant, acc: Acc, m: str, derive: Any,
                 finest: float | None = None) -> Act:
    """fc1 → its quantizer (or an int16 grid) → the variant's GELU kernel on the
    zero-point-free codes (shifted left, exactly, until the grid is at most ``finest`` if
    given) → the post-GELU tap's quantizer (or int16)."""
    h = b.zero_point_free(b.to_tap(acc, m + "fc1", bits=16), m + "fc1")
    tap = m + "gelu"
    if finest is not None and h.scale > finest:
        k = math.ceil(math.log2(h.scale / finest))
        fmt_k = IntFormat(h.fmt.bits + k, True)
        name = m + "fc1.fine"
        b.value(name, h.shape, fmt_k, h.scale / 2**k)
        b.move("shift_left", [h.name], [name], tap, shift=k)
        h = Act(name, h.scale / 2**k, 0, fmt_k, h.shape)
    pl: Placed = derive(v, tap, h.scale, h.fmt)
    out_fmt = v.out_format(pl.params)
    raw = tap + ".int"
    b.value(raw, h.shape, out_fmt, abs(pl.scale))
    b.kernel(v.key, pl.params, [h.name], raw, tap)
    src, fmt = raw, out_fmt
    if pl.extra.get("negate"):  # a negative output scale: -y at |scale|, exactly
        src, fmt = b.negate(raw, out_fmt, h.shape, abs(pl.scale), tap)
    return b.to_tap(Acc(src, np.array([abs(pl.scale)]), fmt, h.shape), tap, bits=16)


def _ibert(v: Variant, tap: str, scale: float, in_fmt: IntFormat) -> Placed:
    p = _derive(v, tap, ibert_gelu_params, scale, out_bits=32, in_format=in_fmt)
    s_out = scale * float(ibert_erf_scale(scale, p.erf_shift)) / 2
    return Placed(p, s_out, extra={"negate": s_out < 0})


IBERT_GELU_FINEST = 5e-4
"""i-GELU is designed for input scales of about 1e-4..1e-3 (I-BERT feeds it the int32
accumulator); at 8-bit activation scales (~0.05) its 2^14 erf shift leaves too few bits.
Coarser input codes are shifted left (exact: the same real values) to a grid of at most
this before the kernel."""


def gelu_ibert(b: Builder, v: Variant, acc: Acc, m: str) -> Act:
    """i-GELU at the input scale S (an int16 grid when fc1 is not quantized; quantized fc1
    codes shifted left to a grid <= :data:`IBERT_GELU_FINEST`); output int32 at S·S_erf/2 —
    a negative real per LSB, so the lowering negates it (an exact ``affine``) before the
    post-GELU quantizer."""
    return _gelu_kernel(b, v, acc, m, _ibert, finest=IBERT_GELU_FINEST)


def _shiftgelu(v: Variant, tap: str, scale: float, in_fmt: IntFormat) -> Placed:
    p = _derive(v, tap, shiftgelu_params, scale, in_format=in_fmt)
    return Placed(p, scale * 2.0 ** -(p.out_bits - 1))


def gelu_shiftgelu(b: Builder, v: Variant, acc: Acc, m: str) -> Act:
    """ShiftGELU at the input scale S (int16 grid when fc1 is not quantized); output int32
    at S·2^-(b-1) (b = 8)."""
    return _gelu_kernel(b, v, acc, m, _shiftgelu)


# ------------------------------------------------------------------ LayerNorm
def layernorm_refq(v: Variant, tap: str, x_fmt: IntFormat, zero_point: int,
                   channels: int) -> Placed:
    """frac_bits 15, int32 output (|out| <= 2^15 + bias)."""
    p = layernorm_params(in_format=x_fmt, zero_point=zero_point, frac_bits=15, out_bits=32)
    return Placed(p, extra={"frac_bits": 15})


def var_shift(x_fmt: IntFormat, zero_point: int, channels: int) -> int:
    """The smallest I-BERT var_shift s with C·(max|y| >> s + 1)² <= 2^32 - 1 for every input
    of the format (|y| = |x - mean| <= max - min): the variance then provably fits uint32."""
    span = x_fmt.max - x_fmt.min
    for s in range(17):
        if channels * ((span >> s) + 1) ** 2 <= 2**32 - 1:
            return s
    return -1


def layernorm_ibert(v: Variant, tap: str, x_fmt: IntFormat, zero_point: int,
                    channels: int) -> Placed:
    """frac_bits 30 (the code's), int48 output; var_shift proven from the input format
    (:func:`var_shift`; I-BERT calibrates it from the data)."""
    s = var_shift(x_fmt, zero_point, channels)
    if s < 0:
        raise refuse(v, tap, f"no var_shift <= 16 keeps Σ(y >> s)² of {channels} channels of "
                     f"{x_fmt} within uint32")
    p = layernorm_params(in_format=x_fmt, zero_point=zero_point, var_shift=s, frac_bits=30,
                         out_bits=48)
    return Placed(p, extra={"frac_bits": 30})


def layernorm_ivit(v: Variant, tap: str, x_fmt: IntFormat, zero_point: int,
                   channels: int) -> Placed:
    """frac_bits 30 (the code's), int48 output."""
    p = layernorm_params(in_format=x_fmt, zero_point=zero_point, frac_bits=30, out_bits=48)
    return Placed(p, extra={"frac_bits": 30})


# ------------------------------------------------------------------ requantize
def requantize_dyadic(v: Variant, tap: str, reals: Sequence[float] | float,
                      src_fmt: IntFormat, out_fmt: IntFormat, zero_point: int,
                      rounding: str, bound: int | None = None) -> Placed:
    """b/2^c per channel, b rounded half-even from the real with max(8, min(31, 62 - bits of
    the source)) bits (x·b stays in int64), the product rounded by ``rounding`` (the
    quantizer's)."""
    bits = max(8, min(31, 62 - src_fmt.bits))
    p = _derive(v, tap, requant_params, reals, "dyadic", out_zero_point=zero_point,
                out_format=out_fmt, rounding=rounding, multiplier_rounding="half_even",
                dyadic_bits=bits)
    return Placed(p)


def requantize_tflite(v: Variant, tap: str, reals: Sequence[float] | float,
                      src_fmt: IntFormat, out_fmt: IntFormat, zero_point: int,
                      rounding: str, bound: int | None = None) -> Placed:
    """TFLite QuantizeMultiplier per channel; its roundings are the variant's own (the
    quantizer's ``rounding`` does not apply). Refused where the source is wider than int32,
    where a real multiplier flushes to zero (shift < -31), or where x·2^shift could leave
    int32 for a source value (|x| <= ``bound`` when the source proves one, else its
    format's extremes)."""
    if src_fmt.bits > 32:
        raise refuse(v, tap, f"it takes an int32 accumulator, the source is {src_fmt}")
    p = _derive(v, tap, requant_params, reals, v.name, out_zero_point=zero_point,
                out_format=out_fmt)
    rl = list(reals) if isinstance(reals, (list, tuple)) else [reals]
    for r, m, s in zip(rl, p.multiplier, p.shift, strict=True):
        if m == 0 and r != 0:
            raise refuse(v, tap, f"the real multiplier {r:.3g} flushes to 0 (shift < -31)")
        mag = max(-src_fmt.min, src_fmt.max) if bound is None else bound
        if s > 0 and mag << s > INT32.max:
            raise refuse(v, tap, f"real multiplier {r:.3g} needs a left shift {s}: source "
                         f"values up to {mag} times 2^{s} leave int32")
    return Placed(p)


def no_left_shift(scales: Any) -> float:
    """The smallest output scale of an internal grid a TFLite requantization can reach from
    an accumulator of these per-channel ``scales`` without a left shift: their largest (so
    every real multiplier is <= 1)."""
    return float(np.max(np.asarray(scales, dtype=np.float64)))


# ------------------------------------------------------------------ add
def add_scheme(v: Variant, tap: str, a: Any, r: Any, out_scale: float, out_fmt: IntFormat,
               out_zero_point: int) -> Placed:
    """One residual add of ``a`` and ``r`` (Acts) to ``out_scale``: 16-bit multipliers."""
    p = _derive(v, tap, add_params, a.scale, r.scale, out_scale, v.name, a_format=a.fmt,
                b_format=r.fmt, a_zero_point=a.zp, b_zero_point=r.zp,
                out_zero_point=out_zero_point, out_format=out_fmt, bits=16)
    return Placed(p, out_scale, out_zero_point)


__all__ = [
    "IBERT_GELU_FINEST",
    "Placed",
    "add_scheme",
    "gelu_float",
    "gelu_ibert",
    "gelu_lut",
    "gelu_shiftgelu",
    "layernorm_ibert",
    "layernorm_ivit",
    "layernorm_refq",
    "no_left_shift",
    "refuse",
    "requantize_dyadic",
    "requantize_tflite",
    "softmax_ibert",
    "softmax_lis",
    "softmax_refq",
    "softmax_shiftmax",
    "softmax_tflite",
    "var_shift",
]
