"""PTQ4ViT scale search (Yuan et al., ECCV 2022; github.com/hahnyuan/PTQ4ViT, code behaviour).

Base quantizer: signed symmetric uniform, x̂ = clamp(round(x/Δ), -2^(b-1), 2^(b-1)-1)·Δ,
round = half to even (torch.round). Start Δ0 = max|x| / (2^(b-1) - 0.5) per group.
Candidates Δ_i = (α + i(β-α)/n)·Δ0, i = 0..n-1 (the code builds n+1 values but scans only
the first n), α = 0.01, β = 1.2, n = 100 (refq defaults). The candidate grid is built once
from Δ0 and reused in every round.

Linear layer: ``rounds`` (default 3) alternations of (1) the weight scale of each row block
(qkv: q, k, v blocks; others: one block) with the input fake-quantized by its current
scale, then (2) the per-tensor input scale with the weights fake-quantized. Each candidate
is scored on the layer OUTPUT (x̂ Ŵᵀ + bias vs x Wᵀ + bias) by ``metric`` (a loss; default
cosine distance along the output features, averaged over tokens, as PTQ4ViT's base PTQ),
restricted to the output columns of the block being searched. Lowest loss wins, the first
(smallest i) on ties. Post-GELU inputs (fc2) use the twin form of :mod:`search_twin`:
Δ- fixed at 0.16997124254703522/2^(b-1), Δ+ searched with Δ+0 = max(x)/(2^(b-1)-0.5).

Matmul (B, H, ·, ·) @ (B, H, ·, ·): per-head scales (axis 1) for both operands, alternating
A then B, each head scored on its own output slice. Post-softmax A (attn@v): twin uniform
with split 2^-m, m = 0..19, per tensor, searched with B NOT quantized (as the code does),
then B searched per head with A twin-quantized.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypedDict

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, check_bits, first_argmin
from refq.calib.metrics import COSINE_EPS, Metric, WeightedMSE, get_metric, restrict
from refq.calib.ptq4vit_grid import (
    ALPHA,
    BETA,
    GELU_NEG_RANGE,
    N_CANDIDATES,
    ROUNDS,
    gelu_twin_fake_quant,
    ptq4vit_candidates,
    sym_fake_quant,
    symmetric_delta0,
)
from refq.calib.search_twin import gelu_twin_quantizer, softmax_twin_quantizer
from refq.errors import SpecError
from refq.quant import Quantizer, UniformQuantizer

if TYPE_CHECKING:
    from typing_extensions import Unpack


class GridOptions(TypedDict, total=False):
    """The loss and the candidate grid of a search; an option left out takes the search
    function's default (cosine, α = ALPHA, β = BETA, n = N_CANDIDATES)."""

    metric: str | Metric
    alpha: float
    beta: float
    n: int


class SearchOptions(GridOptions, total=False):
    """:class:`GridOptions` and the number of alternating rounds (default ROUNDS)."""

    rounds: int


def _linear(x: FloatArray, w: FloatArray, b: FloatArray | None) -> FloatArray:
    y: FloatArray = x @ w.T
    return y if b is None else y + b


def _best(scores: list[float]) -> int:
    return first_argmin(scores)


def search_linear_scales(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    w_bits: int,
    a_bits: int,
    metric: str | Metric = "cosine",
    rounds: int = ROUNDS,
    alpha: float = ALPHA,
    beta: float = BETA,
    n: int = N_CANDIDATES,
    weight_blocks: int = 1,
    post_gelu: bool = False,
) -> dict[str, Any]:
    """The PTQ4ViT linear-layer search, returning plain numbers (see module docstring).

    ``x`` (..., in), ``weight`` (out, in), ``bias`` (out,) or None. ``weight_blocks``:
    number of equal row blocks of the weight with their own scale (3 for qkv).
    Returns a dict: ``w_delta`` (list, one per block), ``a_delta`` (float; Δ+ if
    ``post_gelu``), ``a_delta_neg`` (post-GELU only), ``w_index``/``a_index`` (chosen i of
    the last round), ``history`` (per round: chosen indices and losses), ``loss_init``
    (loss of the Δ0 pair) and ``loss`` (final).
    """
    xa, w = as_float(x, "x"), as_float(weight, "weight")
    bb = None if bias is None else as_float(bias, "bias")
    wb, ab = check_bits(w_bits, "w_bits"), check_bits(a_bits, "a_bits")
    m = get_metric(metric)
    if w.ndim != 2 or xa.shape[-1] != w.shape[1]:
        raise SpecError(f"x {xa.shape} and weight {w.shape} do not form a linear layer")
    if bb is not None and bb.shape != (w.shape[0],):
        raise SpecError(f"bias {bb.shape} does not match weight {w.shape}")
    if weight_blocks < 1 or w.shape[0] % weight_blocks:
        raise SpecError(f"weight_blocks={weight_blocks} does not divide {w.shape[0]} rows")
    if rounds < 1:
        raise SpecError(f"rounds must be >= 1, got {rounds}")
    rows = w.shape[0] // weight_blocks
    ref = _linear(xa, w, bb)
    wblk = w.reshape(weight_blocks, rows, w.shape[1])
    w_d0 = np.abs(wblk).max(axis=(1, 2)) / (2.0 ** (wb - 1) - 0.5)
    if post_gelu:
        a_d0 = float(xa.max()) / (2.0 ** (ab - 1) - 0.5)
    else:
        a_d0 = float(np.abs(xa).max()) / (2.0 ** (ab - 1) - 0.5)
    if np.any(w_d0 <= 0) or a_d0 <= 0:
        raise SpecError("PTQ4ViT search: an all-zero weight block or input (Δ0 = 0)")
    w_cand = ptq4vit_candidates(w_d0, alpha, beta, n)  # (n, blocks)
    a_cand = ptq4vit_candidates(a_d0, alpha, beta, n)  # (n,)
    w_delta = w_d0.copy()
    a_delta = a_d0

    def fq_x(d: float) -> FloatArray:
        return gelu_twin_fake_quant(xa, d, ab) if post_gelu else sym_fake_quant(xa, d, ab)

    def fq_w(dv: FloatArray) -> FloatArray:
        return sym_fake_quant(wblk, dv[:, None, None], wb).reshape(w.shape)

    loss_init = m(ref, _linear(fq_x(a_delta), fq_w(w_delta), bb))
    history: list[dict[str, Any]] = []
    w_idx = [-1] * weight_blocks
    a_idx = -1
    for _ in range(rounds):
        xs = fq_x(a_delta)
        w_losses = []
        for v in range(weight_blocks):
            cols = slice(v * rows, (v + 1) * rows)
            mv = restrict(m, (Ellipsis, cols))
            bv = None if bb is None else bb[cols]
            scores = [
                mv(ref[..., cols], _linear(xs, sym_fake_quant(wblk[v], w_cand[i, v], wb), bv))
                for i in range(n)
            ]
            w_idx[v] = _best(scores)
            w_delta[v] = w_cand[w_idx[v], v]
            w_losses.append(scores[w_idx[v]])
        ws = fq_w(w_delta)
        scores = [m(ref, _linear(fq_x(float(a_cand[i])), ws, bb)) for i in range(n)]
        a_idx = _best(scores)
        a_delta = float(a_cand[a_idx])
        history.append({"w_index": list(w_idx), "a_index": a_idx,
                        "w_loss": [float(v) for v in w_losses], "a_loss": float(scores[a_idx])})
    out: dict[str, Any] = {
        "w_delta": [float(v) for v in w_delta], "a_delta": a_delta,
        "w_index": list(w_idx), "a_index": a_idx, "history": history,
        "loss_init": float(loss_init), "loss": history[-1]["a_loss"],
        "alpha": alpha, "beta": beta, "n": n, "rounds": rounds,
    }
    if post_gelu:
        out["a_delta_neg"] = GELU_NEG_RANGE / 2 ** (ab - 1)
    return out


def search_matmul_scales(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    a_bits: int,
    b_bits: int,
    metric: str | Metric = "cosine",
    rounds: int = ROUNDS,
    alpha: float = ALPHA,
    beta: float = BETA,
    n: int = N_CANDIDATES,
    a_twin: Callable[[FloatArray, int], FloatArray] | None = None,
    splits: int = 20,
) -> dict[str, Any]:
    """The PTQ4ViT matmul search on ``out = a @ b`` with per-head scales (axis 1).

    ``a`` (B, H, M, K), ``b`` (B, H, K, N). If ``a_twin`` is given (post-softmax A), it is
    ``a_twin(a, m) -> â`` for split 2^-m and the A step searches m in 0..splits-1 with B
    unquantized (code behaviour), per tensor. Returns ``a_delta`` (per head list, or None
    with ``a_split_m``), ``b_delta`` (per head), indices, history, ``loss_init``, ``loss``.
    """
    aa, bm = as_float(a, "a"), as_float(b, "b")
    abit, bbit = check_bits(a_bits, "a_bits"), check_bits(b_bits, "b_bits")
    m = get_metric(metric)
    if aa.ndim != 4 or bm.ndim != 4 or aa.shape[:2] != bm.shape[:2] or aa.shape[3] != bm.shape[2]:
        raise SpecError(f"matmul operands {aa.shape} @ {bm.shape}: expected (B,H,M,K) @ (B,H,K,N)")
    if rounds < 1:
        raise SpecError(f"rounds must be >= 1, got {rounds}")
    heads = aa.shape[1]
    ref = aa @ bm
    b_d0 = np.abs(bm).max(axis=(0, 2, 3)) / (2.0 ** (bbit - 1) - 0.5)
    b_cand = ptq4vit_candidates(b_d0, alpha, beta, n)  # (n, H)
    if a_twin is None:
        a_d0 = np.abs(aa).max(axis=(0, 2, 3)) / (2.0 ** (abit - 1) - 0.5)
        if np.any(a_d0 <= 0):
            raise SpecError("PTQ4ViT matmul search: a head of A is all zero")
        a_cand = ptq4vit_candidates(a_d0, alpha, beta, n)
        a_delta: FloatArray | None = a_d0.copy()
    else:
        a_cand = np.zeros((0, heads))
        a_delta = None
    if np.any(b_d0 <= 0):
        raise SpecError("PTQ4ViT matmul search: a head of B is all zero")
    b_delta = b_d0.copy()
    split_m = 0
    head_metric = [restrict(m, (slice(None), h)) for h in range(heads)]

    def fq_a() -> FloatArray:
        if a_twin is not None:
            return a_twin(aa, split_m)
        assert a_delta is not None
        return sym_fake_quant(aa, a_delta[:, None, None], abit)

    def per_head(out: FloatArray) -> list[float]:
        return [head_metric[h](ref[:, h], out[:, h]) for h in range(heads)]

    # starting point: Δ0 for B and for a uniform A, split 2^0 = 1 for a twin A
    loss_init = m(ref, fq_a() @ sym_fake_quant(bm, b_delta[:, None, None], bbit))
    history: list[dict[str, Any]] = []
    a_idx: list[int] | int = -1
    b_idx = [-1] * heads
    twin_scores: list[float] | None = None
    for _ in range(rounds):
        if a_twin is not None:
            # B is not quantized in this step, so every round scores the same splits:
            # computed once, reused (same numbers, fewer matmuls)
            if twin_scores is None:
                twin_scores = [m(ref, a_twin(aa, k) @ bm) for k in range(splits)]
            scores = twin_scores
            split_m = _best(scores)
            a_idx = split_m
            a_loss: Any = float(scores[split_m])
        else:
            assert a_delta is not None
            bs = sym_fake_quant(bm, b_delta[:, None, None], bbit)
            table = np.array([per_head(sym_fake_quant(aa, a_cand[i][:, None, None], abit) @ bs)
                              for i in range(n)])  # (n, H)
            a_idx = [first_argmin(table[:, h]) for h in range(heads)]
            a_delta = np.array([a_cand[a_idx[h], h] for h in range(heads)])
            a_loss = [float(table[a_idx[h], h]) for h in range(heads)]
        a_s = fq_a()
        table = np.array([per_head(a_s @ sym_fake_quant(bm, b_cand[i][:, None, None], bbit))
                          for i in range(n)])
        b_idx = [first_argmin(table[:, h]) for h in range(heads)]
        b_delta = np.array([b_cand[b_idx[h], h] for h in range(heads)])
        history.append({"a_index": a_idx, "b_index": list(b_idx), "a_loss": a_loss,
                        "b_loss": [float(table[b_idx[h], h]) for h in range(heads)]})
    final = m(ref, fq_a() @ sym_fake_quant(bm, b_delta[:, None, None], bbit))
    return {
        "a_delta": None if a_delta is None else [float(v) for v in a_delta],
        "a_split_m": split_m if a_twin is not None else None,
        "b_delta": [float(v) for v in b_delta], "a_index": a_idx, "b_index": list(b_idx),
        "history": history, "loss_init": float(loss_init),
        "loss": float(final), "alpha": alpha, "beta": beta, "n": n, "rounds": rounds,
    }




def search_channel_scales(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    w_bits: int,
    metric: str | Metric = "cosine",
    alpha: float = ALPHA,
    beta: float = BETA,
    n: int = N_CANDIDATES,
) -> dict[str, Any]:
    """PTQ4ViT's per-output-channel weight search of the patch-embedding conv
    (``ChannelwiseBatchingQuantConv2d``, input not quantized: ``a_bit=32``), on the conv
    written as a linear layer over patches: ``x`` (B, P, K) patches, ``weight`` (C, K),
    output (B, P, C).

    Channel c: Δ0_c = max|W_c| / (2^(b-1) - 0.5), candidates (α + i(β-α)/n)·Δ0_c; every
    candidate i is applied to all channels at once and channel c keeps the i of the lowest
    loss, the first on ties (the code's argmax of the similarity). Loss of channel c, as
    the official similarity (summed over images, averaged over the P output positions):
    ``"cosine"``: -Σ_b cos(ref[b,:,c], out[b,:,c]) (cosine over the patches);
    ``"mse"``: Σ_b mean_p (ref - out)²; a :class:`~refq.calib.metrics.WeightedMSE` (the
    Hessian metric, weight g of the output's shape): Σ_b mean_p (g·(ref - out))². With the
    input unquantized every search round finds the same scales, so one round is run.
    Returns ``w_delta`` (per channel), ``w_index``, ``loss`` (per channel), ``alpha``,
    ``beta``, ``n``.
    """
    xa, w = as_float(x, "x"), as_float(weight, "weight")
    bb = None if bias is None else as_float(bias, "bias")
    wb = check_bits(w_bits, "w_bits")
    if xa.ndim != 3 or w.ndim != 2 or xa.shape[-1] != w.shape[1]:
        raise SpecError(f"x {xa.shape} and weight {w.shape}: expected (B, P, K) and (C, K)")
    g: FloatArray | None = None
    if isinstance(metric, WeightedMSE):
        g = np.broadcast_to(metric.weight, (*xa.shape[:2], w.shape[0]))
    elif metric not in ("cosine", "mse"):
        raise SpecError("per-channel search: metric must be 'cosine', 'mse' or a weighted "
                        f"MSE (the Hessian metric), got {metric!r}")
    d0 = np.abs(w).max(axis=1) / (2.0 ** (wb - 1) - 0.5)
    if np.any(d0 <= 0):
        raise SpecError("PTQ4ViT channel search: an all-zero weight row (Δ0 = 0)")
    cand = ptq4vit_candidates(d0, alpha, beta, n)  # (n, C)
    ref = _linear(xa, w, bb)
    table = np.empty((n, w.shape[0]))
    for i in range(n):
        out = _linear(xa, sym_fake_quant(w, cand[i][:, None], wb), bb)
        if metric == "cosine":
            num = np.sum(ref * out, axis=1)
            den = np.sqrt(np.sum(ref * ref, axis=1)) * np.sqrt(np.sum(out * out, axis=1))
            table[i] = -np.sum(num / np.maximum(den, COSINE_EPS), axis=0)
        else:
            e = ref - out if g is None else g * (ref - out)
            table[i] = np.sum(np.mean(e * e, axis=1), axis=0)
    idx = [first_argmin(table[:, c]) for c in range(w.shape[0])]
    return {
        "w_delta": [float(cand[idx[c], c]) for c in range(w.shape[0])], "w_index": idx,
        "loss": [float(table[idx[c], c]) for c in range(w.shape[0])],
        "alpha": alpha, "beta": beta, "n": n,
    }


def ptq4vit_search_channels(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    w_bits: int,
    **options: Unpack[GridOptions],
) -> tuple[UniformQuantizer, dict[str, Any]]:
    """:func:`search_channel_scales` as a quantizer: the signed symmetric per-output-
    channel (axis 0) UniformQuantizer of the chosen scales, and the record. ``options``:
    ``metric``, ``alpha``, ``beta``, ``n`` as there."""
    rec = search_channel_scales(x, weight, bias, w_bits=w_bits, **options)
    return _sym_quantizer(rec["w_delta"], w_bits, 0), rec


def _sym_quantizer(delta: npt.ArrayLike, bits: int, axis: int | None) -> UniformQuantizer:
    return UniformQuantizer(np.asarray(delta, dtype=np.float64), bits, 0, signed=True,
                            axis=axis, rounding="half_even")


def ptq4vit_search(
    x: npt.ArrayLike,
    weight: npt.ArrayLike,
    bias: npt.ArrayLike | None = None,
    *,
    w_bits: int,
    a_bits: int,
    weight_blocks: int = 1,
    post_gelu: bool = False,
    **options: Unpack[SearchOptions],
) -> tuple[Quantizer, Quantizer, dict[str, Any]]:
    """PTQ4ViT search of a linear layer ``y = x Wᵀ + bias``: (weight quantizer, input
    quantizer, record). See :func:`search_linear_scales` for the arguments (``options``:
    ``metric``, ``rounds``, ``alpha``, ``beta``, ``n``) and the record.

    Weight quantizer: signed symmetric UniformQuantizer, per tensor (``weight_blocks`` = 1)
    or per output channel (axis 0) holding each row block's scale. Input quantizer: per
    tensor signed UniformQuantizer, or for ``post_gelu`` the twin GELU quantizer
    (:func:`refq.calib.search_twin.gelu_twin_quantizer`).
    """
    rec = search_linear_scales(x, weight, bias, w_bits=w_bits, a_bits=a_bits,
                               weight_blocks=weight_blocks, post_gelu=post_gelu, **options)
    w = np.asarray(weight)
    if weight_blocks == 1:
        wq = _sym_quantizer(rec["w_delta"][0], w_bits, None)
    else:
        wq = _sym_quantizer(np.repeat(rec["w_delta"], w.shape[0] // weight_blocks), w_bits, 0)
    xq: Quantizer
    if post_gelu:
        xq = gelu_twin_quantizer(rec["a_delta"], a_bits)
    else:
        xq = _sym_quantizer(rec["a_delta"], a_bits, None)
    return wq, xq, rec


def ptq4vit_search_matmul(
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    *,
    a_bits: int,
    b_bits: int,
    softmax: bool = False,
    twin_mode: str = "code",
    **options: Unpack[SearchOptions],
) -> tuple[Quantizer, Quantizer, dict[str, Any]]:
    """PTQ4ViT search of ``a @ b`` ((B,H,M,K) @ (B,H,K,N)): (A quantizer, B quantizer,
    record). Per-head signed UniformQuantizers (axis 1); with ``softmax`` (A = attention
    probabilities) A is the post-softmax twin uniform quantizer with split 2^-m searched
    over m = 0..19 (``twin_mode`` "code" | "paper", see refq.quant's TwinUniformQuantizer).
    See :func:`search_matmul_scales` for ``options`` (``metric``, ``rounds``, ``alpha``,
    ``beta``, ``n``) and the record.
    """
    a_twin: Callable[[FloatArray, int], FloatArray] | None = None
    if softmax:
        def _twin(v: FloatArray, m: int) -> FloatArray:
            return np.asarray(softmax_twin_quantizer(m, a_bits, twin_mode).fake_quant(v))

        a_twin = _twin

    rec = search_matmul_scales(a, b, a_bits=a_bits, b_bits=b_bits, a_twin=a_twin, **options)
    aq: Quantizer
    if softmax:
        aq = softmax_twin_quantizer(rec["a_split_m"], a_bits, twin_mode)
        rec["twin_mode"] = twin_mode
    else:
        aq = _sym_quantizer(rec["a_delta"], a_bits, 1)
    bq = _sym_quantizer(rec["b_delta"], b_bits, 1)
    return aq, bq, rec


__all__ = ["ALPHA", "BETA", "GELU_NEG_RANGE", "N_CANDIDATES", "ROUNDS", "GridOptions",
           "SearchOptions", "gelu_twin_fake_quant",
           "ptq4vit_candidates", "ptq4vit_search", "ptq4vit_search_channels",
           "ptq4vit_search_matmul", "search_channel_scales", "search_linear_scales",
           "search_matmul_scales", "sym_fake_quant", "symmetric_delta0"]
