"""Hypothesis strategies building every kind of quantizer, with inputs shaped for it."""

from __future__ import annotations

from typing import Any

import numpy as np
from hypothesis import strategies as st

from refq.quant import (
    Log2Quantizer,
    OutlierTwoScaleQuantizer,
    PowerOfTwoFactorQuantizer,
    Quantizer,
    ShiftUniformLog2Quantizer,
    TanQuantizer,
    TwinUniformQuantizer,
    UniformQuantizer,
    ValueTwoScaleQuantizer,
)

C = 3  # channels of per-channel quantizers (axis = -1)
bits_small = st.integers(2, 8)
scales = st.floats(1e-3, 4.0)
ROUNDINGS = ["half_even", "half_away", "half_up", "floor", "ceil", "trunc"]
ARITHS = st.sampled_from(["float64", "float32_cuda", "float32_cpu"])


@st.composite
def uniform(draw: Any) -> Quantizer:
    b = draw(st.integers(2, 10))
    signed = draw(st.booleans())
    per_ch = draw(st.booleans())
    lo_z, hi_z = (-4, 4) if signed else (0, 2**b - 1)
    opts = {"zp_in_round": draw(st.booleans()), "arith": draw(ARITHS)}
    if per_ch:
        s = draw(st.lists(scales, min_size=C, max_size=C))
        z = draw(st.lists(st.integers(lo_z, hi_z), min_size=C, max_size=C))
        return UniformQuantizer(s, b, z, signed=signed, axis=-1,
                                narrow=draw(st.booleans()),
                                rounding=draw(st.sampled_from(ROUNDINGS)), **opts)
    return UniformQuantizer(draw(scales), b, draw(st.integers(lo_z, hi_z)), signed=signed,
                            narrow=draw(st.booleans()), rounding=draw(st.sampled_from(ROUNDINGS)),
                            **opts)


@st.composite
def log2(draw: Any) -> Quantizer:
    return Log2Quantizer(draw(st.integers(2, 6)), draw(st.sampled_from(["2", "sqrt2"])),
                         draw(st.floats(0.1, 2.0)),
                         draw(st.sampled_from(["extra", "reserve", "none"])), draw(ARITHS))


@st.composite
def twin(draw: Any) -> Quantizer:
    b = draw(bits_small)
    mode = draw(st.sampled_from(["paper", "code"]))
    ar = draw(ARITHS)
    if draw(st.booleans()):
        return TwinUniformQuantizer(b, "softmax", m=draw(st.integers(0, 19)), mode=mode,
                                    arith="float64" if mode == "paper" else ar)
    if mode == "paper":
        return TwinUniformQuantizer.gelu_paper(b, draw(st.integers(0, 8)), arith=ar)
    return TwinUniformQuantizer(b, "gelu", delta_pos=draw(st.floats(1e-3, 1.0)), mode="code",
                                arith=ar)


@st.composite
def v2sf(draw: Any) -> Quantizer:
    b = draw(bits_small)
    return ValueTwoScaleQuantizer(draw(st.floats(1e-3, 0.5)), b, draw(st.integers(1, b)))


@st.composite
def o2sf(draw: Any) -> Quantizer:
    b = draw(bits_small)
    flags = draw(st.lists(st.integers(0, 1), min_size=C, max_size=C))
    return OutlierTwoScaleQuantizer(draw(scales), b, draw(st.integers(1, 6)), flags,
                                    draw(st.integers(0, 2**b - 1)), axis=-1)


@st.composite
def ptf(draw: Any) -> Quantizer:
    b = draw(bits_small)
    alpha = draw(st.lists(st.integers(0, 3), min_size=C, max_size=C))
    return PowerOfTwoFactorQuantizer(draw(scales), b, alpha, draw(st.integers(0, 2**b - 1)),
                                     mode=draw(st.sampled_from(["paper", "code"])),
                                     arith=draw(ARITHS))


@st.composite
def sulq(draw: Any) -> Quantizer:
    eta = draw(st.sampled_from([0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1.0]))
    y_min = float(np.log2(eta)) + draw(st.floats(0.0, 1.0))
    y_max = float(np.log2(1 + eta)) + draw(st.floats(-0.5, 0.5))
    if y_max <= y_min + 1e-3:
        y_max = y_min + 1.0
    return ShiftUniformLog2Quantizer(draw(st.integers(2, 6)), eta, y_min, y_max,
                                     draw(st.sampled_from(["paper", "code"])), draw(ARITHS))


@st.composite
def tan(draw: Any) -> Quantizer:
    return TanQuantizer(draw(st.integers(2, 8)), draw(st.floats(0.05, 1.5)),
                        draw(st.floats(0.5, 2.0)))


KINDS = {"uniform": uniform, "log2": log2, "twin": twin, "v2sf": v2sf, "o2sf": o2sf,
         "ptf": ptf, "sulq": sulq, "tan": tan}


def is_per_channel(q: Quantizer) -> bool:
    return q.axis is not None


@st.composite
def inputs(draw: Any, q: Quantizer) -> np.ndarray:  # type: ignore[type-arg]
    """Real inputs for ``q``: random values in a range matching its levels, plus its own
    levels and the float neighbours of its levels (ties, saturation edges)."""
    lv = q.levels()
    assert lv is not None
    flat = np.asarray(lv, dtype=np.float64).ravel()
    lo, hi = float(flat.min()), float(flat.max())
    span = max(hi - lo, 1e-3)
    xs = draw(st.lists(st.floats(lo - span, hi + span), min_size=1, max_size=30))
    picks = draw(st.lists(st.sampled_from(flat.tolist()), max_size=10))
    picks += [float(np.nextafter(p, np.inf)) for p in picks[:3]]
    picks += [float(np.nextafter(p, -np.inf)) for p in picks[:3]]
    x = np.array(xs + picks, dtype=np.float64)
    if is_per_channel(q):
        x = np.resize(x, (max(1, -(-x.size // C)), C))
    return x
