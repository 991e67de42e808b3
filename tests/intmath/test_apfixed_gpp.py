"""refq.intmath.apfixed against the ``ap_types`` headers hls4ml ships, compiled with g++.

The harness (tests/intmath/apfixed_harness.py) instantiates every quantization × overflow
mode of ``ap_fixed<W,W>`` / ``ap_ufixed<W,W>`` (``ap_ufixed`` has no AP_WRAP_SM) and
``ap_int<W>`` / ``ap_uint<W>`` per width and answers batches of casts from an exact wide
source; hypothesis draws the batches (types, shifts, values with rounding ties, saturation
and wrap edges) and every answer must equal :func:`refq.intmath.apfixed.ap_cast`.

Default suite: widths :data:`DEFAULT_WIDTHS`, a few thousand cases, and the direct
instantiations of the small EXTRA group (non-integer targets, int64 sources). ``-m slow``:
every width 1..64, at least :data:`SLOW_CASES` cases, the full EXTRA group. g++ and hls4ml
are needed (the ``hls`` extra); without them the tests skip, except under CI=true where
they fail.
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator

import numpy as np
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from refq.intmath import IntFormat
from refq.intmath.apfixed import OVERFLOW_MODES, QUANT_MODES, ApType, ap_cast
from tests.intmath.apfixed_harness import WIDE_F, Harness, ap_types_dir, compiler

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if ap_types_dir() is None or compiler() is None:
    if _CI:
        raise RuntimeError("CI=true: the hls extra (hls4ml's ap_types) and g++ must be present")
    pytest.skip("needs hls4ml's ap_types headers and g++", allow_module_level=True)

DEFAULT_WIDTHS = (2, 13, 64)
ALL_WIDTHS = tuple(range(1, 65))
SLOW_CASES = 100_000
BATCH = 250

Case = tuple[ApType, int, int]


@pytest.fixture(scope="module")
def harness() -> Iterator[Harness]:
    h = Harness()
    h.build(DEFAULT_WIDTHS, extra=True)
    yield h
    h.close()


def _edges(t: ApType, s: int) -> list[int]:
    """Values of x (f = t.frac_bits + s) at the type's rounding ties and its saturation
    and wrap boundaries, within int64."""
    out = [0, 1, -1, 2**63 - 1, -(2**63)]
    if s > 0:
        out += [((2 * k + 1) << (s - 1)) * sg for k in (0, 1, 2, 7) for sg in (1, -1)]
    fmt = t.fmt
    for bound in (fmt.max, fmt.max + 1, fmt.min, fmt.min - 1, 1 << t.width, -(1 << t.width)):
        if s >= 0:
            base = bound << s
            steps = (-1, 0, 1) + (((1 << (s - 1)), -(1 << (s - 1))) if s > 0 else ())
            out += [base + d for d in steps]
        else:
            out += [bound >> -s, (bound >> -s) + 1, -((-bound) >> -s)]
    return [v for v in out if -(2**63) <= v < 2**63]


@st.composite
def one_case(draw: st.DrawFn, widths: tuple[int, ...]) -> Case:
    width = draw(st.sampled_from(widths))
    signed = width >= 2 and (width == 64 or draw(st.booleans()))
    modes = OVERFLOW_MODES if signed else tuple(o for o in OVERFLOW_MODES if o != "AP_WRAP_SM")
    t = ApType(width, draw(st.integers(-6, width + 6)), signed,
               draw(st.sampled_from(QUANT_MODES)), draw(st.sampled_from(modes)))
    s = draw(st.integers(max(-63, -width - 2), min(70, WIDE_F - t.frac_bits)))
    x = draw(st.one_of(
        st.integers(-(2**63), 2**63 - 1),
        st.integers(-(1 << 20), 1 << 20),
        st.sampled_from(_edges(t, s)),
    ))
    return t, x, t.frac_bits + s


def batches(widths: tuple[int, ...]) -> st.SearchStrategy[list[Case]]:
    return st.lists(one_case(widths), min_size=BATCH, max_size=BATCH)


def pinned(widths: tuple[int, ...], seed: int) -> list[Case]:
    """Every mode of every width at its ties and edges (the @example batches)."""
    rng = random.Random(seed)
    out: list[Case] = []
    for width in widths:
        for signed in (True, False):
            if (signed and width < 2) or (not signed and width == 64):
                continue
            for q in QUANT_MODES:
                for o in OVERFLOW_MODES:
                    if not signed and o == "AP_WRAP_SM":
                        continue
                    t = ApType(width, width - rng.randint(-3, 6), signed, q, o)
                    for s in (-2, 0, 1, 3):
                        out += [(t, x, t.frac_bits + s) for x in _edges(t, s)]
    return out


def check(harness: Harness, cases: list[Case], want: list[int] | None = None) -> int:
    """Compare refq with the header (or with ``want``) on every case; returns the number
    compared."""
    want = harness.cast(cases) if want is None else want
    for (t, x, f), w in zip(cases, want, strict=True):
        got = int(ap_cast(np.array([x], dtype=np.int64), f, t)[0])
        assert got == w, f"{t.name} x={x} f={f}: refq {got}, ap_fixed.h {w}"
    return len(cases)


_SETTINGS = settings(max_examples=12, deadline=None, derandomize=True,
                     suppress_health_check=list(HealthCheck))


@_SETTINGS
@given(batches(DEFAULT_WIDTHS))
@example(batch=pinned((2, 13), 1))
@example(batch=pinned((64,), 2))
def test_casts_match_the_header(harness: Harness, batch: list[Case]) -> None:
    check(harness, batch)


def test_ap_int_targets(harness: Harness) -> None:
    rng = random.Random(3)
    for width in DEFAULT_WIDTHS:
        for signed in (True, False):
            if (signed and width < 2) or (not signed and width == 64):
                continue
            cases = [(rng.randint(-(2**63), 2**63 - 1), rng.randint(-10, 70)) for _ in range(80)]
            cases += [(v, f) for v in (-15, 15, -16, 300, -300) for f in (0, 1, 2)]
            want = harness.cast_int(width, signed, cases)
            t = ApType.ap_int(width, signed)
            got = [int(ap_cast(np.array([x]), f, t)[0]) for x, f in cases]
            assert got == want


def test_direct_instantiations(harness: Harness) -> None:
    """Non-integer targets and 64-bit sources instantiated as such agree too (the harness's
    reduction of ap_fixed<W,I> to ap_fixed<W,W> and its wide source are not assumed)."""
    rng = random.Random(4)
    for i, c in enumerate(harness.extra):
        xs = [rng.randint(-(2**63), 2**63 - 1) for _ in range(20)]
        xs += [rng.randint(-5000, 5000) for _ in range(10)] + [0, -1, 2**63 - 1, -(2**63)]
        if c.src_frac is None:
            cases = [(x, rng.randint(-20, 80)) for x in xs]
            got = [int(ap_cast(np.array([x]), f, c.target)[0]) for x, f in cases]
        else:
            cases = [(x, 0) for x in xs]
            got = [int(ap_cast(np.array([x]), c.src_frac, c.target)[0]) for x, _ in cases]
        assert got == harness.cast_extra(i, cases), (c, cases)


def test_wrong_mode_is_caught(harness: Harness) -> None:
    """Negative control: AP_RND where the header runs AP_RND_CONV differs on the pinned
    ties (and the comparison reports it)."""
    cases = [(ApType(8, 4, True, "AP_RND_CONV", "AP_SAT"), x, 6) for x in (2, 6, -2, -6, 10)]
    want = harness.cast(cases)
    wrong = [int(ap_cast(np.array([x]), f, ApType(8, 4, True, "AP_RND", "AP_SAT"))[0])
             for _, x, f in cases]
    assert wrong != want
    assert sum(a != b for a, b in zip(wrong, want, strict=True)) == 3  # ties 0.5, -1.5, 2.5
    swapped = [(ApType(8, 4, True, "AP_RND", "AP_SAT"), x, f) for _, x, f in cases]
    with pytest.raises(AssertionError, match="AP_RND"):
        check(harness, swapped, want)


# ---------------------------------------------------------------- the long run
_SLOW_EXAMPLES = SLOW_CASES // BATCH + 20
_count = {"cases": 0}


@pytest.fixture(scope="module")
def full_harness() -> Iterator[Harness]:
    h = Harness(full_extra=True)
    h.build(ALL_WIDTHS, extra=True)
    yield h
    h.close()


@pytest.mark.slow
@settings(max_examples=_SLOW_EXAMPLES, deadline=None, derandomize=True, database=None,
          suppress_health_check=list(HealthCheck))
@given(batches(ALL_WIDTHS))
@example(batch=pinned(ALL_WIDTHS[:32], 5))
@example(batch=pinned(ALL_WIDTHS[32:], 6))
def test_casts_match_the_header_every_width(full_harness: Harness, batch: list[Case]) -> None:
    _count["cases"] += check(full_harness, batch)


@pytest.mark.slow
def test_long_run_reached_its_count(full_harness: Harness) -> None:
    """Runs after the long run (file order): at least SLOW_CASES cases were compared."""
    if _count["cases"] == 0:
        pytest.skip("the long run did not run in this session")
    print(f"\nap_fixed casts compared with ap_fixed.h: {_count['cases']}")
    assert _count["cases"] >= SLOW_CASES, _count


@pytest.mark.slow
def test_direct_instantiations_full(full_harness: Harness) -> None:
    test_direct_instantiations(full_harness)


def test_edges_cover_the_format() -> None:
    """The edge generator reaches both saturation boundaries (so pins are not vacuous)."""
    t = ApType(8, 8, True, "AP_TRN", "AP_SAT")
    e = _edges(t, 2)
    fmt = IntFormat(8, True)
    assert (fmt.max + 1) << 2 in e and (fmt.min - 1) << 2 in e
