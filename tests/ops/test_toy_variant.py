"""Adding a variant is one declaration plus its function: a toy softmax variant, declared here
through the public API only, appears in the dispatcher, ``refq kernels``, the golden case
list and the cross-check suite without any other edit — and is gone again after the test."""

from __future__ import annotations

import importlib.util
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refq import ops
from refq.cli import main
from refq.commands.kernels import markdown
from refq.crosscheck import load_backend, run_suite
from refq.crosscheck.strategies import STRATEGIES
from refq.errors import SpecError
from refq.golden import generate, verify
from refq.golden.registry import cases
from refq.intmath import INT16, IntFormat
from refq.ops import Params, Ref, RoundingStep, Variant, Width, declare, unregister
from refq.program.ir import Op, Program
from refq.program.run import run


@dataclass(frozen=True)
class HardmaxParams(Params):
    """The toy's parameters: the input format and the output bits."""

    in_format: IntFormat = INT16
    out_bits: int = 8


def softmax_hardmax(x: Any, params: HardmaxParams) -> Any:
    """The toy: ⌊(2^b - 1) / ties⌋ at every row maximum (ties = how many), 0 elsewhere."""
    xa = np.asarray(x, dtype=np.int64)
    top = xa == xa.max(axis=-1, keepdims=True)
    ties = top.sum(axis=-1, keepdims=True)
    return np.where(top, ((1 << params.out_bits) - 1) // ties, 0).astype(np.int64)


def hardmax_params(scale: Any, *, in_format: IntFormat = INT16) -> HardmaxParams:
    """The toy's 'derivation': its parameters do not depend on the scale."""
    return HardmaxParams(in_format)


def toy(output: str = "proven", out_bits: int | None = None) -> Variant:
    return Variant(
        "softmax", "hardmax", softmax_hardmax, HardmaxParams,
        title="toy: all weight on the row maximum",
        accepts="x: in_format",
        produces="uint<out_bits>",
        out_format=lambda p: IntFormat(out_bits or p.out_bits, False),
        widths=(Width("ties", "int64", "proven"), Width("out", "uint<out_bits>", "proven")),
        roundings=(RoundingStep("(2^b - 1) / ties", "floor"),),
        output=output,  # type: ignore[arg-type]
        source="a test",
        accuracy=None,
        derive=Ref(hardmax_params),
        golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 9001, "scale": "0.01"}),),
        strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("2e-3", "0.1")}),
    )


@pytest.fixture
def declared() -> Iterator[Variant]:
    v = declare(toy())
    try:
        yield v
    finally:
        unregister(v.key)


def _gone() -> None:
    assert "hardmax" not in ops.SOFTMAX_VARIANTS
    assert "softmax.hardmax" not in STRATEGIES
    assert "softmax.hardmax.rows16x37" not in cases()
    assert "hardmax" not in markdown()


def test_a_declared_variant_appears_everywhere(declared: Variant, tmp_path: Path,
                                               capsys: pytest.CaptureFixture[str]) -> None:
    x = np.array([[3, 7, 7, 1], [0, 0, 0, 9]])
    # the dispatcher and the derived lists
    assert "hardmax" in ops.SOFTMAX_VARIANTS
    np.testing.assert_array_equal(
        ops.softmax(x, HardmaxParams(), "hardmax"),
        np.array([[0, 127, 127, 0], [0, 0, 0, 255]], dtype=np.int64), strict=True)
    # refq kernels and the generated docs
    assert main(["kernels", "softmax"]) == 0
    assert "softmax.hardmax — toy: all weight on the row maximum" in capsys.readouterr().out
    assert main(["kernels", "softmax.hardmax"]) == 0
    assert "softmax.hardmax.rows16x37 (seed 9001)" in capsys.readouterr().out
    assert "| `hardmax` | `HardmaxParams` |" in markdown()
    # the golden case list: generated and verified like any case
    assert cases()["softmax.hardmax.rows16x37"].seed == 9001
    generate(tmp_path / "g", "softmax.hardmax.*", progress=False)
    assert [r.ok for r in verify(tmp_path / "g", progress=False)] == [True]
    # the cross-check suite: a strategy entry and the golden case pass on the reference
    report = run_suite(load_backend("reference"), ops=["softmax.hardmax*"], examples=10,
                       golden=tmp_path / "g")
    assert report.ok and {(e.key, e.status) for e in report.entries} == {
        ("softmax.hardmax", "pass"), ("softmax.hardmax.rows16x37", "pass")}
    assert report.entries[0].examples > 0
    if importlib.util.find_spec("torch") is not None:  # a backend without it skips it
        torch_report = run_suite(load_backend("torch"), ops=["softmax.hardmax*"], examples=5,
                                 golden=tmp_path / "g")
        assert {e.status for e in torch_report.entries} == {"skip"}
    # the interpreter runs it, and trusts its declared range
    prog = Program("toy")
    prog.declare("x", (-1, 4), INT16, "input")
    prog.declare("y", (-1, 4), IntFormat(8, False))
    prog.add(Op("kernel", "softmax.hardmax", ("x",), ("y",), HardmaxParams().to_dict()))
    prog.outputs = ["y"]
    assert run(prog, {"x": x}, keep="outputs")["y"].tolist() == [[0, 127, 127, 0],
                                                                 [0, 0, 0, 255]]


def test_unregistered_it_is_gone_everywhere() -> None:
    v = declare(toy())
    unregister(v.key)
    _gone()
    with pytest.raises(SpecError, match="unknown variant 'hardmax'"):
        ops.softmax(np.zeros((1, 2), np.int64), HardmaxParams(), "hardmax")


def test_a_false_range_claim_is_caught_by_the_range_test() -> None:
    """Negative control of tests/ops/test_registry.py::test_declared_output_ranges_hold: a
    declaration claiming uint4 outputs for a kernel that emits 255 fails that check."""
    from tests.ops.test_registry import outputs_in_declared_range

    x = {"x": np.array([[3, 7, 2], [5, 5, 5]])}
    v = declare(toy(out_bits=4))
    try:
        assert not outputs_in_declared_range(v, HardmaxParams(), x)
    finally:
        unregister(v.key)
    v = declare(toy())
    try:
        assert outputs_in_declared_range(v, HardmaxParams(), x)  # the true claim holds
    finally:
        unregister(v.key)
