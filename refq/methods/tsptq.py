"""``tsptq``: TSPTQ-ViT (Tai, Lin, Wu, ICASSP 2023), fully quantized; no public code, so
every choice is refq's reading of the paper (docs/methods.md).

- post-softmax and post-GELU: V-2SF (:func:`refq.calib.v2sf_search`);
- LayerNorm inputs (the residual stream before each LayerNorm an op reads): O-2SF
  (:func:`refq.calib.o2sf_search`, channel axis -1);
- softmax input (``attn.q@k``) and GELU input (``mlp.fc1``): per-tensor min-max;
- weights per-channel min-max; every other linear / matmul input per-tensor min-max.

Min-max observers use every calibration image; the searches the first ``calib_sub`` (8).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from refq.calib import o2sf_search, v2sf_search
from refq.methods.context import Ctx, minmax_act, minmax_weight
from refq.methods.options import RecipeOptions, positive
from refq.quant import QuantSpec


@dataclass(frozen=True)
class TSPTQOptions(RecipeOptions):
    """Options of ``tsptq``: ``calib_sub`` (8) images for the V-2SF / O-2SF searches (None:
    all)."""

    METHOD: ClassVar[str] = "tsptq"
    calib_sub: int | None = 8

    def check(self) -> None:
        positive("tsptq.calib_sub", self.calib_sub)


def run(ctx: Ctx, o: TSPTQOptions, seed: int = 0) -> QuantSpec:
    ln_in = ctx.layernorm_input_taps()
    softmax_in = [op.output for op in ctx.ops if op.role == "q@k"]
    gelu_in = [op.output for op in ctx.ops if op.role == "fc1"]
    names = {*ctx.op_input_taps(), *ln_in, *softmax_in, *gelu_in}
    taps = ctx.fp_taps(names)
    sub = int(ctx.subset(o.calib_sub).shape[0])
    ctx.notes["calib_sub"] = sub
    for op in ctx.ops:
        if op.weight is not None:
            ctx.weights[op.weight] = minmax_weight(ctx.param(op.weight), ctx.w_bits)
    for t in sorted(names):
        ctx.acts[t] = minmax_act(taps[t], ctx.a_bits)
    for t in ln_in:
        ctx.acts[t], _ = o2sf_search(taps[t][:sub], ctx.a_bits, axis=-1)
    for t in (*ctx.taps_of_kind("post_softmax"), *ctx.taps_of_kind("post_gelu")):
        ctx.acts[t], _ = v2sf_search(taps[t][:sub], ctx.a_bits)
    return ctx.spec("tsptq")


__all__ = ["TSPTQOptions", "run"]
