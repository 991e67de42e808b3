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
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, check_bits, first_argmin
from refq.calib.metrics import Metric, get_metric, restrict
from refq.errors import SpecError
from refq.quant import Quantizer, UniformQuantizer

ALPHA = 0.01
BETA = 1.2
N_CANDIDATES = 100
ROUNDS = 3
GELU_NEG_RANGE = 0.16997124254703522
"""|min GELU(x)|: the post-GELU negative branch covers [-GELU_NEG_RANGE, 0]."""


def ptq4vit_candidates(
    delta0: npt.ArrayLike, alpha: float = ALPHA, beta: float = BETA, n: int = N_CANDIDATES
) -> FloatArray:
    """Candidate scales (α + i(β-α)/n)·Δ0 for i = 0..n-1: shape (n, *Δ0.shape).

    The multipliers are computed as α + i·(β-α)/n in float64, then multiplied by Δ0.
    """
    if not isinstance(n, int) or n < 1:
        raise SpecError(f"n must be a positive int, got {n!r}")
    if not 0 < alpha < beta:
        raise SpecError(f"need 0 < alpha < beta, got alpha={alpha}, beta={beta}")
    d0 = as_float(delta0, "delta0")
    mult = np.array([alpha + i * (beta - alpha) / n for i in range(n)], dtype=np.float64)
    out: FloatArray = mult.reshape((n,) + (1,) * d0.ndim) * d0
    return out


def symmetric_delta0(x: npt.ArrayLike, bits: int, axis: int | None = None) -> FloatArray:
    """Δ0 = max|x| / (2^(b-1) - 0.5), per tensor (0-d) or per channel of ``axis`` ((C,))."""
    from refq.calib.observers import absmax

    b = check_bits(bits)
    out: FloatArray = absmax(x, axis) / (2.0 ** (b - 1) - 0.5)
    return out


def sym_fake_quant(x: FloatArray, delta: npt.ArrayLike, bits: int) -> FloatArray:
    """clamp(round_half_even(x/Δ), -2^(b-1), 2^(b-1)-1)·Δ, Δ broadcasting against x."""
    d = np.asarray(delta, dtype=np.float64)
    q = np.clip(np.rint(x / d), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1)
    out: FloatArray = q * d
    return out


def gelu_twin_fake_quant(x: FloatArray, delta_pos: float, bits: int) -> FloatArray:
    """PTQ4ViT post-GELU twin form: clamp(round(x/Δ+),0,2^(b-1)-1)·Δ+ +
    clamp(round(x/Δ-),-2^(b-1),0)·Δ-, Δ- = GELU_NEG_RANGE/2^(b-1)."""
    dn = GELU_NEG_RANGE / 2 ** (bits - 1)
    pos = np.clip(np.rint(x / delta_pos), 0, 2 ** (bits - 1) - 1) * delta_pos
    neg = np.clip(np.rint(x / dn), -(2 ** (bits - 1)), 0) * dn
    out: FloatArray = pos + neg
    return out


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
    metric: str | Metric = "cosine",
    rounds: int = ROUNDS,
    alpha: float = ALPHA,
    beta: float = BETA,
    n: int = N_CANDIDATES,
    weight_blocks: int = 1,
    post_gelu: bool = False,
) -> tuple[Quantizer, Quantizer, dict[str, Any]]:
    """PTQ4ViT search of a linear layer ``y = x Wᵀ + bias``: (weight quantizer, input
    quantizer, record). See :func:`search_linear_scales` for the arguments and the record.

    Weight quantizer: signed symmetric UniformQuantizer, per tensor (``weight_blocks`` = 1)
    or per output channel (axis 0) holding each row block's scale. Input quantizer: per
    tensor signed UniformQuantizer, or for ``post_gelu`` the twin GELU quantizer
    (:func:`refq.calib.search_twin.gelu_twin_quantizer`).
    """
    rec = search_linear_scales(x, weight, bias, w_bits=w_bits, a_bits=a_bits, metric=metric,
                               rounds=rounds, alpha=alpha, beta=beta, n=n,
                               weight_blocks=weight_blocks, post_gelu=post_gelu)
    w = np.asarray(weight)
    if weight_blocks == 1:
        wq = _sym_quantizer(rec["w_delta"][0], w_bits, None)
    else:
        wq = _sym_quantizer(np.repeat(rec["w_delta"], w.shape[0] // weight_blocks), w_bits, 0)
    xq: Quantizer
    if post_gelu:
        from refq.calib.search_twin import gelu_twin_quantizer

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
    metric: str | Metric = "cosine",
    rounds: int = ROUNDS,
    alpha: float = ALPHA,
    beta: float = BETA,
    n: int = N_CANDIDATES,
    softmax: bool = False,
    twin_mode: str = "code",
) -> tuple[Quantizer, Quantizer, dict[str, Any]]:
    """PTQ4ViT search of ``a @ b`` ((B,H,M,K) @ (B,H,K,N)): (A quantizer, B quantizer,
    record). Per-head signed UniformQuantizers (axis 1); with ``softmax`` (A = attention
    probabilities) A is the post-softmax twin uniform quantizer with split 2^-m searched
    over m = 0..19 (``twin_mode`` "code" | "paper", see refq.quant's TwinUniformQuantizer).
    See :func:`search_matmul_scales` for the record.
    """
    a_twin: Callable[[FloatArray, int], FloatArray] | None = None
    if softmax:
        from refq.calib.search_twin import softmax_twin_quantizer

        def _twin(v: FloatArray, m: int) -> FloatArray:
            return np.asarray(softmax_twin_quantizer(m, a_bits, twin_mode).fake_quant(v))

        a_twin = _twin

    rec = search_matmul_scales(a, b, a_bits=a_bits, b_bits=b_bits, metric=metric,
                               rounds=rounds, alpha=alpha, beta=beta, n=n, a_twin=a_twin)
    aq: Quantizer
    if softmax:
        from refq.calib.search_twin import softmax_twin_quantizer

        aq = softmax_twin_quantizer(rec["a_split_m"], a_bits, twin_mode)
        rec["twin_mode"] = twin_mode
    else:
        aq = _sym_quantizer(rec["a_delta"], a_bits, 1)
    bq = _sym_quantizer(rec["b_delta"], b_bits, 1)
    return aq, bq, rec


__all__ = ["ALPHA", "BETA", "GELU_NEG_RANGE", "N_CANDIDATES", "ROUNDS", "gelu_twin_fake_quant",
           "ptq4vit_candidates", "ptq4vit_search", "ptq4vit_search_matmul",
           "search_linear_scales", "search_matmul_scales", "sym_fake_quant", "symmetric_delta0"]
