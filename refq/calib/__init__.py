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
from refq.calib.reparam import (
    SCALE_CHOICES,
    layer_quantizer,
    layer_statistic,
    reparameterize,
    reparameterize_quantizer,
)
from refq.calib.search_ias import (
    ACT_PERCENTILES,
    WEIGHT_PERCENTILES,
    percentile_mse_init,
)
from refq.calib.search_log import log2_init
from refq.calib.search_ptf import ptf_search
from refq.calib.search_ptq4vit import ptq4vit_candidates, ptq4vit_search, ptq4vit_search_matmul
from refq.calib.search_twin import (
    gelu_twin_quantizer,
    gelu_twin_search,
    softmax_twin_quantizer,
    twin_split_search,
)

__all__ = [
    "ACT_PERCENTILES",
    "METRICS",
    "SCALE_CHOICES",
    "WEIGHT_PERCENTILES",
    "EMAObserver",
    "Metric",
    "WeightedMSE",
    "absmax",
    "cosine",
    "cosine_distance",
    "gelu_twin_quantizer",
    "gelu_twin_search",
    "get_metric",
    "layer_quantizer",
    "layer_statistic",
    "log2_init",
    "minmax",
    "mse",
    "percentile",
    "percentile_mse_init",
    "ptf_search",
    "ptq4vit_candidates",
    "ptq4vit_search",
    "ptq4vit_search_matmul",
    "reparameterize",
    "reparameterize_quantizer",
    "restrict",
    "softmax_twin_quantizer",
    "twin_split_search",
    "weighted_mse",
]
