"""FQ-ViT Power-of-Two Factor (PTF) α search for LayerNorm inputs (Lin et al., IJCAI 2022;
github.com/megvii-research/FQ-ViT ``models/ptq/observer/ptf.py``).

Layer-wise range [min, max] over all channels (x's channel axis last by default; FQ-ViT
takes it over every calibration batch, see ``lo``/``hi``): s8 = max((max - min)/(2^b -
1), eps) with eps = float32's machine epsilon (FQ-ViT's ``torch.finfo(torch.float32).eps``),
one shared zero point z = clamp(-round(min/s8), 0, 2^b-1). Each channel c takes α_c ∈
{0, 1, 2, 3} (the factor set; ``max_alpha``) minimizing the MSE of

    x̂ = (clamp(round_half_even(x_c / s_α + z), 0, 2^b - 1) - z) · s_α,   s_α = s8/2^K · 2^α

against x_c (the ZERO POINT IS ADDED BEFORE ROUNDING, as FQ-ViT's forward does; K =
max_alpha), the smallest α on ties (``score.index(min(score))``).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import as_float, channels_first, check_bits, first_argmin
from refq.errors import SpecError
from refq.quant.ptf import Mode, PowerOfTwoFactorQuantizer

FQVIT_EPS = float(np.finfo(np.float32).eps)
"""FQ-ViT's scale floor, ``torch.finfo(torch.float32).eps`` = 2^-23."""


def fqvit_fake_quant(x: npt.ArrayLike, s: npt.ArrayLike, z: npt.ArrayLike, qmin: int,
                     qmax: int) -> npt.NDArray[np.float64]:
    """FQ-ViT's ``UniformQuantizer`` forward: (clamp(round_half_even(x/s + z), qmin, qmax)
    - z)·s, the zero point added BEFORE rounding."""
    xa = np.asarray(x, dtype=np.float64)
    sa, za = np.asarray(s, np.float64), np.asarray(z, np.float64)
    out: npt.NDArray[np.float64] = (np.clip(np.rint(xa / sa + za), qmin, qmax) - za) * sa
    return out


def ptf_search(
    x: npt.ArrayLike, bits: int = 8, axis: int = -1, max_alpha: int = 3,
    lo: float | None = None, hi: float | None = None,
) -> dict[str, Any]:
    """The PTF search in plain numbers (module docstring): ``base_scale`` (s8/2^K),
    ``zero_point``, ``alpha`` (list per channel), ``mse_by_alpha`` (per α, mean over
    channels), ``mse`` (of the chosen factors), ``mse_layerwise`` (α = K for all: plain s8).
    ``lo``/``hi``: the layer-wise range if it was observed on more data than ``x`` (FQ-ViT:
    range over every calibration batch, α on the last one); default min/max of ``x``."""
    a = as_float(x)
    b = check_bits(bits)
    if not isinstance(max_alpha, int) or not 0 <= max_alpha <= 8:
        raise SpecError(f"max_alpha must be an int in 0..8, got {max_alpha!r}")
    rows = channels_first(a, axis)  # (C, n)
    lo_f = float(rows.min()) if lo is None else float(lo)
    hi_f = float(rows.max()) if hi is None else float(hi)
    if lo_f > hi_f:
        raise SpecError(f"ptf_search: lo {lo_f} > hi {hi_f}")
    s8 = max((hi_f - lo_f) / float(2**b - 1), FQVIT_EPS)
    z = float(np.clip(-np.rint(lo_f / s8), 0, 2**b - 1))
    base = s8 / 2**max_alpha
    table = np.empty((max_alpha + 1, rows.shape[0]))
    for al in range(max_alpha + 1):
        e = fqvit_fake_quant(rows, base * 2**al, z, 0, 2**b - 1) - rows
        table[al] = np.mean(e * e, axis=1)
    alpha = [first_argmin(table[:, c]) for c in range(rows.shape[0])]
    chosen = np.array([table[alpha[c], c] for c in range(rows.shape[0])])
    return {
        "bits": b, "axis": axis, "max_alpha": max_alpha, "base_scale": base,
        "layer_scale": s8, "zero_point": int(z), "alpha": alpha, "lo": lo_f, "hi": hi_f,
        "mse": float(np.mean(chosen)), "mse_layerwise": float(np.mean(table[max_alpha])),
        "mse_by_alpha": [float(np.mean(t)) for t in table],
    }


def ptf_alpha_search(
    x: npt.ArrayLike, bits: int = 8, axis: int = -1, max_alpha: int = 3,
    lo: float | None = None, hi: float | None = None, mode: Mode = "code",
) -> tuple[PowerOfTwoFactorQuantizer, dict[str, Any]]:
    """FQ-ViT PTF: the fitted PowerOfTwoFactorQuantizer (channel axis ``axis``) and the
    record of :func:`ptf_search`. ``mode`` is the quantizer's forward: "code" (default, the
    zero point added before rounding, as FQ-ViT's forward and the α search) or "paper"
    (``round(x/s) + z``, refq's former choice); the α search is the official one in both."""
    rec = ptf_search(x, bits, axis, max_alpha, lo, hi)
    q = PowerOfTwoFactorQuantizer(rec["base_scale"], rec["bits"],
                                  np.array(rec["alpha"], dtype=np.int64), rec["zero_point"],
                                  axis=axis, max_alpha=max_alpha, mode=mode)
    return q, rec


__all__ = ["FQVIT_EPS", "fqvit_fake_quant", "ptf_alpha_search", "ptf_search"]
