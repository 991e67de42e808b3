"""Integer LayerNorm statistics over the last axis (C channels): ``refq``, ``ibert``, ``ivit``.

Input forms (all variants). The input is aligned to one integer scale S before any
statistic: a = (x - zero_point) << channel_shift[c], int32 (checked). channel_shift is
per-channel (length C) or one value:
- plain: channel_shift = (0,);
- PTF (FQ-ViT): x_c has scale S·2^α_c, α_c in 0..3, one shared zero point → shift α_c;
- O-2SF (TSPTQ): outlier channels carry a second scale S·2^k → shift k there, 0 elsewhere.

``refq`` (default): exact statistics without rounding the mean:
    y = C·a - Σa                        int<stat_bits=40> (checked)
    v = Σ y²                            int63 (checked)
    k = max(0, ⌊(62 - bitlen(v)) / 2⌋); s = isqrt(v·4^k)   (≈ √v·2^k, exact floor)
    out = round_half_even(y·2^(F+k) / max(s, 1)) + bias_c   int<out_bits>, scale √C/2^F
  out·√C/2^F approximates (x - μ)/σ (population σ, eps ignored) to <= 1/2 LSB + 2^(F-30).

``ibert`` (kssteven418/I-BERT IntLayerNorm): mean = round_half_even(Σa / C); y = a - mean;
  v = Σ (y >> var_shift)² (uint32, checked: I-BERT raises var_shift on overflow);
  std = isqrt(v)·2^var_shift (the code: floor(torch.sqrt)); factor = ⌊2^31 / max(std, 1)⌋;
  out = ⌊y·factor / 2⌋ + bias_c, scale √C/2^30 (std = 0 → 1 is a refq deviation: the code
  divides by zero).
``ivit`` (zkkli/I-ViT IntLayerNorm): same mean; v = Σ y² (int64); 10 Newton steps
  k ← ⌊(k + ⌊v/k⌋)/2⌋ from k = 2^16 (faithful: does not converge for small v, e.g. 99 → 64);
  factor = ⌊(2^31 - 1)/k⌋; out = ⌊y·factor / 2⌋ + bias_c, scale √C/2^30.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath import INT8, INT32, IntArray, IntFormat, check_range, ilog2, isqrt, round_div
from refq.ops._common import (
    Params,
    int_input,
    need_format,
    need_int,
    need_ints,
    per_channel,
    signed,
)

UINT32 = IntFormat(32, False)


@dataclass(frozen=True)
class LayerNormParams(Params):
    """Integer LayerNorm parameters (module docstring). ``bias`` is β/γ at the output
    scale (per channel or one value); ``frac_bits`` F is the refq output precision."""

    in_format: IntFormat = INT8
    zero_point: int = 0
    channel_shift: tuple[int, ...] = (0,)
    bias: tuple[int, ...] = (0,)
    var_shift: int = 0
    frac_bits: int = 15
    out_bits: int = 48

    def __post_init__(self) -> None:
        fmt = need_format(self.in_format, "in_format")
        need_int(self.zero_point, "zero_point", fmt.min, fmt.max)
        shifts = need_ints(self.channel_shift, "channel_shift", 0, 16)
        object.__setattr__(self, "channel_shift", shifts)
        object.__setattr__(self, "bias", need_ints(self.bias, "bias", -(2**47), 2**47))
        need_int(self.var_shift, "var_shift", 0, 16)
        need_int(self.frac_bits, "frac_bits", 1, 30)
        need_int(self.out_bits, "out_bits", 8, 64)


def align(x: Any, p: LayerNormParams, op: str) -> IntArray:
    """(x - zero_point) << channel_shift, int32 (checked): the PTF / O-2SF input form."""
    xa = int_input(x, p.in_format, "x", op, 1)
    c = xa.shape[-1]
    if c == 0:
        raise SpecError(f"{op}: empty channel axis")
    sh = per_channel(p.channel_shift, c, "channel_shift", op)
    return check_range((xa - np.int64(p.zero_point)) << sh, INT32, "aligned x", op)


def _bias(p: LayerNormParams, c: int, op: str) -> IntArray:
    return per_channel(p.bias, c, "bias", op)


def _finish(y: IntArray, p: LayerNormParams, op: str) -> IntArray:
    return check_range(y + _bias(p, y.shape[-1], op), signed(p.out_bits), "out", op)


def layernorm_refq(x: Any, params: LayerNormParams) -> IntArray:
    """refq exact-statistics LayerNorm (module docstring)."""
    op = "layernorm_refq"
    p = params
    a = align(x, p, op)
    c = a.shape[-1]
    y = check_range(np.int64(c) * a - a.sum(axis=-1, keepdims=True), signed(40), "C*x - sum", op)
    v = check_range((y * y).sum(axis=-1, keepdims=True), signed(63), "sum(y^2)", op)
    k = np.maximum(np.int64(0), (np.int64(62) - (ilog2(np.maximum(v, 1)) + 1)) >> 1)
    s = np.maximum(isqrt(v << (2 * k)), 1)
    out = round_div(y << (np.int64(p.frac_bits) + k), np.broadcast_to(s, y.shape), "half_even")
    return _finish(out, p, op)


def _mean_center(a: IntArray) -> IntArray:
    c = a.shape[-1]
    mean = round_div(a.sum(axis=-1, keepdims=True), c, "half_even")
    return a - mean


def layernorm_ibert(x: Any, params: LayerNormParams) -> IntArray:
    """I-BERT integer LayerNorm (module docstring). Rounding: mean half_even, then floor."""
    op = "layernorm_ibert"
    p = params
    y = _mean_center(align(x, p, op))
    ys = y >> np.int64(p.var_shift)
    v = check_range((ys * ys).sum(axis=-1, keepdims=True), UINT32, "var (raise var_shift)", op)
    std = np.maximum(isqrt(v) << np.int64(p.var_shift), 1)
    factor = np.int64(2**31) // std
    return _finish((y * factor) >> 1, p, op)


def ivit_sqrt(v: IntArray, steps: int = 10) -> IntArray:
    """I-ViT's integer square root: ``steps`` Newton iterations from 2^16, floor divisions."""
    k = np.full(v.shape, 1 << 16, dtype=np.int64)
    for _ in range(steps):
        k = (k + v // k) >> 1
    return k


def layernorm_ivit(x: Any, params: LayerNormParams) -> IntArray:
    """I-ViT integer LayerNorm with its faithful 10-step Newton sqrt (module docstring)."""
    op = "layernorm_ivit"
    p = params
    y = _mean_center(align(x, p, op))
    v = check_range((y * y).sum(axis=-1, keepdims=True), signed(63), "var", op)
    factor = np.int64(2**31 - 1) // ivit_sqrt(v)
    return _finish((y * factor) >> 1, p, op)


LayerNormVariant = Literal["refq", "ibert", "ivit"]
LAYERNORM_VARIANTS: tuple[str, ...] = ("refq", "ibert", "ivit")
_FNS = {"refq": layernorm_refq, "ibert": layernorm_ibert, "ivit": layernorm_ivit}


def layernorm(x: Any, params: LayerNormParams, variant: LayerNormVariant = "refq") -> IntArray:
    """Integer LayerNorm along the last axis by ``variant`` (module docstring)."""
    if variant not in _FNS:
        raise SpecError(f"layernorm: unknown variant {variant!r}; expected {LAYERNORM_VARIANTS}")
    if not isinstance(params, LayerNormParams):
        raise SpecError(f"layernorm: expected LayerNormParams, got {type(params).__name__}")
    return _FNS[variant](x, params)


__all__ = [
    "LAYERNORM_VARIANTS",
    "LayerNormParams",
    "LayerNormVariant",
    "align",
    "ivit_sqrt",
    "layernorm",
    "layernorm_ibert",
    "layernorm_ivit",
    "layernorm_refq",
]
