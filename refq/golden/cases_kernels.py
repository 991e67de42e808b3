"""Kernel golden cases, derived from the variant registry (:mod:`refq.ops.registry`).

Each variant declares its golden cases as :class:`~refq.ops.registry.Ref` pointers to the
generators of this module (or of :mod:`refq.golden.cases_requantize`, or its own); a
generator is called as ``generator(variant, **args)`` and returns the variant's cases as
:class:`~refq.golden.registry.CaseEntry` objects. :func:`variant_cases` collects them on
every :func:`refq.golden.registry.cases` call, so a variant declared later has its cases
listed, generated and verified like any other.

The shared generators cover the scales ViTs use, each with an edge set — all-equal rows,
rows at the format minimum (-128), a single dominant logit, exact rounding ties, saturation
at both ends, zero-variance rows and the largest shifts — plus a seeded random part.
Parameters come from the variant's ``derive`` (refq.params, the lowering-side derivations).
Reals in a declaration's arguments are decimal strings (refq.ops holds no float).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np
import numpy.typing as npt

from refq import params as P
from refq.errors import GoldenError
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.registry import CaseEntry, register_source
from refq.intmath import INT8, UINT8, IntFormat
from refq.ops import GemmParams, LayerNormParams, variants
from refq.ops.registry import Variant

I64 = npt.NDArray[np.int64]


def entry(name: str, seed: int, description: str, build: Callable[[int], Case],
          committed: bool = True) -> CaseEntry:
    """A kernel CaseEntry (kind ``kernel``)."""
    return CaseEntry(name, "kernel", seed, build, description, committed)


def _derive(v: Variant, *args: Any, **kwargs: Any) -> Any:
    if v.derive is None:
        raise GoldenError(f"variant {v.key} declares no parameter derivation (derive)")
    return v.derive(*args, **kwargs)


# ------------------------------------------------------------------ softmax
def logit_rows(rng: np.random.Generator, scale: float, fmt: IntFormat, cols: int) -> I64:
    """Softmax inputs: the edge rows plus 10 random rows (σ = 3 in real units)."""
    lo, hi = max(fmt.min, -(2**15)), min(fmt.max, 2**15 - 1)
    rows = [
        np.full(cols, 0),  # all equal
        np.full(cols, lo),  # all at the minimum (-128 for int8)
        np.full(cols, hi),  # all at the maximum
        np.concatenate([[hi], np.full(cols - 1, lo)]),  # a single dominant logit
        np.concatenate([[hi, hi], np.full(cols - 2, lo)]),  # two tied maxima
        np.arange(cols) - cols // 2,  # a ramp of one LSB steps
    ]
    rand = np.clip(np.round(rng.normal(0.0, 3.0 / scale, (10, cols))), lo, hi)
    out: I64 = np.concatenate([np.array(rows), rand]).astype(np.int64)
    return out


def softmax_rows(v: Variant, *, seed: int, scale: str, cols: int = 37) -> list[CaseEntry]:
    """``<key>.rows16x37``: 16 rows of 37 logits (:func:`logit_rows`) at input scale
    ``scale``, params ``v.derive(scale)`` (rows in its ``in_format``)."""
    name = f"{v.key}.rows16x{cols}"

    def build(seed: int) -> Case:
        s = float(scale)
        p = _derive(v, s)
        x = logit_rows(np.random.default_rng(seed), s, p.in_format, cols)
        return kernel_case(name, seed, v.key, p, {"x": x}, extra={"input_scale": s})

    return [entry(name, seed, f"softmax {v.name}, edge rows + random", build)]


# ------------------------------------------------------------------ GELU
def gelu_lut_exhaustive(v: Variant, *, seed: int) -> list[CaseEntry]:
    """``gelu.lut.int8.exhaustive``: every int8 input of a table at S_in 0.05, S_out 0.04."""
    name = f"{v.key}.int8.exhaustive"

    def build(seed: int) -> Case:
        p = P.gelu_lut_params(0.05, 0, 0.04, -10)
        x = np.arange(-128, 128)
        return kernel_case(name, seed, v.key, p, {"x": x},
                           extra={"in_scale": 0.05, "out_scale": 0.04})

    return [entry(name, seed, "GELU LUT: all 256 int8 inputs", build)]


def gelu_ramp(v: Variant, *, seed: int, scale: str, ramp: tuple[int, int, int],
              sigma: int) -> list[CaseEntry]:
    """``<key>.<in_format>``: a ramp ``np.arange(*ramp)`` plus 200 normal(0, sigma) codes
    at input scale ``scale``, params ``v.derive(scale)``."""
    s = float(scale)
    fmt = _derive(v, s).in_format
    name = f"{v.key}.{fmt.name}"

    def build(seed: int) -> Case:
        rng = np.random.default_rng(seed)
        x = np.concatenate([np.arange(*ramp), np.round(rng.normal(0, sigma, 200))])
        return kernel_case(name, seed, v.key, _derive(v, s), {"x": x},
                           extra={"input_scale": s})

    return [entry(name, seed, f"GELU {v.name} at S = {scale}", build)]


# ------------------------------------------------------------------ LayerNorm
def ln_rows(rng: np.random.Generator, c: int) -> I64:
    rows = [
        np.full(c, 7),  # zero variance
        np.full(c, -128),  # all -128, zero variance
        np.tile([-128, 127], c // 2),  # maximal spread
        np.concatenate([[127], np.zeros(c - 1, dtype=np.int64)]),  # one outlier
        np.tile([0, 1], c // 2),  # variance 1/4 LSB²
    ]
    rand = np.clip(np.round(rng.normal(0, 30, (8, c))), -128, 127)
    out: I64 = np.concatenate([np.array(rows), rand]).astype(np.int64)
    return out


def layernorm_rows(v: Variant, *, seed: int, channels: int = 48) -> list[CaseEntry]:
    """``<key>.int8.c48``: plain int8 rows (:func:`ln_rows`), params
    ``v.derive(in_format=int8)``."""
    name = f"{v.key}.int8.c{channels}"

    def build(seed: int) -> Case:
        rng = np.random.default_rng(seed)
        p = _derive(v, in_format=INT8)
        return kernel_case(name, seed, v.key, p, {"x": ln_rows(rng, channels)})

    return [entry(name, seed, f"LayerNorm {v.name}, int8, {channels} channels", build)]


def layernorm_ptf(v: Variant, *, seed: int) -> list[CaseEntry]:
    name = f"{v.key}.ptf.c48"

    def build(seed: int) -> Case:
        rng = np.random.default_rng(seed)
        alpha = tuple(int(a) for a in rng.integers(0, 4, 48))
        p = LayerNormParams(in_format=UINT8, zero_point=128, channel_shift=alpha)
        x = np.clip(ln_rows(rng, 48) + 128, 0, 255)
        return kernel_case(name, seed, v.key, p, {"x": x})

    return [entry(name, seed, "LayerNorm with FQ-ViT PTF input (α per channel)", build)]


def layernorm_o2sf(v: Variant, *, seed: int) -> list[CaseEntry]:
    name = f"{v.key}.o2sf.c48"

    def build(seed: int) -> Case:
        rng = np.random.default_rng(seed)
        outlier = np.zeros(48, dtype=bool)
        outlier[[3, 17, 40]] = True
        p = LayerNormParams(in_format=INT8, channel_shift=P.o2sf_channel_shift(outlier, 4))
        return kernel_case(name, seed, v.key, p, {"x": ln_rows(rng, 48)})

    return [entry(name, seed, "LayerNorm with TSPTQ O-2SF input (k = 4)", build)]


# ------------------------------------------------------------------ GEMM
def _linear_acc32(key: str, name: str, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2, 5, 64))
    x[0, 0] = -128  # an all -128 token
    w = rng.integers(-128, 128, (24, 64))
    w[0] = -128  # with an all -128 row: the largest product sum
    bias = rng.integers(-(2**20), 2**20, 24)
    return kernel_case(name, seed, key, GemmParams(), {"x": x, "w": w, "bias": bias})


def _linear_requant(key: str, name: str, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (7, 32))
    w = rng.integers(-127, 128, (16, 32))
    bias = rng.integers(-5000, 5000, 16)
    rq = P.requant_params(0.0021, "double", out_zero_point=-3)
    p = GemmParams(a_format=UINT8, a_zero_point=128, requant=rq)
    return kernel_case(name, seed, key, p, {"x": x, "w": w, "bias": bias})


def linear_cases(v: Variant, *, seed: int) -> list[CaseEntry]:
    """int8 linear with an int32 accumulator; uint8 x (zero point 128) · int8 w → int8."""
    a, b = f"{v.key}.int8.acc32", f"{v.key}.uint8_zp.requant"
    return [
        entry(a, seed, "int8 linear with int32 bias, int32 accumulator",
              partial(_linear_acc32, v.key, a)),
        entry(b, seed + 1, "uint8 x (zero point 128) · int8 w → int8 (TFLite double)",
              partial(_linear_requant, v.key, b)),
    ]


def _matmul_heads(key: str, name: str, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (2, 3, 9, 16))
    b = rng.integers(-128, 128, (2, 3, 16, 9))
    return kernel_case(name, seed, key, GemmParams(), {"a": a, "b": b})


def _matmul_int4(key: str, name: str, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    a = rng.integers(-8, 8, (5, 32))
    b = rng.integers(-8, 8, (32, 6))
    a[0], b[:, 0] = -8, -8  # the largest product sum: 32·64 = 2048
    p = GemmParams(a_format=IntFormat(4, True), b_format=IntFormat(4, True), acc_bits=16)
    return kernel_case(name, seed, key, p, {"a": a, "b": b})


def matmul_cases(v: Variant, *, seed: int) -> list[CaseEntry]:
    """Per-head attention matmul in int8; int4 × int4 with a 16-bit accumulator."""
    a, b = f"{v.key}.int8.heads", f"{v.key}.int4.acc16"
    return [
        entry(a, seed, "per-head attention matmul, int8 (2,3,9,16)@(2,3,16,9)",
              partial(_matmul_heads, v.key, a)),
        entry(b, seed + 1, "int4 × int4 matmul with a 16-bit accumulator",
              partial(_matmul_int4, v.key, b)),
    ]


# ------------------------------------------------------------------ residual add
def add_case(v: Variant, *, seed: int, scales: tuple[str, str]) -> list[CaseEntry]:
    """``<key>.int32_int8``: int32 branches at scales ``scales``, int8 output at 0.05, with
    the extremes ±2^20, 0 and ±1 first."""
    name = f"{v.key}.int32_int8"
    sa, sb = float(scales[0]), float(scales[1])

    def build(seed: int) -> Case:
        rng = np.random.default_rng(seed)
        a = np.concatenate([[-(2**20), 2**20, 0, 1, -1], rng.integers(-4000, 4000, 60)])
        b = np.concatenate([[-(2**20), -(2**20), 0, 1, 1], rng.integers(-4000, 4000, 60)])
        p = _derive(v, sa, sb, 0.05)
        return kernel_case(name, seed, v.key, p, {"a": a, "b": b},
                           extra={"a_scale": sa, "b_scale": sb, "out_scale": 0.05})

    return [entry(name, seed, f"residual add, {v.name} scheme", build)]


# ------------------------------------------------------------------ the source
def variant_cases() -> list[CaseEntry]:
    """The golden cases every registered variant declares (its ``golden`` generators)."""
    out: list[CaseEntry] = []
    for v in variants():
        for ref in v.golden:
            made = ref(v)
            if not isinstance(made, list) or not all(isinstance(e, CaseEntry) for e in made):
                raise GoldenError(f"variant {v.key}: golden generator {ref.label} must return "
                                  "a list of CaseEntry")
            out.extend(made)
    return out


register_source(variant_cases)

__all__ = [
    "add_case",
    "entry",
    "gelu_lut_exhaustive",
    "gelu_ramp",
    "layernorm_o2sf",
    "layernorm_ptf",
    "layernorm_rows",
    "linear_cases",
    "ln_rows",
    "logit_rows",
    "matmul_cases",
    "softmax_rows",
    "variant_cases",
]
