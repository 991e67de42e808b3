"""The $readmemh hex export drives a real Verilog testbench under Icarus Verilog."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from refq.golden import export, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "rtl"))
from run_tb import SOURCES, run_testbench  # type: ignore[import-not-found]  # tools/rtl

HAVE_ICARUS = shutil.which("iverilog") is not None and shutil.which("vvp") is not None
pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(
        not HAVE_ICARUS and os.environ.get("CI") != "true",
        reason="Icarus Verilog not installed (CI installs it)",
    ),
]


@pytest.fixture(scope="module")
def hex_cases(tmp_path_factory: pytest.TempPathFactory) -> list[Path]:
    root = tmp_path_factory.mktemp("rtl")
    generate(root / "set", "requantize.tflite_double.*", progress=False)
    export(root / "set", "hex", root / "hex")
    return sorted(p for p in (root / "hex").iterdir() if p.is_dir())


def test_requantizer_matches_every_golden_case(hex_cases: list[Path]) -> None:
    assert len(hex_cases) == 6
    for case in hex_cases:
        ok, line = run_testbench(case)
        assert ok, f"{case.name}: {line}"
        assert line.startswith("REFQ-TB PASS")


def test_negative_control_wrong_rounding_is_caught(hex_cases: list[Path]) -> None:
    verdicts = [run_testbench(case, negative_control=True) for case in hex_cases]
    failed = [line for ok, line in verdicts if not ok]
    assert failed, "a requantizer with the wrong tie rounding passed every golden case"
    assert all(line.startswith("REFQ-TB FAIL") for line in failed)


def test_mutated_copy_with_other_rounding_is_caught(
    hex_cases: list[Path], tmp_path: Path
) -> None:
    """A copy of the Verilog whose RoundingDivideByPOT rounds ties toward +inf (threshold
    without the negative-value correction) — no define, no hook: the golden set catches it."""
    original = SOURCES[0].read_text()
    good = "threshold = (mask >>> 1) + ((high < 0) ? 32'sd1 : 32'sd0);"
    assert original.count(good) == 1, "the rounding line to mutate moved; update this test"
    mutated = tmp_path / "requant_tflite_double.v"
    mutated.write_text(original.replace(good, "threshold = mask >>> 1;"))
    sources = [mutated, *SOURCES[1:]]
    verdicts = [run_testbench(case, sources=sources) for case in hex_cases]
    failed = [line for ok, line in verdicts if not ok]
    assert failed, "a requantizer with ties rounded toward +inf passed every golden case"
    assert all(line.startswith("REFQ-TB FAIL") for line in failed)
    # the unmutated copy written the same way still passes (the harness is not the cause)
    same = tmp_path / "same" / "requant_tflite_double.v"
    same.parent.mkdir()
    same.write_text(original)
    assert all(run_testbench(case, sources=[same, *SOURCES[1:]])[0] for case in hex_cases)
