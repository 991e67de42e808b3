"""The integer pixel path: input normalisation folded into the patch embedding.

The patch embedding is linear in its input, so for pixels ``x`` in 0..255 and per-channel
``mean``/``std``::

    W . ((x/255 - mean)/std) + b  =  W' . x + b'
    W'[o, c, i, j] = W[o, c, i, j] / (255 std[c])
    b'[o]          = b[o] - sum_{c,i,j} W[o, c, i, j] mean[c] / std[c]

so golden vectors can start from uint8 pixels (DESIGN.md, numeric contract 6).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from refq.errors import SpecError
from refq.nn.layers import FloatArray


def fold_normalization(
    weight: FloatArray,
    bias: FloatArray,
    mean: Sequence[float],
    std: Sequence[float],
    scale: float = 255.0,
) -> tuple[FloatArray, FloatArray]:
    """Fold ``(x/scale - mean)/std`` into a patch-embedding conv ``weight`` (O, C, p, p) and
    ``bias`` (O,); returns the new (weight, bias) in the dtype of ``weight``.

    Raises SpecError if mean/std do not have one entry per input channel or std has a zero.
    """
    w = np.asarray(weight)
    if w.ndim != 4 or np.shape(bias) != (w.shape[0],):
        raise SpecError(f"fold_normalization: expected weight (O, C, p, p) and bias (O,), got "
                        f"{w.shape} and {np.shape(bias)}")
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if m.shape != (w.shape[1],) or s.shape != (w.shape[1],):
        raise SpecError(f"fold_normalization: mean {m.shape} and std {s.shape} need one entry "
                        f"per input channel ({w.shape[1]})")
    if np.any(s == 0) or scale == 0:
        raise SpecError("fold_normalization: std and scale must be non-zero")
    w64 = w.astype(np.float64)
    w_new = w64 / (scale * s)[None, :, None, None]
    b_new = np.asarray(bias, dtype=np.float64) - np.einsum("ocij,c->o", w64, m / s)
    return w_new.astype(w.dtype), b_new.astype(w.dtype)


__all__ = ["fold_normalization"]
