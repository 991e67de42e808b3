"""``softmax(x, params, variant=...)``: one entry point over the named softmax variants.

=================  ==========================  ==================================
variant            params                      source
=================  ==========================  ==================================
``refq``           RefqSoftmaxParams           refq default (softmax_refq)
``ibert``          IBertSoftmaxParams          I-BERT IntSoftmax
``shiftmax``       ShiftmaxParams              I-ViT Shiftmax, training code
``shiftmax_deploy``ShiftmaxParams              I-ViT Shiftmax, TVM code
``tflite``         TfliteSoftmaxParams         TFLite / CMSIS-NN int8
``lis``            LisParams                   FQ-ViT log-int softmax (uint4 log2)
=================  ==========================  ==================================
"""

from __future__ import annotations

from typing import Any, Literal

from refq.errors import SpecError
from refq.intmath import IntArray
from refq.ops.softmax_ibert import IBertSoftmaxParams, LisParams, softmax_ibert, softmax_lis
from refq.ops.softmax_refq import RefqSoftmaxParams, softmax_refq
from refq.ops.softmax_shift import ShiftmaxParams, softmax_shiftmax, softmax_shiftmax_deploy
from refq.ops.softmax_tflite import TfliteSoftmaxParams, softmax_tflite

SoftmaxVariant = Literal["refq", "ibert", "shiftmax", "shiftmax_deploy", "tflite", "lis"]
SOFTMAX_VARIANTS: tuple[str, ...] = (
    "refq", "ibert", "shiftmax", "shiftmax_deploy", "tflite", "lis"
)
SoftmaxParams = (
    RefqSoftmaxParams | IBertSoftmaxParams | ShiftmaxParams | TfliteSoftmaxParams | LisParams
)

_TABLE: dict[str, tuple[type, Any]] = {
    "refq": (RefqSoftmaxParams, softmax_refq),
    "ibert": (IBertSoftmaxParams, softmax_ibert),
    "shiftmax": (ShiftmaxParams, softmax_shiftmax),
    "shiftmax_deploy": (ShiftmaxParams, softmax_shiftmax_deploy),
    "tflite": (TfliteSoftmaxParams, softmax_tflite),
    "lis": (LisParams, softmax_lis),
}


def softmax(x: Any, params: SoftmaxParams, variant: SoftmaxVariant = "refq") -> IntArray:
    """Integer softmax along the last axis by ``variant``; ``params`` must match it."""
    if variant not in _TABLE:
        raise SpecError(f"softmax: unknown variant {variant!r}; expected one of {SOFTMAX_VARIANTS}")
    ptype, fn = _TABLE[variant]
    if type(params) is not ptype:
        raise SpecError(
            f"softmax: variant {variant!r} needs {ptype.__name__}, got {type(params).__name__}"
        )
    out: IntArray = fn(x, params)
    return out


__all__ = ["SOFTMAX_VARIANTS", "SoftmaxParams", "SoftmaxVariant", "softmax"]
