"""``ias``: I&S-ViT (Zhong et al.; github.com/zysxmu/IaS-ViT at 9300cea, ``test_quant.py``
with ``--w_cw`` as its README runs it, ``quant/quant_model.py``, ``quant/quantizer.py``).

Reproduced by default (the gradient-free part of the official flow):

1. stage one, activations: ONE forward of the first ``calib_sub`` (64) calibration images
   with activation quantizers on and weights in float; each activation quantizer fits
   itself on the tensor reaching it, upstream quantizers applied
   (:func:`refq.calib.inorder.fit_in_order`): the post-LayerNorm inputs of qkv and fc1 per
   channel, the post-softmax operand of attn@v SULQ (η search in the official arithmetic,
   code-form forward, :func:`refq.calib.sulq_eta_search`), the head input per tensor on
   the class token, every other linear / matmul input per tensor, all uniform ones by
   percentile-MSE over {0.999, 0.9999, 0.99999}; the input image is not quantized;
2. stage two: the post-LayerNorm channel quantizers reparameterized to per-tensor ones
   (mean scale, mean zero point unrounded, RepQ-ViT's fold);
3. stage three, weights: every weight (patch-embedding conv, qkv, proj, fc1, fc2, head)
   per output channel by percentile-MSE over I&S-ViT's nine weight candidates, on the
   reparameterized weights.

With ``sos=True`` the SOS block reconstruction (:func:`refq.calib.sos.sos_reconstruct`)
runs between and after these steps; docs/methods.md lists where refq's SOS differs.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar, Literal

import numpy as np

from refq.calib import percentile_mse_init, reparameterize_quantizer, sulq_eta_search
from refq.calib.inorder import Fitter, fit_in_order
from refq.calib.quantile import Arith
from refq.errors import SpecError
from refq.methods.context import Ctx, FloatArray, f64
from refq.methods.options import RecipeOptions, positive
from refq.methods.repq import fit_weights, percentile_fitter, weight_candidates
from refq.quant import Quantizer, QuantSpec, UniformQuantizer


@dataclass(frozen=True)
class IaSOptions(RecipeOptions):
    """Options of ``ias`` (defaults: the official code, except ``sos``).

    - ``sos`` (False; the paper's full method is True, off by default because it costs
      minutes): the three-stage SOS reconstruction on ALL calibration images;
      ``sos_iters`` (1000), ``sos_lr`` (4e-5, cosine to 0), ``sos_batch`` (64);
      ``sos_zero_point`` ("none": the stage-2 layer zero point stays unrounded, as the
      code; "half_even": refq's former lossless rounding).
    - ``calib_sub`` (64): images of the stage-one activation init (the code's
      ``calib_data[:64]``); None uses every calibration image.
    - ``sulq`` ("code": the official forward, Δ = range/2^b, 2^b + 1 codes); "paper": the
      paper's form.
    - ``weight_percentiles`` ("ias": the nine weight candidates); "repq": RepQ-ViT's three.
    - ``quantize_input`` (False: the image stays float, as the code); True: 8-bit per-tensor
      percentile-MSE (refq's former choice, at ``a_bits``).
    - ``arith`` ("float64"): "float32" runs the calibration forward and searches in float32.
    """

    METHOD: ClassVar[str] = "ias"
    sos: bool = False
    sos_iters: int = 1000
    sos_lr: float = 4e-5
    sos_batch: int = 64
    sos_zero_point: Literal["none", "half_even"] = "none"
    calib_sub: int | None = 64
    sulq: Literal["code", "paper"] = "code"
    weight_percentiles: Literal["ias", "repq"] = "ias"
    quantize_input: bool = False
    arith: Literal["float64", "float32"] = "float64"

    def check(self) -> None:
        if self.sos_iters < 0:
            raise SpecError(f"ias: sos_iters must be an int >= 0, got {self.sos_iters!r}")
        for k in ("sos_batch", "sos_lr", "calib_sub"):
            positive(f"ias.{k}", getattr(self, k))


def _sulq(bits: int, mode: str, arith: Arith) -> Fitter:
    def fit(x: FloatArray) -> Quantizer:
        return sulq_eta_search(x, bits, mode=mode, arith=arith)[0]
    return fit


def run(ctx: Ctx, o: IaSOptions, seed: int = 0) -> QuantSpec:
    xs = ctx.subset(o.calib_sub)
    cands = weight_candidates("repq" if o.weight_percentiles == "repq" else "ias")
    ctx.notes.update(calib_sub=int(xs.shape[0]), sos=o.sos, sulq=o.sulq,
                     weight_percentiles=list(cands), arith=o.arith)
    folds = ctx.post_norm_folds()
    fold_taps = {norm for norm, _ in folds}
    fitters: dict[str, Fitter] = {}
    for op in ctx.ops:
        for t, kind in zip(op.inputs, op.input_kinds, strict=True):
            if kind == "image":
                if o.quantize_input:
                    fitters[t] = percentile_fitter(ctx.a_bits, None, o.arith)
            elif kind == "post_softmax":
                fitters[t] = _sulq(ctx.a_bits, o.sulq, o.arith)
            else:
                fitters[t] = percentile_fitter(ctx.a_bits, -1 if t in fold_taps else None, o.arith)
    model = ctx.model
    if o.arith == "float32":
        model = model.with_params(model.params, dtype=np.float32)
    fitted = fit_in_order(model, xs, fitters, rows=ctx.head_rows())
    ctx.acts.update(fitted)
    weights = [op.weight for op in ctx.ops if op.weight is not None]
    if not o.sos:
        for norm, lin in folds:
            qc = fitted[norm]
            assert isinstance(qc, UniformQuantizer)
            keys = [f"{norm}.weight", f"{norm}.bias", f"{lin}.weight", f"{lin}.bias"]
            sub = {k: ctx.param(k) for k in keys if k in ctx.params}
            newp, ql, _ = reparameterize_quantizer(sub, norm, lin, qc, choice="mean")
            ctx.new_params.update({k: f64(v) for k, v in newp.items()})
            ctx.acts[norm] = ql
        fit_weights(ctx, weights, cands, o.arith)
        return ctx.spec("ias")
    from refq.calib.sos import repq_reparam, sos_reconstruct

    def reparam(p: dict[str, FloatArray], spec: Any) -> Any:
        return repq_reparam(p, spec, zero_point_rounding=o.sos_zero_point)

    def weight_init(params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name in weights:
            w = f64(params[name])
            out[name], _ = percentile_mse_init(w.reshape(w.shape[0], -1), ctx.w_bits,
                                               kind="weight", candidates=cands, axis=0,
                                               arith=o.arith)
        return out

    ctx.notes["sos_zero_point"] = o.sos_zero_point
    spec = ctx.spec("ias")
    spec.weights.update(weight_init(dict(ctx.params)))
    out: QuantSpec = sos_reconstruct(ctx.model, spec, ctx.images, iters=o.sos_iters,
                                     lr=o.sos_lr, batch=o.sos_batch, seed=seed,
                                     reparam=reparam, weight_init=weight_init)
    return out


__all__ = ["IaSOptions", "run"]
