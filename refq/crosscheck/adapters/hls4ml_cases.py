"""Hypothesis strategies of the hls4ml backend: cases drawn on its catalogue of compiled
models (refq.golden.cases_hls4ml), so a suite run compiles each model once and sends every
example through ``predict``.

Keys (they replace refq's generic strategies of the same name when the hls4ml backend runs):
``requantize.ap_fixed`` (an int32 at 2^-16 cast to one of the 56 catalogue types, values at
the type's ties, saturation edges and full range), ``softmax.hls4ml_stable`` /
``softmax.hls4ml_latency`` / ``softmax.hls4ml_legacy`` and ``layernorm.hls4ml`` (rows of
the catalogue width: full range, narrow, all equal, one dominant), and ``hls4ml.dense``
(the Dense program of refq.golden.cases_hls4ml on drawn int8 rows).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

try:
    from hypothesis import strategies as st
except ImportError as exc:  # pragma: no cover - exercised only without the test extra
    from refq.errors import BackendError

    raise BackendError("refq.crosscheck needs hypothesis: pip install 'refq[test]'") from exc

from refq.golden.case import Case
from refq.golden.cases_hls4ml import (
    CAST_FRAC,
    CAST_TYPES,
    LAYERNORM_C,
    SOFTMAX_N,
    cast_params,
    dense_program,
    layernorm_catalogue,
    softmax_catalogue,
)
from refq.golden.kernels import kernel_case
from refq.intmath import INT8, INT32, IntFormat

I16 = IntFormat(16, True)


def _values(draw: st.DrawFn, n: int, lo: int, hi: int, pool: list[int]) -> npt.NDArray[np.int64]:
    pool = [v for v in pool if lo <= v <= hi] + [lo, hi]
    elem = st.one_of(st.integers(lo, hi), st.sampled_from(pool))
    return np.array(draw(st.lists(elem, min_size=n, max_size=n)), dtype=np.int64)


@st.composite
def casts(draw: st.DrawFn) -> Case:
    t = draw(st.sampled_from(CAST_TYPES))
    s = CAST_FRAC - t.frac_bits
    half = 1 << (s - 1)
    fmt = t.fmt
    pool = [(2 * k + 1) * half for k in range(-20, 20)]
    pool += [(v << s) + d for v in (fmt.max, fmt.max + 1, fmt.min, fmt.min - 1)
             for d in (-half, -1, 0, 1, half)]
    n = draw(st.integers(1, 24))
    x = _values(draw, n, INT32.min, INT32.max, pool)
    return kernel_case("hyp.requantize.ap_fixed", 0, "requantize.ap_fixed", cast_params(t),
                       {"x": x})


def _rows(draw: st.DrawFn, width: int, spread: int) -> npt.NDArray[np.int64]:
    rows = draw(st.integers(1, 4))
    kind = draw(st.sampled_from(["full", "narrow", "equal", "dominant"]))
    if kind == "full":
        return _values(draw, rows * width, I16.min, I16.max, []).reshape(rows, width)
    base = draw(st.integers(I16.min, I16.max))
    if kind == "equal":
        return np.full((rows, width), base, dtype=np.int64)
    if kind == "dominant":
        x = np.full((rows, width), I16.min, dtype=np.int64)
        x[:, draw(st.integers(0, width - 1))] = I16.max
        return x
    off = _values(draw, rows * width, -spread, spread, [0]).reshape(rows, width)
    return np.asarray(np.clip(base + off, I16.min, I16.max), dtype=np.int64)


def softmax(impl: str) -> Any:
    @st.composite
    def strat(draw: st.DrawFn) -> Case:
        x = _rows(draw, SOFTMAX_N, 3000)
        return kernel_case(f"hyp.softmax.hls4ml_{impl}", 0, f"softmax.hls4ml_{impl}",
                           softmax_catalogue()[impl], {"x": x})

    return strat()


@st.composite
def layernorm(draw: st.DrawFn) -> Case:
    x = _rows(draw, LAYERNORM_C, 300)
    x = np.clip(x, -(1 << 13), 1 << 13)  # |x| < 8: the catalogue's accum_t holds Σ and Σd²
    return kernel_case("hyp.layernorm.hls4ml", 0, "layernorm.hls4ml", layernorm_catalogue(),
                       {"x": x})


@st.composite
def dense(draw: st.DrawFn) -> Case:
    from refq.golden.cases_program import program_case

    rows = draw(st.integers(1, 6))
    x = _values(draw, rows * 16, INT8.min, INT8.max, [0, 1, -1]).reshape(rows, 16)
    return program_case("hyp.hls4ml.dense", 0, "program", dense_program(), {"x": x})


def strategies() -> dict[str, Callable[[], Any]]:
    return {
        "requantize.ap_fixed": casts,
        "softmax.hls4ml_stable": lambda: softmax("stable"),
        "softmax.hls4ml_latency": lambda: softmax("latency"),
        "softmax.hls4ml_legacy": lambda: softmax("legacy"),
        "layernorm.hls4ml": layernorm,
        "hls4ml.dense": dense,
    }


__all__ = ["strategies"]
