"""FQ-ViT Power-of-Two Factor (PTF) α search for LayerNorm inputs (Lin et al., IJCAI 2022;
github.com/megvii-research/FQ-ViT).

Layer-wise range [min, max] over all channels (x's channel axis last by default):
s8 = max((max - min)/(2^b - 1), 1e-8) (FQ-ViT: its eps guard), one shared zero point
z = round(-min/s8) (FQ-ViT: qmin - round(min/s8) with qmin = 0), clamped to [0, 2^b-1] as
the code does. Each channel c takes α_c ∈ {0, 1, 2, 3} (the factor set; ``max_alpha``)
minimizing the MSE of (clamp(round(x_c/(s8/2^K·2^α)) + z, 0, 2^b-1) - z)·s8/2^K·2^α
against x_c, K = max_alpha (so scale_c = (s8/8)·2^α_c for K = 3); the smallest α wins on
ties. Round = half to even (torch.round).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import as_float, channels_first, check_bits, first_argmin
from refq.calib.search_ias import asym_fake_quant
from refq.errors import SpecError
from refq.quant.ptf import PowerOfTwoFactorQuantizer


def ptf_search(
    x: npt.ArrayLike, bits: int = 8, axis: int = -1, max_alpha: int = 3
) -> dict[str, Any]:
    """The PTF search in plain numbers: ``base_scale`` (s8/2^K), ``zero_point``, ``alpha``
    (list per channel), ``mse_by_alpha`` (per α, mean over channels weighted by count),
    ``mse`` (of the chosen factors), ``mse_layerwise`` (α = K for all: plain s8)."""
    a = as_float(x)
    b = check_bits(bits)
    if not isinstance(max_alpha, int) or not 0 <= max_alpha <= 8:
        raise SpecError(f"max_alpha must be an int in 0..8, got {max_alpha!r}")
    rows = channels_first(a, axis)  # (C, n)
    lo, hi = float(rows.min()), float(rows.max())
    s8 = max((hi - lo) / (2.0**b - 1), 1e-8)
    z = float(np.clip(np.rint(-lo / s8), 0, 2**b - 1))
    base = s8 / 2**max_alpha
    table = np.empty((max_alpha + 1, rows.shape[0]))
    for al in range(max_alpha + 1):
        e = asym_fake_quant(rows, base * 2**al, z, b) - rows
        table[al] = np.mean(e * e, axis=1)
    alpha = [first_argmin(table[:, c]) for c in range(rows.shape[0])]
    chosen = np.array([table[alpha[c], c] for c in range(rows.shape[0])])
    return {
        "bits": b, "axis": axis, "max_alpha": max_alpha, "base_scale": base,
        "layer_scale": s8, "zero_point": int(z), "alpha": alpha,
        "mse": float(np.mean(chosen)), "mse_layerwise": float(np.mean(table[max_alpha])),
        "mse_by_alpha": [float(np.mean(t)) for t in table],
    }




def ptf_alpha_search(
    x: npt.ArrayLike, bits: int = 8, axis: int = -1, max_alpha: int = 3
) -> tuple[PowerOfTwoFactorQuantizer, dict[str, Any]]:
    """FQ-ViT PTF: the fitted PowerOfTwoFactorQuantizer (channel axis ``axis``) and the
    record of :func:`ptf_search`."""
    rec = ptf_search(x, bits, axis, max_alpha)
    q = PowerOfTwoFactorQuantizer(rec["base_scale"], rec["bits"],
                                  np.array(rec["alpha"], dtype=np.int64), rec["zero_point"],
                                  axis=axis, max_alpha=max_alpha)
    return q, rec


__all__ = ["ptf_alpha_search", "ptf_search"]
