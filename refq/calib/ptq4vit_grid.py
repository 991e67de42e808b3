"""PTQ4ViT's candidate grid and base quantizer forms (Yuan et al., ECCV 2022;
github.com/hahnyuan/PTQ4ViT), shared by the linear / matmul searches
(:mod:`refq.calib.search_ptq4vit`) and the twin-uniform searches
(:mod:`refq.calib.search_twin`).

Base quantizer: signed symmetric uniform, x̂ = clamp(round(x/Δ), -2^(b-1), 2^(b-1)-1)·Δ,
round = half to even (torch.round). Start Δ0 = max|x| / (2^(b-1) - 0.5). Candidates
Δ_i = (α + i(β-α)/n)·Δ0, i = 0..n-1 (the code builds n+1 values but scans only the first
n), α = 0.01, β = 1.2, n = 100, the multipliers in float32 (the code's ``torch.tensor``).
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, check_bits
from refq.calib.observers import absmax
from refq.errors import SpecError

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

    The multipliers are computed as α + i·(β-α)/n in Python floats and then ROUNDED TO
    FLOAT32, as the official code's ``torch.tensor([...])`` (torch's default dtype) does
    (e.g. ``quant_layers/linear.py`` ``calibration_step2``), whatever the dtype of Δ0; each
    candidate is that float32 multiplier times Δ0, one float64 rounding.
    """
    if not isinstance(n, int) or n < 1:
        raise SpecError(f"n must be a positive int, got {n!r}")
    if not 0 < alpha < beta:
        raise SpecError(f"need 0 < alpha < beta, got alpha={alpha}, beta={beta}")
    d0 = as_float(delta0, "delta0")
    mult = np.array([alpha + i * (beta - alpha) / n for i in range(n)],
                    dtype=np.float32).astype(np.float64)
    out: FloatArray = mult.reshape((n,) + (1,) * d0.ndim) * d0
    return out


def symmetric_delta0(x: npt.ArrayLike, bits: int, axis: int | None = None) -> FloatArray:
    """Δ0 = max|x| / (2^(b-1) - 0.5), per tensor (0-d) or per channel of ``axis`` ((C,))."""
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


__all__ = ["ALPHA", "BETA", "GELU_NEG_RANGE", "N_CANDIDATES", "ROUNDS", "gelu_twin_fake_quant",
           "ptq4vit_candidates", "sym_fake_quant", "symmetric_delta0"]
