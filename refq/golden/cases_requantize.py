"""Kernel cases of the requantize variants: int32 accumulator → int8 in the TFLite (double
and single rounding) and dyadic families, with the edge inputs that separate roundings:
exact ties, INT32_MIN/MAX, saturation at both ends of int8, and the largest right shift. The
TFLite cases also carry their parameters as one-element tensors, so a pure-Verilog
testbench can read everything with $readmemh (tools/rtl/tb_requant_golden.v).

:func:`tflite_cases` and :func:`dyadic_cases` are the generators the ``requantize.double``,
``requantize.single`` and ``requantize.dyadic`` declarations point to
(:mod:`refq.golden.cases_kernels`)."""

from __future__ import annotations

from functools import partial
from typing import Literal, cast

import numpy as np
import numpy.typing as npt

from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.registry import CaseEntry
from refq.intmath import INT8, INT32, IntFormat, dyadic_requantize, multiply_by_quantized_multiplier
from refq.intmath.rounding import Rounding
from refq.ops import RequantParams
from refq.ops.registry import Variant

SHIFT = IntFormat(8, True)


def _inputs(seed: int, left_shift: int) -> npt.NDArray[np.int64]:
    """Random int32 values plus pinned edges, all with x·2^left_shift inside int32."""
    rng = np.random.default_rng(seed)
    lim = 2 ** (31 - left_shift)
    edges = [-lim, lim - 1, 0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 256, -257]
    edges += [(2 * k + 1) << 20 for k in range(-4, 4)]  # odd multiples: ties after shifts
    rand = rng.integers(-lim, lim, 200, dtype=np.int64)
    small = rng.integers(-4096, 4096, 200, dtype=np.int64)
    return np.concatenate([np.array(edges, dtype=np.int64), rand, small])


TFLITE: list[tuple[str, int, int, int]] = [  # (tag, multiplier, shift, output zero point)
    ("m0p5_s0", 1 << 30, 0, 0),  # real 0.5: x odd → exact ties in SRDHM
    ("m0p75_s-8", 3 << 29, -8, -3),
    ("carry_s-20", 1 << 30, -20, 5),  # real 2^-21 (a renormalised carry)
    ("max_s-31", 2**31 - 1, -31, 0),  # the largest right shift
    ("m0p9_s2", 1932735283, 2, -128),  # left shift; saturates low
    ("m0p6_s-4", 1288490189, -4, 100),
]

DYADIC: list[tuple[str, int, int, Rounding]] = [  # (tag, b, c, rounding)
    ("b3_c1_half_even", 3, 1, "half_even"),
    ("b3_c1_half_up", 3, 1, "half_up"),
    ("b3_c1_floor", 3, 1, "floor"),
    ("i-vit_half_even", 1717986918, 37, "half_even"),
    ("b3_c1_half_away", 3, 1, "half_away"),  # x odd: ties at ±k.5 on both signs
    ("b3_c1_ceil", 3, 1, "ceil"),
    ("b3_c1_trunc", 3, 1, "trunc"),
]


def tflite_case(
    name: str, seed: int, m: int, s: int, zp: int, family: Literal["double", "single"]
) -> Case:
    x = _inputs(seed, max(s, 0))
    p = RequantParams(
        family=family, multiplier=(m,), shift=(s,), out_zero_point=zp, out_format=INT8
    )
    case = kernel_case(
        name,
        seed,
        f"requantize.{family}",
        p,
        {"x": x},
        extra={"formula": "y = saturate_int8(MultiplyByQuantizedMultiplier(x, M, shift) + zp)"},
        param_tensors={
            "multiplier": (m, INT32),
            "shift": (s, SHIFT),
            "output_zero_point": (zp, INT32),
        },
    )
    case.add(
        "acc",
        multiply_by_quantized_multiplier(x, m, s, family),
        INT32,
        "intermediate",
    )
    return case


def dyadic_case(name: str, seed: int, b: int, c: int, rounding: Rounding) -> Case:
    x = _inputs(seed, 0)
    p = RequantParams(
        family="dyadic", multiplier=(b,), shift=(c,), rounding=rounding, out_format=INT8
    )
    case = kernel_case(
        name,
        seed,
        "requantize.dyadic",
        p,
        {"x": x},
        extra={"formula": "y = saturate_int8(round(x * b / 2^c))"},
    )
    case.add(
        "acc",
        dyadic_requantize(x, b, c, rounding),
        IntFormat(64, True),
        "intermediate",
    )
    return case


def tflite_cases(v: Variant) -> list[CaseEntry]:
    """The cases of ``requantize.double`` or ``requantize.single`` (``v.name``): one per
    :data:`TFLITE` row, named ``requantize.tflite_<family>.int32_int8.<tag>``."""
    family = cast(Literal["double", "single"], v.name)
    out = []
    for i, (tag, m, s, zp) in enumerate(TFLITE):
        name = f"requantize.tflite_{family}.int32_int8.{tag}"
        seed = 1000 + 10 * i + (family == "single")
        out.append(CaseEntry(name, "kernel", seed,
                             partial(tflite_case, name, m=m, s=s, zp=zp, family=family),
                             f"TFLite {family}-rounding requantize {tag}"))
    return out


def dyadic_cases(v: Variant) -> list[CaseEntry]:
    """The cases of ``requantize.dyadic``: one per :data:`DYADIC` row."""
    out = []
    for i, (tag, b, c, rounding) in enumerate(DYADIC):
        name = f"{v.key}.int32_int8.{tag}"
        out.append(CaseEntry(name, "kernel", 2000 + i,
                             partial(dyadic_case, name, b=b, c=c, rounding=rounding),
                             f"dyadic requantize {tag}"))
    return out


__all__ = ["DYADIC", "TFLITE", "dyadic_case", "dyadic_cases", "tflite_case", "tflite_cases"]
