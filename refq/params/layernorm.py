"""LayerNorm parameters: input forms (PTF, O-2SF) and the integer bias β/γ."""

from __future__ import annotations

from decimal import Decimal, localcontext
from fractions import Fraction
from typing import Any

from refq.errors import SpecError
from refq.intmath import INT8, IntFormat
from refq.ops.layernorm import LayerNormParams
from refq.params._real import exact, floor_frac


def o2sf_channel_shift(outlier: Any, k: int) -> tuple[int, ...]:
    """TSPTQ O-2SF: channel c carries scale S·2^k where outlier[c] is true, S elsewhere."""
    if not 0 <= int(k) <= 16:
        raise SpecError(f"o2sf_channel_shift: k = {k} outside 0..16")
    return tuple(int(k) if bool(o) else 0 for o in outlier)


def _sqrt(c: int) -> Fraction:
    with localcontext() as ctx:
        ctx.prec = 50
        return Fraction(Decimal(c).sqrt())


def ibert_bias(beta: Any, gamma: Any, channels: int, frac_bits: int = 30) -> tuple[int, ...]:
    """bias_c = ⌊(β_c/γ_c) / (√C / 2^frac_bits)⌋ (I-BERT / I-ViT: frac_bits = 30, floor)."""
    root = _sqrt(channels)
    out = []
    for i, (b, g) in enumerate(zip(beta, gamma, strict=True)):
        gf = exact(g, f"gamma[{i}]", positive=False)
        if gf == 0:
            raise SpecError(f"ibert_bias: gamma[{i}] = 0")
        out.append(floor_frac(exact(b, f"beta[{i}]", positive=False) / gf * 2**frac_bits / root))
    return tuple(out)


def layernorm_params(
    *,
    in_format: IntFormat = INT8,
    zero_point: int = 0,
    channel_shift: tuple[int, ...] = (0,),
    bias: tuple[int, ...] = (0,),
    var_shift: int = 0,
    frac_bits: int = 15,
    out_bits: int = 48,
) -> LayerNormParams:
    """LayerNormParams; PTF: channel_shift = α (0..3 per channel); O-2SF: o2sf_channel_shift."""
    return LayerNormParams(in_format, zero_point, channel_shift, bias, var_shift, frac_bits,
                           out_bits)


__all__ = ["ibert_bias", "layernorm_params", "o2sf_channel_shift"]
