"""refq.ops — integer ViT kernels: pure functions of integer arrays and integer parameters.

Float-free (tests/ops/test_no_float.py scans this package). Real → integer parameter
derivation lives in :mod:`refq.params`. Every kernel variant is declared once, next to its
function, in the variant registry (:mod:`refq.ops.registry`: :func:`declare`,
:func:`lookup`, :func:`variants`); the dispatchers and ``*_VARIANTS`` below derive from it.
``refq kernels`` and docs/kernels.md list every variant.
"""

from refq.ops._common import Params
from refq.ops.add import AddParams, add, add_ivit, add_shared_shift
from refq.ops.gelu import (
    GeluLutParams,
    IBertGeluParams,
    ShiftGeluParams,
    gelu,
    gelu_ibert,
    gelu_lut,
    gelu_shiftgelu,
)
from refq.ops.layernorm import (
    LayerNormParams,
    layernorm,
    layernorm_ibert,
    layernorm_ivit,
    layernorm_refq,
)
from refq.ops.layernorm_hls4ml import Hls4mlLayerNormParams, layernorm_hls4ml
from refq.ops.linear import GemmParams, LinearParams, MatmulParams, linear, matmul
from refq.ops.registry import (
    Ref,
    RoundingStep,
    Variant,
    Width,
    declare,
    families,
    find,
    lookup,
    names,
    unregister,
    variants,
)
from refq.ops.requantize import RequantParams, requantize, requantize_dyadic, requantize_tflite
from refq.ops.requantize_apfixed import ApFixedRequantParams, requantize_apfixed
from refq.ops.requantize_double_up import requantize_double_up
from refq.ops.requantize_fp32 import requantize_fp32, requantize_fp32_zp
from refq.ops.requantize_fp64 import requantize_fp64
from refq.ops.softmax import softmax
from refq.ops.softmax_hls4ml import (
    Hls4mlSoftmaxParams,
    softmax_hls4ml_latency,
    softmax_hls4ml_legacy,
    softmax_hls4ml_stable,
)
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

_DERIVED = {
    "ADD_VARIANTS": "add",
    "GELU_VARIANTS": "gelu",
    "LAYERNORM_VARIANTS": "layernorm",
    "REQUANTIZE_VARIANTS": "requantize",
    "SOFTMAX_VARIANTS": "softmax",
}


def __getattr__(name: str) -> tuple[str, ...]:
    """``<FAMILY>_VARIANTS``: the family's variant names, read from the registry on every
    access (so a variant declared later is listed too)."""
    if name in _DERIVED:
        return names(_DERIVED[name])
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADD_VARIANTS",
    "GELU_VARIANTS",
    "LAYERNORM_VARIANTS",
    "REQUANTIZE_VARIANTS",
    "SOFTMAX_VARIANTS",
    "AddParams",
    "ApFixedRequantParams",
    "GeluLutParams",
    "GemmParams",
    "Hls4mlLayerNormParams",
    "Hls4mlSoftmaxParams",
    "IBertGeluParams",
    "IBertSoftmaxParams",
    "IExpParams",
    "LayerNormParams",
    "LinearParams",
    "LisParams",
    "MatmulParams",
    "Params",
    "Ref",
    "RefqSoftmaxParams",
    "RequantParams",
    "RoundingStep",
    "ShiftGeluParams",
    "ShiftmaxParams",
    "TfliteSoftmaxParams",
    "Variant",
    "Width",
    "add",
    "add_ivit",
    "add_shared_shift",
    "declare",
    "families",
    "find",
    "gelu",
    "gelu_ibert",
    "gelu_lut",
    "gelu_shiftgelu",
    "layernorm",
    "layernorm_hls4ml",
    "layernorm_ibert",
    "layernorm_ivit",
    "layernorm_refq",
    "linear",
    "lookup",
    "matmul",
    "names",
    "requantize",
    "requantize_apfixed",
    "requantize_double_up",
    "requantize_dyadic",
    "requantize_fp32",
    "requantize_fp32_zp",
    "requantize_fp64",
    "requantize_tflite",
    "softmax",
    "softmax_hls4ml_latency",
    "softmax_hls4ml_legacy",
    "softmax_hls4ml_stable",
    "softmax_ibert",
    "softmax_lis",
    "softmax_refq",
    "softmax_shiftmax",
    "softmax_shiftmax_deploy",
    "softmax_tflite",
    "unregister",
    "variants",
]
