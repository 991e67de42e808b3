"""Program and block golden cases can be re-run by hand from their files alone, and the
block cut agrees with the whole program."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.golden.case import read_case
from refq.golden.cases_program import TINY_DEPTH, TINY_NAME, program_of, tiny_boundary
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
    # committed blocks are whole encoder blocks; their parts are extended cases
    assert {c.rsplit(".", 1)[-1] for c in CASES if c.startswith("block.")} == {"encoder"}


@pytest.mark.parametrize("name", CASES)
def test_rerun_by_hand_from_files(name: str) -> None:
    prog, inputs = rebuild(GOLDEN / name)
    got = run(prog, inputs)
    case = read_case(GOLDEN / name)
    stored = {n: t for n, t in case.tensors.items() if t.role in ("intermediate", "output")}
    scope = case.meta.get("scope", {})
    if scope and "every intermediate" not in scope.get("stored", ""):
        # deit_tiny, the depth-1 method programs: block boundaries only (meta.json says so)
        assert set(stored) == {n for n in got if tiny_boundary(n)} | set(prog.outputs)
    else:
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


def test_deit_tiny_case_has_the_real_geometry() -> None:
    case = read_case(GOLDEN / TINY_NAME)
    shapes = {n: t.values.shape for n, t in case.tensors.items()}
    last = TINY_DEPTH - 1
    assert shapes["input"] == (1, 3, 224, 224)
    assert shapes["embed"] == (1, 197, 192) and shapes[f"blocks.{last}.add2"] == (1, 197, 192)
    assert shapes["head"] == (1, 1000)
    assert shapes[f"blocks.{last}.mlp.fc1.w"] == (768, 192)
    assert shapes["blocks.0.attn.qkv.w"] == (576, 192)
    assert sum(n.endswith(".add2") for n in shapes) == TINY_DEPTH
    assert "depth reduced from 12" in case.meta["scope"]["model"]
