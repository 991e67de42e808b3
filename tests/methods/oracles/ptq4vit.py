"""PTQ4ViT's scale searches, re-typed in torch (one calibration batch, ``n_H = n_a = 1``).

Source (read, then re-typed): github.com/hahnyuan/PTQ4ViT at b42c790:
``quant_layers/linear.py`` ``PTQSLBatchingQuantLinear`` 349-555 (``_initialize_intervals``
380-397, ``_get_similarity`` 399-424, ``_search_best_w_interval`` 455-495,
``_search_best_a_interval`` 497-534, ``calibration_step2`` 536-555) and
``PostGeluPTQSLBatchingQuantLinear`` 557-640; ``quant_layers/matmul.py``
``PTQSLBatchingQuantMatMul`` 390-576 (head-wise groups ``n_G = H``) and
``SoSPTQSLBatchingQuantMatMul`` 578-650; ``quant_layers/conv.py``
``ChannelwiseBatchingQuantConv2d`` 444-614 with ``a_bit=32`` (``configs/PTQ4ViT.py`` 54);
``configs/PTQ4ViT.py`` 16-48 (α = 0.01, β = 1.2, n = 100, 3 rounds).

The candidate multipliers are ``torch.tensor([...])`` of Python floats: float32, whatever
the dtype of the tensors. Similarities are maximised (``argmax``: the first maximum).
"""

from __future__ import annotations

from typing import Any

import torch
import torch.nn.functional as F

ALPHA, BETA, N = 0.01, 1.2, 100
GELU_NEG = 0.16997124254703522


def mults(n: int = N) -> torch.Tensor:
    return torch.tensor([ALPHA + i * (BETA - ALPHA) / n for i in range(n + 1)])


def similarity(raw: torch.Tensor, sim: torch.Tensor, metric: str,
               grad: torch.Tensor | None, dim: int = -1) -> torch.Tensor:
    """``_get_similarity`` (linear 399-424 / matmul 442-481): cosine over ``dim``, or the
    negated (weighted) squared error averaged over ``dim``."""
    if metric == "cosine":
        return F.cosine_similarity(raw, sim, dim=dim)
    if metric == "L2_norm":
        s = -(raw - sim) ** 2
    elif metric == "hessian":
        assert grad is not None
        s = -(grad.reshape_as(raw) * (raw - sim)) ** 2
    else:
        raise NotImplementedError(metric)
    return torch.mean(s, dim=dim)


def linear_search(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *,
                  w_bit: int, a_bit: int, n_v: int = 1, metric: str = "cosine",
                  grad: torch.Tensor | None = None, post_gelu: bool = False,
                  rounds: int = 3, n: int = N, chunk: int = 10) -> dict[str, Any]:
    """Linear search: w_interval (n_V,), a_interval, the chosen indices of every round."""
    w_qmax, a_qmax = 2 ** (w_bit - 1), 2 ** (a_bit - 1)
    oc, ic = weight.shape
    rows = oc // n_v
    raw_out = F.linear(x, weight, bias)
    w_interval = (weight.view(n_v, rows, 1, ic).abs().amax([1, 3], keepdim=True)
                  / (w_qmax - 0.5))  # n_V,1,1,1
    # a_interval has shape (n_a, 1) = (1, 1): a dimensioned tensor, so the float32
    # multipliers are promoted to its dtype (a 0-d one would not promote them)
    if post_gelu:
        a_interval = (x.max() / (a_qmax - 0.5)).view(1, 1)
    else:
        a_interval = (x.abs().max() / (a_qmax - 0.5)).view(1, 1)
    a_neg = GELU_NEG / a_qmax
    wc = mults(n).view(-1, 1, 1, 1, 1) * w_interval.unsqueeze(0)  # n+1,n_V,1,1,1
    ac = (mults(n).view(1, 1, -1) * a_interval.unsqueeze(-1)).view(-1)  # n_a,1,n+1

    def quant_x(xx: torch.Tensor, iv: torch.Tensor) -> torch.Tensor:
        if post_gelu:
            pos = (xx / iv).round().clamp(0, a_qmax - 1) * iv
            neg = (xx / a_neg).round().clamp(-a_qmax, 0) * a_neg
            return pos + neg
        return (xx / iv).round().clamp(-a_qmax, a_qmax - 1) * iv

    def quant_w(iv: torch.Tensor) -> torch.Tensor:  # iv: n_V,1,1,1
        w = (weight.view(n_v, rows, 1, ic) / iv).round().clamp(-w_qmax, w_qmax - 1) * iv
        return w.view(oc, ic)

    history = []
    raw_chunk = torch.cat(torch.chunk(raw_out.unsqueeze(-2).unsqueeze(-2), chunks=n_v, dim=-1),
                          dim=-2)  # B,*,1,n_V,rows
    grad_chunk = None if grad is None else torch.cat(
        torch.chunk(grad.unsqueeze(-2).unsqueeze(-2), chunks=n_v, dim=-1), dim=-2)
    for _ in range(rounds):
        # weights: every block at once (block v's output depends on block v only)
        sims = []
        x_sim = quant_x(x, a_interval)
        for p0 in range(0, n, chunk):
            p1 = min(n, p0 + chunk)
            w_sim = (weight.view(n_v, rows, 1, ic).unsqueeze(0) / wc[p0:p1]).round().clamp(
                -w_qmax, w_qmax - 1) * wc[p0:p1]  # p,n_V,rows,1,ic
            w_sim = w_sim.view(-1, ic)
            b_sim = bias.repeat(p1 - p0) if bias is not None else None
            out = F.linear(x_sim, w_sim, b_sim)  # B,*,p*oc
            out = torch.cat(torch.chunk(out.unsqueeze(-2), chunks=p1 - p0, dim=-1), dim=-2)
            out = torch.cat(torch.chunk(out.unsqueeze(-2), chunks=n_v, dim=-1), dim=-2)
            s = similarity(raw_chunk, out, metric, grad_chunk)
            if s.dim() > 3:
                s = torch.mean(s, dim=list(range(1, s.dim() - 2)))  # b,p,n_V
            sims.append(s.sum(dim=0, keepdim=True))
        table = torch.cat(sims, dim=1).sum(dim=0)  # n,n_V
        w_idx = table.argmax(dim=0)
        w_interval = torch.gather(wc[:, :, 0, 0, 0], 0, w_idx.view(1, -1)).view(n_v, 1, 1, 1)
        # input
        w_sim = quant_w(w_interval)
        sims = []
        for p0 in range(0, n, chunk):
            p1 = min(n, p0 + chunk)
            xs = torch.stack([quant_x(x, ac[p]) for p in range(p0, p1)], dim=-2)  # B,*,p,ic
            out = F.linear(xs, w_sim, bias)
            s = similarity(raw_out.unsqueeze(-2), out, metric,
                           None if grad is None else grad.unsqueeze(-2))
            if s.dim() > 2:
                s = torch.mean(s, dim=list(range(1, s.dim() - 1)))  # b,p
            sims.append(s.sum(dim=0, keepdim=True))
        a_idx = int(torch.cat(sims, dim=1).sum(dim=0).argmax())
        a_interval = ac[a_idx]
        history.append({"w_index": [int(i) for i in w_idx], "a_index": a_idx})
    return {"w_interval": w_interval.reshape(-1), "a_interval": a_interval,
            "history": history}


def matmul_search(a: torch.Tensor, b: torch.Tensor, *, a_bit: int, b_bit: int,
                  metric: str = "cosine", grad: torch.Tensor | None = None,
                  softmax: bool = False, rounds: int = 3, n: int = N) -> dict[str, Any]:
    """Head-wise matmul search ((B,H,M,K) @ (B,H,K,N)); with ``softmax`` the SoS variant
    (A: split 2^-i, i < 20, searched with B unquantized; A_qmax = 2^(b-1))."""
    a_qmax, b_qmax = 2 ** (a_bit - 1), 2 ** (b_bit - 1)
    raw = a @ b
    a_iv = a.abs().amax([0, 2, 3]) / (a_qmax - 0.5)  # H
    b_iv = b.abs().amax([0, 2, 3]) / (b_qmax - 0.5)
    ac = mults(n).view(-1, 1) * a_iv.view(1, -1)  # n+1,H
    bc = mults(n).view(-1, 1) * b_iv.view(1, -1)
    split = None
    a_int = None

    def qa(x: torch.Tensor) -> torch.Tensor:
        if softmax:
            assert split is not None and a_int is not None
            hi = (x.clamp(split, 1) * (a_qmax - 1)).round().clamp(0, a_qmax - 1) / (a_qmax - 1)
            lo = (x.clamp(0, split) / a_int).round().clamp(0, a_qmax - 1) * a_int
            return hi + lo
        iv = a_iv.view(1, -1, 1, 1)
        return (x / iv).round().clamp(-a_qmax, a_qmax - 1) * iv

    def qb(iv: torch.Tensor) -> torch.Tensor:
        iv = iv.view(1, -1, 1, 1)
        return (b / iv).round().clamp(-b_qmax, b_qmax - 1) * iv

    def score(out: torch.Tensor, reduce_heads: bool) -> torch.Tensor:
        s = similarity(raw, out, metric, grad)  # b,H,M
        s = s.mean([1, 2]) if reduce_heads else s.mean([2])
        return s.sum(dim=0)

    history = []
    splits = torch.tensor([2 ** (-i) for i in range(20)])
    for _ in range(rounds):
        if softmax:
            sims = []
            for i in range(len(splits)):
                cur = splits[i] / (a_qmax - 1)
                hi = (a.clamp(splits[i], 1) * (a_qmax - 1)).round().clamp(0, a_qmax - 1) / (
                    a_qmax - 1)
                lo = (a.clamp(0, splits[i]) / cur).round().clamp(0, a_qmax - 1) * cur
                sims.append(score((hi + lo) @ b, True))
            a_idx: Any = int(torch.stack(sims).argmax())
            split = splits[a_idx]
            a_int = split / (a_qmax - 1)
        else:
            bs = qb(b_iv)
            table = torch.stack([score((a / ac[p].view(1, -1, 1, 1)).round().clamp(
                -a_qmax, a_qmax - 1) * ac[p].view(1, -1, 1, 1) @ bs, False) for p in range(n)])
            idx = table.argmax(dim=0)
            a_iv = torch.gather(ac[:n], 0, idx.view(1, -1)).view(-1)
            a_idx = [int(i) for i in idx]
        a_s = qa(a)
        table = torch.stack([score(a_s @ qb(bc[p]), False) for p in range(n)])
        idx = table.argmax(dim=0)
        b_iv = torch.gather(bc[:n], 0, idx.view(1, -1)).view(-1)
        history.append({"a_index": a_idx, "b_index": [int(i) for i in idx]})
    return {"a_interval": None if softmax else a_iv, "split": split, "b_interval": b_iv,
            "history": history}


def conv_channel_search(x: torch.Tensor, weight: torch.Tensor, bias: torch.Tensor | None, *,
                        w_bit: int, metric: str = "cosine", grad: torch.Tensor | None = None,
                        n: int = N) -> dict[str, Any]:
    """``ChannelwiseBatchingQuantConv2d`` weight search with the input unquantized
    (``a_bit=32``): per output channel, one round (every round finds the same)."""
    w_qmax = 2 ** (w_bit - 1)
    stride = weight.shape[-1]
    raw = F.conv2d(x, weight, bias, stride)  # b,oc,fw,fh
    w_interval = weight.abs().amax([1, 2, 3], keepdim=True) / (w_qmax - 0.5)  # oc,1,1,1
    wc = mults(n).view(-1, 1, 1, 1, 1) * w_interval.unsqueeze(0)  # n+1,oc,1,1,1
    oc = weight.shape[0]
    sims = []
    for p0 in range(0, n, 10):
        p1 = min(n, p0 + 10)
        w_sim = (weight.unsqueeze(0) / wc[p0:p1]).round().clamp(-w_qmax, w_qmax - 1) * wc[p0:p1]
        w_sim = w_sim.reshape(-1, *weight.shape[1:])
        b_sim = bias.repeat(p1 - p0) if bias is not None else None
        out = F.conv2d(x, w_sim, b_sim, stride)  # b,p*oc,fw,fh
        out = torch.cat(torch.chunk(out.unsqueeze(1), chunks=p1 - p0, dim=2), dim=1)
        r = raw.unsqueeze(1)
        if metric == "cosine":
            bb = out.shape[0]
            s = F.cosine_similarity(r.reshape(bb, 1, oc, -1), out.reshape(bb, p1 - p0, oc, -1),
                                    dim=-1).view(bb, p1 - p0, oc, 1, 1)
        elif metric == "L2_norm":
            s = -(r - out) ** 2
        else:
            assert grad is not None
            s = -(grad.reshape_as(r) * (r - out)) ** 2
        s = torch.mean(s, [3, 4]).sum(dim=0, keepdim=True)  # 1,p,oc
        sims.append(s)
    table = torch.cat(sims, dim=1).sum(dim=0)  # n,oc
    idx = table.argmax(dim=0)
    return {"w_interval": torch.gather(wc[:n, :, 0, 0, 0], 0, idx.view(1, -1)).view(-1),
            "w_index": [int(i) for i in idx]}
