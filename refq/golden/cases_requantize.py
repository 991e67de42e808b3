"""Kernel cases: int32 accumulator → int8 requantization in the TFLite (double and single
rounding) and dyadic families, with the edge inputs that separate roundings: exact ties,
INT32_MIN/MAX, saturation at both ends of int8, and the largest right shift."""

from __future__ import annotations

import numpy as np

from refq.golden.case import Case
from refq.golden.registry import register
from refq.intmath import (
    INT8,
    INT32,
    IntFormat,
    dyadic_requantize,
    multiply_by_quantized_multiplier,
    saturate,
)

SHIFT = IntFormat(8, True)


def _inputs(seed: int, left_shift: int) -> np.ndarray:
    """Random int32 values plus pinned edges, all with x·2^left_shift inside int32."""
    rng = np.random.default_rng(seed)
    lim = 2 ** (31 - left_shift)
    edges = [-lim, lim - 1, 0, 1, -1, 2, -2, 3, -3, 127, -128, 255, -255, 256, -257]
    edges += [(2 * k + 1) << 20 for k in range(-4, 4)]  # odd multiples: ties after shifts
    rand = rng.integers(-lim, lim, 200, dtype=np.int64)
    small = rng.integers(-4096, 4096, 200, dtype=np.int64)
    return np.concatenate([np.array(edges, dtype=np.int64), rand, small])


TFLITE = [  # (name, multiplier, shift, output zero point)
    ("m0p5_s0", 1 << 30, 0, 0),  # real 0.5: x odd → exact ties in SRDHM
    ("m0p75_s-8", 3 << 29, -8, -3),
    ("carry_s-20", 1 << 30, -20, 5),  # real 2^-21 (a renormalised carry)
    ("max_s-31", 2**31 - 1, -31, 0),  # the largest right shift
    ("m0p9_s2", 1932735283, 2, -128),  # left shift; saturates low
    ("m0p6_s-4", 1288490189, -4, 100),
]


def _tflite_case(name: str, m: int, s: int, zp: int, rounding: str, seed: int) -> Case:
    x = _inputs(seed, max(s, 0))
    acc = multiply_by_quantized_multiplier(x, m, s, rounding)  # type: ignore[arg-type]
    y = saturate(acc + zp, INT8)
    case = Case(
        name,
        "kernel",
        seed,
        {
            "op": "requantize",
            "variant": f"tflite_{rounding}",
            "rounding": "half_away (twice)" if rounding == "double" else "half_up",
            "params": {"multiplier": m, "shift": s, "output_zero_point": zp},
            "formula": "y = saturate_int8(MultiplyByQuantizedMultiplier(x, M, shift) + zp)",
        },
    )
    case.add("x", x, INT32, "input")
    case.add("multiplier", np.array([m]), INT32, "param")
    case.add("shift", np.array([s]), SHIFT, "param")
    case.add("output_zero_point", np.array([zp]), INT32, "param")
    case.add("acc", acc, INT32, "intermediate")
    case.add("y", y, INT8, "output")
    return case


def _register_tflite() -> None:
    for i, (tag, m, s, zp) in enumerate(TFLITE):
        for rounding in ("double", "single"):
            name = f"requantize.tflite_{rounding}.int32_int8.{tag}"
            seed = 1000 + 10 * i + (rounding == "single")

            def build(
                seed: int,
                name: str = name,
                m: int = m,
                s: int = s,
                zp: int = zp,
                rounding: str = rounding,
            ) -> Case:
                return _tflite_case(name, m, s, zp, rounding, seed)

            register(name, "kernel", seed, f"TFLite {rounding}-rounding requantize {tag}")(build)


DYADIC = [  # (tag, b, c, rounding)
    ("b3_c1_half_even", 3, 1, "half_even"),
    ("b3_c1_half_up", 3, 1, "half_up"),
    ("b3_c1_floor", 3, 1, "floor"),
    ("i-vit_half_even", 1717986918, 37, "half_even"),
]


def _register_dyadic() -> None:
    for i, (tag, b, c, rounding) in enumerate(DYADIC):
        name = f"requantize.dyadic.int32_int8.{tag}"

        def build(
            seed: int, name: str = name, b: int = b, c: int = c, rounding: str = rounding
        ) -> Case:
            x = _inputs(seed, 0)
            acc = dyadic_requantize(x, b, c, rounding)  # type: ignore[arg-type]
            y = saturate(acc, INT8)
            case = Case(
                name,
                "kernel",
                seed,
                {
                    "op": "requantize",
                    "variant": "dyadic",
                    "rounding": rounding,
                    "params": {"b": b, "c": c},
                    "formula": "y = saturate_int8(round(x * b / 2^c))",
                },
            )
            case.add("x", x, INT32, "input")
            case.add("acc", acc, IntFormat(64, True), "intermediate")
            case.add("y", y, INT8, "output")
            return case

        register(name, "kernel", 2000 + i, f"dyadic requantize {tag}")(build)


_register_tflite()
_register_dyadic()
