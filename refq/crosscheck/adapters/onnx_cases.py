"""The onnxruntime adapter's own case family (op ``onnx``): ONNX operators whose semantics
refq's kernel table has no case for, each with an exact oracle in Python integers/Fractions.

Float tensors (ONNX inputs ``x`` of QuantizeLinear, the output of DequantizeLinear) are
stored in a case as the int32 BIT PATTERNS of float32 values (tensor names ending ``_bits``),
so the harness's exact integer comparison applies; scales are float32 bit patterns in
``params``.

Variants and oracles (source: the ONNX operator specifications, opset 21):

``quantize_linear``    y = saturate(round_half_even(x / scale) + zp): x / scale is the EXACT
                       rational quotient of the two float32 values, rounded once, then the
                       zero point added, then saturation to int8/uint8/int16/uint16.
``dequantize_linear``  y = (x - zp) · scale, the exact product rounded once to the nearest
                       float32 (ties to even); x int8/uint8/int16/uint16/int32 (int32: zp 0).
``qlinear_matmul``     y = saturate(round_half_even(Σ(a-za)(b-zb) · sa·sb/sy) + zy) with the
                       exact product of the float32 scales (no intermediate float rounding).

Besides, :func:`hunt_strategies` returns hypothesis strategies of big-K refq ``matmul.gemm``
kernel cases (K up to 4096, operands at their format extremes) for the int32 accumulation, and
:func:`regression_cases` the named minimal reproducers of every disagreement found on this
machine (see refq/crosscheck/known/onnxruntime.json and docs/backends/onnxruntime.md).
"""

from __future__ import annotations

import fnmatch
import tempfile
from collections.abc import Callable
from fractions import Fraction
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.known import Known, load_known
from refq.crosscheck.report import SuiteReport
from refq.errors import BackendError, SpecError
from refq.golden.case import Case, write_case
from refq.golden.kernels import kernel_case
from refq.golden.manifest import write_manifest
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat
from refq.ops import GemmParams

if TYPE_CHECKING:
    from refq.crosscheck.adapters.onnxruntime_backend import OnnxRuntimeBackend

UINT16 = IntFormat(16, False)
QLINEAR_TYPES = ((INT8, INT8, INT8), (UINT8, INT8, UINT8), (UINT8, UINT8, UINT8))
"""(a, b, y) formats onnxruntime 1.x implements QLinearMatMul for (y has a's type)."""
VARIANTS = ("quantize_linear", "dequantize_linear", "qlinear_matmul")
KNOWN_FILE = Path(__file__).resolve().parents[1] / "known" / "onnxruntime.json"
"""The known-disagreements file of the onnxruntime backend."""


# ------------------------------------------------------------------ float32 <-> bits, exact
def f32_bits(x: npt.ArrayLike) -> npt.NDArray[np.int64]:
    """int32 bit patterns (as int64) of float32 values."""
    return np.asarray(x, np.float32).view(np.int32).astype(np.int64)


def f32_from_bits(b: npt.ArrayLike) -> npt.NDArray[np.float32]:
    return np.asarray(b, np.int64).astype(np.int32).view(np.float32)


def round_half_even(q: Fraction) -> int:
    """Nearest integer to ``q``, ties to even (exact)."""
    fl = q.numerator // q.denominator
    r = q - fl
    if r > Fraction(1, 2) or (r == Fraction(1, 2) and fl % 2):
        return fl + 1
    return fl


def to_f32_exact(q: Fraction) -> np.float32:
    """``q`` rounded ONCE to the nearest float32, ties to even (overflow → ±inf)."""
    if q == 0:
        zero: np.float32 = np.float32(0)
        return zero
    sign = -1 if q < 0 else 1
    a = abs(q)
    e = a.numerator.bit_length() - a.denominator.bit_length()
    if Fraction(2) ** e > a:
        e -= 1  # now 2^e <= a < 2^(e+1)
    e = max(e, -126)  # subnormals share the exponent of the smallest normal
    m = round_half_even(a * Fraction(2) ** (23 - e))
    if m >= 2**24:
        m //= 2  # exact: m == 2^24 after a carry
        e += 1
    value = float(sign) * float("inf") if e > 127 else float(sign * m) * 2.0 ** (e - 23)
    out: np.float32 = np.float32(value)
    return out


# ------------------------------------------------------------------ oracles
def _scales(params: dict[str, Any], key: str) -> list[Fraction]:
    return [Fraction(float(f32_from_bits(b))) for b in params[key]]


def _per_axis(shape: tuple[int, ...], n: int, axis: int | None) -> npt.NDArray[np.int64]:
    """Index of each element's scale (0 for per-tensor)."""
    if n == 1 or axis is None:
        return np.zeros(shape, np.int64)
    idx = np.arange(shape[axis], dtype=np.int64).reshape(
        [-1 if d == axis % len(shape) else 1 for d in range(len(shape))]
    )
    return np.broadcast_to(idx, shape)


def quantize_linear_oracle(
    x: npt.NDArray[np.float32],
    scales: list[Fraction],
    zps: list[int],
    fmt: IntFormat,
    axis: int | None,
) -> npt.NDArray[np.int64]:
    """saturate(round_half_even(x / scale) + zp), exact rational quotient."""
    sel = _per_axis(x.shape, len(scales), axis)
    out = np.empty(x.shape, np.int64)
    for i in np.ndindex(x.shape):
        s = int(sel[i])
        v = round_half_even(Fraction(float(x[i])) / scales[s]) + zps[s]
        out[i] = min(max(v, fmt.min), fmt.max)  # saturation, in Python ints
    return out


def dequantize_linear_oracle(
    x: npt.NDArray[np.int64], scales: list[Fraction], zps: list[int], axis: int | None
) -> npt.NDArray[np.int64]:
    """float32 bits of (x - zp)·scale rounded once to float32."""
    sel = _per_axis(x.shape, len(scales), axis)
    out = np.empty(x.shape, np.float32)
    for i in np.ndindex(x.shape):
        s = int(sel[i])
        out[i] = to_f32_exact((int(x[i]) - zps[s]) * scales[s])
    return f32_bits(out)


def qlinear_matmul_oracle(
    a: npt.NDArray[np.int64],
    b: npt.NDArray[np.int64],
    za: int,
    zb: int,
    real: Fraction,
    zy: int,
    fy: IntFormat,
) -> npt.NDArray[np.int64]:
    """saturate(round_half_even(acc·real) + zy), acc exact in Python ints."""
    acc = np.matmul((a - za).astype(object), (b - zb).astype(object))
    out = np.empty(acc.shape, np.int64)
    for i in np.ndindex(acc.shape):
        v = round_half_even(int(acc[i]) * real) + zy
        out[i] = min(max(v, fy.min), fy.max)  # saturation, in Python ints
    return out


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
_Q_FORMATS = {"int8": INT8, "uint8": UINT8, "int16": INT16, "uint16": UINT16}
_DQ_FORMATS = {**_Q_FORMATS, "int32": INT32}


def family_supports(case: Case) -> bool:
    """Whether a case of the ``onnx`` family is well formed for the adapter."""
    v = case.meta.get("variant")
    p = case.meta.get("params", {})
    if v == "quantize_linear":
        return p.get("out_format") in _Q_FORMATS and "x_bits" in case.tensors
    if v == "dequantize_linear":
        return p.get("in_format") in _DQ_FORMATS and "x" in case.tensors
    if v == "qlinear_matmul":
        names = (p.get("a_format"), p.get("b_format"), p.get("out_format"))
        return names in {(a.name, b.name, y.name) for a, b, y in QLINEAR_TYPES}
    return False


def predicted_known(case: Case) -> bool:
    """Whether a family case falls under a known disagreement of this machine's ORT (used
    by ``OnnxRuntimeBackend(avoid_known=True)``)."""
    from refq.crosscheck.adapters.onnxruntime_backend import u8s8_pair_saturates

    if case.meta.get("variant") != "qlinear_matmul":
        return False
    p = case.meta["params"]
    return u8s8_pair_saturates(
        case.tensors["a"].values,
        case.tensors["b"].values,
        IntFormat.parse(p["a_format"]),
        IntFormat.parse(p["b_format"]),
    )


def _dt(fmt: IntFormat) -> Any:
    return {INT8: np.int8, UINT8: np.uint8, INT16: np.int16, UINT16: np.uint16, INT32: np.int32}[
        fmt
    ]


def run_family(backend: OnnxRuntimeBackend, case: Case) -> dict[str, npt.NDArray[np.integer]]:
    """Run a family case on onnxruntime; float outputs come back as int32 bit patterns."""
    v = case.meta["variant"]
    p = case.meta["params"]
    if v == "quantize_linear":
        fmt = _Q_FORMATS[p["out_format"]]
        x = f32_from_bits(case.tensors["x_bits"].values)
        s = f32_from_bits(p["scale"])
        z = np.asarray(p["zero_point"], _dt(fmt))
        axis = p.get("axis")
        if len(s) == 1:
            s, z = s.reshape(()), z.reshape(())
        y = backend.quantize_linear(x, s, z, fmt, 1 if axis is None else int(axis))
        return {"y": y}
    if v == "dequantize_linear":
        fmt = _DQ_FORMATS[p["in_format"]]
        x = case.tensors["x"].values.astype(_dt(fmt))
        s = f32_from_bits(p["scale"])
        z = np.asarray(p["zero_point"], _dt(fmt))
        axis = p.get("axis")
        if len(s) == 1:
            s, z = s.reshape(()), z.reshape(())
        yf = backend.dequantize_linear(x, s, z, fmt, 1 if axis is None else int(axis))
        return {"y_bits": f32_bits(yf)}
    if v == "qlinear_matmul":
        fa, fb, fy = (IntFormat.parse(p[k]) for k in ("a_format", "b_format", "out_format"))
        sc = f32_from_bits(p["scales"])
        y = backend.qlinear_matmul(
            case.tensors["a"].values.astype(_dt(fa)),
            sc[0],
            np.array(p["a_zero_point"], _dt(fa)),
            case.tensors["b"].values.astype(_dt(fb)),
            sc[1],
            np.array(p["b_zero_point"], _dt(fb)),
            sc[2],
            np.array(p["y_zero_point"], _dt(fy)),
            fa,
            fb,
            fy,
        )
        return {"y": y}
    raise BackendError(f"onnxruntime: unknown onnx-family variant {v!r}")


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
    cases = regression_cases()
    folder.mkdir(parents=True, exist_ok=False)
    for c in cases:
        write_case(c, folder / c.name)
    write_manifest(folder, {c.name: c.kind for c in cases})
    return [c.name for c in cases]


def run_onnx_suite(
    backend: Any,
    *,
    examples: int = 50,
    known: list[Known] | Path | None = KNOWN_FILE,
    artifacts: Path | None = None,
    kernel_ops: list[str] | None = None,
    keys: list[str] | None = None,
    regressions: bool = True,
) -> SuiteReport:
    """The onnxruntime conformance run: refq's own suite on the kernel keys the adapter maps
    (``kernel_ops``, default matmul/linear gemm and requantize.dyadic), the family's and the
    big-K hypothesis strategies (``keys``), and the named regression cases — with the known
    disagreements reported as ``known``.
    """
    from refq.crosscheck.suite import run_suite

    known_list = load_known(known) if isinstance(known, (str, Path)) else list(known or [])
    hunts = {k: v for k, v in hunt_strategies().items() if keys is None or k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        golden = None
        if regressions:
            golden = Path(tmp) / "regressions"
            write_regressions(golden)
        report = run_suite(
            backend,
            ops=[
                *(kernel_ops if kernel_ops is not None else ["matmul.gemm", "linear.gemm"]),
                *hunts,
                "onnx.regress.*",
            ],
            golden=golden,
            examples=examples,
            known=known_list,
            artifacts=artifacts,
            backend_spec="onnxruntime",
            extra_strategies=hunts,
        )
        if regressions:
            for e in report.entries:
                if e.source == "golden":
                    e.source = "regression"
    return report


def check_known_file(path: Path = KNOWN_FILE) -> list[Known]:
    """The known file, validated (each entry has a reproducer naming a regression case)."""
    known = load_known(path)
    names = {c.name for c in regression_cases()}
    for k in known:
        if not k.reproducer:
            raise SpecError(f"{path}: {k.match} has no reproducer")
        if k.match.startswith("onnx.regress.") and not fnmatch.filter(names, k.match):
            raise SpecError(f"{path}: {k.match} names no regression case")
    return known


__all__ = [
    "KNOWN_FILE",
    "VARIANTS",
    "check_known_file",
    "dequantize_linear_case",
    "dequantize_linear_oracle",
    "f32_bits",
    "f32_from_bits",
    "hunt_strategies",
    "qlinear_matmul_case",
    "qlinear_matmul_oracle",
    "quantize_linear_case",
    "quantize_linear_oracle",
    "regression_cases",
    "round_half_even",
    "run_onnx_suite",
    "to_f32_exact",
    "write_regressions",
]
