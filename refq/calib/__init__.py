"""refq.calib — calibration: observers, metrics, scale searches, reparameterization.

Float64 NumPy only (nothing here is part of the integer contract). Every search returns
fitted refq.quant quantizers (Contract A) plus a JSON-safe record of what was chosen;
every loss is "lower is better" and every tie goes to the FIRST candidate.

Observers    minmax, absmax, percentile (linear interpolation, p a fraction), EMAObserver
Metrics      mse, cosine (similarity), cosine_distance, weighted_mse(weight), restrict
PTQ4ViT      ptq4vit_candidates, ptq4vit_search (linear), ptq4vit_search_matmul,
             twin_split_search, gelu_twin_search
I&S-ViT      percentile_mse_init, sulq_eta_search
RepQ-ViT     log2_init (log√2 / log2 scale), reparameterize, reparameterize_quantizer,
             layer_quantizer, layer_statistic ("mean" | "median" (MOSF) | "mad")
FQ-ViT       ptf_alpha_search
TSPTQ-ViT    o2sf_search, v2sf_search
DopQ-ViT     tanq_shape_search (+ reparameterize(choice="median"))
Generic      grid_search
Submodules   refq.calib.hessian (PTQ4ViT's Hessian metric: policies, sequential mode),
             refq.calib.sos (I&S-ViT's SOS), refq.calib.fakequant (fake-quantized model)
"""

from __future__ import annotations

# the submodule refq.calib.minmax (minmax_spec) is loaded before the minmax observer is
# bound: importing it later would otherwise rebind refq.calib.minmax to the module
import refq.calib.minmax as _minmax_spec_module  # noqa: F401
from refq.calib.grid import GridResult, grid_search
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
    SULQ_ETAS,
    WEIGHT_PERCENTILES,
    percentile_mse_init,
    sulq_eta_search,
)
from refq.calib.search_log import log2_init
from refq.calib.search_ptf import ptf_alpha_search, ptf_search
from refq.calib.search_ptq4vit import ptq4vit_candidates, ptq4vit_search, ptq4vit_search_matmul
from refq.calib.search_tanq import tanq_shape_search
from refq.calib.search_tsptq import o2sf_search, v2sf_search
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
    "SULQ_ETAS",
    "WEIGHT_PERCENTILES",
    "EMAObserver",
    "GridResult",
    "Metric",
    "WeightedMSE",
    "absmax",
    "cosine",
    "cosine_distance",
    "gelu_twin_quantizer",
    "gelu_twin_search",
    "get_metric",
    "grid_search",
    "layer_quantizer",
    "layer_statistic",
    "log2_init",
    "minmax",
    "mse",
    "o2sf_search",
    "percentile",
    "percentile_mse_init",
    "ptf_alpha_search",
    "ptf_search",
    "ptq4vit_candidates",
    "ptq4vit_search",
    "ptq4vit_search_matmul",
    "reparameterize",
    "reparameterize_quantizer",
    "restrict",
    "softmax_twin_quantizer",
    "sulq_eta_search",
    "tanq_shape_search",
    "twin_split_search",
    "v2sf_search",
    "weighted_mse",
]
