"""Lowering of a Swin Transformer (:mod:`refq.nn.swin`) to integer ops.

The pieces beyond a ViT block (docs/lowering.md, "Swin"):

- **Movement, exact.** The cyclic shift (``roll`` by -w/2 before the window attention and
  +w/2 after), ``window_partition`` / ``window_reverse`` (the token grid cut into w x w
  windows, B·W windows batched), ``patch_merge`` (the 2 x 2 gather, order (0,0), (1,0),
  (0,1), (1,1)): value-preserving ops of :mod:`refq.program.movement`, no arithmetic.
- **Relative position bias, in the integer domain.** The bias table is gathered to
  (H, n, n) and quantized to the q@k tap's scale S (the tap after its quantizer, where the
  float model adds the bias): ``B = round_half_even(bias / S) - zp``; one exact
  ``add_exact`` gives ``(q@k - zp) + B`` at scale S, then a dyadic requantization (rounding
  half_even, saturating) to the softmax input grid is the ``attn.logits`` tap (in a shifted
  block, the unmasked int(b-1) grid below; the masked tensor is the ``attn.masked`` tap).
- **Shifted-window mask.** The float model adds -100 between tokens of different regions;
  the program gives those lanes the softmax input format's minimum exactly, and proves at
  lowering time that the chosen softmax variant gives them exactly 0 (:func:`mask_proof`):
  unmasked logits are requantized into int(b-1) (b = the variant's logits width), so every
  unmasked lane is >= -2^(b-2) while a masked lane is -2^(b-1); the grid is coarse enough
  that this gap of 2^(b-2) codes is at least :data:`MASK_GAP` in real terms. A row can never
  be fully masked: a token is always in its own region (the mask's diagonal is 0, checked).
- **Patch merging.** The residual stream (int20 unless quantized) is requantized to int16
  (:data:`MERGE_BITS`), gathered 2 x 2 (``patch_merge``), then its 4C-wide LayerNorm and the
  reduction linear.
- **Integer mean pooling.** ``mean_pool`` with shift 0 (the exact sum of the final
  LayerNorm's zero-point-free codes over the L tokens), whose real scale is S_norm / L; the
  ``pool`` tap's quantizer then applies to that exact sum (by its own decision thresholds:
  codes = quantize(sum · S_norm / L), the quantizer's rounding) — or, for an unquantized
  ``pool``, a dyadic requantization (half_even) to an int16 grid.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import UINT8, IntFormat
from refq.nn.configs import SwinConfig
from refq.nn.swin import relative_position_index, shift_mask
from refq.ops.softmax_ibert import IExpParams
from refq.program.lower_blocks import attention, layernorm, mlp, residual_add
from refq.program.lower_quant import F64, MARGIN, Acc, Act, Builder, fmt_for

MASK_GAP = 32.0
"""Real distance (in logit units) by which every masked lane lies below every unmasked one:
exp(-32) < 2^-46, far below half an LSB of any softmax output of <= 16 bits."""

FINE_BITS = 8
"""Quantized logits (FQ-ViT): q@k's codes are shifted left by this many bits and the
relative position bias rounded (half_even) to that finer grid, before the logits
quantizer's thresholds (a bias error of at most 2^-9 of q@k's scale)."""
LOGIT_BITS = 32
MERGE_BITS = 16
"""Width of the patch merging's input: the int20 residual stream is requantized (dyadic,
half_even) to int16 before the 2x2 gather, so that the 4C-channel LayerNorm's exact
statistics (Σ(C·x - Σx)²) stay within int63 at swin_tiny's 1536 channels."""


def _move(b: Builder, key: str, x: Act, name: str, out_shape: tuple[int, ...], tap: str,
          **params: Any) -> Act:
    """A value-preserving movement op ``key`` of ``x`` into ``name`` (same scale, format)."""
    b.value(name, out_shape, x.fmt, x.scale, x.zp)
    b.move(key, [x.name], [name], tap, **params)
    return Act(name, x.scale, x.zp, x.fmt, out_shape)


def embed(b: Builder, cfg: SwinConfig) -> Act:
    """uint8 pixels → patchify → patch_embed linear (its tap) → patch_embed.norm."""
    p, s = cfg.patch_size, cfg.img_size
    npatch = (s // p) ** 2
    k = cfg.in_chans * p * p
    b.prog.declare("input", (-1, cfg.in_chans, s, s), UINT8, "input", 1.0, 0,
                   "uint8 pixels, normalisation folded into the patch embedding")
    b.value("input.patches", (-1, npatch, k), UINT8, 1.0)
    b.move("patchify", ["input"], ["input.patches"], "patchify", patch=p)
    x = Act("input.patches", 1.0, 0, UINT8, (-1, npatch, k))
    pe = b.to_tap(b.linear(x, "patch_embed.proj", "patch_embed.acc"), "patch_embed", bits=16)
    return layernorm(b, pe, "patch_embed.norm", "patch_embed.norm")


SWEEP_SPAN = 1024
"""Unmasked ranges of at most this many codes get the sweep proof of :func:`mask_proof`."""


def mask_proof(b: Builder, tap: str, x: Act, lo: int, hi: int, n: int,
               masked: int | None = None) -> None:
    """Prove that the chosen softmax variant gives a masked lane exactly 0.

    Every softmax variant computes a lane's output from its own e = E(x_lane - max) and
    the row's Σe, non-increasing in Σe for a fixed e (a larger sum only lowers a lane's
    share), and a row's max is an unmasked lane in [``lo``, ``hi``] (the diagonal lane is
    never masked, and the masked value m = ``masked`` (default ``x.fmt.min``) lies below
    ``lo``). For a row max u, the masked lane's output is therefore largest where Σe is
    smallest: the row ``[u, m, w, ..., w]`` (n lanes) with w the value in {m} ∪ [lo, u]
    of least E(w - u). Where [lo, hi] spans at most :data:`SWEEP_SPAN` codes every such
    row is run (every u and w: no assumption on E); on a wider range E is nondecreasing in
    every variant here and w = m, the rows ``[u, m, ..., m]``. The variant is run on those
    rows (exact integers); a nonzero masked output (for a variant whose output is codes,
    ``extra["decode"]``: a code that does not decode to 0) raises SpecError naming the
    variant.
    """
    v = b.variant("softmax")
    q = b.spec.activations.get(tap.rsplit(".attn.", 1)[0] + ".attn.softmax")
    placed = b.place(v, tap, x.scale, x.fmt, q is not None)
    m = x.fmt.min if masked is None else masked
    if not m < lo:
        raise SpecError(f"lower: {tap}: the masked value {m} is not below the unmasked "
                        f"range [{lo}, {hi}]")
    if hi - lo < SWEEP_SPAN:
        uu, ww = np.meshgrid(np.arange(lo, hi + 1), np.arange(lo, hi + 1), indexing="ij")
        keep = ww <= uu
        u = np.concatenate([np.arange(lo, hi + 1), uu[keep]]).astype(np.int64)
        w = np.concatenate([np.full(hi - lo + 1, m), ww[keep]]).astype(np.int64)
    else:
        u = np.arange(lo, hi + 1, dtype=np.int64)
        w = np.full(u.size, m, dtype=np.int64)
    rows = np.repeat(w[:, None], n, axis=1)
    rows[:, 0] = u
    rows[:, 1] = m
    out = np.asarray(v.compute({v.inputs[0]: rows}, placed.params))
    decode = placed.extra.get("decode")
    val = out[:, 1] if decode is None else np.asarray(decode, dtype=np.int64)[out[:, 1]]
    bad = val != (placed.zp if decode is None else 0)
    if bool(bad.any()):
        i = int(np.argmax(bad))
        raise SpecError(f"lower: {v.key} at {tap}: a masked lane (logit code {m}) "
                        f"gets {int(out[i, 1])}, not 0, beside a row max {int(u[i])}: the "
                        "shifted-window mask would not be exact")
    b.notes[tap] = (f"shifted-window mask: masked lanes at {m}, unmasked in "
                    f"[{lo}, {hi}], {v.key} proven to give masked lanes exactly 0")


def window_logits(b: Builder, cfg: SwinConfig, st: int, j: int) -> Callable[[Act], Act]:
    """The q@k tap → ``attn.logits`` (relative position bias; the shift mask if the block
    shifts): see the module docstring."""
    pre = f"layers.{st}.blocks.{j}."
    a = pre + "attn."
    w, r, shift = cfg.stage_window(st), cfg.stage_resolution(st), cfg.block_shift(st, j)
    heads, n = cfg.num_heads[st], cfg.stage_window(st) ** 2

    def fn(qk: Act) -> Act:
        tap = a + "logits"
        table = np.asarray(b.params[a + "relative_position_bias_table"], dtype=np.float64)
        bias = table[relative_position_index(w).reshape(-1)].reshape(n, n, heads)
        bias = bias.transpose(2, 0, 1)
        if tap in b.spec.activations:
            return quantized_logits(b, qk, bias, a, r, w, shift)
        bq = np.rint(bias / qk.scale).astype(np.int64) - qk.zp  # rint: half_even
        bc = b.const(a + "rel_bias", bq, doc="relative position bias at the q@k tap's scale "
                     "(half_even) minus its zero point")
        sfmt = fmt_for(qk.fmt.min + int(bq.min()), qk.fmt.max + int(bq.max()))
        sname = a + "logits.acc"
        shape = (-1, heads, n, n)
        b.value(sname, shape, sfmt, qk.scale)
        b.move("add_exact", [qk.name, bc], [sname], a + "rel_bias")
        src = Acc(sname, np.array([qk.scale]), sfmt, shape)
        bits = int(b.variant("softmax").meta.get("lower.in_bits", 16))
        if not shift:
            return b.requant(src, b.internal_scale(tap, bits), IntFormat(bits, True), 0, tap)
        # unmasked logits: int(bits-1) on a grid whose 2^(bits-2) codes span >= MASK_GAP
        m_u = b.stats.get(a + "q@k", 0.0) + float(np.max(np.abs(bias)))
        ub = bits - 1
        s_l = max(max(m_u, 1e-6) * MARGIN / ((1 << (ub - 1)) - 1), MASK_GAP / (1 << (ub - 1)))
        u = b.requant(src, s_l, IntFormat(ub, True), 0, tap)
        # the masked logits: refq.nn.swin's attn.masked tap (logits + the -100 shift mask)
        masked = a + "masked"
        mask = shift_mask(r, w, shift) != 0  # (W, n, n): True between different regions
        if bool(np.any(np.diagonal(mask, axis1=1, axis2=2))):
            raise SpecError(f"lower: {masked}: a token is masked from itself")  # pragma: no cover
        fmt = IntFormat(bits, True)
        mc = b.const(a + "mask", mask.astype(np.int64), IntFormat(2, True),
                     "1 where a lane is masked (tokens of different regions)")
        b.value(masked, shape, fmt, s_l)
        b.move("window_mask", [u.name, mc], [masked], masked, value=fmt.min)
        out = Act(masked, s_l, 0, fmt, shape)
        mask_proof(b, masked, out, -(1 << (ub - 1)), (1 << (ub - 1)) - 1, n)
        return out

    return fn


def quantized_logits(b: Builder, qk: Act, bias: F64, a: str, r: int, w: int,
                     shift: int) -> Act:
    """The spec quantizes ``attn.logits`` (FQ-ViT: ``qact2`` on q@k plus the bias): q@k's
    codes on a 2^-:data:`FINE_BITS` finer grid plus the bias there (half_even), then the
    logits quantizer by exact thresholds (its codes); in a shifted block the masked lanes
    become one value ``m`` below every code (module docstring, :func:`masked_value`),
    proven to give 0 (:func:`mask_proof`)."""
    tap = a + "logits"
    heads, n = bias.shape[0], bias.shape[-1]
    shape = (-1, heads, n, n)
    sg = qk.scale / 2.0**FINE_BITS
    fine = a + "q@k.fine"
    ffmt = fmt_for(qk.fmt.min << FINE_BITS, qk.fmt.max << FINE_BITS)
    b.value(fine, shape, ffmt, sg, qk.zp << FINE_BITS)
    b.move("shift_left", [qk.name], [fine], a + "rel_bias", shift=FINE_BITS)
    bq = np.rint(bias / sg).astype(np.int64) - (qk.zp << FINE_BITS)  # rint: half_even
    bc = b.const(a + "rel_bias", bq, doc=f"relative position bias at 2^-{FINE_BITS} of the "
                 "q@k tap's scale (half_even) minus its zero point there")
    sfmt = fmt_for(ffmt.min + int(bq.min()), ffmt.max + int(bq.max()))
    sname = a + "logits.acc"
    b.value(sname, shape, sfmt, sg)
    b.move("add_exact", [fine, bc], [sname], a + "rel_bias")
    x = b.to_tap(Acc(sname, np.array([sg]), sfmt, shape), tap)
    if not shift:
        return x
    masked = a + "masked"
    mask = shift_mask(r, w, shift) != 0
    if bool(np.any(np.diagonal(mask, axis1=1, axis2=2))):
        raise SpecError(f"lower: {masked}: a token is masked from itself")  # pragma: no cover
    lo, hi = x.fmt.min, x.fmt.max
    m = masked_value(b, masked, x)
    fmt = fmt_for(m, hi)
    mc = b.const(a + "mask", mask.astype(np.int64), IntFormat(2, True),
                 "1 where a lane is masked (tokens of different regions)")
    b.value(masked, shape, fmt, x.scale, x.zp)
    b.move("window_mask", [x.name, mc], [masked], masked, value=m)
    out = Act(masked, x.scale, x.zp, fmt, shape)
    mask_proof(b, masked, out, lo, hi, n, masked=m)
    clamp = _iexp_clamp(b, masked, x)
    if clamp is not None and (hi - lo) - 100.0 / x.scale <= clamp:
        b.notes[masked] += ("; i-exp clamp reached, as by the float model's logit - 100 at "
                            "this scale (the same e for every masked lane)")
    return out


def _iexp_clamp(b: Builder, tap: str, x: Act) -> int | None:
    """n·x0_int of an i-exp softmax variant (ibert, lis) at ``x``'s scale, else None."""
    v = b.variant("softmax")
    q = b.spec.activations.get(tap.rsplit(".attn.", 1)[0] + ".attn.softmax")
    p = b.place(v, tap, x.scale, x.fmt, q is not None).params
    return int(p.x0_int) * int(p.n) if isinstance(p, IExpParams) else None


def masked_value(b: Builder, tap: str, x: Act) -> int:
    """The code of a masked lane next to quantized logits ``x`` (codes in [lo, hi]):
    ``lo`` minus the larger of ⌈MASK_GAP / S⌉ and, for an i-exp softmax (ibert, lis), the
    i-exp clamp n·|x0_int| — so that x - max is at or past the clamp on every row, where
    FQ-ViT's float logit - 100 also lies (e = c_int there, as in its forward)."""
    clamp = _iexp_clamp(b, tap, x)
    gap = math.ceil(MASK_GAP / x.scale)
    return x.fmt.min - max(gap, 0 if clamp is None else -clamp)


def block(b: Builder, h: Act, cfg: SwinConfig, st: int, j: int) -> Act:
    """norm1 → [roll -w/2] → windows → attention (bias, mask) → reverse → [roll +w/2] →
    add1 → norm2 → MLP → add2."""
    pre = f"layers.{st}.blocks.{j}."
    r, w, shift = cfg.stage_resolution(st), cfg.stage_window(st), cfg.block_shift(st, j)
    c, n = cfg.stage_dim(st), w * w
    y = layernorm(b, h, pre + "norm1", pre + "norm1")
    if shift:
        y = _move(b, "roll", y, pre + "norm1.shifted", y.shape, pre + "shift", side=r,
                  shift=-shift)
    yw = _move(b, "window_partition", y, pre + "norm1.windows", (-1, n, c), pre + "windows",
               side=r, window=w)
    o = attention(b, yw, pre, cfg.num_heads[st], window_logits(b, cfg, st, j))
    g = _move(b, "window_reverse", o, pre + "attn.proj.tokens", (-1, r * r, c),
              pre + "windows", side=r, window=w)
    if shift:
        g = _move(b, "roll", g, pre + "attn.proj.unshifted", g.shape, pre + "shift", side=r,
                  shift=shift)
    h = residual_add(b, h, g, pre + "add1")
    y = layernorm(b, h, pre + "norm2", pre + "norm2")
    return residual_add(b, h, mlp(b, y, pre), pre + "add2")


def merge(b: Builder, h: Act, cfg: SwinConfig, st: int) -> Act:
    """Patch merging at the start of stage ``st``: 2 x 2 gather → its LayerNorm → the
    reduction linear (no bias) → its tap."""
    d = f"layers.{st}.downsample."
    side = cfg.stage_resolution(st - 1)
    if h.fmt.bits > MERGE_BITS:  # the int20 residual stream, re-gridded for a 4C-wide norm
        if h.zp != 0:  # pragma: no cover - wide residual formats have zero point 0
            raise SpecError(f"lower: {d}merge: a {h.fmt} input with a zero point")
        prev = f"layers.{st - 1}.blocks.{cfg.depths[st - 1] - 1}.add2"
        src = Acc(h.name, np.array([h.scale]), h.fmt, h.shape)
        h = b.requant(src, b.internal_scale(prev, MERGE_BITS), IntFormat(MERGE_BITS, True), 0,
                      d + "in", label=d + "merge")
    x = _move(b, "patch_merge", h, d + "merged", (-1, (side // 2) ** 2, 4 * h.shape[-1]),
              d + "merge", side=side)
    y = layernorm(b, x, d + "norm", d + "norm")
    return b.to_tap(b.linear(y, d + "reduction", d + "reduction.acc"), d + "reduction", bits=16)


def head(b: Builder, h: Act, cfg: SwinConfig) -> str:
    """Final LayerNorm → integer mean over the tokens (module docstring) → head.fc."""
    y = b.zero_point_free(layernorm(b, h, "norm", "norm"), "norm")
    ntok = cfg.stage_resolution(len(cfg.depths) - 1) ** 2
    c = cfg.num_features
    sfmt = fmt_for(y.fmt.min * ntok, y.fmt.max * ntok)
    b.value("pool.sum", (-1, c), sfmt, y.scale / ntok, doc="sum of the final LayerNorm's "
            "tokens: the mean at scale S/L")
    b.move("mean_pool", [y.name], ["pool.sum"], "pool", axis=1, shift=0)
    pooled = b.to_tap(Acc("pool.sum", np.array([y.scale / ntok]), sfmt, (-1, c)), "pool",
                      bits=16)
    acc = b.linear(pooled, "head.fc", "head.acc")
    return b.to_tap(acc, "head", bits=LOGIT_BITS).name


def lower_swin(b: Builder, cfg: SwinConfig) -> str:
    """Emit the whole Swin into ``b``; returns the output (logits) tensor name."""
    h = embed(b, cfg)
    for st, depth in enumerate(cfg.depths):
        if st > 0:
            h = merge(b, h, cfg, st)
        for j in range(depth):
            h = block(b, h, cfg, st, j)
    return head(b, h, cfg)


__all__ = ["FINE_BITS", "MASK_GAP", "SWEEP_SPAN", "block", "embed", "head", "lower_swin",
           "mask_proof", "masked_value", "merge", "quantized_logits", "window_logits"]
