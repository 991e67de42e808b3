"""refq.quant — quantizers (Contract A): real values -> integer codes -> reconstruction
levels, each with an exact integer form (decision thresholds + levels), JSON-safe
``to_dict``/``from_dict``, and the :class:`QuantSpec` that method recipes produce.

Builds on refq.intmath only. See docs/quantizers.md for every formula and source.
"""

from refq.quant.base import QUANTIZERS, Quantizer, quantizer_from_dict
from refq.quant.log2 import Log2Quantizer
from refq.quant.ptf import PowerOfTwoFactorQuantizer
from refq.quant.spec import QuantSpec
from refq.quant.sulq import ShiftUniformLog2Quantizer
from refq.quant.table import TableQuantizer
from refq.quant.tan import TanQuantizer
from refq.quant.twin import TwinUniformQuantizer
from refq.quant.two_scale import OutlierTwoScaleQuantizer, ValueTwoScaleQuantizer
from refq.quant.uniform import UniformQuantizer

__all__ = [
    "QUANTIZERS",
    "Log2Quantizer",
    "OutlierTwoScaleQuantizer",
    "PowerOfTwoFactorQuantizer",
    "QuantSpec",
    "Quantizer",
    "ShiftUniformLog2Quantizer",
    "TableQuantizer",
    "TanQuantizer",
    "TwinUniformQuantizer",
    "UniformQuantizer",
    "ValueTwoScaleQuantizer",
    "quantizer_from_dict",
]
