"""The torch-native backend's own suite additions: hypothesis strategies drawing refq kernel
cases in the shapes PyTorch's quantized engines run (uint8/int8 activations, int8 weights,
``fp32`` requantization), the named regression cases of every disagreement found, and the
known-disagreements file (refq/crosscheck/known/torch-native.json).

Strategies (suite keys):

``torch_native.linear``          ``linear.gemm`` + ``fp32`` requantization, per tensor / per
                                 channel, weight zero points, K up to 4096, output scales
                                 that spread the results over the output range, significands
                                 with few bits (many exact ties) mixed with random ones.
``torch_native.linear_bigacc``   K = 40,000..65,000 with extreme operands: accumulators of
                                 2^24..2^31, where the int32 → binary32 conversion rounds.
``torch_native.requantize``      ``requantize.fp32`` with |x·m·2^-c| < 2^31 (the engines'
                                 conversion-overflow bug is pinned by a regression instead).
``torch_native.*_zp_first``      the same keys with the ``fp32_zp`` rule (the output zero point
                                 added before rounding; odd zero points half of the time): onednn.
``torch_native.matmul_pow2``     ``matmul.gemm`` + power-of-two ``fp32_zp`` requantization under
                                 the float path's exactness bound (quantized::matmul, whose
                                 quantize_per_tensor adds the zero point before rounding).
``torch_native.int_mm``          ``matmul.gemm`` int8 × int8 → int32, zero points 0: what
                                 ``torch._int_mm`` runs on CUDA (CPU engines skip it).
"""

from __future__ import annotations

import math
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.backend import SuiteExtras
from refq.crosscheck.known import Known, for_engine, load_known
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.intmath import INT8, UINT8, IntFormat
from refq.ops import GemmParams, RequantParams

KNOWN_FILE = Path(__file__).resolve().parents[1] / "known" / "torch-native.json"


def _spread_shift(k: int, za: int, fa: IntFormat, jitter: int) -> int:
    """A right shift c for 24-bit significands that maps typical accumulators of depth k
    (operands spread over the format) onto roughly ±64 output steps."""
    typical = math.sqrt(k) * 74 * 74 + 1  # rms of a sum of k products of uniform 8-bit values
    c = 23 + math.ceil(math.log2(typical / 64)) + jitter
    return max(0, min(63, c))


def strategies() -> dict[str, Callable[[], Any]]:
    """Hypothesis strategies (suite key → maker) of the cases the engines run."""
    from hypothesis import strategies as st

    significand = st.one_of(
        st.sampled_from([1 << 23, (1 << 23) + 1, (1 << 24) - 1, 3 << 22, 5 << 21, 0xA00001]),
        st.integers(1 << 23, (1 << 24) - 1),
    )

    def values(draw: Any, shape: tuple[int, ...], fmt: IntFormat, extreme: bool
               ) -> npt.NDArray[np.int64]:
        """Operand values: drawn one by one for small tensors; for large ones (hypothesis
        caps list sizes) from a NumPy generator seeded by a drawn integer."""
        n = int(np.prod(shape))
        if n > 256:
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            if extreme or draw(st.booleans()):
                return rng.choice(np.array([fmt.min, fmt.max]), size=shape).astype(np.int64)
            return rng.integers(fmt.min, fmt.max + 1, size=shape, dtype=np.int64)
        el = (st.sampled_from([fmt.min, fmt.max]) if extreme
              else st.one_of(st.integers(fmt.min, fmt.max), st.sampled_from([fmt.min, fmt.max])))
        return np.array(draw(st.lists(el, min_size=n, max_size=n)), np.int64).reshape(shape)

    def zero_point(draw: Any, fmt: IntFormat, family: str) -> int:
        """Any zero point; for ``fp32_zp`` an odd one half of the time (where the rule
        differs from adding it after rounding)."""
        z = int(draw(st.integers(fmt.min, fmt.max)))
        if family == "fp32_zp" and draw(st.booleans()):
            z = z | 1 if z < fmt.max else z - 1 if z % 2 == 0 else z
        return z

    def linear(big: bool, family: str = "fp32") -> Any:
        @st.composite
        def strat(draw: Any) -> Case:
            fa = draw(st.sampled_from([UINT8, INT8]))
            per_channel = draw(st.booleans())
            if big:
                m, k, n = draw(st.integers(1, 2)), draw(st.integers(40_000, 65_000)), 2
            else:
                m = draw(st.integers(1, 6))
                k = draw(st.one_of(st.integers(1, 64), st.sampled_from([255, 256, 1000, 4096])))
                n = draw(st.integers(1, 9))
            za = draw(st.one_of(st.integers(fa.min, fa.max), st.sampled_from([fa.min, fa.max, 0])))
            zw = 0 if fa == INT8 or draw(st.booleans()) else draw(st.integers(-128, 127))
            x = values(draw, (m, k), fa, big)
            w = values(draw, (n, k), INT8, big)
            bias = np.array(draw(st.lists(st.integers(-(2**20), 2**20), min_size=n, max_size=n)),
                            np.int64)
            ms = tuple(draw(significand) for _ in range(n if per_channel else 1))
            jitter = draw(st.integers(-3, 3))
            cs = tuple(_spread_shift(k, za, fa, jitter + draw(st.integers(0, 1))) for _ in ms)
            out = fa
            rq = RequantParams(family, ms, cs, out_zero_point=zero_point(draw, out, family),
                               out_format=out)
            p = GemmParams(fa, INT8, za, zw, 32, rq)
            try:
                return kernel_case("hyp.torch_native.linear", 0, "linear.gemm", p,
                                   {"x": x, "w": w, "bias": bias})
            except Exception:  # an accumulator outside int32: not a case
                from hypothesis import reject

                reject()
                raise

        return strat()

    @st.composite
    def requantize(draw: Any, family: str = "fp32") -> Case:
        out = draw(st.sampled_from([UINT8, INT8]))
        m = draw(significand)
        c = draw(st.integers(24, 63) if family == "fp32" else st.integers(22, 40))
        limit = min(2**31 - 1, ((2**31 - 1) << c) // (m * 2))  # |x·m·2^-c| < 2^30
        shape = (draw(st.integers(1, 3)), draw(st.integers(1, 4)))
        n = shape[0] * shape[1]
        near = st.integers(-(2**18), 2**18).map(lambda t: ((2 * t + 1) << (c - 1)) // m)
        el = st.one_of(st.integers(-limit, limit), near.filter(lambda v: abs(v) <= limit),
                       st.sampled_from([0, 1, -1, 2**24 + 1, -(2**24) - 1]).filter(
                           lambda v: abs(v) <= limit))
        x = np.array(draw(st.lists(el, min_size=n, max_size=n)), np.int64).reshape(shape)
        rq = RequantParams(family, (m,), (c,), out_zero_point=zero_point(draw, out, family),
                           out_format=out)
        return kernel_case("hyp.torch_native.requantize", 0, f"requantize.{family}", rq,
                           {"x": x})

    @st.composite
    def matmul_pow2(draw: Any) -> Case:
        fmt = draw(st.sampled_from([UINT8, INT8]))
        za, zb = (draw(st.integers(fmt.min, fmt.max)) for _ in range(2))
        mag = max(abs(fmt.min - za), abs(fmt.max - za)) * max(abs(fmt.min - zb),
                                                               abs(fmt.max - zb))
        kmax = max(1, min(64, ((1 << 24) - 1) // max(mag, 1)))
        batch = draw(st.sampled_from([(), (2,), (2, 3)]))
        mm, k, nn = draw(st.integers(1, 5)), draw(st.integers(1, kmax)), draw(st.integers(1, 5))
        a = values(draw, (*batch, mm, k), fmt, False)
        b = values(draw, (*batch, k, nn), fmt, False)
        zo = zero_point(draw, fmt, "fp32_zp")
        c = draw(st.one_of(st.integers(1, 3), st.integers(0, 20)))  # small c: many ties
        rq = RequantParams("fp32_zp", (1,), (c,), out_zero_point=zo, out_format=fmt)
        p = GemmParams(fmt, fmt, za, zb, 32, rq)
        return kernel_case("hyp.torch_native.matmul_pow2", 0, "matmul.gemm", p, {"a": a, "b": b})

    @st.composite
    def int_mm(draw: Any) -> Case:
        """int8 × int8 → int32 without zero points (torch._int_mm on CUDA): shapes around
        cuBLAS's rules (M > 16, K and N multiples of 8 — others are padded), extremes."""
        m = draw(st.sampled_from([1, 16, 17, 33]))
        k = draw(st.sampled_from([1, 8, 9, 64, 1000, 4096]))
        n = draw(st.sampled_from([1, 8, 9, 24]))
        a = values(draw, (m, k), INT8, draw(st.booleans()))
        b = values(draw, (k, n), INT8, draw(st.booleans()))
        p = GemmParams(INT8, INT8, 0, 0)
        return kernel_case("hyp.torch_native.int_mm", 0, "matmul.gemm", p, {"a": a, "b": b})

    return {
        "torch_native.int_mm": lambda: int_mm(),
        "torch_native.linear": lambda: linear(False),
        "torch_native.linear_bigacc": lambda: linear(True),
        "torch_native.linear_zp_first": lambda: linear(False, "fp32_zp"),
        "torch_native.linear_bigacc_zp_first": lambda: linear(True, "fp32_zp"),
        "torch_native.requantize": lambda: requantize(),
        "torch_native.requantize_zp_first": lambda: requantize("fp32_zp"),
        "torch_native.matmul_pow2": lambda: matmul_pow2(),
    }


def regression_cases() -> list[Case]:
    """Named minimal reproducers of the disagreements found (and agreements pinned at the
    edges); known entries match them by name (refq/crosscheck/known/torch-native.json)."""
    cases: list[Case] = []

    def lin(name: str, x: Any, w: Any, bias: Any, fa: IntFormat, za: int, zw: int,
            m: int, c: int, zo: int) -> None:
        rq = RequantParams("fp32", (m,), (c,), out_zero_point=zo, out_format=fa)
        cases.append(kernel_case(name, 0, "linear.gemm", GemmParams(fa, INT8, za, zw, 32, rq),
                                 {"x": x, "w": w, "bias": bias}))

    # BUG (fbgemm, x86, qnnpack): a scaled value >= 2^31 converts (CVTPS2DQ) to INT32_MIN,
    # which then saturates to the output minimum: 255*127*100 * 1024 = 3.3e9 -> 0, not 255.
    lin("torch_native.regress.linear-overflow-to-zero",
        [[255] * 100], [[127] * 100], [0], UINT8, 0, 0, 1024, 0, 0)
    # the same, without a multiplier above 1: a requantize input near 2^31, m·2^-c ~ 1
    rq = RequantParams("fp32", ((1 << 24) - 1,), (23,), out_zero_point=0, out_format=UINT8)
    cases.append(kernel_case("torch_native.regress.requantize-overflow-to-zero", 0,
                             "requantize.fp32", rq, {"x": [[2**31 - 1, 2**30 + 2**29]]}))
    # agreements pinned where binary32 arithmetic differs from exact rounding of acc·m/2^c:
    # the accumulator 257·2^16 + 1 > 2^24 converts to 257·2^16 (a tie to even), so
    # acc/2^17 = 128.5 + 2^-17 gives 128, not 129
    lin("torch_native.regress.linear-acc-rounded-to-binary32",
        [[0]], [[0]], [257 * 2**16 + 1], UINT8, 0, 0, 1, 17, 0)
    # the product 5335998 · 10173989 rounds (binary32) up onto a .5 tie, then to even:
    # 198, where the exact quotient rounds to 197
    lin("torch_native.regress.linear-product-rounded-to-binary32",
        [[0]], [[0]], [5335998], UINT8, 0, 0, 10173989, 38, 0)
    # agreements pinned: quantized::matmul (dequantize, float matmul, quantize_per_tensor)
    # and onednn's quantized::linear add the zero point before rounding (fp32_zp):
    # acc/2 = 0.5 with zp 1 gives rne(1.5) = 2, where fp32 (zp after) gives rne(0.5) + 1 = 1
    rq = RequantParams("fp32_zp", (1,), (1,), out_zero_point=1, out_format=UINT8)
    cases.append(kernel_case("torch_native.regress.matmul-zero-point-before-rounding", 0,
                             "matmul.gemm", GemmParams(UINT8, UINT8, 0, 0, 32, rq),
                             {"a": [[1]], "b": [[1]]}))
    rq = RequantParams("fp32_zp", (1 << 23,), (24,), out_zero_point=101, out_format=UINT8)
    cases.append(kernel_case("torch_native.regress.linear-zero-point-before-rounding", 0,
                             "linear.gemm", GemmParams(UINT8, INT8, 128, 0, 32, rq),
                             {"x": [[123], [125], [127], [129], [131], [133]], "w": [[1]],
                              "bias": [0]}))
    return cases


def known(engine: str | None = None) -> list[Known]:
    """The known disagreements of ``engine`` (every engine's for None: the composite)."""
    return for_engine(load_known(KNOWN_FILE), engine)


def extras(engine: str | None = None) -> SuiteExtras:
    return SuiteExtras(strategies(), regression_cases(), known(engine))


__all__ = ["KNOWN_FILE", "extras", "known", "regression_cases", "strategies"]
