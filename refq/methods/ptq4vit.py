"""``ptq4vit``: PTQ4ViT (Yuan et al., ECCV 2022; github.com/hahnyuan/PTQ4ViT, configs
``PTQ4ViT.py``), twin uniform quantizers and the Hessian-guided scale search.

Placement (as the official ``get_module``; per tensor see docs/methods.md):

- patch embedding (``ChannelwiseBatchingQuantConv2d``, ``a_bit=32``): the input image is
  not quantized; the weight is signed symmetric per output channel, each channel's scale
  searched on the conv output (:func:`refq.calib.ptq4vit_search_channels`);
- qkv, proj, fc1, fc2, head (``PTQSLBatchingQuantLinear``): signed symmetric per-tensor
  weight (qkv: one scale per q / k / v row block, ``n_V=3``) and per-tensor signed input,
  searched jointly (:func:`refq.calib.ptq4vit_search`, 3 alternating rounds, 100
  candidates); the fc2 input (post-GELU) is twin uniform
  (``PostGeluPTQSLBatchingQuantLinear``); the head reads the class token;
- q@kᵀ and attn@v (``PTQSLBatchingQuantMatMul`` / ``SoSPTQSLBatchingQuantMatMul``):
  per-head signed operands, the post-softmax operand twin uniform (split 2^-m, m ∈ 0..19,
  code form), searched on the matmul output.

Every search scores candidates on the layer output by ``metric`` and sees the first
``calib_sub`` calibration images (default: all, as the official calibration does).
Gradient policy of the Hessian metric, sequential mode and their costs: see
:class:`PTQ4ViTOptions` and docs/methods.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from refq.calib import ptq4vit_search, ptq4vit_search_matmul
from refq.calib.search_ptq4vit import ptq4vit_search_channels
from refq.errors import SpecError
from refq.methods.context import Ctx, FloatArray, f64, minmax_act, minmax_weight
from refq.methods.options import RecipeOptions, positive
from refq.quant import Quantizer, QuantSpec

PTQ4VIT_METRICS = ("hessian", "cosine", "mse")
"""Layer-output metrics of the ptq4vit recipe (``metric`` option; "hessian" is the paper's)."""


@dataclass(frozen=True)
class PTQ4ViTOptions(RecipeOptions):
    """Options of ``ptq4vit``.

    - ``metric`` ("hessian", the paper's): the layer-output loss of every search; "hessian"
      is ``mean((dL/dO ⊙ (O - Ô))²)`` with refq's gradient policy ``hessian_loss`` (the
      official default flow's KL gradient is identically zero, PTQ4ViT issue #23);
      "cosine" (PTQ4ViT's base PTQ) and "mse" need no gradients.
    - ``hessian_loss`` (None: "ce", or "kl" when ``sequential``): "ce", "kl", "fisher",
      "fisher_balanced" (refq.calib.hessian).
    - ``sequential`` (False, the official example's setting): the official
      ``sequential=True`` calibration, each op searched on the partially quantized model.
    - ``n`` (100) candidates, ``rounds`` (3) alternating rounds.
    - ``patch_embed`` ("search", the official code): "minmax" keeps refq's former per-channel
      min-max weight of the patch embedding instead of searching it.
    - ``calib_sub`` (None: every calibration image, as the official code): the searches use
      only the first ``calib_sub`` images (a speed option; cost grows linearly with it).
    """

    METHOD: ClassVar[str] = "ptq4vit"
    metric: Literal["hessian", "cosine", "mse"] = "hessian"
    hessian_loss: Literal["ce", "kl", "fisher", "fisher_balanced"] | None = None
    sequential: bool = False
    n: int = 100
    rounds: int = 3
    patch_embed: Literal["search", "minmax"] = "search"
    calib_sub: int | None = None

    def check(self) -> None:
        for k in ("n", "rounds", "calib_sub"):
            positive(f"ptq4vit.{k}", getattr(self, k))
        if self.sequential and self.hessian_loss not in (None, "kl"):
            raise SpecError(f"ptq4vit: sequential=True uses the official KL gradient at the "
                            f"partially quantized model (hessian_loss='kl'), got "
                            f"{self.hessian_loss!r}")

    @property
    def loss(self) -> str:
        if self.hessian_loss is not None:
            return self.hessian_loss
        return "kl" if self.sequential else "ce"


def run(ctx: Ctx, o: PTQ4ViTOptions, seed: int = 0) -> QuantSpec:
    xs = ctx.subset(o.calib_sub)
    ctx.notes["calib_sub"] = int(xs.shape[0])
    # starting quantizers: min-max weights (the sequential mode's "not searched yet" state)
    for op in ctx.ops:
        if op.weight is not None:
            ctx.weights[op.weight] = minmax_weight(ctx.param(op.weight), ctx.w_bits)
    taps = ctx.fp_taps(ctx.op_input_taps(), xs)
    metric_for: Callable[..., Any] | None = None
    if o.metric == "hessian" and not o.sequential:
        from refq.calib.hessian import hessian_metric_factory
        pred = None
        if o.loss == "kl":  # KL(FP || min-max fake-quant model) on the same images
            from refq.calib.fakequant import fake_quantized_model
            acts = {t: _minmax_act(taps[t], ctx.a_bits) for t in taps if t != "input"}
            mq, tap = fake_quantized_model(ctx.model, ctx.weights, acts)
            pred = mq.forward(xs, tap=tap)
        metric_for = hessian_metric_factory(ctx.model, xs, labels=None, loss=o.loss, pred=pred)
    if o.metric == "hessian":
        ctx.notes["hessian_loss"] = o.loss
    seq_w: dict[str, Quantizer] = {}
    seq_a: dict[str, Quantizer] = {}
    pred_fp: FloatArray | None = None
    kls: list[float] = []
    if o.sequential:
        from refq.calib.hessian import sequential_op_metric, sequential_state
        pred_fp = f64(ctx.model.forward(xs))
    for op in ctx.ops:
        st = None
        if o.sequential:
            assert pred_fp is not None
            grads = o.metric == "hessian" and op.role != "patch_embed"
            st = sequential_state(ctx.model, xs, seq_w, seq_a, pred_fp, grads=grads)
            kls.append(st.kl)
        src: Callable[[str], Any] = taps.__getitem__ if st is None else st.taps.__getitem__
        m: Any = o.metric
        if op.role == "patch_embed":
            assert op.weight is not None
            if o.patch_embed == "minmax" or (o.sequential and o.metric == "hessian"):
                # sequential + Hessian: nothing is quantized yet, the KL gradient is exactly
                # zero and the official search degenerates to its first candidate
                seq_w[op.weight] = ctx.weights[op.weight]
                continue
            if o.metric == "hessian" and metric_for is not None:
                m = metric_for(op.name)
            w = ctx.param(op.weight)
            wq_c, _ = ptq4vit_search_channels(
                _patches(ctx, src(op.inputs[0])),
                w.reshape(w.shape[0], -1), ctx.params.get(op.name + ".bias"),
                w_bits=ctx.w_bits, metric=m, n=o.n)
            ctx.weights[op.weight] = wq_c
            seq_w[op.weight] = wq_c
            continue
        if op.kind == "linear":
            assert op.weight is not None
            bias = ctx.params.get(op.weight[: -len("weight")] + "bias")
            if o.metric == "hessian":
                m = (sequential_op_metric(st, op.name) if st is not None
                     else metric_for(op.name) if metric_for is not None else None)
            wq, xq, _ = ptq4vit_search(
                ctx.linear_input(src(op.inputs[0]), op), ctx.param(op.weight), bias,
                w_bits=ctx.w_bits, a_bits=ctx.a_bits, metric=m, n=o.n, rounds=o.rounds,
                weight_blocks=3 if op.role == "qkv" else 1,
                post_gelu=op.input_kinds[:1] == ("post_gelu",))
            ctx.weights[op.weight] = wq
            ctx.acts[op.inputs[0]] = xq
            seq_w[op.weight] = wq
            seq_a[op.inputs[0]] = xq
        else:
            a = src(op.inputs[0])
            b = src(op.inputs[1])
            softmax = op.input_kinds[:1] == ("post_softmax",)
            if not softmax:  # q @ k^T: the right operand is k transposed
                b = np.swapaxes(b, -1, -2)
            out_shape = (*a.shape[:-1], b.shape[-1])
            if o.metric == "hessian":
                m = (sequential_op_metric(st, op.name, out_shape) if st is not None
                     else metric_for(op.name, out_shape) if metric_for is not None else None)
            aq, bq, _ = ptq4vit_search_matmul(a, b, a_bits=ctx.a_bits, b_bits=ctx.a_bits,
                                                metric=m, softmax=softmax, n=o.n,
                                                rounds=o.rounds)
            ctx.acts[op.inputs[0]] = aq
            ctx.acts[op.inputs[1]] = bq
            seq_a[op.inputs[0]] = aq
            seq_a[op.inputs[1]] = bq
    ctx.notes.update(metric=o.metric, candidates=o.n, rounds=o.rounds,
                     patch_embed=o.patch_embed)
    if o.sequential:
        ctx.notes["sequential"] = True
        ctx.notes["sequential_kl"] = [round(v, 12) for v in kls]
    return ctx.spec("ptq4vit")


def _patches(ctx: Ctx, image: FloatArray) -> FloatArray:
    """The patch-embedding conv's input as (B, P, Cin·p·p) patches (the conv is a linear
    layer over them, refq.nn's ``patchify``)."""
    from refq.nn.layers import patchify

    return f64(patchify(image, int(ctx.model.config.patch_size)))


def _minmax_act(x: FloatArray, bits: int) -> Quantizer:
    return minmax_act(x, bits)


__all__ = ["PTQ4VIT_METRICS", "PTQ4ViTOptions", "run"]
