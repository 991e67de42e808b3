"""``softmax(x, params, variant=...)``: one entry point over the softmax variants of the
registry (:mod:`refq.ops.registry`; ``refq kernels softmax`` lists them): ``refq``
(:mod:`~refq.ops.softmax_refq`), ``ibert`` and ``lis`` (:mod:`~refq.ops.softmax_ibert`),
``shiftmax`` and ``shiftmax_deploy`` (:mod:`~refq.ops.softmax_shift`), ``tflite``
(:mod:`~refq.ops.softmax_tflite`), ``hls4ml_stable``, ``hls4ml_latency`` and ``hls4ml_legacy``
(:mod:`~refq.ops.softmax_hls4ml`), and any variant declared later.
"""

from __future__ import annotations

from typing import Any, Literal

from refq.intmath import IntArray
from refq.ops.registry import find, names
from refq.ops.softmax_ibert import IBertSoftmaxParams, LisParams
from refq.ops.softmax_refq import RefqSoftmaxParams
from refq.ops.softmax_shift import ShiftmaxParams
from refq.ops.softmax_tflite import TfliteSoftmaxParams

SoftmaxVariant = Literal[
    "refq", "ibert", "shiftmax", "shiftmax_deploy", "tflite", "lis", "hls4ml_stable",
    "hls4ml_latency", "hls4ml_legacy",
]
"""The built-in softmax variant names, for type checkers (a test keeps it equal to the
registry's built-in softmax variants; :data:`SOFTMAX_VARIANTS` is the live list)."""
SoftmaxParams = (
    RefqSoftmaxParams | IBertSoftmaxParams | ShiftmaxParams | TfliteSoftmaxParams | LisParams
)


def softmax(x: Any, params: Any, variant: str = "refq") -> IntArray:
    """Integer softmax along the last axis by ``variant``; ``params`` must be its type."""
    return find("softmax", variant)(x, params)


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "SOFTMAX_VARIANTS":  # derived from the registry on every access
        return names("softmax")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "SOFTMAX_VARIANTS",  # noqa: F822 (module __getattr__: derived from the registry)
    "SoftmaxParams",
    "SoftmaxVariant",
    "softmax",
]
