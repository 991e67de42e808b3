"""Program and block golden cases can be re-run by hand from their files alone, and the
block cut agrees with the whole program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.golden.case import read_case
from refq.golden.cases_program import program_of
from refq.program.ir import Program
from refq.program.run import run

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
CASES = sorted(
    p.name for p in GOLDEN.iterdir() if p.name.startswith(("program.", "block."))
)


def rebuild(case_dir: Path) -> tuple[Program, dict[str, np.ndarray]]:
    """The Program from meta.json's ``program`` and the case's param tensors; its inputs."""
    return program_of(read_case(case_dir))


def test_program_cases_are_committed() -> None:
    assert any(c.startswith("program.") for c in CASES)
    assert {c.rsplit(".", 1)[-1] for c in CASES if c.startswith("block.")} == {
        "attention", "mlp", "encoder"
    }


@pytest.mark.parametrize("name", CASES)
def test_rerun_by_hand_from_files(name: str) -> None:
    prog, inputs = rebuild(GOLDEN / name)
    got = run(prog, inputs)
    case = read_case(GOLDEN / name)
    stored = {n: t for n, t in case.tensors.items() if t.role in ("intermediate", "output")}
    assert stored and set(stored) == set(got) - set(inputs)
    for n, t in stored.items():
        np.testing.assert_array_equal(got[n], t.values.astype(np.int64), strict=True)


@pytest.mark.parametrize("bits", [8, 4])
def test_encoder_block_matches_whole_program(bits: int) -> None:
    whole = read_case(GOLDEN / f"program.deit_digits.minmax.w{bits}a{bits}")
    block = read_case(GOLDEN / f"block.deit_digits.minmax.w{bits}a{bits}.encoder")
    assert [n for n, t in block.tensors.items() if t.role == "input"] == ["embed"]
    for n, t in block.tensors.items():
        if t.role in ("input", "intermediate", "output"):
            np.testing.assert_array_equal(
                t.values.astype(np.int64), whole.tensors[n].values.astype(np.int64), strict=True
            )
