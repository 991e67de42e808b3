"""The litert backend's own suite additions: hypothesis strategies drawing float32 scales the
way a converted model has them and building refq cases whose integer parameters are derived
from those scales exactly as the resolver running the case derives them (the scales travel
in ``meta["litert"]``), the named regression cases, and the known-disagreements file
(refq/crosscheck/known/litert.json).

Strategies (suite keys); each resolver runs the keys of its own rules
(:data:`~refq.crosscheck.adapters.litert_backend.RULES`) and skips the others by name:

``litert.fully_connected_<family>``        ``linear.gemm`` int8 × int8 → int8, per tensor and
                                           per channel, output scales ≠ 1, accumulators
                                           steered onto ties of the real scale (the
                                           families differ there); ``fp64`` (ref),
                                           ``double_up`` (optimized), ``fp32`` (default).
``litert.fully_connected_uint8_<family>``  the legacy uint8 × uint8 → uint8 kernel, likewise.
``litert.batch_matmul_double``             ``matmul.gemm`` int8 × int8 (zero points) → int8
                                           (ref, optimized).
``litert.batch_matmul_fp32``               the same, rhs zero point 0 (default: XNNPACK).
``litert.batch_matmul_fp32_rhs_zero_point`` with a nonzero rhs zero point, where XNNPACK
                                           differs from ``fp32`` (known).
``litert.batch_matmul``                    int8 × int8 → int32, zero points 0.
``litert.batch_matmul_zero_points``        the same with zero points, which LiteRT's int32
                                           BATCH_MATMUL ignores (a known engine bug).
``litert.requantize_<family>``             ``requantize.<family>`` for the four rules, in the
                                           formats their ops map (int8; uint8 for the
                                           FULLY_CONNECTED rules), with exact ties.
``litert.softmax``                         ``softmax.tflite`` from a float32 scale and beta.
``litert.gelu``                            ``gelu.lut`` from float32 scales, the whole table.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from fractions import Fraction
from functools import partial
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

KNOWN_FILE = Path(__file__).resolve().parents[1] / "known" / "litert.json"
FC_FAMILIES = ("fp64", "double_up", "fp32")
BMM_FAMILIES = ("double", "fp32")


def _f32(v: float) -> float:
    return float(np.float32(v))


def strategies() -> dict[str, Callable[[], Any]]:
    """Hypothesis strategies (suite key → maker)."""
    from hypothesis import reject
    from hypothesis import strategies as st

    from refq.crosscheck.adapters.litert_rules import derive

    def values(draw: Any, shape: tuple[int, ...], fmt: IntFormat) -> npt.NDArray[np.int64]:
        n = int(np.prod(shape))
        if n > 256:
            rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
            return rng.integers(fmt.min, fmt.max + 1, size=shape, dtype=np.int64)
        el = st.one_of(st.integers(fmt.min, fmt.max), st.sampled_from([fmt.min, fmt.max, 0]))
        return np.array(draw(st.lists(el, min_size=n, max_size=n)), np.int64).reshape(shape)

    def scale(draw: Any, lo: float, hi: float) -> float:
        return _f32(2.0 ** draw(st.floats(math.log2(lo), math.log2(hi))))

    def tie_bias(draw: Any, dots: npt.NDArray[np.int64], real: float) -> npt.NDArray[np.int64]:
        """Per channel, a bias that puts row 0's accumulator on (or next to) a .5 tie of
        acc·real — where the families differ."""
        out = []
        for j in range(dots.shape[1]):
            k = draw(st.integers(-100, 100))
            target = round((k + 0.5) / real) + draw(st.sampled_from([0, 0, 1, -1]))
            out.append(target - int(dots[0, j]))
        return np.clip(np.array(out, np.int64), -(2**31), 2**31 - 1)

    def fully_connected(family: str, kind: str) -> Any:
        @st.composite
        def strat(draw: Any) -> Case:
            fmt = UINT8 if kind == "uint8" else INT8
            m = draw(st.integers(1, 8))
            k = draw(st.one_of(st.integers(1, 48), st.sampled_from([64, 256, 1024])))
            n = draw(st.integers(1, 9))
            per_channel = kind == "int8" and draw(st.booleans())
            s_x = scale(draw, 1e-3, 0.1)
            s_w = [scale(draw, 1e-3, 0.05) for _ in range(n if per_channel else 1)]
            # output scale: typical accumulators spread over ±32 output steps
            s_o = _f32(s_x * max(s_w) * math.sqrt(k) * 74 * 74 / 32 * draw(st.floats(0.5, 2)))
            za = draw(st.integers(fmt.min, fmt.max))
            zw = draw(st.integers(0, 255)) if kind == "uint8" else 0
            zo = draw(st.integers(fmt.min, fmt.max))
            x = values(draw, (m, k), fmt)
            w = values(draw, (n, k), fmt)
            dots = (x - za) @ (w - zw).T
            real = float(s_x) * min(s_w) / float(s_o)
            bias = (tie_bias(draw, dots, real) if draw(st.booleans()) else np.array(
                draw(st.lists(st.integers(-(2**16), 2**16), min_size=n, max_size=n)), np.int64))
            try:
                ms = [derive(family, s_x, v, s_o) for v in s_w]
                rq = RequantParams(family, tuple(v[0] for v in ms), tuple(v[1] for v in ms),
                                   out_zero_point=zo, out_format=fmt)
                p = GemmParams(fmt, fmt, za, zw, 32, rq)
                return kernel_case(f"hyp.litert.fully_connected_{kind}", 0, "linear.gemm", p,
                                   {"x": x, "w": w, "bias": bias},
                                   extra={"litert": {"input_scale": s_x, "weight_scales": s_w,
                                                     "output_scale": s_o}})
            except Exception:  # a shift outside a family's range, an int32 overflow
                reject()
                raise

        return strat()

    def batch_matmul(family: str | None, zero_points: bool, rhs_zero_point: bool = True
                     ) -> Any:
        @st.composite
        def strat(draw: Any) -> Case:
            batch = draw(st.sampled_from([(), (2,), (2, 3)]))
            mm, k = draw(st.integers(1, 6)), draw(st.integers(1, 64))
            nn = draw(st.integers(1, 6))
            a = values(draw, (*batch, mm, k), INT8)
            b = values(draw, (*batch, k, nn), INT8)
            za = draw(st.integers(-128, 127)) if zero_points else 0
            zb = draw(st.integers(-128, 127)) if zero_points and rhs_zero_point else 0
            if zero_points and rhs_zero_point and family is not None and zb == 0:
                zb = 1  # the key is about a nonzero rhs zero point
            rq = None
            extra = None
            if family is not None:
                s_a, s_b = scale(draw, 1e-3, 0.1), scale(draw, 1e-3, 0.1)
                s_o = _f32(s_a * s_b * math.sqrt(k) * 74 * 74 / 32 * draw(st.floats(0.5, 2)))
                m_, sh = derive(family, s_a, s_b, s_o)
                rq = RequantParams(family, (m_,), (sh,),
                                   out_zero_point=draw(st.integers(-128, 127)))
                extra = {"litert": {"a_scale": s_a, "b_scale": s_b, "output_scale": s_o}}
            try:
                return kernel_case("hyp.litert.batch_matmul", 0, "matmul.gemm",
                                   GemmParams(INT8, INT8, za, zb, 32, rq), {"a": a, "b": b},
                                   extra=extra)
            except Exception:
                reject()
                raise

        return strat()

    def requantize(family: str) -> Any:
        """``requantize.<family>`` cases every resolver running ``family`` maps: int8 (and,
        for the FULLY_CONNECTED rules, uint8) outputs, nonzero multipliers, x over the range
        the family takes, with exact ties of both signs (x·M = ±(2k+1)·2^(30-shift))."""
        @st.composite
        def strat(draw: Any) -> Case:
            out = INT8 if family == "double" else draw(st.sampled_from([INT8, UINT8]))
            if family in ("double", "double_up"):
                m = draw(st.one_of(st.sampled_from([1 << 30, 3 << 29, 2**31 - 1]),
                                   st.integers(1 << 30, 2**31 - 1)))
                shift = draw(st.one_of(st.integers(-31, 0), st.integers(1, 8)))
                lim = 2 ** (31 - max(shift, 0)) - 1
                odd = m >> ((m & -m).bit_length() - 1)  # M's odd part: exact ties below
                v = m // odd
                tie_bits = 30 - shift - (v.bit_length() - 1)
                ties = [k * (1 << tie_bits) // 1 for k in (1, -1, 3, -3)] if tie_bits >= 0 else []
            else:
                m = draw(st.integers(1, (1 << 24) - 1) if family == "fp32" else st.one_of(
                    st.integers(1, (1 << 24) - 1), st.sampled_from([1, 3, 5])))
                shift = draw(st.integers(max(0, m.bit_length() - 7), m.bit_length() + 30))
                # |round(x·m·2^-c) + zero point| < 2^31: the reference FULLY_CONNECTED casts
                # the rounded product to int32 and adds the output offset in int32 unchecked
                # (the engine bug pinned below); 256 of headroom covers every offset
                lim = min(2**31 - 1, ((2**31 - 1 - 256) << shift) // m)
                ties = [((2 * k + 1) << (shift - 1)) // m for k in range(-3, 3)] if shift else []
            shape = (draw(st.integers(1, 4)), draw(st.integers(1, 6)))
            n = shape[0] * shape[1]
            pool = [t for t in ties if -lim <= t <= lim] + [0, 1, -1, lim, -lim]
            el = st.one_of(st.integers(-lim, lim), st.sampled_from(pool))
            x = np.array(draw(st.lists(el, min_size=n, max_size=n)), np.int64).reshape(shape)
            try:
                rq = RequantParams(family, (m,), (shift,),
                                   out_zero_point=draw(st.integers(out.min, out.max)),
                                   out_format=out)
                return kernel_case(f"hyp.litert.requantize_{family}", 0,
                                   f"requantize.{family}", rq, {"x": x})
            except Exception:
                reject()
                raise

        return strat()

    @st.composite
    def softmax(draw: Any) -> Case:
        from refq.params import tflite_softmax_params

        s_in = scale(draw, 0.01, 0.5)
        beta = draw(st.sampled_from([1.0, 0.5, 2.0])) if draw(st.booleans()) else scale(
            draw, 0.25, 4.0)
        fmt = draw(st.sampled_from([INT8, UINT8]))  # LiteRT: int8 → int8, uint8 → uint8
        rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 40))
        kind = draw(st.sampled_from(["full", "narrow", "equal"]))
        if kind == "full":
            x = values(draw, (rows, cols), fmt)
        else:
            base = draw(st.integers(fmt.min, fmt.max))
            spread = 0 if kind == "equal" else draw(st.integers(1, 60))
            off = values(draw, (rows, cols), UINT8) % (spread + 1)
            x = np.clip(base - off, fmt.min, fmt.max)
        try:
            p = tflite_softmax_params(Fraction(s_in), Fraction(beta), in_format=fmt,
                                      out_format=fmt)
        except Exception:
            reject()
            raise
        return kernel_case("hyp.litert.softmax", 0, "softmax.tflite", p, {"x": x},
                           extra={"litert": {"input_scale": s_in, "beta": beta}})

    @st.composite
    def gelu(draw: Any) -> Case:
        from refq.params import gelu_lut_params

        s_in, s_out = scale(draw, 0.005, 0.1), scale(draw, 0.005, 0.1)
        z_in, z_out = draw(st.integers(-40, 40)), draw(st.integers(-40, 40))
        p = gelu_lut_params(s_in, z_in, s_out, z_out)
        x = np.arange(-128, 128, dtype=np.int64)  # the whole table
        return kernel_case("hyp.litert.gelu", 0, "gelu.lut", p, {"x": x},
                           extra={"litert": {"input_scale": s_in, "input_zero_point": z_in,
                                             "output_scale": s_out,
                                             "output_zero_point": z_out}})

    out: dict[str, Callable[[], Any]] = {}
    for family in FC_FAMILIES:
        out[f"litert.fully_connected_{family}"] = partial(fully_connected, family, "int8")
        out[f"litert.fully_connected_uint8_{family}"] = partial(fully_connected, family,
                                                                "uint8")
    out["litert.batch_matmul_double"] = lambda: batch_matmul("double", True)
    out["litert.batch_matmul_fp32"] = lambda: batch_matmul("fp32", True, rhs_zero_point=False)
    out["litert.batch_matmul_fp32_rhs_zero_point"] = lambda: batch_matmul("fp32", True)
    out["litert.batch_matmul"] = lambda: batch_matmul(None, False)
    out["litert.batch_matmul_zero_points"] = lambda: batch_matmul(None, True)
    for family in ("double", "double_up", "fp32", "fp64"):
        out[f"litert.requantize_{family}"] = partial(requantize, family)
    out["litert.softmax"] = softmax
    out["litert.gelu"] = gelu
    return out


def regression_cases() -> list[Case]:
    """Named minimal reproducers; known entries match them by name."""
    cases: list[Case] = []
    # BUG: BATCH_MATMUL int8 x int8 -> int32 ignores nonzero zero points (all resolvers):
    # [[2, 3]] @ ([[4], [5]] - 1) = 18; LiteRT returns 23 = [[2, 3]] @ [[4], [5]]
    cases.append(kernel_case("litert.regress.batch-matmul-int32-ignores-zero-points", 0,
                             "matmul.gemm", GemmParams(INT8, INT8, 0, 1),
                             {"a": [[2, 3]], "b": [[4], [5]]}))
    # XNNPACK (default resolver) BATCH_MATMUL with a nonzero rhs zero point is not the fp32
    # rule: acc = -91·(-62 - 86) = 13468, 13468·m = 13.498 -> 13; XNNPACK returns 14
    from refq.crosscheck.adapters.litert_rules import derive

    s_a, s_b, s_o = 0.0625588595867157, 0.006398554891347885, 0.3993644416332245
    m_, c_ = derive("fp32", s_a, s_b, s_o)
    rq = RequantParams("fp32", (m_,), (c_,), out_zero_point=0)
    cases.append(kernel_case("litert.regress.xnnpack-batch-matmul-rhs-zero-point", 0,
                             "matmul.gemm", GemmParams(INT8, INT8, 0, 86, 32, rq),
                             {"a": [[-91]], "b": [[-62]]},
                             extra={"litert": {"a_scale": s_a, "b_scale": s_b,
                                               "output_scale": s_o}}))
    # BUG (reference FULLY_CONNECTED): round(double(acc)·scale) is cast to int32 without a
    # range check; 19195385 · 895/8 = 2147484195.6 > 2^31 - 1 becomes INT32_MIN -> -128
    rq = RequantParams("fp64", (895,), (3,), out_zero_point=0, out_format=INT8)
    cases.append(kernel_case("litert.regress.fc-reference-int32-cast-overflow", 0,
                             "requantize.fp64", rq, {"x": [[19195385, -19195385, 100]]}))
    return cases


def known(resolver: str | None = None) -> list[Known]:
    """The known disagreements of ``resolver`` (every resolver's for None: the composite)."""
    return for_engine(load_known(KNOWN_FILE), resolver)


def extras(resolver: str | None = None) -> SuiteExtras:
    return SuiteExtras(strategies(), regression_cases(), known(resolver))


__all__ = ["BMM_FAMILIES", "FC_FAMILIES", "KNOWN_FILE", "extras", "known", "regression_cases",
           "strategies"]
