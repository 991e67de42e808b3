"""The onnxruntime adapter's own case family (op ``onnx``): ONNX operators whose semantics
refq's kernel variants have no case for, each with an exact oracle
(:mod:`refq.crosscheck.adapters.onnx_oracles`).

Float tensors (ONNX inputs ``x`` of QuantizeLinear, the output of DequantizeLinear) are
stored in a case as the int32 BIT PATTERNS of float32 values (tensor names ending ``_bits``),
so the harness's exact integer comparison applies; scales are float32 bit patterns in
``params``. Variants: ``quantize_linear``, ``dequantize_linear``, ``qlinear_matmul``.

Besides, :func:`hunt_strategies` returns hypothesis strategies of big-K refq ``matmul.gemm``
kernel cases (K up to 4096, operands at their format extremes) for the int32 accumulation, and
:func:`regression_cases` the named minimal reproducers of every disagreement found on this
machine (see refq/crosscheck/known/onnxruntime.json and docs/backends/onnxruntime.md). The
graphs that run them are built by :mod:`refq.crosscheck.adapters.onnx_graphs`; the suite
run is :mod:`refq.crosscheck.adapters.onnx_suite`.
"""

from __future__ import annotations

from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.onnx_oracles import (
    dequantize_linear_oracle,
    f32_bits,
    f32_from_bits,
    qlinear_matmul_oracle,
    quantize_linear_oracle,
    u8s8_pair_saturates,
)
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.manifest import write_case_set
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat
from refq.ops import GemmParams

UINT16 = IntFormat(16, False)
QLINEAR_TYPES = ((INT8, INT8, INT8), (UINT8, INT8, UINT8), (UINT8, UINT8, UINT8))
"""(a, b, y) formats onnxruntime 1.x implements QLinearMatMul for (y has a's type)."""
VARIANTS = ("quantize_linear", "dequantize_linear", "qlinear_matmul")
KNOWN_FILE = Path(__file__).resolve().parents[1] / "known" / "onnxruntime.json"
"""The known-disagreements file of the onnxruntime backend."""
Q_FORMATS = {"int8": INT8, "uint8": UINT8, "int16": INT16, "uint16": UINT16}
"""Integer formats of QuantizeLinear outputs (and DequantizeLinear inputs, with int32)."""
DQ_FORMATS = {**Q_FORMATS, "int32": INT32}


def _scales(params: dict[str, Any], key: str) -> list[Fraction]:
    return [Fraction(float(f32_from_bits(b))) for b in params[key]]


# ------------------------------------------------------------------ case builders
def _qdq_params(
    scale: list[float], zp: list[int], format_key: str, fmt: IntFormat, axis: int | None
) -> dict[str, Any]:
    """Params of a QuantizeLinear / DequantizeLinear case: float32 scale bit patterns, zero
    points, the integer side's format under ``format_key`` (out_format / in_format), axis."""
    return {
        "scale": [int(v) for v in f32_bits(np.asarray(scale, np.float32))],
        "zero_point": [int(z) for z in zp],
        format_key: fmt.name,
        "axis": axis,
    }


def quantize_linear_case(
    name: str,
    x: npt.ArrayLike,
    scale: list[float],
    zp: list[int],
    fmt: IntFormat,
    axis: int | None = None,
) -> Case:
    xf = np.asarray(x, np.float32)
    params = _qdq_params(scale, zp, "out_format", fmt, axis)
    case = Case(name, "onnx", 0, {"op": "onnx", "variant": "quantize_linear", "params": params})
    case.add("x_bits", f32_bits(xf), INT32, "input")
    y = quantize_linear_oracle(xf, _scales(params, "scale"), params["zero_point"], fmt, axis)
    case.add("y", y, fmt, "output")
    return case


def dequantize_linear_case(
    name: str,
    x: npt.ArrayLike,
    scale: list[float],
    zp: list[int],
    fmt: IntFormat,
    axis: int | None = None,
) -> Case:
    xa = np.asarray(x, np.int64)
    params = _qdq_params(scale, zp, "in_format", fmt, axis)
    case = Case(name, "onnx", 0, {"op": "onnx", "variant": "dequantize_linear", "params": params})
    case.add("x", xa, fmt, "input")
    y = dequantize_linear_oracle(xa, _scales(params, "scale"), params["zero_point"], axis)
    case.add("y_bits", y, INT32, "output")
    return case


def qlinear_matmul_case(
    name: str,
    a: npt.ArrayLike,
    b: npt.ArrayLike,
    fa: IntFormat,
    fb: IntFormat,
    sa: float,
    za: int,
    sb: float,
    zb: int,
    sy: float,
    zy: int,
    fy: IntFormat,
) -> Case:
    aa, ba = np.asarray(a, np.int64), np.asarray(b, np.int64)
    bits = [int(v) for v in f32_bits(np.asarray([sa, sb, sy], np.float32))]
    params: dict[str, Any] = {
        "a_format": fa.name,
        "b_format": fb.name,
        "out_format": fy.name,
        "scales": bits,
        "a_zero_point": za,
        "b_zero_point": zb,
        "y_zero_point": zy,
    }
    case = Case(name, "onnx", 0, {"op": "onnx", "variant": "qlinear_matmul", "params": params})
    case.add("a", aa, fa, "input")
    case.add("b", ba, fb, "input")
    s = _scales(params, "scales")
    case.add("y", qlinear_matmul_oracle(aa, ba, za, zb, s[0] * s[1] / s[2], zy, fy), fy, "output")
    return case


# ------------------------------------------------------------------ adapter side
def family_supports(case: Case) -> bool:
    """Whether a case of the ``onnx`` family is well formed for the adapter."""
    v = case.meta.get("variant")
    p = case.meta.get("params", {})
    if v == "quantize_linear":
        return p.get("out_format") in Q_FORMATS and "x_bits" in case.tensors
    if v == "dequantize_linear":
        return p.get("in_format") in DQ_FORMATS and "x" in case.tensors
    if v == "qlinear_matmul":
        names = (p.get("a_format"), p.get("b_format"), p.get("out_format"))
        return names in {(a.name, b.name, y.name) for a, b, y in QLINEAR_TYPES}
    return False


def predicted_known(case: Case) -> bool:
    """Whether a family case falls under a known disagreement of this machine's ORT (used
    by ``OnnxRuntimeBackend(avoid_known=True)``)."""
    if case.meta.get("variant") != "qlinear_matmul":
        return False
    p = case.meta["params"]
    return u8s8_pair_saturates(
        case.tensors["a"].values,
        case.tensors["b"].values,
        IntFormat.parse(p["a_format"]),
        IntFormat.parse(p["b_format"]),
    )


# ------------------------------------------------------------------ hypothesis strategies
def _float32(v: float) -> float:
    """``v`` rounded to float32 (to nearest even), as a Python float; out of range → ±inf
    without NumPy's overflow warning (the strategies below replace non-finite draws)."""
    with np.errstate(over="ignore"):
        return float(np.float32(v))


def hunt_strategies() -> dict[str, Callable[[], Any]]:
    """Hypothesis strategies (suite key → maker) of the family and of big-K GEMM cases."""
    from hypothesis import strategies as st

    fmts = st.sampled_from([INT8, UINT8, INT16, UINT16])
    scale_st = st.one_of(
        st.floats(1e-3, 10.0),
        st.sampled_from([1.0, 0.5, 0.25, 2.0, 3.0, 0.1, 1 / 3, 1e-30, 1e-38, 3e38, 1e30]),
        st.floats(1.2e-38, 3e38),
    ).map(_float32)

    def quantize_linear_strat(exact: bool) -> Any:
        @st.composite
        def quantize_linear(draw: Any) -> Case:
            fmt = draw(fmts)
            n = draw(st.integers(1, 12))
            scale = 2.0 ** draw(st.integers(-24, 24)) if exact else draw(scale_st)
            zp = draw(
                st.one_of(
                    st.integers(fmt.min, fmt.max), st.sampled_from([fmt.min, fmt.max, 1, 3, 0])
                )
            )
            # ties x = (k + 1/2)·scale, multiples, and any float (rounded to float32)
            k = st.integers(-(2**17), 2**17)
            tie = k.map(lambda i: _float32((i + 0.5) * scale))
            mult = k.map(lambda i: _float32(i * scale))
            anyf = st.floats(-3e38, 3e38).map(_float32)
            xs = draw(st.lists(st.one_of(tie, mult, anyf), min_size=n, max_size=n))
            xs = [v if np.isfinite(v) else 0.0 for v in xs]
            return quantize_linear_case("hyp.onnx.quantize_linear", xs, [scale], [zp], fmt)

        return quantize_linear()

    def dequantize_linear_strat(int32: bool) -> Any:
        @st.composite
        def dequantize_linear(draw: Any) -> Case:
            fmt = INT32 if int32 else draw(st.sampled_from([INT8, UINT8, INT16, UINT16]))
            n = draw(st.integers(1, 12))
            scale = draw(scale_st)
            zp = 0 if fmt == INT32 else draw(st.integers(fmt.min, fmt.max))
            xs = draw(
                st.lists(
                    st.one_of(
                        st.integers(fmt.min, fmt.max), st.sampled_from([fmt.min, fmt.max, 0])
                    ),
                    min_size=n,
                    max_size=n,
                )
            )
            return dequantize_linear_case("hyp.onnx.dequantize_linear", xs, [scale], [zp], fmt)

        return dequantize_linear()

    @st.composite
    def qlinear_matmul(draw: Any) -> Case:
        fa, fb, fy = draw(st.sampled_from(QLINEAR_TYPES))
        m, k, n = draw(st.integers(1, 4)), draw(st.integers(1, 64)), draw(st.integers(1, 4))

        def vals(fmt: IntFormat, shape: tuple[int, int]) -> npt.NDArray[np.int64]:
            el = st.one_of(st.integers(fmt.min, fmt.max), st.sampled_from([fmt.min, fmt.max]))
            return np.array(
                draw(st.lists(el, min_size=shape[0] * shape[1], max_size=shape[0] * shape[1])),
                np.int64,
            ).reshape(shape)

        a, b = vals(fa, (m, k)), vals(fb, (k, n))
        sc = st.floats(1e-4, 1.0).map(_float32)
        return qlinear_matmul_case(
            "hyp.onnx.qlinear_matmul",
            a,
            b,
            fa,
            fb,
            draw(sc),
            draw(st.integers(fa.min, fa.max)),
            draw(sc),
            draw(st.integers(fb.min, fb.max)),
            _float32(draw(st.floats(1e-3, 100.0))),
            draw(st.integers(fy.min, fy.max)),
            fy,
        )

    @st.composite
    def matmul_bigk(draw: Any) -> Case:
        fa, fb = draw(st.sampled_from([INT8, UINT8])), draw(st.sampled_from([INT8, UINT8]))
        k = draw(st.sampled_from([1, 2, 3, 15, 16, 17, 255, 256, 1023, 4096]))
        m, n = draw(st.integers(1, 3)), draw(st.integers(1, 3))
        za = draw(st.sampled_from([0, fa.min, fa.max]))
        zb = draw(st.sampled_from([0, fb.min, fb.max]))
        a = np.full((m, k), draw(st.sampled_from([fa.min, fa.max])), np.int64)
        b = np.full((k, n), draw(st.sampled_from([fb.min, fb.max])), np.int64)
        if draw(st.booleans()):  # sprinkle the opposite extreme
            a[..., :: draw(st.integers(2, 7))] = fa.min + fa.max - a[..., 0:1]
        p = GemmParams(a_format=fa, b_format=fb, a_zero_point=za, b_zero_point=zb)
        try:
            return kernel_case("hyp.onnx.matmul_bigk", 0, "matmul.gemm", p, {"a": a, "b": b})
        except Exception:  # exact sum outside int32 for refq: not a case
            from hypothesis import reject

            reject()
            raise

    return {
        "onnx.quantize_linear_exact": lambda: quantize_linear_strat(True),
        "onnx.quantize_linear": lambda: quantize_linear_strat(False),
        "onnx.dequantize_linear": lambda: dequantize_linear_strat(False),
        "onnx.dequantize_linear_int32": lambda: dequantize_linear_strat(True),
        "onnx.qlinear_matmul": qlinear_matmul,
        "onnx.matmul_bigk": matmul_bigk,
    }


# ------------------------------------------------------------------ named regressions
def regression_cases() -> list[Case]:
    """The named minimal reproducers of this machine's onnxruntime disagreements (and of
    agreements at the edges worth pinning); case names are matched by the known file."""
    cases: list[Case] = []
    # MatMulInteger u8 x s8: 255*127 + 255*127 = 64770 > int16 max (AVX2 vpmaddubsw)
    p = GemmParams(a_format=UINT8, b_format=INT8)
    cases.append(
        kernel_case(
            "onnx.regress.mmi-u8s8-pair-saturation",
            0,
            "matmul.gemm",
            p,
            {"a": [[255, 255]], "b": [[127], [127]]},
        )
    )
    cases.append(
        kernel_case(
            "onnx.regress.mmi-u8s8-pair-saturation-neg",
            0,
            "matmul.gemm",
            p,
            {"a": [[255, 255]], "b": [[-128], [-128]]},
        )
    )
    # the same saturation seen through linear (MatMulInteger + Add)
    cases.append(
        kernel_case(
            "onnx.regress.linear-u8s8-pair-saturation",
            0,
            "linear.gemm",
            p,
            {"x": [[255, 255]], "w": [[127, 127]], "bias": [0]},
        )
    )
    # agreements pinned at the edges
    p8 = GemmParams(a_format=INT8, b_format=INT8)
    cases.append(
        kernel_case(
            "onnx.regress.mmi-s8s8-k4096-extreme",
            0,
            "matmul.gemm",
            p8,
            {"a": np.full((1, 4096), -128), "b": np.full((4096, 1), -128)},
        )
    )
    pu = GemmParams(a_format=UINT8, b_format=UINT8, a_zero_point=0, b_zero_point=255)
    cases.append(
        kernel_case(
            "onnx.regress.mmi-u8u8-k4096-extreme",
            0,
            "matmul.gemm",
            pu,
            {"a": np.full((1, 4096), 255), "b": np.zeros((4096, 1), int)},
        )
    )
    cases.append(
        quantize_linear_case(
            "onnx.regress.ql-tie-odd-zp", [0.5, 1.5, 2.5, -0.5, -1.5], [1.0], [1], INT8
        )
    )
    cases.extend(_found_cases())
    return cases


def _found_cases() -> list[Case]:
    """Regressions pinned from the hunt on this machine (onnxruntime 1.32.0, AVX2, no VNNI)."""
    return [
        # x/scale = 1.49999994 exactly; float32 division gives 1.5, half-even → 2; exact → 1
        quantize_linear_case(
            "onnx.regress.ql-f32-quotient-double-rounding", [np.float32(0.0015)], [0.001], [0], INT8
        ),
        # int32 x is cast to float32 (rounded) before the multiplication: two roundings
        dequantize_linear_case(
            "onnx.regress.dql-int32-double-rounding", [445782865], [0.001], [0], INT32
        ),
        # QLinearMatMul u8×s8 inherits the 16-bit pair-sum saturation
        qlinear_matmul_case(
            "onnx.regress.qlmm-u8s8-pair-saturation",
            [[255, 255]],
            [[127], [127]],
            UINT8,
            INT8,
            1 / 512,
            0,
            1.0,
            0,
            1.0,
            0,
            UINT8,
        ),
    ]


def write_regressions(folder: Path) -> list[str]:
    """Write :func:`regression_cases` as a golden set (``refq check --golden``); names."""
    return write_case_set(folder, regression_cases())


__all__ = [
    "DQ_FORMATS",
    "KNOWN_FILE",
    "QLINEAR_TYPES",
    "Q_FORMATS",
    "UINT16",
    "VARIANTS",
    "dequantize_linear_case",
    "family_supports",
    "hunt_strategies",
    "predicted_known",
    "qlinear_matmul_case",
    "quantize_linear_case",
    "regression_cases",
    "write_regressions",
]
