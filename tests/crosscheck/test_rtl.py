"""The rtl backend (Verilog units under Icarus via cocotb) conforms to refq; a mutated unit
is caught. One simulator per backend instance (module-scoped)."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from refq.crosscheck.adapters.rtl_backend import RtlBackend, default_rtl_dir
from refq.crosscheck.suite import run_suite
from refq.crosscheck.testing import assert_conforms

HAVE_TOOLS = shutil.which("iverilog") is not None and shutil.which("vvp") is not None
try:
    import cocotb_tools.runner  # noqa: F401
except ImportError:
    HAVE_TOOLS = False
pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(
        not HAVE_TOOLS and os.environ.get("CI") != "true",
        reason="Icarus Verilog / cocotb not installed (CI installs them)",
    ),
]

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
UNITS = ["requantize.double", "requantize.dyadic", "gelu.ibert"]


@pytest.fixture(scope="module")
def backend() -> Iterator[RtlBackend]:
    b = RtlBackend()
    yield b
    b.close()


def test_units_conform_on_generated_and_golden_cases(backend: RtlBackend) -> None:
    report = assert_conforms(backend, ops=UNITS, golden=GOLDEN, examples=25)
    counts = report.counts()
    assert counts["fail"] == counts["error"] == 0
    golden_run = [e for e in report.entries if e.source == "golden" and e.status == "pass"]
    # 6 tflite_double + 7 dyadic + gelu.ibert.int32 + the corner cases of the units
    # (requantize.double 4, requantize.dyadic 3, gelu.ibert.corners.int16)
    assert len(golden_run) == 22
    assert backend.simulator_launches == 1
    assert backend.elements > 1000


def test_supports_is_exact(backend: RtlBackend) -> None:
    from refq.golden.case import read_case

    single = read_case(GOLDEN / "requantize.tflite_single.int32_int8.m0p5_s0")
    shiftmax = read_case(GOLDEN / "softmax.shiftmax.rows16x37")
    double = read_case(GOLDEN / "requantize.tflite_double.int32_int8.m0p5_s0")
    assert not backend.supports(single)
    assert not backend.supports(shiftmax)
    assert backend.supports(double)
    per_channel = read_case(GOLDEN / "requantize.tflite_double.int32_int8.m0p5_s0")
    per_channel.meta["params"] = {
        **per_channel.meta["params"],
        "multiplier": [1 << 30] * 2,
        "shift": [0, 0],
    }
    assert not backend.supports(per_channel)


def test_mutated_dyadic_rounding_is_caught(tmp_path: Path) -> None:
    """Copy tools/rtl, make half_even break ties toward odd, and require the suite to fail."""
    mutated = tmp_path / "rtl"
    shutil.copytree(default_rtl_dir(), mutated)
    src = mutated / "requant_dyadic.v"
    good = "((r == half) && q[0])"
    text = src.read_text()
    assert text.count(good) == 1, "the half_even rule moved; update this test"
    src.write_text(text.replace(good, "((r == half) && !q[0])"))
    with RtlBackend(rtl_dir=mutated, cache_dir=tmp_path / "cache") as bad:
        report = run_suite(bad, ops=["requantize.dyadic"], golden=GOLDEN, examples=25)
    assert not report.ok
    failed = {e.key for e in report.entries if e.status == "fail"}
    assert "requantize.dyadic.int32_int8.b3_c1_half_even" in failed


def test_mutated_igelu_rounding_is_caught(tmp_path: Path) -> None:
    """i-GELU whose y/2^erf_shift rounds half up instead of floor: the suite must fail."""
    mutated = tmp_path / "rtl"
    shutil.copytree(default_rtl_dir(), mutated)
    src = mutated / "igelu_ibert.v"
    good = "ys   = y >>> erf_shift;"
    text = src.read_text()
    assert text.count(good) == 1, "the floor shift moved; update this test"
    bad_line = "ys   = (y + ((68'sd1 <<< erf_shift) >>> 1)) >>> erf_shift;"
    src.write_text(text.replace(good, bad_line))
    with RtlBackend(rtl_dir=mutated, cache_dir=tmp_path / "cache") as bad:
        report = run_suite(bad, ops=["gelu.ibert"], golden=GOLDEN, examples=10)
    assert not report.ok
    assert "gelu.ibert.int32" in {e.key for e in report.entries if e.status == "fail"}


def test_run_refuses_an_unsupported_case_naming_what_the_units_implement() -> None:
    """No simulator is needed to refuse (the check comes first)."""
    from refq.errors import BackendError
    from refq.golden.case import read_case

    softmax = read_case(GOLDEN / "softmax.refq.rows16x37")
    with pytest.raises(BackendError) as info:
        RtlBackend().run(softmax)
    text = str(info.value)
    assert "softmax.refq.rows16x37 (softmax.refq)" in text
    assert "requantize.double and requantize.dyadic" in text and "gelu.ibert" in text
