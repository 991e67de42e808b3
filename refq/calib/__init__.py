"""refq.calib — calibration: observers, metrics, scale searches, reparameterization.

Float64 NumPy only (no rounding here is part of the integer contract). Searches return
fitted refq.quant quantizers plus a JSON-safe record of what was chosen.
"""

from __future__ import annotations

from refq.calib.metrics import (
    METRICS,
    Metric,
    WeightedMSE,
    cosine,
    cosine_distance,
    get_metric,
    mse,
    restrict,
    weighted_mse,
)
from refq.calib.observers import EMAObserver, absmax, minmax, percentile
from refq.calib.reparam import SCALE_CHOICES, layer_statistic, reparameterize

__all__ = [
    "METRICS",
    "SCALE_CHOICES",
    "EMAObserver",
    "Metric",
    "WeightedMSE",
    "absmax",
    "cosine",
    "cosine_distance",
    "get_metric",
    "layer_statistic",
    "minmax",
    "mse",
    "percentile",
    "reparameterize",
    "restrict",
    "weighted_mse",
]
