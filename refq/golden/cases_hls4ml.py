"""Golden cases for hls4ml-style hardware: the ap_fixed casts, hls4ml's table softmax and
LayerNorm as refq variants, a Dense layer with an ap_fixed requantization, and the MLP of the
bundled DeiT's first encoder block (fc1 → GELU table → fc2) — every one of them reproduced
bit for bit by hls4ml's compiled emulation (``refq check --backend hls4ml``).

The configurations are those of the hls4ml backend's catalogue
(refq.crosscheck.adapters.hls4ml_backend), so each case runs there without a new compile.
"""

from __future__ import annotations

from functools import lru_cache, partial

import numpy as np
import numpy.typing as npt

from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.registry import CaseEntry, register
from refq.intmath import INT8, INT32, IntFormat
from refq.intmath.apfixed import OVERFLOW_MODES, QUANT_MODES, ApType
from refq.ops import ApFixedRequantParams, GemmParams, Hls4mlLayerNormParams, Hls4mlSoftmaxParams
from refq.ops.registry import Variant
from refq.program.ir import Op, Program

CAST_FRAC = 16
"""Fractional bits of the int32 input of the cast cases (ap_fixed<32,16>)."""
CAST_TYPES: tuple[ApType, ...] = tuple(
    [ApType(8, 3, True, q, o) for q in QUANT_MODES for o in OVERFLOW_MODES[:4]]
    + [ApType(6, 2, False, q, o) for q in QUANT_MODES for o in OVERFLOW_MODES[:4]]
)
"""The hls4ml backend's cast catalogue: every quantization × overflow mode hls4ml can name
(its types have no AP_WRAP_SM), signed and unsigned — one compiled model of 56 branches."""
SOFTMAX_N = 12
LAYERNORM_C = 16


def cast_params(t: ApType) -> ApFixedRequantParams:
    """requantize.ap_fixed of an int32 at 2^-CAST_FRAC to ``t`` (multiplier 1)."""
    return ApFixedRequantParams(t.name, CAST_FRAC, (1,), 0, INT32)


@lru_cache(maxsize=1)
def softmax_catalogue() -> dict[str, Hls4mlSoftmaxParams]:
    """ap_fixed<16,6> rows of 12 → ap_ufixed<16,0,AP_RND,AP_SAT>, hls4ml's default table
    types and sizes, per implementation (legacy: its fixed ap_fixed<18,8> tables)."""
    from refq.params.hls4ml import hls4ml_softmax_params

    return {impl: hls4ml_softmax_params(impl, "ap_fixed<16,6>", "ap_ufixed<16,0,AP_RND,AP_SAT>",
                                        n=SOFTMAX_N) for impl in ("stable", "latency", "legacy")}


@lru_cache(maxsize=1)
def layernorm_catalogue() -> Hls4mlLayerNormParams:
    """ap_fixed<16,6> rows of 16 → ap_fixed<16,6>, accum ap_fixed<24,8>, γ and β seeded on
    the 2^-10 grid, hls4ml's default 1/√x table."""
    from refq.params.hls4ml import hls4ml_layernorm_params

    rng = np.random.default_rng(28)
    gamma = np.round(rng.normal(1.0, 0.2, LAYERNORM_C) * 1024) / 1024
    beta = np.round(rng.normal(0.0, 0.2, LAYERNORM_C) * 1024) / 1024
    return hls4ml_layernorm_params("ap_fixed<16,6>", "ap_fixed<16,6>", gamma, beta)


CASTS: tuple[str, ...] = (
    "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
    "ap_fixed<8,3,AP_RND,AP_WRAP>",
    "ap_fixed<8,3,AP_RND_ZERO,AP_SAT_SYM>",
    "ap_ufixed<6,2,AP_TRN_ZERO,AP_SAT_ZERO>",
)
DENSE_TYPE = "ap_fixed<8,3,AP_RND_CONV,AP_SAT>"
DENSE_FRAC = 10
"""The Dense case: x int8 at 2^-4 and w int8 at 2^-6 (accumulator at 2^-10) cast to
ap_fixed<8,3,AP_RND_CONV,AP_SAT> (2^-5): the rounding drops 5 bits."""


def cast_inputs(t: ApType, seed: int) -> npt.NDArray[np.int64]:
    """int32 accumulators at 2^-16: every tie of the cast (x = (2k+1)·2^(s-1)), both
    saturation edges and their neighbours, int32 extremes, random values."""
    s = CAST_FRAC - t.frac_bits
    half = 1 << (s - 1)
    ties = [(2 * k + 1) * half for k in range(-40, 40)]
    fmt = t.fmt
    edges = [(v << s) + d for v in (fmt.max, fmt.max + 1, fmt.min, fmt.min - 1)
             for d in (-half, -1, 0, 1, half)]
    rng = np.random.default_rng(seed)
    rand = rng.integers(INT32.min, INT32.max, 100, dtype=np.int64, endpoint=True)
    small = rng.integers(-(1 << 12), 1 << 12, 100, dtype=np.int64)
    return np.array([*ties, *edges, INT32.min, INT32.max, 0, 1, -1, *rand, *small],
                    dtype=np.int64)


def cast_case(out_type: str, name: str, seed: int) -> Case:
    t = ApType.parse(out_type)
    p = cast_params(t)
    return kernel_case(name, seed, "requantize.ap_fixed", p, {"x": cast_inputs(t, seed)})


def dense_program(seed: int = 28, k: int = 16, n: int = 8) -> Program:
    """x int8 (B, k) → linear.gemm (seeded int8 weights, int32 bias) → acc int32 →
    requantize.ap_fixed to DENSE_TYPE from 2^-DENSE_FRAC."""
    rng = np.random.default_rng(seed)
    prog = Program(f"hls4ml.dense.k{k}n{n}")
    prog.declare("x", (-1, k), INT8, "input", 2.0**-4)
    prog.const("w", rng.integers(-128, 128, (n, k), dtype=np.int64), INT8, "weights at 2^-6")
    prog.const("b", rng.integers(-3000, 3000, n, dtype=np.int64), INT32, "bias at 2^-10")
    prog.declare("acc", (-1, n), INT32, "value", 2.0**-DENSE_FRAC)
    prog.add(Op("kernel", "linear.gemm", ("x", "w", "b"), ("acc",),
                GemmParams(INT8, INT8).to_dict(), "dense"))
    t = ApType.parse(DENSE_TYPE)
    prog.declare("y", (-1, n), t.fmt, "value", 2.0**-t.frac_bits)
    prog.add(Op("kernel", "requantize.ap_fixed", ("acc",), ("y",),
                ApFixedRequantParams(t.name, DENSE_FRAC, (1,), 0, INT32).to_dict(), "dense"))
    prog.outputs = ["y"]
    prog.validate()
    return prog


def dense_inputs(seed: int, rows: int = 32) -> npt.NDArray[np.int64]:
    rng = np.random.default_rng(seed)
    x = rng.integers(-128, 128, (rows, 16), dtype=np.int64)
    x[0], x[1] = 127, -128
    return x


def _dense_case(name: str, seed: int) -> Case:
    from refq.golden.cases_program import program_case

    return program_case(name, seed, "program", dense_program(), {"x": dense_inputs(seed)})


def softmax_case(impl: str, name: str, seed: int) -> Case:
    p = softmax_catalogue()[impl]
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << 15), 1 << 15, (16, SOFTMAX_N), dtype=np.int64)
    x[:6] = rng.integers(-3000, 3000, (6, SOFTMAX_N))
    x[6] = 5
    x[7] = IntFormat(16, True).min
    x[7, 3] = IntFormat(16, True).max
    return kernel_case(name, seed, f"softmax.hls4ml_{impl}", p, {"x": x})


def layernorm_case(name: str, seed: int) -> Case:
    rng = np.random.default_rng(seed)
    x = rng.integers(-(1 << 12), 1 << 12, (16, LAYERNORM_C), dtype=np.int64)
    x[:6] = rng.integers(-200, 200, (6, LAYERNORM_C))
    x[6] = 77
    return kernel_case(name, seed, "layernorm.hls4ml", layernorm_catalogue(), {"x": x})


MLP_NAME = "block.deit_digits.minmax.w8a8.mlp_fc"


def mlp_case(name: str, seed: int) -> Case:
    """fc1 → requantize → GELU table → fc2 → requantize of block 0 of the bundled DeiT
    (min-max W8A8), fed the committed ``blocks.0.norm2`` codes: the part of the MLP block
    that hls4ml layers reproduce (Dense, ApplyAlpha, UnaryLUT). An extended case (not in
    golden/: every tensor of it is in the committed ``block.deit_digits.minmax.w8a8.encoder``)."""
    from refq.golden.cases_program import _lowered, program_case, subprogram
    from refq.program.run import run

    program, pixels = _lowered(8)
    full = run(program, {"input": pixels})
    sub = subprogram(program, ("blocks.0.mlp.",), f"{program.name}.mlp_fc")
    return program_case(name, seed, "block", sub, {t: full[t] for t in sub.inputs})


def cast_tag(out_type: str) -> str:
    """``ap_fixed<8,3,AP_RND,AP_WRAP>`` → ``ap_fixed_8_3_ap_rnd_ap_wrap`` (a case-name part)."""
    return out_type.replace("<", "_").replace(">", "").replace(",", "_").lower()


def cast_cases(v: Variant) -> list[CaseEntry]:
    """requantize.ap_fixed's golden cases: one per CASTS type (the registry's ``golden``)."""
    out = []
    for i, t in enumerate(CASTS):
        name = f"requantize.ap_fixed.int32.{cast_tag(t)}"
        out.append(CaseEntry(name, "kernel", i, partial(cast_case, t, name),
                             f"int32 at 2^-16 cast to {t}: ties, saturation edges, random"))
    return out


def softmax_cases(v: Variant) -> list[CaseEntry]:
    impl = v.name.removeprefix("hls4ml_")
    name = f"softmax.hls4ml_{impl}.rows16x12"
    return [CaseEntry(name, "kernel", 0, partial(softmax_case, impl, name),
                      f"hls4ml softmax_{impl}: ap_fixed<16,6> rows of 12, default tables")]


def layernorm_cases(v: Variant) -> list[CaseEntry]:
    name = "layernorm.hls4ml.rows16x16"
    return [CaseEntry(name, "kernel", 0, partial(layernorm_case, name),
                      "hls4ml LayerNormalization: ap_fixed<16,6> rows of 16, default table")]


register("program.hls4ml.dense.k16n8", "program", 28,
         f"Dense int8 x int8 (+int32 bias) then requantize.ap_fixed to {DENSE_TYPE}")(
    partial(_dense_case, "program.hls4ml.dense.k16n8"))
register(MLP_NAME, "block", 0,
         "fc1 → GELU table → fc2 of block 0 of the bundled DeiT, min-max W8A8, 1 test image "
         "(what hls4ml reproduces; its tensors are in the committed "
         "block.deit_digits.minmax.w8a8.encoder case)",
         committed=False)(partial(mlp_case, MLP_NAME))

__all__ = [
    "CASTS", "CAST_FRAC", "CAST_TYPES", "DENSE_FRAC", "DENSE_TYPE", "LAYERNORM_C", "MLP_NAME",
    "SOFTMAX_N", "cast_cases", "cast_inputs", "cast_params", "cast_tag", "dense_inputs",
    "dense_program", "layernorm_cases", "layernorm_catalogue", "softmax_cases",
    "softmax_catalogue",
]
