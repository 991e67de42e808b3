"""I&S-ViT SOS: block-wise reconstruction with learned weights and biases (STE), Adam.

Stage 1: FP weights, activation quantizers of the spec (post-LN channel-wise, others
layer-wise); each block's weights and biases are learned so that the block's output with
fake-quantized activations matches the FP block output on the same (FP) input.
Stage 2: the channel→layer reparameterization of norm1→qkv and norm2→fc1 (lossless), passed
in as ``reparam`` (default :func:`repq_reparam`, refq.calib's reparameterize_quantizer;
None skips it).
Stage 3: weight quantizers (re-)initialised on the learned, reparameterized weights (hook
``weight_init``), weights fake-quantized too; inputs come from the quantized model (quantized
patch embedding, then the previous reconstructed blocks), targets from the FP model.

Loss (the official code's ``lp_loss`` with ``reduction='none'``, block_recon.py:104-106): the
squared error summed over the tokens, averaged over the images and the channels,
``L = sum((y - t)^2) / (B·C)``. Optimiser: Adam (beta1 0.9, beta2 0.999, eps 1e-8), lr 4e-5 with a
cosine schedule to 0, batch 64, 1000 iterations per block (paper: 200 at W6A6); all
configurable. Mini-batches are drawn with ``numpy.random.default_rng(seed)`` (same seed →
same bytes). Gradients: refq.nn.backward; rounding by the straight-through estimator: the
gradient passes through a fake quantizer where its input lies within [min level, max level]
of that quantizer (per channel when it has an ``axis``), zero outside — the official code's
``clamp(round_ste(x/Δ) + z, 0, 2^b-1)`` passes it within half a step more on each side; refq
uses the level range. Weight quantizers likewise (a weight clipped by its quantizer gets no
gradient, as ``torch.clamp`` in the official code); learned weights are re-quantized every
step with fixed scales. Non-uniform quantizers (SULQ, log2) use the same range STE (the
official SULQ also differentiates through its 2^(.) reconstruction; refq does not).
Official code: github.com/zysxmu/IaS-ViT (test_quant.py, quant/block_recon.py).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.backward import (
    gelu_backward,
    layernorm_backward,
    linear_backward,
    softmax_backward,
)
from refq.nn.layers import (
    FloatArray,
    gelu,
    layernorm,
    linear,
    merge_heads,
    patchify,
    softmax,
    split_heads,
)

QuantFn = Any
"""A refq.quant Quantizer (``fake_quant(x)`` and ``levels()``)."""


class _Prepared:
    """A quantizer's fake quantization and STE range, prepared once (its parameters are
    fixed while a block is reconstructed). Fast paths, equal BIT FOR BIT to
    ``q.fake_quant(x)`` (tests/calib/test_sos_fast.py), skip the code/level conversions and
    range checks of the generic path:

    * ``UniformQuantizer`` with an integer zero point, half-even rounding, per-tensor or
      per-channel: ``(clip(rint(x/s) + z, qmin, qmax) - z)·s`` in float64 (``np.rint`` is
      round-half-even; integers below 2^53 are exact in float64; ``rint(x/s) + z`` with the
      float zero point ``z`` turns a ``-0.0`` into ``+0.0``, as the integer path gives);
    * a per-tensor table quantizer (thresholds + levels, e.g. SULQ, log2):
      ``levels[#{t <= x}]`` (ascending) or ``levels[n - 1 - #{t <= x}]`` (descending).

    Anything else uses ``q.fake_quant``. The STE range is ``[min level, max level]`` of
    ``q.levels()`` (per channel when the quantizer has an ``axis``).
    """

    def __init__(self, q: QuantFn) -> None:
        from refq.quant import UniformQuantizer
        from refq.quant.table import TableQuantizer

        self.q = q
        self.kind = "generic"
        if isinstance(q, UniformQuantizer) and not q.integer_exact:
            # RepQ-ViT's unrounded zero point: levels (code - z)·s of the code range
            cmin, cmax = q.code_range()
            zf = np.asarray(q.zero_point, dtype=np.float64)
            sf = np.asarray(q.scale, dtype=np.float64)
            lv = np.stack([(cmin - zf) * sf, (cmax - zf) * sf], axis=-1)
        else:
            lv = q.levels()
        self.lo: FloatArray | None = None
        self.hi: FloatArray | None = None
        self.axis = getattr(q, "axis", None)
        if lv is not None:
            lv = np.asarray(lv, dtype=np.float64)
            self.lo, self.hi = lv.min(axis=-1), lv.max(axis=-1)
            if lv.ndim != 2 or self.axis is None:
                self.lo, self.hi = np.asarray(self.lo), np.asarray(self.hi)
        if (type(q) is UniformQuantizer and q.integer_exact and q.group_size is None
                and q.rounding == "half_even"):
            self.kind = "uniform"
            self.s = np.asarray(q.scale, dtype=np.float64)
            self.z = np.asarray(q.zero_point).astype(np.float64)
            self.qmin, self.qmax = (float(c) for c in q.code_range())
        elif (isinstance(q, TableQuantizer) and getattr(q, "axis", None) is None
              and getattr(q, "group_size", None) is None):
            self.kind = "table"
            self.th = np.asarray(q.thresholds, dtype=np.float64)
            tab = np.asarray(q.level_table, dtype=np.float64)
            self.tab = tab[::-1].copy() if q.descending else tab

    def _shape(self, a: FloatArray, ndim: int) -> FloatArray:
        if self.axis is None or a.ndim == 0:
            return a
        shape = [1] * ndim
        shape[self.axis] = a.shape[0]
        return a.reshape(shape)

    def __call__(self, x: FloatArray) -> tuple[FloatArray, npt.NDArray[Any] | None]:
        if self.kind == "uniform":
            s, z = self._shape(self.s, x.ndim), self._shape(self.z, x.ndim)
            c = np.rint(x / s)
            c += z
            np.clip(c, self.qmin, self.qmax, out=c)
            c -= z
            c *= s
            y: FloatArray = c
        elif self.kind == "table":
            y = self.tab[np.searchsorted(self.th, x, side="right")]
        else:
            y = np.asarray(self.q.fake_quant(x), dtype=np.float64)
        if self.lo is None or self.hi is None:
            return y, None
        lo, hi = self._shape(self.lo, x.ndim), self._shape(self.hi, x.ndim)
        # boolean mask: g * mask multiplies by exactly 1.0 or 0.0, as a float64 mask would
        mask = (x >= lo) & (x <= hi)
        return y, mask


FqCache = dict[int, tuple[QuantFn, _Prepared]]
"""Prepared quantizers keyed by ``id(quantizer)`` (the quantizer is kept alive with it)."""


def _fq(q: QuantFn | None, x: FloatArray,
        cache: FqCache | None = None) -> tuple[FloatArray, npt.NDArray[Any] | None]:
    """Fake-quantized x and the STE mask (None = pass everything)."""
    if q is None:
        return x, None
    if cache is None:
        return _Prepared(q)(x)
    hit = cache.get(id(q))
    if hit is None or hit[0] is not q:
        hit = (q, _Prepared(q))
        cache[id(q)] = hit
    return hit[1](x)


def _m(g: FloatArray, mask: npt.NDArray[Any] | None) -> FloatArray:
    return g if mask is None else g * mask


def quant_block_loss_grad(
    p: Mapping[str, FloatArray],
    prefix: str,
    num_heads: int,
    eps: float,
    x: FloatArray,
    target: FloatArray,
    act_q: Mapping[str, QuantFn],
    weight_q: Mapping[str, QuantFn],
    out: dict[str, FloatArray] | None = None,
    grad: bool = True,
    *,
    n1: FloatArray | None = None,
    fq_cache: FqCache | None = None,
) -> tuple[float, dict[str, FloatArray]]:
    """Loss ``sum((block_q(x) - target)^2)/(B·C)`` (squared error summed over the tokens,
    averaged over images and channels: the official ``lp_loss(pred, tgt, p=2)``,
    ``quant/quantizer.py:9-14``) and its gradient w.r.t. the block's params.

    Activation quantizers are keyed by tap name (``{prefix}norm1``, ``attn.q|k|v``,
    ``attn.softmax``, ``attn.attn@v``, ``norm2``, ``mlp.gelu``), weight quantizers by param
    name; missing keys mean "not quantized". ``out["y"]`` receives the block output;
    ``grad=False`` skips the backward pass (the gradient dict is then empty).
    ``n1``: the (fake-quantized) norm1 output of ``x``, precomputed by a caller whose norm1
    parameters and quantizer are fixed; the backward then stops at the qkv linear (no
    ``norm1.*`` gradients). ``fq_cache``: prepared quantizers reused across calls (only
    while the quantizers are unchanged).
    """
    a, mm = prefix + "attn.", prefix + "mlp."
    w: dict[str, FloatArray] = {}
    w_mask: dict[str, npt.NDArray[Any]] = {}
    for name in p:
        if name.startswith(prefix):
            w[name], mk = _fq(weight_q.get(name), np.asarray(p[name]), fq_cache)
            if mk is not None:
                w_mask[name] = mk
    k_n1: npt.NDArray[Any] | None = None
    if n1 is None:
        n1r = layernorm(x, w[prefix + "norm1.weight"], w[prefix + "norm1.bias"], eps)
        n1, k_n1 = _fq(act_q.get(prefix + "norm1"), n1r, fq_cache)
        stop_at_qkv = False
    else:
        stop_at_qkv = True
    qkv = linear(n1, w[a + "qkv.weight"], w.get(a + "qkv.bias"))
    qr, kr, vr = split_heads(qkv, num_heads)
    q, k_q = _fq(act_q.get(a + "q"), qr, fq_cache)
    k, k_k = _fq(act_q.get(a + "k"), kr, fq_cache)
    v, k_v = _fq(act_q.get(a + "v"), vr, fq_cache)
    scale = float(q.shape[-1]) ** -0.5
    attr = softmax(np.matmul(q, np.swapaxes(k, -1, -2)) * scale, axis=-1)
    att, k_a = _fq(act_q.get(a + "softmax"), attr, fq_cache)
    or_ = merge_heads(att @ v)
    o, k_o = _fq(act_q.get(a + "attn@v"), or_, fq_cache)
    x1 = x + linear(o, w[a + "proj.weight"], w[a + "proj.bias"])
    n2r = layernorm(x1, w[prefix + "norm2.weight"], w[prefix + "norm2.bias"], eps)
    n2, k_n2 = _fq(act_q.get(prefix + "norm2"), n2r, fq_cache)
    h = linear(n2, w[mm + "fc1.weight"], w[mm + "fc1.bias"])
    gr = gelu(h)
    g, k_g = _fq(act_q.get(mm + "gelu"), gr, fq_cache)
    y = x1 + linear(g, w[mm + "fc2.weight"], w[mm + "fc2.bias"])
    if out is not None:
        out["y"] = y
    norm = x.shape[0] * y.shape[-1]  # images x channels: the official lp_loss's mean
    diff = y - target
    loss = float(np.sum(diff * diff) / norm)
    if not grad:
        return loss, {}
    gy = 2.0 * diff / norm
    gr_: dict[str, FloatArray] = {}
    gg, gr_[mm + "fc2.weight"], gr_[mm + "fc2.bias"] = linear_backward(g, w[mm + "fc2.weight"], gy)
    gh = gelu_backward(h, _m(gg, k_g))
    gn2, gr_[mm + "fc1.weight"], gr_[mm + "fc1.bias"] = linear_backward(n2, w[mm + "fc1.weight"],
                                                                        gh)
    gx1l, gr_[prefix + "norm2.weight"], gr_[prefix + "norm2.bias"] = layernorm_backward(
        x1, w[prefix + "norm2.weight"], eps, _m(gn2, k_n2))
    gx1 = gy + gx1l
    go, gr_[a + "proj.weight"], gr_[a + "proj.bias"] = linear_backward(o, w[a + "proj.weight"], gx1)
    go = _m(go, k_o)
    b, n, c = go.shape
    go4 = go.reshape(b, n, num_heads, c // num_heads).transpose(0, 2, 1, 3)
    gv = np.swapaxes(att, -1, -2) @ go4
    ga = _m(go4 @ np.swapaxes(v, -1, -2), k_a)
    gs = softmax_backward(attr, ga) * scale
    gq = _m(gs @ k, k_q)
    gk = _m(np.swapaxes(gs, -1, -2) @ q, k_k)
    gv = _m(gv, k_v)
    gqkv = np.stack([gq, gk, gv]).transpose(1, 3, 0, 2, 4).reshape(b, n, 3 * c)
    if stop_at_qkv:  # dW, db of qkv only (the input gradient feeds nothing learned)
        g2 = gqkv.reshape(-1, gqkv.shape[-1])
        gr_[a + "qkv.weight"] = g2.T @ n1.reshape(-1, n1.shape[-1])
        gqb = g2.sum(axis=0)
    else:
        gn1, gr_[a + "qkv.weight"], gqb = linear_backward(n1, w[a + "qkv.weight"], gqkv)
        _, gr_[prefix + "norm1.weight"], gr_[prefix + "norm1.bias"] = layernorm_backward(
            x, w[prefix + "norm1.weight"], eps, _m(gn1, k_n1))
    if a + "qkv.bias" in p:
        gr_[a + "qkv.bias"] = gqb
    for name, mk in w_mask.items():
        if name in gr_:
            gr_[name] = gr_[name] * mk
    return loss, gr_


LEARNED_SUFFIXES = ("attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight", "attn.proj.bias",
                    "mlp.fc1.weight", "mlp.fc1.bias", "mlp.fc2.weight", "mlp.fc2.bias")
"""The learned parameters of one block (weights and biases of its linears; LN is frozen)."""


def reconstruct_block(
    p: Mapping[str, FloatArray],
    prefix: str,
    num_heads: int,
    eps: float,
    inputs: FloatArray,
    targets: FloatArray,
    act_q: Mapping[str, QuantFn],
    weight_q: Mapping[str, QuantFn],
    *,
    iters: int = 1000,
    lr: float = 4e-5,
    batch: int = 64,
    seed: int = 0,
    log: Callable[[int, float], None] | None = None,
) -> dict[str, FloatArray]:
    """Adam (cosine lr to 0) on the block's linear weights and biases; returns new params.

    Raises SpecError for iters < 0, batch < 1 or mismatched inputs/targets.
    """
    if iters < 0 or batch < 1 or inputs.shape != targets.shape:
        raise SpecError(f"reconstruct_block: bad iters={iters}, batch={batch} or shapes "
                        f"{inputs.shape} vs {targets.shape}")
    cur = {k: np.array(v, dtype=np.float64) for k, v in p.items()}
    names = [prefix + s for s in LEARNED_SUFFIXES if prefix + s in cur]
    m1 = {k: np.zeros_like(cur[k]) for k in names}
    m2 = {k: np.zeros_like(cur[k]) for k in names}
    rng = np.random.default_rng(seed)
    nimg = inputs.shape[0]
    b1, b2, ae = 0.9, 0.999, 1e-8
    cache: FqCache = {}
    # norm1 (frozen) and its quantizer see fixed inputs: computed once for all images (row
    # by row the same float64 operations as on a mini-batch, so bit-identical)
    n1_all: FloatArray | None = None
    if not {prefix + "norm1.weight", prefix + "norm1.bias"} & set(weight_q):
        n1r = layernorm(inputs, cur[prefix + "norm1.weight"], cur[prefix + "norm1.bias"], eps)
        n1_all = _fq(act_q.get(prefix + "norm1"), n1r, cache)[0]
    for t in range(iters):
        idx = rng.choice(nimg, size=min(batch, nimg), replace=False)
        loss, g = quant_block_loss_grad(cur, prefix, num_heads, eps, inputs[idx], targets[idx],
                                        act_q, weight_q, fq_cache=cache,
                                        n1=None if n1_all is None else n1_all[idx])
        if log is not None:
            log(t, loss)
        lr_t = lr * 0.5 * (1.0 + math.cos(math.pi * t / iters))
        for k in names:
            m1[k] = b1 * m1[k] + (1 - b1) * g[k]
            m2[k] = b2 * m2[k] + (1 - b2) * g[k] * g[k]
            mh = m1[k] / (1 - b1 ** (t + 1))
            vh = m2[k] / (1 - b2 ** (t + 1))
            cur[k] = cur[k] - lr_t * mh / (np.sqrt(vh) + ae)
    return {k: cur[k] for k in names}


Reparam = Callable[[dict[str, FloatArray], Any], tuple[dict[str, FloatArray], Any]]
"""Stage 2 hook: ``reparam(params, spec) -> (params, spec)`` (channel→layer, lossless)."""

WeightInit = Callable[[dict[str, FloatArray]], dict[str, Any]]
"""Stage 3 hook: ``weight_init(params) -> {weight param name: Quantizer}`` — the weight
quantizers initialised on the weights as they are after stages 1 and 2 (the official code
initialises them only then, on the learned and reparameterized weights)."""


def repq_reparam(params: dict[str, FloatArray], spec: Any,
                 zero_point_rounding: str = "half_even") -> tuple[dict[str, FloatArray], Any]:
    """Stage 2 default: refq.calib.reparameterize_quantizer (scale choice "mean", RepQ) on
    ``blocks.i.norm1 -> attn.qkv`` and ``norm2 -> mlp.fc1`` wherever the spec's activation
    quantizer of that LayerNorm tap is per-channel; other entries are left unchanged.

    ``zero_point_rounding="half_even"`` (default): the layer zero point z̃ = mean(z_c) is
    rounded to an integer BEFORE the fold, which makes the stage lossless after quantization
    (same codes, same next-linear output up to float64 rounding) and the result lowerable.
    I&S-ViT's code keeps z̃ unrounded ("none"), which is not lossless."""
    import dataclasses

    from refq.calib.reparam import reparameterize_quantizer

    p = dict(params)
    acts = dict(spec.activations)
    for tap, q in spec.activations.items():
        for ln, lin in (("norm1", "attn.qkv"), ("norm2", "mlp.fc1")):
            if tap.endswith("." + ln) and getattr(q, "axis", None) is not None:
                pre = tap[: -len(ln)]
                new, q_layer, _ = reparameterize_quantizer(
                    p, pre + ln, pre + lin, q, zero_point_rounding=zero_point_rounding)
                p.update({k: np.asarray(v, dtype=np.float64) for k, v in new.items()})
                acts[tap] = q_layer
    return p, dataclasses.replace(spec, activations=acts)


def quant_embed(model: Any, p: Mapping[str, FloatArray], images: FloatArray,
                act_q: Mapping[str, QuantFn], weight_q: Mapping[str, QuantFn]) -> FloatArray:
    """The block-0 input of the fake-quantized ViT/DeiT: ``input`` tap quantizer on the
    images, fake-quantized patch-embedding weight, ``patch_embed`` and ``embed`` tap
    quantizers (each where the mappings have one), as refq.nn.vit's forward."""
    cfg = model.config
    x = _fq(act_q.get("input"), np.asarray(images, dtype=np.float64))[0]
    w = _fq(weight_q.get("patch_embed.proj.weight"), np.asarray(p["patch_embed.proj.weight"]))[0]
    tok = linear(patchify(x, cfg.patch_size), w.reshape(w.shape[0], -1),
                 p["patch_embed.proj.bias"])
    tok = _fq(act_q.get("patch_embed"), tok)[0]
    b = x.shape[0]
    prefix = [np.broadcast_to(p["cls_token"], (b, 1, cfg.embed_dim))]
    if cfg.distilled:
        prefix.append(np.broadcast_to(p["dist_token"], (b, 1, cfg.embed_dim)))
    h: FloatArray = np.concatenate([*prefix, tok], axis=1) + p["pos_embed"]
    return _fq(act_q.get("embed"), h)[0]


def _block_losses(p: Mapping[str, FloatArray], pre: str, cfg: Any, x: FloatArray,
                  t: FloatArray, act: Mapping[str, QuantFn], wq: Mapping[str, QuantFn],
                  out: dict[str, FloatArray] | None = None) -> float:
    """Reconstruction loss per image on the whole set (forward only)."""
    loss, _ = quant_block_loss_grad(p, pre, cfg.num_heads, cfg.ln_eps, x, t, act, wq, out=out,
                                    grad=False)
    return loss


def sos_reconstruct(
    model: Any,
    spec: Any,
    calib_images: npt.ArrayLike,
    *,
    iters: int = 1000,
    lr: float = 4e-5,
    batch: int = 64,
    seed: int = 0,
    reparam: Reparam | None = repq_reparam,
    weight_init: WeightInit | None = None,
    stages: tuple[int, ...] = (1, 2, 3),
    log: Callable[[str], None] | None = None,
) -> Any:
    """I&S-ViT SOS on a ViT/DeiT ``model`` with the quantizers of ``spec`` (a QuantSpec).

    Every calibration image is used (mini-batches of ``batch`` drawn from all of them).
    Stage 1: inputs and targets of block i are the FP model's (as the official code); the
    spec's activation quantizers apply, weights stay FP. Stage 2: ``reparam`` (default
    :func:`repq_reparam`, lossless); its losslessness is measured: the largest absolute
    difference of every block output (quantized activations, FP inputs) before and after
    the fold, recorded as ``notes["sos"]["stage2_max_abs_diff"]``. Stage 3: weight
    quantizers from ``weight_init(params)`` when given (else the spec's), inputs of block i
    from the quantized model (:func:`quant_embed`, then the reconstructed quantized blocks
    0..i-1), targets the FP block outputs. Block seeds are ``seed + i`` (stage 1) and
    ``seed + 1000 + i`` (stage 3). Not reconstructed (the official code also reconstructs
    them as single layers): the patch embedding and the head.

    Returns a copy of ``spec`` whose ``params`` hold the learned (and reparameterized) block
    parameters, whose ``weights`` are the stage-3 weight quantizers, and whose
    ``notes["sos"]`` records the settings and, per stage and block, the reconstruction loss
    per image on the whole calibration set before and after learning (``losses``).
    """
    import dataclasses

    from refq.nn.grad_vit import vit_forward_cached

    cfg = model.config
    x = np.asarray(calib_images, dtype=np.float64)
    nimg = x.shape[0]
    _, cache = vit_forward_cached(model, x)
    p: dict[str, FloatArray] = dict(cache["p"])
    p.update({k: np.asarray(v, dtype=np.float64) for k, v in spec.params.items()})
    fp_in = [c.x for c in cache["blocks"]]
    fp_out = [*fp_in[1:], cache["h"]]
    learned: dict[str, FloatArray] = {}
    losses: dict[str, list[list[float]]] = {}
    act = dict(spec.activations)
    say = log if log is not None else (lambda _m: None)
    from tqdm import tqdm  # progress of the slow part; off when stderr is not a terminal

    bar = tqdm(total=cfg.depth * len({1, 3} & set(stages)), desc="SOS blocks", unit="block",
               leave=False, disable=None)

    def run_block(stage: int, i: int, h: FloatArray, wq: Mapping[str, QuantFn],
                  bseed: int) -> None:
        bar.set_postfix_str(f"stage {stage}")
        pre = f"blocks.{i}."
        before = _block_losses(p, pre, cfg, h, fp_out[i], act, wq)
        new = reconstruct_block(p, pre, cfg.num_heads, cfg.ln_eps, h, fp_out[i], act, wq,
                                iters=iters, lr=lr, batch=batch, seed=bseed)
        p.update(new)
        learned.update(new)
        after = _block_losses(p, pre, cfg, h, fp_out[i], act, wq)
        losses.setdefault(f"stage{stage}", []).append([before, after])
        say(f"stage {stage} block {i}: loss/image {before:.6g} -> {after:.6g}")
        bar.update(1)

    if 1 in stages:
        for i in range(cfg.depth):
            run_block(1, i, fp_in[i], {}, seed + i)
    stage2_diff: float | None = None
    if 2 in stages and reparam is not None:
        ref = []
        for i in range(cfg.depth):
            o: dict[str, FloatArray] = {}
            _block_losses(p, f"blocks.{i}.", cfg, fp_in[i], fp_out[i], act, {}, out=o)
            ref.append(o["y"])
        p, spec = reparam(p, spec)
        act = dict(spec.activations)
        learned.update({k: p[k] for k in p if k.startswith("blocks.")})
        stage2_diff = 0.0
        for i in range(cfg.depth):
            o = {}
            _block_losses(p, f"blocks.{i}.", cfg, fp_in[i], fp_out[i], act, {}, out=o)
            stage2_diff = max(stage2_diff, float(np.max(np.abs(o["y"] - ref[i]))))
        say(f"stage 2: max |block output change| = {stage2_diff:.3g}")
    wq_all = dict(spec.weights)
    if weight_init is not None:
        wq_all.update(weight_init(p))
    if 3 in stages:
        h = quant_embed(model, p, x, act, wq_all)
        for i in range(cfg.depth):
            pre = f"blocks.{i}."
            wq = {k: v for k, v in wq_all.items() if k.startswith(pre)}
            run_block(3, i, h, wq, seed + 1000 + i)
            o = {}
            _block_losses(p, pre, cfg, h, fp_out[i], act, wq, out=o)
            h = o["y"]
    bar.close()
    params = dict(spec.params)
    params.update(learned)
    notes = dict(spec.notes)
    notes["sos"] = {"iters": iters, "lr": lr, "batch": batch, "seed": seed,
                    "calib_images": int(nimg), "stages": list(stages),
                    "reparam": reparam is not None, "weight_init": weight_init is not None,
                    "stage2_max_abs_diff": stage2_diff, "losses": losses,
                    "final_block_loss_per_image": [v[1] for v in losses.get("stage3", [])]}
    return dataclasses.replace(spec, params=params, weights=wq_all, notes=notes)


__all__ = ["LEARNED_SUFFIXES", "Reparam", "WeightInit", "quant_block_loss_grad", "quant_embed",
           "reconstruct_block", "repq_reparam", "sos_reconstruct"]
