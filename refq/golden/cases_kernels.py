"""Kernel golden cases: every op × variant of refq.ops at the scales ViTs use, each with an
edge set — all-equal rows, rows at the format minimum (-128), a single dominant logit, exact
rounding ties, saturation at both ends, zero-variance rows and the largest shifts — plus a
seeded random part. Parameters come from refq.params (the lowering-side derivations)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from refq import params as P
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.registry import register
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat
from refq.ops import AddParams, GemmParams, LayerNormParams, RequantParams


def _logit_rows(rng: np.random.Generator, scale: float, fmt: IntFormat, cols: int) -> np.ndarray:
    """Softmax inputs: random rows (σ = 3 in real units) plus the edge rows."""
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
    return np.concatenate([np.array(rows), rand]).astype(np.int64)


def _register(name: str, seed: int, doc: str) -> Callable[[Callable[[int], Case]], object]:
    return register(name, "kernel", seed, doc)


SOFTMAX = [  # (variant, scale, params builder, input format)
    ("refq", 0.01, lambda s: P.refq_softmax_params(s), INT16),
    ("ibert", 0.01, lambda s: P.ibert_softmax_params(s), INT32),
    ("shiftmax", 0.01, lambda s: P.shiftmax_params(s), INT32),
    ("shiftmax_deploy", 0.01, lambda s: P.shiftmax_params(s, deploy=True), INT32),
    ("tflite", 1 / 16, lambda s: P.tflite_softmax_params(s), INT8),
    ("lis", 0.01, lambda s: P.lis_params(s), INT32),
]

for _i, (_v, _scale, _mk, _fmt) in enumerate(SOFTMAX):

    def _softmax(
        seed: int,
        v: str = _v,
        scale: float = _scale,
        mk: Callable[[float], object] = _mk,
        fmt: IntFormat = _fmt,
    ) -> Case:
        rng = np.random.default_rng(seed)
        x = _logit_rows(rng, scale, fmt, 37)
        return kernel_case(
            f"softmax.{v}.rows16x37",
            seed,
            f"softmax.{v}",
            mk(scale),  # type: ignore[arg-type]
            {"x": x},
            extra={"input_scale": scale},
        )

    _register(f"softmax.{_v}.rows16x37", 3000 + _i, f"softmax {_v}, edge rows + random")(_softmax)


@_register("gelu.lut.int8.exhaustive", 3100, "GELU LUT: all 256 int8 inputs")
def _gelu_lut(seed: int) -> Case:
    p = P.gelu_lut_params(0.05, 0, 0.04, -10)
    x = np.arange(-128, 128)
    return kernel_case(
        "gelu.lut.int8.exhaustive",
        seed,
        "gelu.lut",
        p,
        {"x": x},
        extra={"in_scale": 0.05, "out_scale": 0.04},
    )


@_register("gelu.shiftgelu.int32", 3101, "I-ViT ShiftGELU at S = 0.05")
def _gelu_shift(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.arange(-200, 201, 7), np.round(rng.normal(0, 40, 200))])
    return kernel_case(
        "gelu.shiftgelu.int32",
        seed,
        "gelu.shiftgelu",
        P.shiftgelu_params(0.05),
        {"x": x},
        extra={"input_scale": 0.05},
    )


@_register("gelu.ibert.int32", 3102, "I-BERT i-GELU at S = 5e-4")
def _gelu_ibert(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = np.concatenate([np.arange(-16000, 16001, 500), np.round(rng.normal(0, 4000, 200))])
    return kernel_case(
        "gelu.ibert.int32",
        seed,
        "gelu.ibert",
        P.ibert_gelu_params(0.0005),
        {"x": x},
        extra={"input_scale": 0.0005},
    )


def _ln_rows(rng: np.random.Generator, c: int) -> np.ndarray:
    rows = [
        np.full(c, 7),  # zero variance
        np.full(c, -128),  # all -128, zero variance
        np.tile([-128, 127], c // 2),  # maximal spread
        np.concatenate([[127], np.zeros(c - 1, dtype=np.int64)]),  # one outlier
        np.tile([0, 1], c // 2),  # variance 1/4 LSB²
    ]
    rand = np.clip(np.round(rng.normal(0, 30, (8, c))), -128, 127)
    return np.concatenate([np.array(rows), rand]).astype(np.int64)


for _i, _v in enumerate(("refq", "ibert", "ivit")):

    def _ln(seed: int, v: str = _v) -> Case:
        rng = np.random.default_rng(seed)
        return kernel_case(
            f"layernorm.{v}.int8.c48",
            seed,
            f"layernorm.{v}",
            LayerNormParams(in_format=INT8),
            {"x": _ln_rows(rng, 48)},
        )

    _register(f"layernorm.{_v}.int8.c48", 3200 + _i, f"LayerNorm {_v}, int8, 48 channels")(_ln)


@_register("layernorm.refq.ptf.c48", 3210, "LayerNorm with FQ-ViT PTF input (α per channel)")
def _ln_ptf(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    alpha = tuple(int(a) for a in rng.integers(0, 4, 48))
    p = LayerNormParams(in_format=UINT8, zero_point=128, channel_shift=alpha)
    x = np.clip(_ln_rows(rng, 48) + 128, 0, 255)
    return kernel_case("layernorm.refq.ptf.c48", seed, "layernorm.refq", p, {"x": x})


@_register("layernorm.refq.o2sf.c48", 3211, "LayerNorm with TSPTQ O-2SF input (k = 4)")
def _ln_o2sf(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    outlier = np.zeros(48, dtype=bool)
    outlier[[3, 17, 40]] = True
    p = LayerNormParams(in_format=INT8, channel_shift=P.o2sf_channel_shift(outlier, 4))
    return kernel_case(
        "layernorm.refq.o2sf.c48", seed, "layernorm.refq", p, {"x": _ln_rows(rng, 48)}
    )


@_register("linear.gemm.int8.acc32", 3300, "int8 linear with int32 bias, int32 accumulator")
def _linear(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (2, 5, 64))
    x[0, 0] = -128  # an all -128 token
    w = rng.integers(-128, 128, (24, 64))
    w[0] = -128  # with an all -128 row: the largest product sum
    bias = rng.integers(-(2**20), 2**20, 24)
    return kernel_case(
        "linear.gemm.int8.acc32", seed, "linear.gemm", GemmParams(), {"x": x, "w": w, "bias": bias}
    )


@_register("linear.gemm.uint8_zp.requant", 3301, "uint8 x (zero point 128) · int8 w → int8")
def _linear_requant(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(0, 256, (7, 32))
    w = rng.integers(-127, 128, (16, 32))
    bias = rng.integers(-5000, 5000, 16)
    rq = P.requant_params(0.0021, "double", out_zero_point=-3)
    p = GemmParams(a_format=UINT8, a_zero_point=128, requant=rq)
    return kernel_case(
        "linear.gemm.uint8_zp.requant", seed, "linear.gemm", p, {"x": x, "w": w, "bias": bias}
    )


@_register("matmul.gemm.int8.heads", 3302, "per-head attention matmul, int8 (2,3,9,16)@(2,3,16,9)")
def _matmul(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    a = rng.integers(-128, 128, (2, 3, 9, 16))
    b = rng.integers(-128, 128, (2, 3, 16, 9))
    return kernel_case(
        "matmul.gemm.int8.heads", seed, "matmul.gemm", GemmParams(), {"a": a, "b": b}
    )


@_register("matmul.gemm.int4.acc16", 3303, "int4 × int4 matmul with a 16-bit accumulator")
def _matmul4(seed: int) -> Case:
    rng = np.random.default_rng(seed)
    a = rng.integers(-8, 8, (5, 32))
    b = rng.integers(-8, 8, (32, 6))
    a[0], b[:, 0] = -8, -8  # the largest product sum: 32·64 = 2048
    p = GemmParams(a_format=IntFormat(4, True), b_format=IntFormat(4, True), acc_bits=16)
    return kernel_case("matmul.gemm.int4.acc16", seed, "matmul.gemm", p, {"a": a, "b": b})


for _i, (_scheme, _sa, _sb) in enumerate((("ivit", 0.02, 0.03), ("shared_shift", 0.02, 0.005))):

    def _add(seed: int, scheme: str = _scheme, sa: float = _sa, sb: float = _sb) -> Case:
        rng = np.random.default_rng(seed)
        a = np.concatenate([[-(2**20), 2**20, 0, 1, -1], rng.integers(-4000, 4000, 60)])
        b = np.concatenate([[-(2**20), -(2**20), 0, 1, 1], rng.integers(-4000, 4000, 60)])
        p: AddParams = P.add_params(sa, sb, 0.05, scheme)
        return kernel_case(
            f"add.{scheme}.int32_int8",
            seed,
            f"add.{scheme}",
            p,
            {"a": a, "b": b},
            extra={"a_scale": sa, "b_scale": sb, "out_scale": 0.05},
        )

    _register(f"add.{_scheme}.int32_int8", 3400 + _i, f"residual add, {_scheme} scheme")(_add)


_ = RequantParams  # requantize kernel cases live in cases_requantize (with param tensors)
