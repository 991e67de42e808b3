"""``fqvit``: FQ-ViT (Lin et al., IJCAI 2022; github.com/megvii-research/FQ-ViT at 5daf591,
``config.py`` with ``--ptf --lis``, ``models/vit_quant.py``, ``models/layers_quant.py``,
``models/ptq/``, ``test_quant.py``), a fully quantized ViT.

Reproduced by default:

- weights (every ``QConv2d`` / ``QLinear``: patch embedding, qkv, proj, fc1, fc2, head):
  int8-style signed symmetric per output channel, s = max|w|/((2^b-1)/2) (/127.5 at 8 bits,
  :func:`refq.calib.fqvit.fqvit_weight_quantizer`);
- activations, unsigned per tensor by min-max (``QAct``): the image (``qact_input``), the
  patch tokens together with the class token they are concatenated with (``qact_embed``),
  the position embedding itself (``qact_pos``), the LayerNorm outputs read by qkv and fc1
  (``Block.qact1``, ``qact3``), the qkv output (ONE quantizer, ``Attention.qact1``; refq
  puts it on the q, k and v taps, which is the same element-wise), the attention logits
  (``qact_attn1``), the attn@v output (``qact2``), the proj output (``qact3``), the GELU
  output (``Mlp.qact1``), the fc2 output (``Mlp.qact2``), the final LayerNorm's class-token
  row (``VisionTransformer.qact2``) and the logits (``act_out``); the fc1 output (GELU
  input) is NOT quantized;
- LayerNorm inputs (``embed``, ``blocks.i.add1``, ``blocks.i.add2``): PTF
  (:func:`refq.calib.ptf_alpha_search`);
- Swin (``models/swin_quant.py``, docs/methods.md "fqvit on Swin"): also the
  relative position bias table (``qact_table``), the logits after the bias (``qact2``, the
  LIS input scale; the shift mask is added after it), the patch embedding's LayerNorm input
  and output (uniform), the patch merging's LayerNorm output (uniform) and reduction output
  (``PatchMerging.qact2``: PTF, the next stage's LayerNorm input), the pooled features;
- the activation quantizers' forward as FQ-ViT's ``round(x/s + z)`` (the zero point added
  before rounding: ``zp_in_round``, PTF ``mode="code"``);
- the softmax: the log-int softmax of the quantized logits (uint4 log2 codes;
  ``kernels["softmax"] = "lis"``, the codes recorded by a ``Log2Quantizer(4, "2", 1.0)``
  on the softmax tap, simulated by :func:`refq.calib.lis.log_int_softmax`);
- calibration data as ``test_quant.py`` feeds it: batches of ``calib_batch`` (100)
  images (a short last batch is dropped, ``drop_last=True``); min-max ranges over every
  batch; PTF's α searched on the LAST batch only (``last_calibrate``), with the range of
  all batches. The observers see the float model (``quant=False`` while calibrating),
  except that in the last batch every softmax is already the log-int softmax of the float
  logits (the logits quantizer gets its scale during that forward and ``QIntSoftmax``
  switches to its LIS branch as soon as it has one), so the tensors downstream of it are
  observed through it.

FQ-ViT fixes the bit types (int8 weights, uint8 activations, uint4 softmax); refq takes the
weight and activation widths from W/A and keeps the softmax at ``softmax_bits`` (4).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar, Literal

import numpy as np

from refq.calib import ptf_alpha_search
from refq.calib.fqvit import fqvit_act_params, fqvit_act_quantizer, fqvit_weight_quantizer
from refq.calib.lis import log_int_softmax
from refq.errors import SpecError
from refq.methods.context import Ctx, FloatArray, f64
from refq.methods.options import RecipeOptions, positive
from refq.quant import Log2Quantizer, QuantSpec


@dataclass(frozen=True)
class FQViTOptions(RecipeOptions):
    """Options of ``fqvit`` (defaults: FQ-ViT's ``--ptf --lis`` run).

    - ``softmax`` ("lis": the log-int softmax); "log2": a base-2 Log2Quantizer on the float
      softmax output (refq's former choice; the rounding differs, round(-log2 p) instead of
      log_round(round(Σexp/exp))).
    - ``softmax_bits`` (4: uint4).
    - ``ptf`` (True): False gives the LayerNorm inputs plain min-max (FQ-ViT without --ptf).
    - ``calib_batch`` (100): calibration batch size (FQ-ViT ``--calib-batchsize``); with
      fewer images than that, all of them form the one batch.
    - ``zp_in_round`` (True): the activation and PTF quantizers add the zero point before
      rounding, ``round(x/s + z)``, as FQ-ViT's forward; False: ``round(x/s) + z`` (refq's
      former choice; differs only on exact ties with an odd zero point).
    """

    METHOD: ClassVar[str] = "fqvit"
    softmax: Literal["lis", "log2"] = "lis"
    softmax_bits: int = 4
    ptf: bool = True
    calib_batch: int = 100
    zp_in_round: bool = True

    def check(self) -> None:
        positive("fqvit.calib_batch", self.calib_batch)
        if not 2 <= self.softmax_bits <= 8:
            raise SpecError(f"fqvit.softmax_bits must lie in 2..8, got {self.softmax_bits}")


def run(ctx: Ctx, o: FQViTOptions, seed: int = 0) -> QuantSpec:
    n = int(ctx.images.shape[0])
    bs = min(o.calib_batch, n)
    nb = n // bs
    names = set(ctx.model.tap_names())
    ln_out = ctx.layernorm_output_taps()
    ln_in = ctx.layernorm_input_taps()
    # PTF (FQ-ViT's QAct with the A_LN observer): the residual sums and, on Swin, the patch
    # merging's reduction output (``PatchMerging.qact2``), the next stage's residual stream
    sums = [*ctx.residual_sum_taps(), *(op.output for op in ctx.ops
                                         if op.role == "reduction")] if o.ptf else []
    qkv_out = [op.output for op in ctx.ops if op.role == "qkv"]
    # op outputs FQ-ViT quantizes: the attention logits (softmax input; Swin: also after
    # the relative position bias), proj, fc2, patch merging (Swin) and the logits
    outs = [op.output for op in ctx.ops if op.role in ("q@k", "proj", "fc2", "reduction",
                                                        "head")]
    outs += [op.name[: -len("q@k")] + "logits" for op in ctx.ops
             if op.role == "q@k" and op.name[: -len("q@k")] + "logits" in names]
    softmax_taps = ctx.taps_of_kind("post_softmax")
    plain = [t for t in ctx.op_input_taps()
             if t not in softmax_taps and not _is_qkv_part(ctx, t)]
    uniform = sorted({*plain, *outs, *ln_out, *ln_in} - set(sums))
    ranged = sorted({*uniform, *qkv_out, *sums, "patch_embed"})
    rows = ctx.head_rows()
    lo: dict[str, float] = {}
    hi: dict[str, float] = {}
    last: dict[str, FloatArray] = {}
    for k in range(nb):
        batch = ctx.images[k * bs:(k + 1) * bs]
        if k == nb - 1 and o.softmax == "lis":
            taps = _last_batch_taps(ctx, batch, ranged, lo, hi, o.softmax_bits)
        else:
            taps = ctx.fp_taps(ranged, batch)
        for t in ranged:
            x = taps[t]
            r = rows.get(t)
            v = x if r is None else x[:, list(r)]
            lo[t] = min(lo.get(t, np.inf), float(v.min()))
            hi[t] = max(hi.get(t, -np.inf), float(v.max()))
        if k == nb - 1:
            last = {t: taps[t] for t in sums}
    a, zr = ctx.a_bits, o.zp_in_round
    for op in ctx.ops:
        if op.weight is not None:
            ctx.weights[op.weight] = fqvit_weight_quantizer(ctx.param(op.weight), ctx.w_bits)
    for t in uniform:
        ctx.acts[t] = fqvit_act_quantizer(lo[t], hi[t], a, zp_in_round=zr)
    # one quantizer on the qkv output, realised on its q, k, v parts
    for op in ctx.ops:
        if op.role == "q@k":
            pre = op.name[: -len("q@k")]
            q = fqvit_act_quantizer(lo[pre + "qkv"], hi[pre + "qkv"], a,
                                    zp_in_round=zr)
            for part in ("q", "k", "v"):
                ctx.acts[pre + part] = q
    # ViT: the patch tokens and the prefix tokens share qact_embed
    prefix = [p for p in ("cls_token", "dist_token") if p in ctx.params]
    if prefix:
        tok_lo = min([lo["patch_embed"], *(float(ctx.params[p].min()) for p in prefix)])
        tok_hi = max([hi["patch_embed"], *(float(ctx.params[p].max()) for p in prefix)])
        q_tok = fqvit_act_quantizer(tok_lo, tok_hi, a, zp_in_round=zr)
        ctx.acts["patch_embed"] = q_tok
        for tok in prefix:
            ctx.weights[tok] = q_tok
            ctx.new_params[tok] = f64(q_tok.fake_quant(ctx.params[tok]))
    # parameters FQ-ViT quantizes as activations: qact_pos (ViT), qact_table (Swin)
    for pname in ctx.params:
        if pname == "pos_embed" or pname.endswith("attn.relative_position_bias_table"):
            v = ctx.params[pname]
            qp = fqvit_act_quantizer(float(v.min()), float(v.max()), a, zp_in_round=zr)
            ctx.weights[pname] = qp
            ctx.new_params[pname] = f64(qp.fake_quant(v))
    for t in sums:
        ctx.acts[t], _ = ptf_alpha_search(last[t], a, axis=-1, lo=lo[t], hi=hi[t],
                                         mode="code" if zr else "paper")
    for t in softmax_taps:
        ctx.acts[t] = Log2Quantizer(o.softmax_bits, "2", 1.0, "extra")
    if o.softmax == "lis":
        ctx.kernels["softmax"] = "lis"
    ctx.notes.update(calib_batch=bs, calib_batches=nb, calib_used=nb * bs,
                     softmax=o.softmax, softmax_bits=o.softmax_bits, ptf=o.ptf,
                     zp_in_round=zr)
    return ctx.spec("fqvit")


def _last_batch_taps(ctx: Ctx, batch: FloatArray, names: list[str], lo: dict[str, float],
                     hi: dict[str, float], bits: int) -> dict[str, FloatArray]:
    """The last calibration batch as FQ-ViT runs it: ``last_calibrate`` makes each logits
    quantizer compute its scale during this forward (range of every batch so far, this one
    included), and from then on ``QIntSoftmax`` takes its log-int branch — on the float
    logits, as nothing is quantized while calibrating (``vit_quant.py`` 107-108,
    ``swin_quant.py`` 204-213, ``layers.py`` 279-288). So every softmax of this batch is
    the LIS of the float logits (Swin: plus the shift mask) and everything downstream sees
    it."""
    scale: dict[str, float] = {}
    latest: dict[str, FloatArray] = {}
    tap_set = set(ctx.model.tap_names())

    def hook(name: str, x: FloatArray) -> FloatArray | None:
        for kind in ("q@k", "logits", "masked"):
            if name.endswith("attn." + kind):
                pre = name[: -len(kind)]
                v = f64(x)
                latest[pre] = v
                if kind == "logits" or (kind == "q@k" and pre + "logits" not in tap_set):
                    scale[pre], _ = fqvit_act_params(
                        min(lo.get(name, np.inf), float(v.min())),
                        max(hi.get(name, -np.inf), float(v.max())), ctx.a_bits)
                return None
        if name.endswith("attn.softmax"):
            pre = name[: -len("softmax")]
            return log_int_softmax(latest.pop(pre), scale.pop(pre), bits).astype(x.dtype)
        return None

    _, taps = ctx.model.forward_with_taps(batch, tap=hook, names=sorted(set(names)))
    return {k: f64(v) for k, v in taps.items()}


def _is_qkv_part(ctx: Ctx, tap: str) -> bool:
    """q, k and v taps: FQ-ViT quantizes the qkv output they are cut from instead."""
    return any(op.role == "q@k" and tap in op.inputs for op in ctx.ops) or any(
        op.role == "attn@v" and tap == op.inputs[1] for op in ctx.ops)


__all__ = ["FQViTOptions", "run"]
