"""refq.intmath.apfixed without a compiler: the user guide's examples, an exact rational
oracle of the documented semantics, and the input checks. (The bit-exact comparison with
the g++-compiled headers is tests/intmath/test_apfixed_gpp.py.)"""

from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import SpecError
from refq.intmath import IntFormat
from refq.intmath.apfixed import OVERFLOW_MODES, QUANT_MODES, ApType, ap_cast


def spec_cast(x: int, f: int, t: ApType) -> int:
    """The module docstring's two steps on Python ints and Fractions, element by element."""
    v = Fraction(x, 1) * Fraction(2) ** (t.frac_bits - f)  # value in target LSBs
    fl = math.floor(v)
    frac = v - fl
    tie, above = frac == Fraction(1, 2), frac > Fraction(1, 2)
    q = {
        "AP_TRN": fl,
        "AP_TRN_ZERO": math.trunc(v),
        "AP_RND": fl + (1 if above or tie else 0),
        "AP_RND_ZERO": fl + (1 if above or (tie and v < 0) else 0),
        "AP_RND_MIN_INF": fl + (1 if above else 0),
        "AP_RND_INF": fl + (1 if above or (tie and v > 0) else 0),
        "AP_RND_CONV": fl + (1 if above or (tie and fl % 2 == 1) else 0),
    }[t.quantization]
    w = t.width
    lo, hi = (-(1 << (w - 1)), (1 << (w - 1)) - 1) if t.signed else (0, (1 << w) - 1)
    wrapped = q % (1 << w)
    if t.signed and wrapped > hi:
        wrapped -= 1 << w
    o = t.overflow
    if o == "AP_WRAP" or (lo <= q <= hi and not (o == "AP_SAT_SYM" and t.signed and q == lo)):
        return wrapped
    if o == "AP_SAT":
        return hi if q > hi else lo
    if o == "AP_SAT_ZERO":
        return 0
    if o == "AP_SAT_SYM":
        return hi if q > hi else (lo + 1 if t.signed else lo)
    # AP_WRAP_SM: out of range; bit W of the floor against the wrapped sign bit
    lead = (fl >> w) & 1
    sign = 1 if wrapped < 0 else 0
    if lead == sign:
        return wrapped
    low = (~wrapped) & ((1 << (w - 1)) - 1)
    return low - (1 << (w - 1)) if lead else low


def cast1(x: int, f: int, t: ApType | str) -> int:
    tt = ApType.parse(t) if isinstance(t, str) else t
    return int(ap_cast(np.array([x], dtype=np.int64), f, tt)[0])


# ---------------------------------------------------------------- the user guide's examples
@pytest.mark.parametrize(
    ("mode", "pos", "neg"),
    [  # x = ±1.25 (two fractional bits) to ap_fixed<3,2,mode>: raw codes in units of 0.5
        ("AP_RND", 3, -2),  # ties toward +inf: 1.5, -1.0
        ("AP_RND_ZERO", 2, -2),  # ties toward zero: 1.0, -1.0
        ("AP_RND_MIN_INF", 2, -3),  # ties toward -inf: 1.0, -1.5
        ("AP_RND_INF", 3, -3),  # ties away from zero: 1.5, -1.5
        ("AP_RND_CONV", 2, -2),  # ties to even raw codes: 1.0 (2), -1.0 (-2)
        ("AP_TRN", 2, -3),  # floor: 1.0, -1.5
        ("AP_TRN_ZERO", 2, -2),  # toward zero: 1.0, -1.0
    ],
)
def test_quantization_modes_on_ties(mode: str, pos: int, neg: int) -> None:
    t = f"ap_fixed<3,2,{mode},AP_SAT>"
    assert (cast1(5, 2, t), cast1(-5, 2, t)) == (pos, neg)


def test_rnd_conv_user_guide() -> None:
    """UG1399: ap_fixed<3,2,AP_RND_CONV,AP_SAT> = 0.75 yields 1.0 (raw 2); 0.25 ties to 0."""
    assert cast1(3, 2, "ap_fixed<3,2,AP_RND_CONV,AP_SAT>") == 2
    assert cast1(1, 2, "ap_fixed<3,2,AP_RND_CONV,AP_SAT>") == 0


@pytest.mark.parametrize(
    ("mode", "p19", "m19"),
    [  # ±19 to ap_fixed<4,4,AP_TRN,mode>: range [-8, 7]
        ("AP_SAT", 7, -8),
        ("AP_SAT_ZERO", 0, 0),
        ("AP_SAT_SYM", 7, -7),
        ("AP_WRAP", 3, -3),  # 19 mod 16 = 3; -19 -> 13 -> -3
        ("AP_WRAP_SM", -4, 2),  # UG1399: 19.0 yields -4.0, -19.0 yields 2.0
    ],
)
def test_overflow_modes(mode: str, p19: int, m19: int) -> None:
    t = f"ap_fixed<4,4,AP_TRN,{mode}>"
    assert (cast1(19, 0, t), cast1(-19, 0, t)) == (p19, m19)


def test_sat_sym_maps_the_exact_minimum() -> None:
    """AP_SAT_SYM never yields -2^(W-1): an in-range -8 becomes -7 (signed source)."""
    assert cast1(-8, 0, "ap_fixed<4,4,AP_TRN,AP_SAT_SYM>") == -7
    assert cast1(-8, 0, "ap_fixed<4,4,AP_TRN,AP_SAT>") == -8
    assert cast1(-1, 0, "ap_ufixed<4,4,AP_TRN,AP_SAT_SYM>") == 0


def test_rounding_carry_overflows() -> None:
    """7.75 rounds up to 8 = max + 1: saturates (AP_SAT) or wraps to -8 (AP_WRAP)."""
    assert cast1(31, 2, "ap_fixed<4,4,AP_RND,AP_SAT>") == 7
    assert cast1(31, 2, "ap_fixed<4,4,AP_RND,AP_WRAP>") == -8


def test_ap_int_truncates_toward_zero() -> None:
    assert ApType.parse("ap_int<8>") == ApType(8, 8, True, "AP_TRN_ZERO", "AP_WRAP")
    assert cast1(-15, 2, "ap_int<8>") == -3  # -3.75 -> -3 (C conversion)
    assert cast1(300, 0, "ap_uint<8>") == 44


def test_left_shift_without_forming_the_product() -> None:
    """s < 0: x·2^k beyond int64 still wraps and saturates exactly."""
    big = (1 << 62) + 3
    assert cast1(big, -10, "ap_fixed<64,64,AP_TRN,AP_WRAP>") == np.int64(3 << 10).item()
    assert cast1(big, -10, "ap_fixed<64,64,AP_TRN,AP_SAT>") == 2**63 - 1
    assert cast1(-big, -10, "ap_fixed<64,64,AP_TRN,AP_SAT_SYM>") == -(2**63) + 1
    assert cast1(-(1 << 53), -10, "ap_fixed<64,64,AP_TRN,AP_SAT_SYM>") == -(2**63) + 1


# ---------------------------------------------------------------- the rational oracle
@st.composite
def cast_cases(draw: st.DrawFn) -> tuple[int, int, ApType]:
    signed = draw(st.booleans())
    width = draw(st.integers(2, 64) if signed else st.integers(1, 63))
    overflow = draw(st.sampled_from(OVERFLOW_MODES if signed else OVERFLOW_MODES[:4]))
    t = ApType(width, draw(st.integers(-8, width + 8)), signed,
               draw(st.sampled_from(QUANT_MODES)), overflow)
    f = draw(st.integers(t.frac_bits - 70, t.frac_bits + 70))
    s = f - t.frac_bits
    ties = [((2 * k + 1) << (s - 1)) * sg for k in (0, 1, 5) for sg in (1, -1)] if s > 0 else []
    edges = [0, 1, -1, 2**63 - 1, -(2**63)]
    if 0 < s < 62 - width:
        lo, hi = IntFormat(width, signed).min, IntFormat(width, signed).max
        edges += [(hi << s) + d for d in (-1, 0, 1, 1 << (s - 1))]
        edges += [(lo << s) + d for d in (-1, 0, 1, -(1 << (s - 1)))]
    x = draw(st.one_of(st.integers(-(2**63), 2**63 - 1), st.integers(-5000, 5000),
                       st.sampled_from([e for e in ties + edges if -(2**63) <= e < 2**63])))
    return x, f, t


@given(cast_cases())
@example((5, 2, ApType(3, 2, True, "AP_RND_CONV", "AP_SAT")))
@example((-(2**63), 0, ApType(64, 64, True, "AP_TRN", "AP_SAT_SYM")))
@example((2**63 - 1, 1, ApType(63, 63, False, "AP_RND", "AP_SAT")))
@example((19, 0, ApType(4, 4, True, "AP_TRN", "AP_WRAP_SM")))
def test_matches_the_rational_oracle(case: tuple[int, int, ApType]) -> None:
    x, f, t = case
    assert cast1(x, f, t) == spec_cast(x, f, t)


def test_vectorized_equals_elementwise() -> None:
    rng = np.random.default_rng(0)
    x = rng.integers(-(2**40), 2**40, size=500)
    for q in QUANT_MODES:
        for o in OVERFLOW_MODES:
            t = ApType(12, 4, True, q, o)
            got = ap_cast(x, 30, t)
            assert got.dtype == np.int64
            assert got.tolist() == [spec_cast(int(v), 30, t) for v in x]


# ---------------------------------------------------------------- types and refusals
def test_parse_and_name_round_trip() -> None:
    for text in ("ap_fixed<8,3,AP_RND_CONV,AP_SAT>", "ap_ufixed<6,-2,AP_TRN,AP_WRAP>"):
        t = ApType.parse(text)
        assert ApType.parse(t.name) == t
        assert ApType.from_dict(t.to_dict()) == t
    assert ApType.parse("ap_fixed<16,6>") == ApType(16, 6)
    assert ApType.parse("ap_ufixed<8, 0, AP_RND, AP_SAT, 0>").fmt == IntFormat(8, False)


@pytest.mark.parametrize(
    "text",
    ["ap_ufixed<8,3,AP_TRN,AP_WRAP_SM>", "ap_ufixed<64,3>", "ap_fixed<1,1>", "ap_fixed<65,3>",
     "ap_fixed<8,3,AP_RND,AP_SAT,2>", "ap_fixed<8>", "ap_int<8,2>", "ap_fixed<8,3,AP_FOO>",
     "fixed<8,3>", "ap_fixed<8,300>"],
)
def test_refused_types(text: str) -> None:
    with pytest.raises(SpecError):
        ApType.parse(text)


def test_refused_arguments() -> None:
    t = ApType(8, 4)
    with pytest.raises(SpecError, match="shift"):
        ap_cast(np.array([1]), 200, t)
    with pytest.raises(SpecError):
        ap_cast(np.array([1.5]), 0, t)
    with pytest.raises(SpecError):
        ap_cast(np.array([1]), 0, "ap_fixed<8,4>")  # type: ignore[arg-type]
    with pytest.raises(SpecError):
        ApType.from_dict({"width": 8})
