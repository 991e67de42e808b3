"""Scale init of the log quantizers (refq.quant.Log2Quantizer, base 2 or √2).

RepQ-ViT (log√2, post-softmax): Δ = quantile(x, p) for p ∈ {0.999, 0.9999, 0.99999}
(linear interpolation), lowest MSE wins, first on ties — the same percentile-MSE protocol as
its uniform quantizer (refq's reading of the public code, which I&S-ViT inherits).
FQ-ViT's LIS (base 2) uses Δ = 1 (the softmax's upper bound): pass ``scale=1.0``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy.typing as npt

from refq.calib._common import as_float, check_bits
from refq.calib.grid import grid_search
from refq.calib.metrics import Metric
from refq.calib.observers import percentile
from refq.calib.quantile import Arith
from refq.calib.search_ias import ACT_PERCENTILES
from refq.errors import SpecError
from refq.quant.log2 import Log2Quantizer


def log2_init(
    x: npt.ArrayLike,
    bits: int,
    *,
    base: str = "sqrt2",
    candidates: Sequence[float] = ACT_PERCENTILES,
    scale: float | None = None,
    zero: str = "extra",
    metric: str | Metric = "mse",
    arith: Arith = "float64",
) -> tuple[Log2Quantizer, dict[str, Any]]:
    """Log2Quantizer(bits, base, Δ, zero) with Δ = quantile(x, p) of the best ``p`` (module
    docstring; torch.quantile's arithmetic in ``arith``, :func:`refq.calib.percentile`),
    or the given ``scale`` (no search). Record: ``scale``, ``p`` (None if fixed),
    ``index``, ``loss``, ``losses``."""
    xa = as_float(x)
    b = check_bits(bits)
    if scale is not None:
        q = Log2Quantizer(b, base, scale, zero)  # type: ignore[arg-type]
        return q, {"scale": float(scale), "p": None, "base": base, "zero": zero}
    deltas = [float(percentile(xa, p, arith=arith)) for p in candidates]
    if any(d <= 0 for d in deltas):
        raise SpecError("log2_init: a percentile of x is <= 0 (log quantizers need x > 0)")
    res = grid_search(xa, lambda d: Log2Quantizer(b, base, d, zero),  # type: ignore[arg-type]
                      deltas, metric=metric)
    rec = res.record()
    rec.update(scale=res.param, p=float(candidates[res.index]), base=base, zero=zero,
               candidates=[float(p) for p in candidates])
    del rec["param"]
    return res.best, rec


__all__ = ["log2_init"]
