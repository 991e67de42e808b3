"""The $readmemh hex export drives a real Verilog testbench under Icarus Verilog."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from refq.golden import export, generate

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "rtl"))
from run_tb import (  # type: ignore[import-not-found]  # tools/rtl
    SOURCES,
    UnsupportedCase,
    run_testbench,
)

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


@pytest.mark.parametrize(
    ("case", "kernel"),
    [
        ("requantize.dyadic.int32_int8.b3_c1_half_even", "requantize.dyadic"),
        ("softmax.refq.rows16x37", "softmax.refq"),
        ("requantize.tflite_single.int32_int8.m0p5_s0", "requantize.single"),
        ("block.deit_digits.minmax.w8a8.encoder", "a block program"),
        ("requantize.fp32.int32_uint8.acc-above-2p24", "requantize.fp32"),
    ],
)
def test_unsupported_cases_are_refused_by_name(
    case: str, kernel: str, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """Before: run_tb.py ran every case through the TFLite-double requantizer and printed
    "REFQ-TB FAIL 423 of 423" (dyadic) or "592 of 592" (softmax.refq)."""
    import run_tb  # type: ignore[import-not-found]  # tools/rtl

    golden = Path(__file__).resolve().parents[2] / "golden"
    export(golden, "hex", tmp_path / "hex", only=case)
    folder = tmp_path / "hex" / case
    with pytest.raises(UnsupportedCase) as info:
        run_testbench(folder)
    assert f"case {case} is not one this testbench's DUT implements" in str(info.value)
    assert f"its kernel is {kernel}" in str(info.value)
    assert "requantize.tflite_double.* golden cases" in str(info.value)
    monkeypatch = pytest.MonkeyPatch()
    monkeypatch.setattr(sys, "argv", ["run_tb.py", str(folder)])
    try:
        assert run_tb.main() == 3
    finally:
        monkeypatch.undo()
    assert "refused" in capsys.readouterr().err


def test_a_tflite_double_case_lacking_a_parameter_file_is_refused(
    hex_cases: list[Path], tmp_path: Path
) -> None:
    folder = tmp_path / "case"
    shutil.copytree(hex_cases[0], folder)
    (folder / "shift.hex").unlink()
    with pytest.raises(UnsupportedCase, match=r"it lacks shift\.hex"):
        run_testbench(folder)
