"""Hypothesis strategies, one per kernel variant, derived from the variant registry.

Each variant declares its strategy as a :class:`~refq.ops.registry.Ref` to a generator here
(or its own), called as ``generator(variant, **args)``: it draws parameters (directly as
integers, or from a real scale through the variant's ``derive``) and inputs with full
ranges, rounding ties, saturation edges and tiny or odd shapes, and returns a kernel Case
whose output ``y`` is refq's. :data:`STRATEGIES` (key → zero-argument factory) reads the
registry on every access, so a variant declared later is in the suite too.

Importing this module needs hypothesis (``pip install refq[test]``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    from refq.errors import BackendError

    raise BackendError("refq.crosscheck needs hypothesis: pip install 'refq[test]'") from exc

from refq import params as P
from refq.errors import RefqError, SpecError
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.intmath import INT8, INT16, INT32, UINT8, IntFormat
from refq.intmath.rounding import ROUNDINGS
from refq.ops import GemmParams, LayerNormParams, RequantParams, variants
from refq.ops.registry import Variant

Strategy = Any  # hypothesis SearchStrategy[Case]


def _shape(draw: st.DrawFn, max_dims: int = 2, max_side: int = 9) -> tuple[int, ...]:
    dims = draw(st.integers(1, max_dims))
    return tuple(draw(st.integers(1, max_side)) for _ in range(dims))


def _values(
    draw: st.DrawFn, shape: tuple[int, ...], lo: int, hi: int, edges: list[int]
) -> npt.NDArray[np.int64]:
    """Values in [lo, hi] mixing full-range draws with the given edge values."""
    n = int(np.prod(shape))
    pool = [v for v in edges if lo <= v <= hi] + [lo, hi]
    elem = st.one_of(st.integers(lo, hi), st.sampled_from(pool))
    return np.array(draw(st.lists(elem, min_size=n, max_size=n)), dtype=np.int64).reshape(shape)


def _case(key: str, params: Any, inputs: dict[str, npt.NDArray[np.int64]]) -> Case:
    return kernel_case(f"hyp.{key}", 0, key, params, inputs)


_MULT = st.one_of(
    st.sampled_from([0, 1 << 30, 2**31 - 1, 3 << 29]), st.integers(1 << 30, 2**31 - 1)
)
_OUT = st.sampled_from([INT8, UINT8, INT16, IntFormat(4, True)])


@st.composite
def requantize_tflite(draw: st.DrawFn, v: Variant) -> Case:
    """TFLite requantization (``v.name`` double or single): every multiplier and shift
    range, inputs with exact ties of the roundings."""
    family = v.name
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
def requantize_dyadic(draw: st.DrawFn, v: Variant) -> Case:
    """Dyadic requantization: b up to 2^31, c in 0..63, every rounding, exact ties."""
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
        rounding=draw(st.sampled_from(ROUNDINGS)),
        out_zero_point=draw(st.integers(out.min, out.max)),
        out_format=out,
    )
    return _case(v.key, p, {"x": x})


_OPERAND = st.sampled_from([INT8, UINT8, IntFormat(4, True), IntFormat(4, False)])


@st.composite
def linear_gemm(draw: st.DrawFn, v: Variant) -> Case:
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
    return _case(v.key, p, {"x": x, "w": w, "bias": bias})


@st.composite
def matmul_gemm(draw: st.DrawFn, v: Variant) -> Case:
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
    return _case(v.key, p, {"a": a, "b": b})


_SCALE = st.floats(min_value=1e-3, max_value=0.2, allow_nan=False)


@st.composite
def add_scheme(draw: st.DrawFn, v: Variant) -> Case:
    """A residual add at drawn branch and output scales, params ``v.derive(sa, sb, so)``."""
    sa, sb, so = draw(_SCALE), draw(_SCALE), draw(st.floats(0.01, 0.5))
    p = _derive(v, sa, sb, so)
    shape = _shape(draw)
    a = _values(draw, shape, -(2**16), 2**16, [0, 1, -1])
    b = _values(draw, shape, -(2**16), 2**16, [0, 1, -1])
    return _case(v.key, p, {"a": a, "b": b})


def _rows(draw: st.DrawFn, fmt: IntFormat, spread: int) -> npt.NDArray[np.int64]:
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


def _derive(v: Variant, *args: Any, **kwargs: Any) -> Any:
    if v.derive is None:
        raise SpecError(f"variant {v.key} declares no parameter derivation (derive)")
    return v.derive(*args, **kwargs)


@st.composite
def softmax_rows(draw: st.DrawFn, v: Variant, scales: tuple[str, str]) -> Case:
    """Softmax rows (:func:`_rows`) at a scale drawn in ``scales`` (decimal strings),
    params ``v.derive(scale)``, rows in its ``in_format``."""
    scale = draw(st.floats(float(scales[0]), float(scales[1])))
    p = _derive(v, scale)
    x = _rows(draw, p.in_format, int(12 / scale))
    return _case(v.key, p, {"x": x})


@st.composite
def gelu_lut(draw: st.DrawFn, v: Variant) -> Case:
    """A GELU table at drawn scales and zero points, every int8 code range."""
    p = P.gelu_lut_params(
        draw(st.floats(0.01, 0.1)),
        draw(st.integers(-20, 20)),
        draw(st.floats(0.01, 0.1)),
        draw(st.integers(-20, 20)),
    )
    x = _values(draw, _shape(draw), -128, 127, [-128, 127, 0])
    return _case(v.key, p, {"x": x})


@st.composite
def gelu_scaled(draw: st.DrawFn, v: Variant, scales: tuple[str, str]) -> Case:
    """GELU inputs within ±8 real units at a scale drawn in ``scales``, params
    ``v.derive(scale)``."""
    scale = draw(st.floats(float(scales[0]), float(scales[1])))
    p = _derive(v, scale)
    lim = int(8 / scale)
    x = _values(draw, _shape(draw), -lim, lim, [0, 1, -1])
    return _case(v.key, p, {"x": x})


@st.composite
def layernorm_rows(draw: st.DrawFn, v: Variant) -> Case:
    """int8 LayerNorm rows, plain or with per-channel shifts 0..3 (PTF / O-2SF forms)."""
    x = _rows(draw, INT8, 60)
    c = x.shape[-1]
    shift = tuple(draw(st.lists(st.integers(0, 3), min_size=c, max_size=c)))
    p = LayerNormParams(in_format=INT8, channel_shift=shift if draw(st.booleans()) else (0,))
    return _case(v.key, p, {"x": x})


@st.composite
def requantize_apfixed(draw: st.DrawFn, v: Variant) -> Case:
    """Any ap_fixed type (signed 2..24 / unsigned 1..24 bits, every quantization and overflow
    mode), an int32 accumulator at 2^-f times a multiplier, ties of the drawn shift."""
    from refq.intmath.apfixed import OVERFLOW_MODES, QUANT_MODES, ApType
    from refq.ops import ApFixedRequantParams

    signed = draw(st.booleans())
    width = draw(st.integers(2 if signed else 1, 24))
    modes = OVERFLOW_MODES if signed else OVERFLOW_MODES[:4]
    t = ApType(width, draw(st.integers(-4, width + 4)), signed,
               draw(st.sampled_from(QUANT_MODES)), draw(st.sampled_from(modes)))
    f = draw(st.integers(t.frac_bits - 4, t.frac_bits + 40))
    s = f - t.frac_bits
    m = draw(st.sampled_from([1, 1, 3, 2**20 + 1, -5]))
    ties = [] if s <= 0 else [k << (s - 1) for k in (1, -1, 3, -3, 5)]
    x = _values(draw, _shape(draw), -(2**31), 2**31 - 1, [0, 1, -1, *ties])
    zp = draw(st.sampled_from([0, 0, 7, -128]))
    p = ApFixedRequantParams(t.name, f, (m,), zp, INT32)
    return _case(v.key, p, {"x": x})


@st.composite
def hls4ml_rows(draw: st.DrawFn, v: Variant) -> Case:
    """hls4ml's softmax / LayerNorm variants on the configurations of
    refq.golden.cases_hls4ml (rows of their width, narrow spreads and full range)."""
    from refq.golden import cases_hls4ml as H

    layer = v.family == "layernorm"
    p: Any = (H.layernorm_catalogue() if layer
              else H.softmax_catalogue()[v.name.removeprefix("hls4ml_")])
    width, spread = (H.LAYERNORM_C, 300) if layer else (H.SOFTMAX_N, 3000)
    lim = 2**13 if layer else 2**15
    rows = draw(st.integers(1, 4))
    base = draw(st.integers(-lim, lim - 1))
    off = _values(draw, (rows, width), -spread, spread, [0, -1, 1])
    x = np.asarray(np.clip(base + off, -lim, lim - 1), dtype=np.int64)
    return _case(v.key, p, {"x": x})


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


def corner_examples(key: str) -> list[Case]:
    """The directed corner cases of variant ``key`` (:mod:`refq.golden.cases_corners`: built
    to hit every reachable coverage bin it declares), as kernel Cases; empty for a variant
    that declares none. The suite runs them as explicit examples of the variant's
    strategy, so every run hits every reachable bin."""
    from refq.golden.cases_corners import corner_cases

    return [e.make() for e in corner_cases() if e.name.startswith(f"{key}.corners.")]


def strategy_of(v: Variant) -> Callable[[], Strategy]:
    """The zero-argument strategy factory of ``v``: its declared ``strategy`` (guarded),
    mixed with draws from its corner cases (:func:`corner_examples`) — the same coverage
    bins the golden corner cases hit."""
    ref = v.strategy
    if ref is None:
        raise SpecError(f"variant {v.key} declares no cross-check strategy")
    random = _guard(lambda: ref(v))

    def build() -> Strategy:
        corners = corner_examples(v.key)
        return st.one_of(st.sampled_from(corners), random()) if corners else random()

    return build


class _Strategies(Mapping[str, Callable[[], Strategy]]):
    """key → strategy factory of every registered variant that declares a strategy, read
    live from the registry."""

    def _table(self) -> dict[str, Variant]:
        return {v.key: v for v in variants() if v.strategy is not None}

    def __getitem__(self, key: str) -> Callable[[], Strategy]:
        return strategy_of(self._table()[key])

    def __iter__(self) -> Iterator[str]:
        return iter(self._table())

    def __len__(self) -> int:
        return len(self._table())


STRATEGIES: Mapping[str, Callable[[], Strategy]] = _Strategies()

__all__ = [
    "STRATEGIES",
    "add_scheme",
    "corner_examples",
    "gelu_lut",
    "gelu_scaled",
    "hls4ml_rows",
    "layernorm_rows",
    "linear_gemm",
    "matmul_gemm",
    "requantize_apfixed",
    "requantize_dyadic",
    "requantize_tflite",
    "softmax_rows",
    "strategy_of",
]
