"""FQ-ViT's observers, quantizers and log-int softmax, re-typed in torch.

Source (read, then re-typed): github.com/megvii-research/FQ-ViT at 5daf591:
``models/ptq/bit_type.py`` 7-40 (bounds), ``models/ptq/observer/base.py`` 13-28 (eps,
``reshape_tensor``), ``observer/minmax.py`` 14-51 (``update``,
``get_quantization_params``), ``observer/ptf.py`` 14-64, ``observer/utils.py`` 2-9
(``lp_loss``), ``quantizer/uniform.py`` 19-39 (``quant``, ``dequantize``), ``layers.py``
237-288 (``QIntSoftmax.log_round``, ``int_softmax``, ``forward``), ``config.py`` 6-43.
"""

from __future__ import annotations

from typing import Any

import torch

EPS = torch.finfo(torch.float32).eps


def bounds(bits: int, signed: bool) -> tuple[int, int]:
    """``BitType.lower_bound``, ``upper_bound``."""
    if signed:
        return -(2 ** (bits - 1)), 2 ** (bits - 1) - 1
    return 0, 2**bits - 1


def reshape_tensor(v: torch.Tensor, module_type: str) -> torch.Tensor:
    """``BaseObserver.reshape_tensor``."""
    v = v.detach()
    if module_type in ("conv_weight", "linear_weight"):
        return v.reshape(v.shape[0], -1)
    if v.dim() == 4:
        v = v.permute(0, 2, 3, 1)
    return v.reshape(-1, v.shape[-1]).transpose(0, 1)


class MinmaxObserver:
    """``MinmaxObserver`` (symmetric iff the bit type is signed)."""

    def __init__(self, module_type: str, bits: int, signed: bool, mode: str) -> None:
        self.module_type, self.bits, self.signed, self.mode = module_type, bits, signed, mode
        self.max_val: Any = None
        self.min_val: Any = None

    def update(self, v: torch.Tensor) -> None:
        v = reshape_tensor(v, self.module_type)
        cur_max = v.max(axis=1).values
        self.max_val = cur_max if self.max_val is None else torch.max(cur_max, self.max_val)
        cur_min = v.min(axis=1).values
        self.min_val = cur_min if self.min_val is None else torch.min(cur_min, self.min_val)
        if self.mode == "layer_wise":
            self.max_val = self.max_val.max()
            self.min_val = self.min_val.min()

    def params(self) -> tuple[torch.Tensor, torch.Tensor]:
        qmin, qmax = bounds(self.bits, self.signed)
        max_val, min_val = self.max_val, self.min_val
        if self.signed:
            max_val = torch.max(-min_val, max_val)
            scale = max_val / (float(qmax - qmin) / 2)
            scale.clamp_(EPS)
            zero_point = torch.zeros_like(max_val, dtype=torch.int64)
        else:
            scale = (max_val - min_val) / float(qmax - qmin)
            scale.clamp_(EPS)
            zero_point = qmin - torch.round(min_val / scale)
            zero_point.clamp_(qmin, qmax)
        return scale, zero_point


class PtfObserver(MinmaxObserver):
    """``PtfObserver``: range over every batch, α on ``inputs`` (the last batch)."""

    def params_ptf(self, inputs: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, list[int]]:
        qmin, qmax = bounds(self.bits, False)
        max_val_t, min_val_t = self.max_val.max(), self.min_val.min()
        scale8 = (max_val_t - min_val_t) / float(qmax - qmin)
        scale8.clamp_(EPS)
        scale4 = scale8 / 2
        scale2 = scale4 / 2
        scale1 = scale2 / 2
        zero_point = qmin - torch.round(min_val_t / scale8)
        zero_point.clamp_(qmin, qmax)
        scale_mask = torch.ones_like(self.max_val)
        alphas = []
        for j in range(inputs.shape[2]):
            data = inputs[..., j].unsqueeze(-1)
            score = []
            for s in (scale1, scale2, scale4, scale8):
                data_q = ((data / s + zero_point).round().clamp(qmin, qmax) - zero_point) * s
                score.append((data - data_q).abs().pow(2.0).mean())
            k = score.index(min(score))
            alphas.append(k)
            scale_mask[j] *= 2**k
        return scale1 * scale_mask, zero_point, alphas


def uniform_fake_quant(x: torch.Tensor, scale: torch.Tensor, zero_point: torch.Tensor,
                       bits: int, signed: bool) -> torch.Tensor:
    """``UniformQuantizer.quant`` then ``dequantize`` (the zero point is added before
    rounding); ``scale`` / ``zero_point`` already shaped for broadcasting."""
    qmin, qmax = bounds(bits, signed)
    out = (x / scale + zero_point).round().clamp(qmin, qmax)
    return (out - zero_point) * scale


def log_round(x: torch.Tensor) -> torch.Tensor:
    big = x.log2().floor()
    extra_mask = (x - 2**big) >= 2 ** (big - 1)
    big[extra_mask] = big[extra_mask] + 1
    return big


def int_softmax(x: torch.Tensor, scaling_factor: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    def int_polynomial(x_int: torch.Tensor, sf: torch.Tensor) -> torch.Tensor:
        coef = [0.35815147, 0.96963238, 1.0]
        coef[1] /= coef[0]
        coef[2] /= coef[0]
        b_int = torch.floor(coef[1] / sf)
        c_int = torch.floor(coef[2] / sf**2)
        z = x_int + b_int
        z = x_int * z
        return z + c_int

    def int_exp(x_int: torch.Tensor, sf: torch.Tensor) -> torch.Tensor:
        x0 = -0.6931
        n = 30
        x0_int = torch.floor(x0 / sf)
        x_int = torch.max(x_int, n * x0_int)
        q = torch.floor(x_int / x0_int)
        r = x_int - x0_int * q
        exp_int = int_polynomial(r, sf)
        return torch.clamp(torch.floor(exp_int * 2 ** (n - q)), min=0)

    x_int = x / scaling_factor
    x_int_max, _ = x_int.max(dim=-1, keepdim=True)
    x_int = x_int - x_int_max
    exp_int = int_exp(x_int, scaling_factor)
    return exp_int, exp_int.sum(dim=-1, keepdim=True)


def log_int_softmax(x: torch.Tensor, scale: torch.Tensor, bits: int = 4) -> torch.Tensor:
    """``QIntSoftmax.forward`` with ``log_i_softmax`` and a scale (the quantized path)."""
    exp_int, exp_int_sum = int_softmax(x, scale)
    softmax_out = torch.round(exp_int_sum / exp_int)
    rounds = log_round(softmax_out)
    mask = rounds >= 2**bits
    qlog = torch.clamp(rounds, 0, 2**bits - 1)
    deq_softmax = 2 ** (-qlog)
    deq_softmax[mask] = 0
    return deq_softmax
