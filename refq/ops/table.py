"""The kernel table: every integer kernel of :mod:`refq.ops` as (op, variant, params type,
named inputs and their formats, output format).

Programs (refq.program), golden kernel cases (refq.golden) and the cross-check suite
(refq.crosscheck) address kernels through this one table by ``op.variant`` key.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq import ops
from refq.errors import SpecError
from refq.intmath import INT32, IntArray, IntFormat
from refq.ops._common import Params


def _u(bits: int) -> IntFormat:
    return IntFormat(bits, False)


def _s(bits: int) -> IntFormat:
    return IntFormat(bits, True)


@dataclass(frozen=True)
class Kernel:
    """One kernel variant: ``fn(*inputs, params) -> y``."""

    op: str
    variant: str
    params_type: type[Params]
    inputs: tuple[str, ...]
    fn: Callable[..., IntArray]
    in_formats: Callable[[Any], tuple[IntFormat, ...]]
    out_format: Callable[[Any], IntFormat]

    @property
    def key(self) -> str:
        return f"{self.op}.{self.variant}"

    def compute(self, inputs: Mapping[str, npt.NDArray[np.integer]], params: Params) -> IntArray:
        return self.fn(*(inputs[n] for n in self.inputs), params)


def _gemm_out(p: ops.GemmParams) -> IntFormat:
    return p.requant.out_format if p.requant is not None else _s(p.acc_bits)


def _linear(x: Any, w: Any, bias: Any, p: ops.GemmParams) -> IntArray:
    return ops.linear(x, w, bias, p)


_TABLE = [
    Kernel(
        "requantize",
        "double",
        ops.RequantParams,
        ("x",),
        ops.requantize,
        lambda p: (INT32,),
        lambda p: p.out_format,
    ),
    Kernel(
        "requantize",
        "single",
        ops.RequantParams,
        ("x",),
        ops.requantize,
        lambda p: (INT32,),
        lambda p: p.out_format,
    ),
    Kernel(
        "requantize",
        "dyadic",
        ops.RequantParams,
        ("x",),
        ops.requantize,
        lambda p: (INT32,),
        lambda p: p.out_format,
    ),
    Kernel(
        "linear",
        "gemm",
        ops.GemmParams,
        ("x", "w", "bias"),
        _linear,
        lambda p: (p.a_format, p.b_format, INT32),
        _gemm_out,
    ),
    Kernel(
        "matmul",
        "gemm",
        ops.GemmParams,
        ("a", "b"),
        ops.matmul,
        lambda p: (p.a_format, p.b_format),
        _gemm_out,
    ),
    Kernel(
        "add",
        "ivit",
        ops.AddParams,
        ("a", "b"),
        ops.add,
        lambda p: (p.a_format, p.b_format),
        lambda p: p.out_format,
    ),
    Kernel(
        "add",
        "shared_shift",
        ops.AddParams,
        ("a", "b"),
        ops.add,
        lambda p: (p.a_format, p.b_format),
        lambda p: p.out_format,
    ),
    Kernel(
        "softmax",
        "refq",
        ops.RefqSoftmaxParams,
        ("x",),
        ops.softmax_refq,
        lambda p: (p.in_format,),
        lambda p: _u(p.out_bits),
    ),
    Kernel(
        "softmax",
        "ibert",
        ops.IBertSoftmaxParams,
        ("x",),
        ops.softmax_ibert,
        lambda p: (p.in_format,),
        lambda p: _u(p.out_bits),
    ),
    Kernel(
        "softmax",
        "shiftmax",
        ops.ShiftmaxParams,
        ("x",),
        ops.softmax_shiftmax,
        lambda p: (p.in_format,),
        lambda p: _u(p.out_bits - 1),
    ),
    Kernel(
        "softmax",
        "shiftmax_deploy",
        ops.ShiftmaxParams,
        ("x",),
        ops.softmax_shiftmax_deploy,
        lambda p: (p.in_format,),
        lambda p: _u(p.out_bits - 1),
    ),
    Kernel(
        "softmax",
        "tflite",
        ops.TfliteSoftmaxParams,
        ("x",),
        ops.softmax_tflite,
        lambda p: (p.in_format,),
        lambda p: p.out_format,
    ),
    Kernel(
        "softmax",
        "lis",
        ops.LisParams,
        ("x",),
        ops.softmax_lis,
        lambda p: (p.in_format,),
        lambda p: _u(p.bits + 1),
    ),
    Kernel(
        "gelu",
        "ibert",
        ops.IBertGeluParams,
        ("x",),
        ops.gelu_ibert,
        lambda p: (p.in_format,),
        lambda p: _s(p.out_bits),
    ),
    Kernel(
        "gelu",
        "shiftgelu",
        ops.ShiftGeluParams,
        ("x",),
        ops.gelu_shiftgelu,
        lambda p: (p.in_format,),
        lambda p: INT32,
    ),
    Kernel(
        "gelu",
        "lut",
        ops.GeluLutParams,
        ("x",),
        ops.gelu_lut,
        lambda p: (p.in_format,),
        lambda p: p.out_format,
    ),
    Kernel(
        "layernorm",
        "refq",
        ops.LayerNormParams,
        ("x",),
        ops.layernorm_refq,
        lambda p: (p.in_format,),
        lambda p: _s(p.out_bits),
    ),
    Kernel(
        "layernorm",
        "ibert",
        ops.LayerNormParams,
        ("x",),
        ops.layernorm_ibert,
        lambda p: (p.in_format,),
        lambda p: _s(p.out_bits),
    ),
    Kernel(
        "layernorm",
        "ivit",
        ops.LayerNormParams,
        ("x",),
        ops.layernorm_ivit,
        lambda p: (p.in_format,),
        lambda p: _s(p.out_bits),
    ),
]
KERNELS: dict[str, Kernel] = {k.key: k for k in _TABLE}


def kernel(key: str) -> Kernel:
    """The kernel of ``op.variant`` key, or SpecError listing the known keys."""
    if key not in KERNELS:
        raise SpecError(f"unknown kernel {key!r}; known: {sorted(KERNELS)}")
    return KERNELS[key]


__all__ = ["KERNELS", "Kernel", "kernel"]
