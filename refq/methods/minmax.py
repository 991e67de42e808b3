"""``minmax``: the baseline. Every linear weight gets a symmetric signed per-output-channel
(axis 0) UniformQuantizer from its min/max; every activation input tap of every
linear / matmul in ``model.ops()`` an asymmetric per-tensor UniformQuantizer from the
min/max seen on the calibration images. Rounding half_even throughout. No options."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from refq.methods.context import Ctx, minmax_act, minmax_weight
from refq.methods.options import RecipeOptions
from refq.quant import QuantSpec


@dataclass(frozen=True)
class MinmaxOptions(RecipeOptions):
    """``minmax`` takes no options."""

    METHOD: ClassVar[str] = "minmax"


def run(ctx: Ctx, o: MinmaxOptions, seed: int = 0) -> QuantSpec:
    taps = ctx.fp_taps(ctx.op_input_taps())
    for op in ctx.ops:
        if op.weight is not None:
            ctx.weights[op.weight] = minmax_weight(ctx.param(op.weight), ctx.w_bits)
    for t, x in taps.items():
        ctx.acts[t] = minmax_act(x, ctx.a_bits)
    return ctx.spec("minmax")


__all__ = ["MinmaxOptions", "run"]
