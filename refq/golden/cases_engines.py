"""Kernel cases of the engine requantization families — ``fp32`` (PyTorch's quantized CPU
engines, XNNPACK), ``fp64`` (TFLite's reference FULLY_CONNECTED) and ``double_up`` (ruy on
x86) — each with the inputs where that family differs from exact rounding and from the
others: accumulators above 2^24 (rounded to binary32 first), products that round onto a .5
tie, exact ties of both signs, saturation at both ends. Backends that claim the family must
reproduce them (refq check --golden golden)."""

from __future__ import annotations

from functools import partial

import numpy as np
import numpy.typing as npt

from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.registry import CaseEntry
from refq.intmath import INT8, INT64, UINT8, IntFormat
from refq.ops import RequantParams
from refq.ops.registry import Variant


def _inputs(seed: int, pinned: list[int], lim: int) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    edges = [0, 1, -1, 2**31 - 1, -(2**31), *pinned]
    return np.concatenate([np.array(edges, dtype=np.int64),
                           rng.integers(-lim, lim, 120, dtype=np.int64)])


CASES: list[tuple[str, str, int, int, IntFormat, int, list[int], int, str]] = [
    # (tag, family, multiplier, shift, out format, zero point, pinned inputs, random bound,
    #  what the pinned inputs show)
    ("acc-above-2p24", "fp32", 1, 17, UINT8, 0,
     [257 * 2**16 + 1, 2**24 + 1, 2**24 + 3, 3 << 16, 5 << 16, -(3 << 16)], 2**26,
     "acc = 257·2^16 + 1 converts to binary32 as 257·2^16: 128.5 + 2^-17 -> 128"),
    ("product-rounds-to-tie", "fp32", 10173989, 38, UINT8, 3, [5335998, 5335997, 5335999], 2**27,
     "5335998 · 10173989 rounds (binary32) onto a .5 tie: 198, exact 197"),
    ("ties-away", "fp64", 1, 1, INT8, 0, [3, -3, 5, -5, 7, -7, 255, -255], 1024,
     "ties round half away from zero (std::round): -2.5 -> -3"),
    ("scale-48bit", "fp64", 140737479966717, 72, INT8, -5, [2**31 - 3, -(2**31) + 3], 2**31,
     "a 48-bit scale (a product of two float32 significands): |acc|·m needs 77 bits"),
    ("negative-tie", "double_up", 1610612736, -14, INT8, 0, [-98304, 98304, -32768 * 3], 2**22,
     "-4.5 exactly: ties toward +inf in both roundings (-4); double (away) gives -5"),
    ("first-rounding-decides", "double_up", 1775085290, -14, INT8, 0, [1912748, -1912748], 2**23,
     "the first rounding lands on 96.5·2^14, the second rounds it up: 97; single: 96"),
    ("zero-point-first", "fp32_zp", 1, 1, UINT8, 101, [-5, -3, -1, 1, 3, 5, 2**24 + 1], 2**12,
     "the zero point is added before rounding: 0.5 + 101 -> 102 (fp32: 0 + 101 = 101)"),
]


def _scaled(family: str, x: npt.NDArray[np.int64], m: int, s: int, zp: int
            ) -> npt.NDArray[np.int64]:
    """The family's integer result before saturation (``fp32_zp``: with the zero point)."""
    from refq.ops.requantize_double_up import double_up_scale
    from refq.ops.requantize_fp32 import fp32_scale, fp32_zp_round
    from refq.ops.requantize_fp64 import fp64_scale

    if family == "fp32":
        return fp32_scale(x, m, s)
    if family == "fp32_zp":
        return fp32_zp_round(x, m, s, zp)
    if family == "fp64":
        return fp64_scale(x, m, s)
    return double_up_scale(x, m, s)


def engine_case(name: str, seed: int, family: str, m: int, s: int, fmt: IntFormat, zp: int,
                pinned: list[int], lim: int, note: str) -> Case:
    """One case: inputs ``x`` (pinned + seeded random), output ``y`` and the intermediate
    ``acc`` — the rounded value before the zero point (``fp32_zp``: after it) and the
    saturation, int64 (fp64 values may pass int32 before saturating)."""
    p = RequantParams(family, (m,), (s,), out_zero_point=zp, out_format=fmt)
    x = _inputs(seed, pinned, lim)
    case = kernel_case(name, seed, f"requantize.{family}", p, {"x": x}, extra={"note": note})
    case.add("acc", _scaled(family, x, m, s, zp), INT64, "intermediate")
    return case


def engine_cases(v: Variant) -> list[CaseEntry]:
    """The cases of ``requantize.<v.name>`` (fp32, fp64 or double_up): one per :data:`CASES`
    row of that family, named ``requantize.<family>.int32_<format>.<tag>``."""
    out = []
    for i, (tag, family, m, s, fmt, zp, pinned, lim, note) in enumerate(CASES):
        if family != v.name:
            continue
        name = f"requantize.{family}.int32_{fmt.name}.{tag}"
        out.append(CaseEntry(name, "kernel", 3000 + i,
                             partial(engine_case, name, family=family, m=m, s=s, fmt=fmt,
                                     zp=zp, pinned=pinned, lim=lim, note=note),
                             f"{family} requantize: {note}"))
    return out


__all__ = ["CASES", "engine_case", "engine_cases"]
