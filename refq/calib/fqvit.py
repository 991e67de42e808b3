"""FQ-ViT's min-max observer (megvii-research/FQ-ViT ``models/ptq/observer/minmax.py``,
``bit_type.py``, ``config.py``) as refq quantizers.

Weights (``BIT_TYPE_W = int8``, signed, so symmetric; ``channel_wise``: one row per output
channel, a conv weight flattened per output channel):

    s = max(max|w|, eps) / ((qmax - qmin)/2) = max|w_row| / 127.5 at 8 bits,  z = 0,
    codes clamp(round(w/s), -2^(b-1), 2^(b-1)-1)

(the divisor is (2^b - 1)/2, not 2^(b-1) - 1: FQ-ViT's int8 weights use 127.5).
Activations (``BIT_TYPE_A = uint8``, unsigned, so asymmetric; ``layer_wise``: min and max
over the whole tensor and every calibration batch):

    s = max((max - min)/(2^b - 1), eps),  z = clamp(-round(min/s), 0, 2^b - 1)

eps = float32's machine epsilon (``torch.finfo(torch.float32).eps``); round = half to
even. FQ-ViT's forward adds the zero point BEFORE rounding (``round(x/s + z)``,
``models/ptq/quantizer/uniform.py``): the activation quantizers are built with
``zp_in_round=True`` by default; ``zp_in_round=False`` gives ``round(x/s) + z`` (refq's
former choice). The two agree except on the exact ties x/s = k + ½ with an odd z (and
within an ulp of them). Weights have z = 0, where the two coincide.
"""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from refq.calib._common import as_float, check_bits
from refq.calib.search_ptf import FQVIT_EPS
from refq.quant import UniformQuantizer


def fqvit_weight_quantizer(w: npt.ArrayLike, bits: int) -> UniformQuantizer:
    """Per-output-channel (axis 0) signed symmetric quantizer, s = max|w_row|/((2^b-1)/2)."""
    wa = as_float(w, "weight")
    b = check_bits(bits)
    rows = wa.reshape(wa.shape[0], -1)
    amax = np.maximum(-rows.min(axis=1), rows.max(axis=1))
    s = np.maximum(amax / (float(2**b - 1) / 2), FQVIT_EPS)
    return UniformQuantizer(s, b, 0, signed=True, axis=0, rounding="half_even")


def fqvit_act_params(lo: float, hi: float, bits: int) -> tuple[float, int]:
    """(s, z) of FQ-ViT's unsigned per-tensor activation quantizer of range [lo, hi]."""
    b = check_bits(bits)
    s = max((float(hi) - float(lo)) / float(2**b - 1), FQVIT_EPS)
    z = int(np.clip(-np.rint(float(lo) / s), 0, 2**b - 1))
    return s, z


def fqvit_act_quantizer(lo: float, hi: float, bits: int, *,
                        zp_in_round: bool = True) -> UniformQuantizer:
    """FQ-ViT's unsigned per-tensor activation quantizer of range [lo, hi]; its forward
    ``round(x/s + z)`` (``zp_in_round``, module docstring)."""
    s, z = fqvit_act_params(lo, hi, bits)
    return UniformQuantizer(s, bits, z, signed=False, rounding="half_even",
                            zp_in_round=zp_in_round)


__all__ = ["fqvit_act_params", "fqvit_act_quantizer", "fqvit_weight_quantizer"]
