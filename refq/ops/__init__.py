"""refq.ops — integer ViT kernels: pure functions of integer arrays and integer parameters.

Float-free (tests/ops/test_no_float.py scans this package). Real → integer parameter
derivation lives in :mod:`refq.params`. See docs/kernels.md for every variant.
"""

from refq.ops.add import AddParams, add
from refq.ops.gelu import (
    GELU_VARIANTS,
    GeluLutParams,
    IBertGeluParams,
    ShiftGeluParams,
    gelu,
    gelu_ibert,
    gelu_lut,
    gelu_shiftgelu,
)
from refq.ops.layernorm import (
    LAYERNORM_VARIANTS,
    LayerNormParams,
    layernorm,
    layernorm_ibert,
    layernorm_ivit,
    layernorm_refq,
)
from refq.ops.linear import GemmParams, LinearParams, MatmulParams, linear, matmul
from refq.ops.requantize import RequantParams, requantize
from refq.ops.softmax import SOFTMAX_VARIANTS, softmax
from refq.ops.softmax_ibert import (
    IBertSoftmaxParams,
    IExpParams,
    LisParams,
    softmax_ibert,
    softmax_lis,
)
from refq.ops.softmax_refq import RefqSoftmaxParams, softmax_refq
from refq.ops.softmax_shift import ShiftmaxParams, softmax_shiftmax, softmax_shiftmax_deploy
from refq.ops.softmax_tflite import TfliteSoftmaxParams, softmax_tflite

__all__ = [
    "GELU_VARIANTS",
    "LAYERNORM_VARIANTS",
    "SOFTMAX_VARIANTS",
    "AddParams",
    "GeluLutParams",
    "GemmParams",
    "IBertGeluParams",
    "IBertSoftmaxParams",
    "IExpParams",
    "LayerNormParams",
    "LinearParams",
    "LisParams",
    "MatmulParams",
    "RefqSoftmaxParams",
    "RequantParams",
    "ShiftGeluParams",
    "ShiftmaxParams",
    "TfliteSoftmaxParams",
    "add",
    "gelu",
    "gelu_ibert",
    "gelu_lut",
    "gelu_shiftgelu",
    "layernorm",
    "layernorm_ibert",
    "layernorm_ivit",
    "layernorm_refq",
    "linear",
    "matmul",
    "requantize",
    "softmax",
    "softmax_ibert",
    "softmax_lis",
    "softmax_refq",
    "softmax_shiftmax",
    "softmax_shiftmax_deploy",
    "softmax_tflite",
]
