"""Lowering: a quantized ViT/DeiT/Swin (float model + QuantSpec) → an integer :class:`Program`.

This is the only place where real numbers become integers (with refq.params and the
quantizers' own integer forms): integer weights and biases, dyadic requantization
multipliers, softmax and add parameters, LayerNorm γ/β fixed-point constants, quantizer
decision thresholds and decode tables, the GELU table.

Program input: ``input``, uint8 pixels (B, Cin, S, S); the input normalisation is folded into
the patch embedding (the model is folded here if it is not already). Ops that realise a tap
of :mod:`refq.nn` output a tensor of that name (``TensorDecl.scale``/``zero_point`` give its
real value), so the program can be compared tensor by tensor with the fake-quant simulation
(:mod:`refq.program.gap`). The output is ``head`` (logits) or, for a distilled DeiT,
``logits`` = (head + head_dist)/2 realised with an ``add`` of two halves.

Formats the spec does not fix are chosen from calibration statistics (the float model with
the spec's parameters, run with taps on ``calib_images``; scale = 1.5 × max|x| over the
format's largest code): residual stream int20, branch outputs / q, k, v / logits of the
softmax int16, fc1 output int12 (GELU table of 4096 entries), head logits int32.
Route by route: :mod:`refq.program.lower_quant` and docs/lowering.md.

Kernels: one variant per family (softmax, GELU, LayerNorm, residual add, requantization of
the GEMM accumulators), chosen by ``kernels`` — a profile (``refq`` — the default —,
``ibert``, ``ivit``, ``tflite``) and/or ``family=variant`` items
(:mod:`refq.program.kernels`); each variant is placed at its tap by its lowering
(:mod:`refq.program.lower_kernels`), which refuses, naming both, a tap whose scale or format
the variant cannot take. ``softmax.lis`` (log2-coded output) is lowered as its codes and a
``lookup`` into their levels; the softmax tap must hold FQ-ViT's uint4 ``Log2Quantizer``.

Covered: ViT and DeiT (distilled too) and Swin (:mod:`refq.program.lower_swin`: window
partition and reverse, cyclic shift, relative position bias in the integer domain,
shifted-window mask, patch merging, integer mean pooling; its output is ``head``). Not
covered: per-group activation quantizers (per-tensor and per-channel/per-head ones are
lowered).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import INT32, UINT8, IntFormat
from refq.nn.base import Model
from refq.nn.configs import SwinConfig, ViTConfig
from refq.program.ir import Program
from refq.program.kernels import choose, fallbacks, recorded
from refq.program.lower_blocks import RESID_BITS, block, layernorm, residual_add
from refq.program.lower_quant import F64, Acc, Act, Builder, fmt_for
from refq.program.lower_swin import lower_swin
from refq.quant import QuantSpec

LOGIT_BITS = 32


def calib_stats(model: Model, images: npt.ArrayLike, batch: int = 50) -> dict[str, float]:
    """max |x| of every tap of ``model`` over ``images`` (the float forward, in batches)."""
    arr = np.asarray(images)
    stats: dict[str, float] = {}
    for i in range(0, arr.shape[0], batch):
        _, taps = model.forward_with_taps(arr[i:i + batch])
        for k, v in taps.items():
            m = float(np.max(np.abs(v))) if v.size else 0.0
            stats[k] = max(stats.get(k, 0.0), m)
    return stats


def prepare(model: Model, spec: QuantSpec) -> Model:
    """The float model with the spec's replacement parameters and folded normalisation."""
    if not isinstance(model.config, (ViTConfig, SwinConfig)):
        raise SpecError(f"lower: {model.config.name} is not a ViT/DeiT/Swin")
    m = model if model.pixel_input else model.fold_normalization()
    spec.check_model(m)
    if spec.params:
        p = dict(m.params)
        p.update({k: np.asarray(v) for k, v in spec.params.items()})
        m = m.with_params(p, dtype=np.float64)
    elif m.dtype != np.float64:
        m = m.with_params(m.params, dtype=np.float64)
    return m


def _embed(b: Builder, cfg: ViTConfig) -> Act:
    c, p, s = cfg.embed_dim, cfg.patch_size, cfg.img_size
    npatch = (s // p) ** 2
    bsz = -1
    b.prog.declare("input", (bsz, cfg.in_chans, s, s), UINT8, "input", 1.0, 0,
                   "uint8 pixels, normalisation folded into the patch embedding")
    b.value("input.patches", (bsz, npatch, cfg.in_chans * p * p), UINT8, 1.0)
    b.move("patchify", ["input"], ["input.patches"], "patchify", patch=p)
    x = Act("input.patches", 1.0, 0, UINT8, (bsz, npatch, cfg.in_chans * p * p))
    acc = b.linear(x, "patch_embed.proj", "patch_embed.acc")
    pe = b.to_tap(acc, "patch_embed", bits=16)
    toks = [np.asarray(b.params["cls_token"], dtype=np.float64)]
    if cfg.distilled:
        toks.append(np.asarray(b.params["dist_token"], dtype=np.float64))
    tok = np.concatenate(toks, axis=1)  # (1, k, C)
    ti = np.rint(tok / pe.scale).astype(np.int64) + pe.zp
    wide = fmt_for(min(int(ti.min()), pe.fmt.min), max(int(ti.max()), pe.fmt.max))
    tc = b.const("tokens", ti, wide, "cls (and dist) tokens at the patch_embed scale")
    ntok = npatch + tok.shape[1]
    b.value("tokens.patches", (bsz, ntok, c), wide, pe.scale, pe.zp)
    b.move("prepend", [pe.name, tc], ["tokens.patches"], "embed")
    xt = Act("tokens.patches", pe.scale, pe.zp, wide, (bsz, ntok, c))
    pos = np.asarray(b.params["pos_embed"], dtype=np.float64)
    s_pos = max(float(np.max(np.abs(pos))), 1e-6) / (2**20 - 1)
    pc = b.const("pos_embed", np.rint(pos / s_pos).astype(np.int64), INT32)
    pa = Act(pc, s_pos, 0, INT32, (1, ntok, c))
    return residual_add(b, xt, pa, "embed")


def _head(b: Builder, h: Act, cfg: ViTConfig) -> str:
    y = layernorm(b, h, "norm", "norm")
    outs: list[Act] = []
    for idx, name in enumerate(["head", "head_dist"] if cfg.distilled else ["head"]):
        sel = f"norm.{idx}"
        b.value(sel, (-1, cfg.embed_dim), y.fmt, y.scale, y.zp)
        b.move("select", [y.name], [sel], name, axis=1, index=idx)
        xa = Act(sel, y.scale, y.zp, y.fmt, (-1, cfg.embed_dim))
        acc: Acc = b.linear(xa, name, name + ".acc")
        outs.append(b.to_tap(acc, name, bits=LOGIT_BITS))
    if not cfg.distilled:
        return outs[0].name
    hd, hdist = outs
    s = b.internal_scale("logits", LOGIT_BITS)
    fmt = IntFormat(LOGIT_BITS, True)
    v = b.variant("add")
    half = (Act(hd.name, hd.scale / 2, hd.zp, hd.fmt, hd.shape),
            Act(hdist.name, hdist.scale / 2, hdist.zp, hdist.fmt, hdist.shape))
    ap = b.place(v, "logits", *half, s, fmt, 0).params
    b.value("logits", (-1, cfg.num_classes), fmt, s)
    b.kernel(v.key, ap, [hd.name, hdist.name], "logits", "logits")
    return "logits"


def lower(model: Model, spec: QuantSpec, calib_images: npt.ArrayLike, *,
          name: str | None = None, kernels: str | Mapping[str, str] | None = None) -> Program:
    """Lower ``model`` quantized by ``spec`` to an integer Program (module docstring).

    ``calib_images``: uint8 pixels (B, Cin, S, S) used only for the statistics of the
    tensors the spec leaves unquantized. ``kernels``: the kernel choice — a profile name,
    ``"family=variant,..."`` items, or a mapping (:func:`refq.program.kernels.choose`; the
    spec's own ``kernels`` apply first). Deterministic: the same model, spec, images and
    choice give the same program (and byte-identical files). SpecError for models,
    quantizers or kernel variants that are not lowered, and for a variant that cannot sit at
    a tap (each named).
    """
    m = prepare(model, spec)
    cfg = m.config
    stats = calib_stats(m, calib_images)
    params: dict[str, F64] = {k: np.asarray(v, dtype=np.float64) for k, v in m.params.items()}
    prog = Program(name or f"{spec.model}.{spec.method}.w{spec.w_bits}a{spec.a_bits}")
    choice = choose(kernels, spec.kernels)
    b = Builder(prog, spec, params, stats, kernels=choice, fallbacks=fallbacks(kernels))
    if isinstance(cfg, SwinConfig):
        out = lower_swin(b, cfg)
    else:
        h = _embed(b, cfg)
        for i in range(cfg.depth):
            h = block(b, h, i, cfg.num_heads)
        out = _head(b, h, cfg)
    prog.outputs = [out]
    meta: dict[str, Any] = {
        "model": cfg.name, "method": spec.method, "w_bits": spec.w_bits,
        "a_bits": spec.a_bits, "logits": out, "kernels": recorded(choice),
        "residual_bits": RESID_BITS, "notes": dict(sorted(b.notes.items())),
    }
    prog.meta = meta
    prog.validate()
    return prog


__all__ = ["calib_stats", "lower", "prepare"]
