"""The official quantizer forwards, re-typed in torch from the published sources (test
oracles; needs torch). Each function was written here from a reading of the cited file at
the cited commit — re-typed, not copied — keeping the official order of operations, the
official dtypes (the caller picks float64 or float32 tensors) and the official kind of each
operand (a Python number or a tensor), because the arithmetic depends on it:

- ``sdiv(t, b)`` stands for a division ``t / b`` by a Python number in the source. ``NATIVE``
  runs it as written on the tensor's device (CPU: the correctly rounded quotient; CUDA: the
  reciprocal product of aten/src/ATen/native/cuda/BinaryDivTrueKernel.cu).
  ``CUDA_RULE`` computes, on any device, what that CUDA kernel computes for a CPU-scalar
  divisor: ``t * (1 / fl(b))`` with the reciprocal in the tensor's dtype.
- ``log2`` / ``log`` are torch's unless the caller passes others (:func:`cr_log2` /
  :func:`cr_log`, correctly rounded through mpmath: torch's are within 1 ulp, not exact).

Sources (commit):
- PTQ4ViT  github.com/hahnyuan/PTQ4ViT           b42c790c2811e7835d435a9f9a6c64a079a7483a
- I&S-ViT  github.com/zysxmu/IaS-ViT             9300cea8db6292d9d3d6727321c7f1100360e191
- RepQ-ViT github.com/zkkli/RepQ-ViT             a160561b9233945e6680132f129d13041b787318
- FQ-ViT   github.com/megvii-research/FQ-ViT     5daf5915c715dc21d6afcd64e661652030e640ab
"""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

import mpmath
import numpy as np
import torch

Tensor = torch.Tensor
SDiv = Callable[[Tensor, float], Tensor]
LogFn = Callable[[Tensor], Tensor]


def NATIVE(t: Tensor, b: float) -> Tensor:
    return t / b


def CUDA_RULE(t: Tensor, b: float) -> Tensor:
    one = torch.tensor(1.0, dtype=t.dtype)
    return t * (one / torch.tensor(b, dtype=t.dtype)).to(t.device)


def _cr(t: Tensor, f: Callable[[Any], Any]) -> Tensor:
    """Correctly rounded f element-wise (mpmath at 200 bits, then rounded once to the
    tensor's precision; exact powers handled by mpmath exactly)."""
    bits = 24 if t.dtype == torch.float32 else 53
    out = []
    for v in t.detach().cpu().double().reshape(-1).tolist():
        if v < 0 or math.isnan(v):
            out.append(math.nan)
        elif v == 0:
            out.append(-math.inf)
        elif math.isinf(v):
            out.append(math.inf)
        else:
            with mpmath.workprec(200):
                r = f(mpmath.mpf(v))
            with mpmath.workprec(bits):
                out.append(float(+r))
    return torch.tensor(out, dtype=t.dtype, device=t.device).reshape(t.shape)


def cr_log2(t: Tensor) -> Tensor:
    return _cr(t, lambda v: mpmath.log(v, 2))


def cr_log(t: Tensor) -> Tensor:
    return _cr(t, mpmath.log)


# --------------------------------------------------------------------------- PTQ4ViT


def ptq4vit_twin_softmax(x: Tensor, split: float, a_bit: int, sdiv: SDiv = NATIVE
                         ) -> tuple[Tensor, Tensor, Tensor]:
    """PTQ4ViT quant_layers/matmul.py, ``SoSPTQSLBatchingQuantMatMul.quant_input_A`` (same
    body in ``SoSPTQSLQuantMatMul``): returns (high code, low code, value). ``split`` is held
    as a tensor of x's dtype (it comes from the candidate tensor 2^-i); A_interval =
    split/(A_qmax-1) with a Python-int divisor."""
    qmax = 2 ** (a_bit - 1)
    s = torch.tensor(split, dtype=x.dtype, device=x.device)
    a_interval = sdiv(s, qmax - 1)
    q_high = (x.clamp(s, 1) * (qmax - 1)).round_().clamp_(0, qmax - 1)
    x_high = sdiv(q_high, qmax - 1)
    q_low = (x.clamp(0, s) / a_interval).round_().clamp_(0, qmax - 1)
    x_low = q_low * a_interval
    return q_high, q_low, x_high + x_low


GELU_NEG = 0.16997124254703522


def ptq4vit_twin_gelu(x: Tensor, a_interval: float, a_bit: int, sdiv: SDiv = NATIVE,
                      a_neg_interval: float | None = None) -> tuple[Tensor, Tensor, Tensor]:
    """PTQ4ViT quant_layers/linear.py, ``PostGeluPTQSLBatchingQuantLinear.quant_input``
    (n_a = 1): a_interval is a tensor, a_neg_interval = 0.16997124254703522/a_qmax a Python
    float. Returns (positive code, negative code, value)."""
    qmax = 2 ** (a_bit - 1)
    neg = GELU_NEG / qmax if a_neg_interval is None else a_neg_interval
    ai = torch.tensor(a_interval, dtype=x.dtype, device=x.device)
    q_pos = (x / ai).round_().clamp_(0, qmax - 1)
    x_pos = q_pos.clone().mul_(ai)
    q_neg = sdiv(x, neg).round_().clamp_(-qmax, 0)
    x_neg = q_neg.clone().mul_(neg)
    return q_pos, q_neg, x_pos + x_neg


def ptq4vit_uniform(x: Tensor, interval: Tensor, bit: int) -> tuple[Tensor, Tensor]:
    """PTQ4ViT quant_layers/linear.py ``PTQSLQuantLinear.quant_weight_bias`` /
    ``MinMaxQuantLinear.quant_input``: (x/interval).round().clamp(-qmax, qmax-1)·interval,
    interval a tensor. Returns (code, value)."""
    qmax = 2 ** (bit - 1)
    q = (x / interval).round_().clamp_(-qmax, qmax - 1)
    return q, q.clone().mul_(interval)


# --------------------------------------------------------------------------- I&S-ViT / RepQ-ViT


def ias_uniform(x: Tensor, delta: Tensor, zero_point: Tensor, n_bits: int
                ) -> tuple[Tensor, Tensor]:
    """I&S-ViT quant/quantizer.py ``UniformQuantizer.forward`` (identical in RepQ-ViT
    classification/quant/quantizer.py): round(x/Δ) + z, clamp(0, 2^b-1), (q - z)·Δ."""
    x_int = torch.round(x / delta) + zero_point
    x_quant = torch.clamp(x_int, 0, 2**n_bits - 1)
    return x_quant, (x_quant - zero_point) * delta


def ias_logk(x: Tensor, log: LogFn = torch.log, sdiv_t: Callable[[Tensor, Tensor], Tensor]
             | None = None) -> Tensor:
    """I&S-ViT ``LogSqrt2Quantizer.logk(x, 2)``: log(x) / log(tensor(2, x.dtype)); the
    divisor is a 0-dim CPU tensor (a CPU scalar to a CUDA kernel)."""
    two = torch.tensor(2, dtype=x.dtype)
    ln2 = torch.log(two)
    nat = log(x)
    if sdiv_t is not None:
        return sdiv_t(nat, ln2)
    return nat / ln2  # a 0-dim CPU tensor, as in the source


def ias_sulq_forward(x: Tensor, eta: float, minv: Tensor, maxv: Tensor, n_bits: int,
                     log: LogFn = torch.log, sdiv: SDiv = NATIVE
                     ) -> tuple[Tensor, Tensor]:
    """I&S-ViT quant/quantizer.py ``LogSqrt2Quantizer.forward`` after init: η is the
    tensor ``torch.tensor(cur_bias)`` (held here in x's dtype: float32 as in the source, or
    float64 for a float64 run), Δ = (maxv - minv)/2^b, clamp to [0, 2^b].
    Returns (code, value)."""
    n_levels = 2**n_bits
    d = torch.tensor(eta, dtype=x.dtype, device=x.device)
    y = ias_logk(x + d, log, _tensor_rule(sdiv))
    delta = sdiv(maxv - minv, n_levels)
    x_int = torch.round((y - minv) / delta)
    x_int = torch.clamp(x_int, 0, n_levels)
    x_float_q = 2 ** torch.round(x_int * delta + minv)
    return x_int, x_float_q - d


def ias_sulq_init(x: Tensor, bias: float, n_bits: int, log: LogFn = torch.log,
                  sdiv: SDiv = NATIVE, minv: Tensor | None = None,
                  maxv: Tensor | None = None) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """I&S-ViT ``LogSqrt2Quantizer.quantize(x, bias)`` (the η search of the init): bias a
    Python float, Δ = (max - min)/(2^b - 1), clamp to [0, 2^b - 1]. ``minv``/``maxv`` default
    to the data's (as in the source). Returns (code, value, minv, maxv)."""
    n_levels = 2**n_bits
    y = ias_logk(x + bias, log, _tensor_rule(sdiv))
    maxv = torch.max(y) if maxv is None else maxv
    minv = torch.min(y) if minv is None else minv
    delta = sdiv(maxv - minv, n_levels - 1)
    x_int = torch.round((y - minv) / delta)
    x_int = torch.clamp(x_int, 0, n_levels - 1)
    x_float_q = 2 ** torch.round(x_int * delta + minv)
    return x_int, x_float_q - bias, minv, maxv


def _tensor_rule(sdiv: SDiv) -> Callable[[Tensor, Tensor], Tensor] | None:
    if sdiv is CUDA_RULE:
        return lambda a, b: a * (torch.tensor(1.0, dtype=b.dtype) / b).to(a.device)
    return None


def repq_log_sqrt2(x: Tensor, delta: Tensor, n_bits: int, log2: LogFn = torch.log2
                   ) -> tuple[Tensor, Tensor, Tensor]:
    """RepQ-ViT classification/quant/quantizer.py ``LogSqrt2Quantizer.quantize``:
    round(-1·log2(x/Δ)·2), mask ≥ 2^b, clamp, 2^(-⌈q/2⌉)·((q%2)(√2-1)+1)·Δ, masked to 0.
    Returns (clamped exponent, mask, value)."""
    n_levels = 2**n_bits
    x_int = torch.round(-1 * log2(x / delta) * 2)
    mask = x_int >= n_levels
    x_quant = torch.clamp(x_int, 0, n_levels - 1)
    odd_mask = (x_quant % 2) * (math.sqrt(2) - 1) + 1
    x_float_q = 2 ** (-1 * torch.ceil(x_quant / 2)) * odd_mask * delta
    x_float_q[mask] = 0
    return x_quant, mask, x_float_q


# --------------------------------------------------------------------------- FQ-ViT


def fqvit_uniform(x: Tensor, scale: Tensor, zero_point: Tensor, lower: int, upper: int
                  ) -> tuple[Tensor, Tensor]:
    """FQ-ViT models/ptq/quantizer/uniform.py ``UniformQuantizer.quant`` + ``dequantize``
    (also PTF's, whose per-channel scale is scale1·2^α): (x/scale + zp).round().clamp,
    then (q - zp)·scale. Returns (code, value)."""
    q = (x / scale + zero_point).round().clamp(lower, upper)
    return q, (q - zero_point) * scale


def fqvit_log2(x: Tensor, bits: int, log2: LogFn = torch.log2) -> tuple[Tensor, Tensor, Tensor]:
    """FQ-ViT models/ptq/quantizer/log2.py ``Log2Quantizer.quant`` + ``dequantize``:
    round(-1·log2 x), mask ≥ 2^b, clamp(0, 2^b-1), 2^(-q) masked to 0.
    Returns (code, mask, value)."""
    rounds = torch.round(-1 * log2(x))
    mask = rounds >= 2**bits
    q = torch.clamp(rounds, 0, 2**bits - 1)
    out = 2 ** (-1 * q)
    out[mask] = 0
    return q, mask, out


def as_np(t: Tensor) -> np.ndarray:  # type: ignore[type-arg]
    return t.detach().cpu().double().numpy()
