"""Hypothesis strategies: one per kernel of :data:`refq.golden.kernels.KERNELS`, each
drawing parameters (directly as integers, or from a real scale through refq.params) and
inputs with full ranges, rounding ties, saturation edges and tiny or odd shapes, and
returning a kernel Case whose output ``y`` is refq's.

Importing this module needs hypothesis (``pip install refq[test]``).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import numpy as np

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    from refq.errors import BackendError

    raise BackendError("refq.crosscheck needs hypothesis: pip install 'refq[test]'") from exc

from refq import params as P
from refq.errors import RefqError
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat
from refq.ops import AddParams, GemmParams, LayerNormParams, RequantParams

Strategy = Any  # hypothesis SearchStrategy[Case]


def _shape(draw: st.DrawFn, max_dims: int = 2, max_side: int = 9) -> tuple[int, ...]:
    dims = draw(st.integers(1, max_dims))
    return tuple(draw(st.integers(1, max_side)) for _ in range(dims))


def _values(
    draw: st.DrawFn, shape: tuple[int, ...], lo: int, hi: int, edges: list[int]
) -> np.ndarray:
    """Values in [lo, hi] mixing full-range draws with the given edge values."""
    n = int(np.prod(shape))
    pool = [v for v in edges if lo <= v <= hi] + [lo, hi]
    elem = st.one_of(st.integers(lo, hi), st.sampled_from(pool))
    return np.array(draw(st.lists(elem, min_size=n, max_size=n)), dtype=np.int64).reshape(shape)


def _case(key: str, params: Any, inputs: dict[str, np.ndarray]) -> Case:
    return kernel_case(f"hyp.{key}", 0, key, params, inputs)


_MULT = st.one_of(
    st.sampled_from([0, 1 << 30, 2**31 - 1, 3 << 29]), st.integers(1 << 30, 2**31 - 1)
)
_OUT = st.sampled_from([INT8, UINT8, INT16, IntFormat(4, True)])


@st.composite
def requantize_tflite(draw: st.DrawFn, family: str) -> Case:
    shift = draw(st.one_of(st.integers(-31, 0), st.integers(1, 8)))
    lim = 2 ** (31 - max(shift, 0))
    x = _values(
        draw,
        _shape(draw),
        -lim,
        lim - 1,
        [0, 1, -1, 2**20 + 2**19, -(2**20) - 2**19, 3 << 15, -(3 << 15)],
    )
    out = draw(_OUT)
    zp = draw(st.integers(out.min, out.max))
    p = RequantParams(
        family=family, multiplier=(draw(_MULT),), shift=(shift,), out_zero_point=zp, out_format=out
    )
    return _case(f"requantize.{family}", p, {"x": x})


@st.composite
def requantize_dyadic(draw: st.DrawFn) -> Case:
    b = draw(st.one_of(st.integers(0, 2**31 - 1), st.sampled_from([1, 3, 2**30])))
    c = draw(st.integers(0, 63))
    # exact ties of x·b/2^c for any odd b: x = ±(2k+1)·2^(c-1)
    ties = [] if c == 0 else [t * (1 << (c - 1)) for t in (1, -1, 3, -3)]
    x = _values(
        draw, _shape(draw), -(2**31), 2**31 - 1, [0, 1, -1, 2**30, -(2**30), 5, -5, *ties]
    )
    out = draw(_OUT)
    p = RequantParams(
        family="dyadic",
        multiplier=(b,),
        shift=(c,),
        rounding=draw(
            st.sampled_from(["half_even", "half_away", "half_up", "floor", "ceil", "trunc"])
        ),
        out_zero_point=draw(st.integers(out.min, out.max)),
        out_format=out,
    )
    return _case("requantize.dyadic", p, {"x": x})


_OPERAND = st.sampled_from([INT8, UINT8, IntFormat(4, True), IntFormat(4, False)])


@st.composite
def linear_gemm(draw: st.DrawFn) -> Case:
    fa, fb = draw(_OPERAND), draw(_OPERAND)
    lead, k, n = _shape(draw, 2, 5), draw(st.integers(1, 40)), draw(st.integers(1, 8))
    x = _values(draw, (*lead, k), fa.min, fa.max, [])
    w = _values(draw, (n, k), fb.min, fb.max, [])
    bias = _values(draw, (n,), -(2**20), 2**20, [0])
    requant = None
    family = draw(st.sampled_from([None, "double", "dyadic"]))
    if family == "double":
        requant = RequantParams(
            family="double",
            multiplier=(draw(_MULT),),
            shift=(draw(st.integers(-31, 0)),),
            out_format=INT8,
        )
    elif family == "dyadic":  # what lowered programs use: (acc·b) >> c, half_even
        requant = RequantParams(
            family="dyadic",
            multiplier=(draw(st.integers(1, 2**31 - 1)),),
            shift=(draw(st.integers(20, 40)),),
            rounding="half_even",
            out_zero_point=draw(st.integers(-128, 127)),
            out_format=INT8,
        )
    p = GemmParams(
        a_format=fa,
        b_format=fb,
        a_zero_point=draw(st.integers(fa.min, fa.max)),
        b_zero_point=draw(st.integers(fb.min, fb.max)),
        requant=requant,
    )
    return _case("linear.gemm", p, {"x": x, "w": w, "bias": bias})


@st.composite
def matmul_gemm(draw: st.DrawFn) -> Case:
    fa, fb = draw(_OPERAND), draw(_OPERAND)
    batch = draw(st.sampled_from([(), (2,), (2, 3)]))
    m, k, n = (draw(st.integers(1, 7)) for _ in range(3))
    a = _values(draw, (*batch, m, k), fa.min, fa.max, [])
    b = _values(draw, (*batch, k, n), fb.min, fb.max, [])
    p = GemmParams(
        a_format=fa,
        b_format=fb,
        a_zero_point=draw(st.integers(fa.min, fa.max)),
        b_zero_point=draw(st.integers(fb.min, fb.max)),
    )
    return _case("matmul.gemm", p, {"a": a, "b": b})


_SCALE = st.floats(min_value=1e-3, max_value=0.2, allow_nan=False)


@st.composite
def add_scheme(draw: st.DrawFn, scheme: str) -> Case:
    sa, sb, so = draw(_SCALE), draw(_SCALE), draw(st.floats(0.01, 0.5))
    p: AddParams = P.add_params(sa, sb, so, scheme)
    shape = _shape(draw)
    a = _values(draw, shape, -(2**16), 2**16, [0, 1, -1])
    b = _values(draw, shape, -(2**16), 2**16, [0, 1, -1])
    return _case(f"add.{scheme}", p, {"a": a, "b": b})


def _rows(draw: st.DrawFn, fmt: IntFormat, spread: int) -> np.ndarray:
    """Softmax/LayerNorm rows: a base value plus offsets within ``spread`` (exp stages
    must see small differences), or full-range rows, or all-equal rows."""
    rows, cols = draw(st.integers(1, 4)), draw(st.integers(1, 24))
    kind = draw(st.sampled_from(["narrow", "full", "equal", "dominant"]))
    lo, hi = max(fmt.min, -(2**15)), min(fmt.max, 2**15 - 1)
    if kind == "full":
        return _values(draw, (rows, cols), lo, hi, [])
    base = draw(st.integers(lo, hi))
    if kind == "equal":
        return np.full((rows, cols), base, dtype=np.int64)
    if kind == "dominant":
        x = np.full((rows, cols), lo, dtype=np.int64)
        x[:, draw(st.integers(0, cols - 1))] = hi
        return x
    off = _values(draw, (rows, cols), -spread, 0, [0, -1])
    return np.asarray(np.clip(base + off, lo, hi), dtype=np.int64)


def softmax_variant(variant: str) -> Strategy:
    make: dict[str, tuple[Callable[[float], Any], IntFormat, tuple[float, float]]] = {
        "refq": (lambda s: P.refq_softmax_params(s), INT16, (2e-3, 0.1)),
        "ibert": (lambda s: P.ibert_softmax_params(s), INT32, (2e-3, 0.1)),
        "shiftmax": (lambda s: P.shiftmax_params(s), INT32, (2e-3, 0.1)),
        "shiftmax_deploy": (lambda s: P.shiftmax_params(s, deploy=True), INT32, (2e-3, 0.1)),
        "tflite": (lambda s: P.tflite_softmax_params(s), INT8, (0.02, 0.5)),
        "lis": (lambda s: P.lis_params(s), INT32, (2e-3, 0.1)),
    }
    builder, fmt, (lo, hi) = make[variant]

    @st.composite
    def strat(draw: st.DrawFn) -> Case:
        scale = draw(st.floats(lo, hi))
        x = _rows(draw, fmt, int(12 / scale))
        return _case(f"softmax.{variant}", builder(scale), {"x": x})

    return strat()


def gelu_variant(variant: str) -> Strategy:
    @st.composite
    def strat(draw: st.DrawFn) -> Case:
        if variant == "lut":
            p = P.gelu_lut_params(
                draw(st.floats(0.01, 0.1)),
                draw(st.integers(-20, 20)),
                draw(st.floats(0.01, 0.1)),
                draw(st.integers(-20, 20)),
            )
            x = _values(draw, _shape(draw), -128, 127, [-128, 127, 0])
            return _case("gelu.lut", p, {"x": x})
        scale = draw(st.floats(3e-4, 1e-3) if variant == "ibert" else st.floats(0.01, 0.1))
        gp = P.ibert_gelu_params(scale) if variant == "ibert" else P.shiftgelu_params(scale)
        lim = int(8 / scale)
        x = _values(draw, _shape(draw), -lim, lim, [0, 1, -1])
        return _case(f"gelu.{variant}", gp, {"x": x})

    return strat()


def layernorm_variant(variant: str) -> Strategy:
    @st.composite
    def strat(draw: st.DrawFn) -> Case:
        x = _rows(draw, INT8, 60)
        c = x.shape[-1]
        shift = tuple(draw(st.lists(st.integers(0, 3), min_size=c, max_size=c)))
        p = LayerNormParams(in_format=INT8, channel_shift=shift if draw(st.booleans()) else (0,))
        return _case(f"layernorm.{variant}", p, {"x": x})

    return strat()


def _guard(make: Callable[[], Strategy]) -> Callable[[], Strategy]:
    """Drop draws whose parameters refq itself rejects (e.g. a scale making x0_int = 0)."""

    def build() -> Strategy:
        @st.composite
        def safe(draw: st.DrawFn) -> Case:
            try:
                case: Case = draw(make())
                return case
            except RefqError:
                from hypothesis import reject

                reject()
                raise  # unreachable

        return safe()

    return build


_MAKERS: dict[str, Callable[[], Strategy]] = {
    "requantize.double": partial(requantize_tflite, "double"),
    "requantize.single": partial(requantize_tflite, "single"),
    "requantize.dyadic": requantize_dyadic,
    "linear.gemm": linear_gemm,
    "matmul.gemm": matmul_gemm,
    "add.ivit": partial(add_scheme, "ivit"),
    "add.shared_shift": partial(add_scheme, "shared_shift"),
}
for _v in ("refq", "ibert", "shiftmax", "shiftmax_deploy", "tflite", "lis"):
    _MAKERS[f"softmax.{_v}"] = partial(softmax_variant, _v)
for _v in ("ibert", "shiftgelu", "lut"):
    _MAKERS[f"gelu.{_v}"] = partial(gelu_variant, _v)
for _v in ("refq", "ibert", "ivit"):
    _MAKERS[f"layernorm.{_v}"] = partial(layernorm_variant, _v)

STRATEGIES: dict[str, Callable[[], Strategy]] = {k: _guard(f) for k, f in _MAKERS.items()}

__all__ = ["STRATEGIES"]
