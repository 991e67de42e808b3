"""refq.params — real → integer parameters of the refq.ops kernels (may use floats).

Exact ``fractions.Fraction`` arithmetic from the float value of each real argument; where a
public code computes in float32 the difference is documented in docs/kernels.md.
"""

from refq.params.gelu import gelu_lut_params, ibert_gelu_params, shiftgelu_params
from refq.params.hls4ml import ap_from_float, hls4ml_layernorm_params, hls4ml_softmax_params
from refq.params.layernorm import ibert_bias, layernorm_params, o2sf_channel_shift
from refq.params.requantize import add_params, fp32_multiplier, fp64_multiplier, requant_params
from refq.params.softmax import (
    ibert_softmax_params,
    lis_params,
    refq_softmax_params,
    shiftmax_params,
    tflite_softmax_params,
)

__all__ = [
    "add_params",
    "ap_from_float",
    "fp32_multiplier",
    "fp64_multiplier",
    "gelu_lut_params",
    "hls4ml_layernorm_params",
    "hls4ml_softmax_params",
    "ibert_bias",
    "ibert_gelu_params",
    "ibert_softmax_params",
    "layernorm_params",
    "lis_params",
    "o2sf_channel_shift",
    "refq_softmax_params",
    "requant_params",
    "shiftgelu_params",
    "shiftmax_params",
    "tflite_softmax_params",
]
