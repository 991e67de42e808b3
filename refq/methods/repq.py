"""``repq``: RepQ-ViT (Li et al., ICCV 2023; github.com/zkkli/RepQ-ViT ``classification/``),
and ``dopq``: DopQ-ViT, which replaces two of RepQ-ViT's choices (no public code).

RepQ-ViT's calibration (``test_quant.py``, ``quant/quant_model.py``, ``quant/quantizer.py``),
reproduced by default:

1. every weight — the patch-embedding conv, qkv, proj, fc1, fc2, head — gets an unsigned
   asymmetric per-output-channel uniform quantizer by percentile-MSE over RepQ-ViT's
   candidates {0.999, 0.9999, 0.99999} (:func:`refq.calib.percentile_mse_init`);
2. ONE forward of the calibration batch with every quantizer on: each activation
   quantizer fits itself on the tensor reaching it, upstream quantizers applied
   (:func:`refq.calib.inorder.fit_in_order`): the image 8-bit per tensor; the post-
   LayerNorm inputs of qkv and fc1 per channel; the post-softmax operand of attn@v log√2
   (:func:`refq.calib.log2_init`); the head input per tensor on the class token; every
   other linear / matmul input per tensor — all by percentile-MSE over the same
   candidates;
3. the post-LayerNorm channel quantizers are reparameterized to per-tensor ones (mean
   channel scale, mean zero point unrounded; LayerNorm and qkv / fc1 rewritten,
   :func:`refq.calib.reparameterize_quantizer`), and the qkv / fc1 weight quantizers are
   fitted again on the rewritten weights. Nothing else is recalibrated.

Swin: the input of each patch-merging reduction is fitted per channel too; RepQ-ViT also
folds it, creating a bias for the reduction, which refq's Swin (timm's parameters: no
reduction bias) cannot hold, so it stays a per-channel quantizer.

``dopq`` runs the same steps with the MEDIAN channel scale (MOSF, ``choice``) and TanQ
(:func:`refq.calib.tanq_shape_search`) in place of log√2 on the post-softmax operand.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from refq.calib import (
    log2_init,
    percentile_mse_init,
    reparameterize_quantizer,
    tanq_shape_search,
)
from refq.calib.inorder import Fitter, fit_in_order
from refq.calib.quantile import Arith
from refq.calib.search_ias import ACT_PERCENTILES, REPQ_WEIGHT_PERCENTILES, WEIGHT_PERCENTILES
from refq.methods.context import Ctx, FloatArray, f64, minmax_act
from refq.methods.options import RecipeOptions, positive
from refq.quant import Quantizer, QuantSpec, UniformQuantizer

INPUT_BITS = 8
"""RepQ-ViT quantizes the image to 8 bits at every width (``input_quant_params_conv``)."""


@dataclass(frozen=True)
class RepQOptions(RecipeOptions):
    """Options of ``repq`` (defaults: RepQ-ViT's code).

    - ``weight_percentiles`` ("repq": {0.999, 0.9999, 0.99999}); "ias": I&S-ViT's nine
      weight candidates (refq's former default).
    - ``observer`` ("percentile": percentile-MSE activations); "minmax": min-max
      activations, per channel on the post-LayerNorm inputs (refq's former default).
    - ``arith`` ("float64"): "float32" runs the calibration forward and the searches in
      float32, as the published code does on a GPU.
    - ``calib_sub`` (None: every calibration image, RepQ-ViT's one batch of 32).
    """

    METHOD: ClassVar[str] = "repq"
    weight_percentiles: Literal["repq", "ias"] = "repq"
    observer: Literal["percentile", "minmax"] = "percentile"
    arith: Literal["float64", "float32"] = "float64"
    calib_sub: int | None = None

    def check(self) -> None:
        positive(f"{self.METHOD}.calib_sub", self.calib_sub)


@dataclass(frozen=True)
class DopQOptions(RepQOptions):
    """Options of ``dopq``: ``repq``'s plus ``choice`` ("median": MOSF; "mean": RepQ-ViT's;
    "mad": refq's MAD-guided reading of the later paper version)."""

    METHOD: ClassVar[str] = "dopq"
    choice: Literal["median", "mean", "mad"] = "median"


def weight_candidates(name: str) -> tuple[float, ...]:
    return REPQ_WEIGHT_PERCENTILES if name == "repq" else WEIGHT_PERCENTILES


def fit_weights(ctx: Ctx, names: list[str], candidates: tuple[float, ...],
                arith: Arith) -> None:
    """Per-output-channel percentile-MSE quantizers of the weights ``names`` (conv weights
    flattened per output channel), on the current (possibly rewritten) parameters."""
    for name in names:
        w = ctx.param(name)
        q, _ = percentile_mse_init(w.reshape(w.shape[0], -1), ctx.w_bits, kind="weight",
                                   candidates=candidates, axis=0, arith=arith)
        ctx.weights[name] = q


def percentile_fitter(bits: int, axis: int | None, arith: Arith) -> Fitter:
    """The activation fitter of RepQ-ViT and I&S-ViT: the percentile-MSE initialisation
    over ACT_PERCENTILES, per tensor or (``axis``) per channel of the last axis."""

    def fit(x: FloatArray) -> Quantizer:
        rows = x.reshape(-1, x.shape[-1]) if axis is not None else x
        return percentile_mse_init(rows, bits, candidates=ACT_PERCENTILES, axis=axis,
                                   arith=arith)[0]
    return fit


def _minmax(bits: int, per_channel: bool) -> Fitter:
    def fit(x: FloatArray) -> Quantizer:
        if not per_channel:
            return minmax_act(x, bits)
        flat = x.reshape(-1, x.shape[-1])
        return UniformQuantizer.from_minmax(flat.min(axis=0), flat.max(axis=0), bits, axis=-1)
    return fit


def run(ctx: Ctx, o: RepQOptions, seed: int = 0) -> QuantSpec:
    method = o.METHOD
    choice = o.choice if isinstance(o, DopQOptions) else "mean"
    cands = weight_candidates(o.weight_percentiles)
    xs = ctx.subset(o.calib_sub)
    ctx.notes.update(calib_sub=int(xs.shape[0]), reparam_choice=choice,
                     weight_percentiles=list(cands), observer=o.observer, arith=o.arith)
    weights = [op.weight for op in ctx.ops if op.weight is not None]
    fit_weights(ctx, weights, cands, o.arith)
    # RepQ-ViT fits the inputs of qkv, fc1 and Swin's patch-merging reduction per channel
    # (quant/quant_model.py:51-52) and folds them into the LayerNorm before (test_quant.py
    # 111-143); refq's reduction has no bias to absorb the fold (RepQ-ViT adds one), so
    # that input stays per channel
    channel_inputs = ctx.post_norm_folds(("qkv", "fc1", "reduction"))
    fold_taps = {norm for norm, _ in channel_inputs}
    folds = [(norm, lin) for norm, lin in channel_inputs if f"{lin}.bias" in ctx.params]
    fitters: dict[str, Fitter] = {}
    for op in ctx.ops:
        for t, kind in zip(op.inputs, op.input_kinds, strict=True):
            if kind == "image":
                fitters[t] = (percentile_fitter(INPUT_BITS, None, o.arith)
                              if o.observer == "percentile" else _minmax(INPUT_BITS, False))
            elif kind == "post_softmax":
                fitters[t] = _softmax_fitter(ctx, method, o.arith)
            else:
                chan = t in fold_taps
                fitters[t] = (percentile_fitter(ctx.a_bits, -1 if chan else None, o.arith)
                              if o.observer == "percentile" else _minmax(ctx.a_bits, chan))
    model = ctx.model
    if o.arith == "float32":
        model = model.with_params(model.params, dtype=np.float32)
    fitted = fit_in_order(model, xs, fitters, weights=ctx.weights, rows=ctx.head_rows())
    ctx.acts.update(fitted)
    for norm, lin in folds:
        qc = fitted[norm]
        assert isinstance(qc, UniformQuantizer)
        keys = [f"{norm}.weight", f"{norm}.bias", f"{lin}.weight", f"{lin}.bias"]
        sub = {k: ctx.param(k) for k in keys if k in ctx.params}
        newp, ql, _ = reparameterize_quantizer(sub, norm, lin, qc, choice=choice)
        ctx.new_params.update({k: f64(v) for k, v in newp.items()})
        ctx.acts[norm] = ql
    fit_weights(ctx, [f"{lin}.weight" for _, lin in folds], cands, o.arith)
    return ctx.spec(method)


def _softmax_fitter(ctx: Ctx, method: str, arith: Arith) -> Fitter:
    def fit(x: FloatArray) -> Quantizer:
        if method == "dopq":
            return tanq_shape_search(x, ctx.a_bits)[0]
        return log2_init(x, ctx.a_bits, base="sqrt2", arith=arith)[0]
    return fit


__all__ = ["INPUT_BITS", "DopQOptions", "RepQOptions", "fit_weights", "percentile_fitter",
           "run", "weight_candidates"]
