"""RepQ-ViT and I&S-ViT quantizer initialisations and forwards, re-typed in torch.

Sources (read, then re-typed):
- RepQ-ViT, github.com/zkkli/RepQ-ViT at a160561, ``classification/quant/quantizer.py``:
  ``lp_loss`` 8-15, ``UniformQuantizer.forward`` 42-53, ``init_quantization_scale`` 55-113,
  ``quantize`` 115-122; ``LogSqrt2Quantizer`` 153-183.
- I&S-ViT, github.com/zysxmu/IaS-ViT at 9300cea, ``quant/quantizer.py``: ``UniformQuantizer``
  49-175 (``is_act`` picks the candidate list, 142-145, and the channel axis, 66-106);
  ``LogSqrt2Quantizer`` (SULQ) ``forward`` 197-212, ``init_quantization_scale`` 214-227,
  ``logk`` 229-232, ``quantize`` 234-248.

Every function takes torch tensors in the dtype under test (float64 or float32) and returns
torch tensors; ``chosen`` records are the index of the winning candidate.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch

REPQ_PCTS = [0.999, 0.9999, 0.99999]
IAS_ACT_PCTS = [0.999, 0.9999, 0.99999]
IAS_WEIGHT_PCTS = [0.97, 0.98, 0.99, 0.995, 0.9995, 0.9997, 0.9999, 0.99995, 0.99999]
SULQ_BIASES = [0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1.0]


def lp_loss_all(pred: torch.Tensor, tgt: torch.Tensor) -> torch.Tensor:
    """``lp_loss(pred, tgt, p=2, reduction='all')``."""
    return (pred - tgt).abs().pow(2.0).mean()


def uniform_quantize(x: torch.Tensor, mx: torch.Tensor, mn: torch.Tensor,
                     n_bits: int) -> torch.Tensor:
    """``UniformQuantizer.quantize(x, max, min)``."""
    delta = (mx - mn) / (2**n_bits - 1)
    zero_point = (-mn / delta).round()
    x_int = torch.round(x / delta)
    x_quant = torch.clamp(x_int + zero_point, 0, 2**n_bits - 1)
    return (x_quant - zero_point) * delta


def _quantile_pair(flat: torch.Tensor, pct: float) -> tuple[torch.Tensor, torch.Tensor]:
    try:
        return torch.quantile(flat, pct), torch.quantile(flat, 1.0 - pct)
    except RuntimeError:  # the official bare ``except``: torch.quantile's size limit
        return (torch.tensor(np.percentile(flat.cpu(), pct * 100), dtype=torch.float32),
                torch.tensor(np.percentile(flat.cpu(), (1 - pct) * 100), dtype=torch.float32))


def uniform_init_tensor(x: torch.Tensor, n_bits: int,
                        pcts: list[float]) -> tuple[Any, Any, int | None]:
    """The per-tensor branch of ``init_quantization_scale``: (delta, zero_point, chosen)."""
    x_clone = x.clone().detach()
    best_score = 1e10
    delta = zero_point = None
    chosen = None
    for k, pct in enumerate(pcts):
        new_max, new_min = _quantile_pair(x_clone.reshape(-1), pct)
        x_q = uniform_quantize(x_clone, new_max, new_min, n_bits)
        score = lp_loss_all(x_clone, x_q)
        if score < best_score:
            best_score = score
            delta = (new_max - new_min) / (2**n_bits - 1)
            zero_point = (-new_min / delta).round()
            chosen = k
    return delta, zero_point, chosen


def uniform_init_channels(x: torch.Tensor, n_bits: int, pcts: list[float], *,
                          is_act: bool) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
    """The ``channel_wise`` branch: weights (``is_act=False``) per row ``x[c]``; 3-D
    activations per last-axis channel ``x[:, :, c]`` (both codes); I&S-ViT's 2-D
    activations per column ``x[:, c]``. Returns (delta (C,), zero_point (C,), chosen)."""
    x_clone = x.clone().detach()
    if x.dim() == 3:
        n = x_clone.shape[-1]
        parts = [x_clone[:, :, c] for c in range(n)]
    elif is_act and x.dim() == 2:
        n = x_clone.shape[1]
        parts = [x_clone[:, c] for c in range(n)]
    else:
        n = x_clone.shape[0]
        parts = [x_clone[c] for c in range(n)]
    delta = torch.zeros(n, dtype=x.dtype)
    zero_point = torch.zeros(n, dtype=x.dtype)
    chosen = []
    for c, part in enumerate(parts):
        d, z, k = uniform_init_tensor(part, n_bits, pcts)
        delta[c], zero_point[c] = d, z
        chosen.append(k)
    return delta, zero_point, chosen


def logsqrt2_quantize(x: torch.Tensor, delta: torch.Tensor, n_bits: int) -> torch.Tensor:
    """RepQ-ViT ``LogSqrt2Quantizer.quantize``."""
    from math import sqrt

    x_int = torch.round(-1 * (x / delta).log2() * 2)
    mask = x_int >= 2**n_bits
    x_quant = torch.clamp(x_int, 0, 2**n_bits - 1)
    odd_mask = (x_quant % 2) * (sqrt(2) - 1) + 1
    x_float_q = 2 ** (-1 * torch.ceil(x_quant / 2)) * odd_mask * delta
    x_float_q[mask] = 0
    return x_float_q


def logsqrt2_init(x: torch.Tensor, n_bits: int) -> tuple[torch.Tensor, int | None]:
    """RepQ-ViT ``LogSqrt2Quantizer.init_quantization_scale``: (delta, chosen)."""
    x_clone = x.clone().detach()
    delta = x_clone.max()
    best_score = 1e10
    chosen = None
    for k, pct in enumerate(REPQ_PCTS):
        try:
            new_delta = torch.quantile(x_clone.reshape(-1), pct)
        except RuntimeError:
            new_delta = torch.tensor(np.percentile(x_clone.reshape(-1).cpu(), pct * 100),
                                     dtype=torch.float32)
        x_q = logsqrt2_quantize(x_clone, new_delta, n_bits)
        score = lp_loss_all(x_clone, x_q)
        if score < best_score:
            best_score = score
            delta = new_delta
            chosen = k
    return delta, chosen


def sulq_logk(x: torch.Tensor, k: float) -> torch.Tensor:
    """I&S-ViT ``logk``: ln(x) / ln(k), ln(k) in x's dtype."""
    return torch.log(x) / torch.log(torch.tensor(k, dtype=x.dtype))


def sulq_init(x: torch.Tensor, n_bits: int) -> dict[str, Any]:
    """I&S-ViT ``init_quantization_scale`` + ``quantize``: the chosen bias (returned, as
    the code, as ``torch.tensor(cur_bias)`` — float32), maxv, minv, chosen index."""
    x_clone = x.clone().detach()
    cur_bias = -10
    best_score = 1e10
    maxv = minv = None
    chosen = None
    for k, bias in enumerate(SULQ_BIASES):
        xb = sulq_logk(x_clone + bias, 2)
        mx, mn = torch.max(xb), torch.min(xb)
        delta = (mx - mn) / (2**n_bits - 1)
        x_int = torch.round((xb - mn) / delta)
        x_int = torch.clamp(x_int, 0, 2**n_bits - 1)
        x_float_q = 2 ** torch.round(x_int * delta + mn) - bias
        score = lp_loss_all(x_clone, x_float_q)
        if score < best_score:
            best_score = score
            cur_bias = bias  # type: ignore[assignment]
            maxv, minv = mx, mn
            chosen = k
    return {"delta": torch.tensor(cur_bias), "maxv": maxv, "minv": minv, "chosen": chosen}


def sulq_forward(x: torch.Tensor, st: dict[str, Any], n_bits: int) -> torch.Tensor:
    """I&S-ViT ``LogSqrt2Quantizer.forward`` after init (the code form: Δ = range/2^b,
    clamp to 2^b)."""
    x = x + st["delta"]
    x = sulq_logk(x, 2)
    delta = (st["maxv"] - st["minv"]) / (2**n_bits)
    x_int = torch.round((x - st["minv"]) / delta)
    x_int = torch.clamp(x_int, 0, 2**n_bits)
    x_float_q = 2 ** torch.round(x_int * delta + st["minv"])
    return x_float_q - st["delta"]


def uniform_forward(x: torch.Tensor, delta: torch.Tensor, zero_point: torch.Tensor,
                    n_bits: int) -> torch.Tensor:
    """``UniformQuantizer.forward`` after init (RepQ-ViT 48-53; I&S-ViT 55-60)."""
    x_int = torch.round(x / delta) + zero_point
    x_quant = torch.clamp(x_int, 0, 2**n_bits - 1)
    return (x_quant - zero_point) * delta
