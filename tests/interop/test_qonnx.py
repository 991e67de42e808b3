"""refq.interop.qonnx: committed golden cases exported to QONNX run in qonnx's executor equal
to refq on EVERY tensor; refusals name the op and the reason; a deliberately wrong export is
caught. The whole committed set of program and block cases is the slow run (the acceptance
measurement, docs/backends/qonnx.md); the default suite runs the MLP and attention blocks
and the kernel cases."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest

from ..extras import require_extra

pytestmark = pytest.mark.hls

require_extra("hls", ("qonnx", "onnxruntime"))

from refq.errors import SpecError  # noqa: E402
from refq.golden.case import Case, read_case  # noqa: E402
from refq.interop.qonnx import (  # noqa: E402
    case_program,
    check_case,
    compare,
    execute,
    export_case,
    export_set,
)

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
warnings.filterwarnings("ignore", module="qonnx")


def _program_cases() -> list[str]:
    names = json.loads((GOLDEN / "MANIFEST.json").read_text())["cases"]
    return sorted(n for n in names if n.startswith(("program.", "block.")))


def _case(name: str) -> Case:
    """A committed case, or ``ENCODER/PART``: the part cut from the committed encoder block
    case by block_part (the min-max part cases are extended, not committed)."""
    from refq.golden.cases_program import block_part

    folder, _, part = name.partition("/")
    case = read_case(GOLDEN / folder)
    return block_part(case, part) if part else case


def _assert_all_equal(name: str) -> None:
    result = check_case(_case(name))
    differing = [(t.name, t.detail) for t in result.differing]
    assert differing == [], f"{name}: {differing[:5]}"
    assert len(result.tensors) >= 2


DEFAULT = [
    "block.deit_digits.minmax.w8a8.encoder/mlp",
    "block.deit_digits.minmax.w4a4.encoder/mlp",
    "block.deit_digits.minmax.w8a8.encoder/attention",
    "softmax.refq.rows16x37",
    "layernorm.refq.ptf.c48",
    "requantize.dyadic.int32_int8.b3_c1_half_up",
    "add.ivit.int32_int8",
    "linear.gemm.int8.acc32",
    "linear.gemm.uint8_zp.requant",
    "requantize.tflite_double.int32_int8.carry_s-20",
    "requantize.tflite_single.int32_int8.m0p6_s-4",
    "softmax.ibert.rows16x37",
    "softmax.shiftmax.rows16x37",
    "gelu.ibert.int32",
    "gelu.shiftgelu.int32",
    "layernorm.ibert.int8.c48",
    "layernorm.ivit.int8.c48",
    "requantize.fp32.int32_uint8.acc-above-2p24",
    "requantize.fp32.int32_uint8.product-rounds-to-tie",
    "requantize.fp32_zp.int32_uint8.zero-point-first",
    "requantize.fp64.int32_int8.scale-48bit",
    "requantize.fp64.int32_int8.ties-away",
    "requantize.double_up.int32_int8.first-rounding-decides",
    "requantize.double_up.int32_int8.negative-tie",
]


@pytest.mark.parametrize("name", DEFAULT)
def test_every_tensor_equal(name: str) -> None:
    _assert_all_equal(name)


@pytest.mark.slow
@pytest.mark.parametrize("name", _program_cases())
def test_every_committed_program_case(name: str) -> None:
    """Acceptance: every committed program/block case at W8A8 and W4A4, every tensor."""
    _assert_all_equal(name)


def test_graph_is_qonnx() -> None:
    """Names kept, Quant / MultiThreshold nodes in qonnx's domain, formats annotated, and the
    int64 islands named."""
    case = _case("block.deit_digits.minmax.w8a8.encoder/mlp")
    m = export_case(case)
    graph = m.model.graph
    ops = {(n.domain, n.op_type) for n in graph.node}
    assert ("qonnx.custom_op.general", "Quant") in ops
    assert ("qonnx.custom_op.general", "MultiThreshold") in ops
    produced = {o for n in graph.node for o in n.output}
    program, _ = case_program(case)
    for op in program.ops:
        assert set(op.outputs) <= produced
    annotated = {a.tensor_name for a in graph.quantization_annotation}
    assert "blocks.0.mlp.fc1" in annotated
    reasons = {n.tensor: n.reason for n in m.notes}
    assert "blocks.0.norm2.n" in reasons  # layernorm statistics on int64
    assert m.containers["blocks.0.mlp.fc1.acc"] == "i64"  # int32: wider than float32 exact
    assert m.containers["blocks.0.mlp.gelu"] == "f32"


def test_refusals_name_op_and_reason() -> None:
    for name, words in (("softmax.lis.rows16x37", r"softmax\.lis"),
                        ("softmax.hls4ml_stable.rows16x12", "hls4ml_stable"),
                        ("layernorm.hls4ml.rows16x16", r"layernorm\.hls4ml")):
        with pytest.raises(SpecError, match=words):
            export_case(read_case(GOLDEN / name))


def test_wrong_export_is_caught() -> None:
    """Negative control: the export with half-even Quant nodes switched to round-half-up
    differs from refq on the tensors that round a tie."""
    case = read_case(GOLDEN / "requantize.dyadic.int32_int8.b3_c1_half_even")
    m = export_case(case)
    quants = [n for n in m.model.graph.node if n.op_type == "Quant"]
    assert quants
    for n in quants:
        for a in n.attribute:
            if a.name == "rounding_mode":
                a.s = b"HALF_UP"
    program, inputs = case_program(case)
    results = compare(case, execute(m.model, inputs), set(program.tensors))
    bad = [t for t in results if not t.equal]
    assert [t.name for t in bad] == ["y"] and "first at" in bad[0].detail


def test_export_set_cli_form(tmp_path: Path) -> None:
    """``refq golden export DIR --format qonnx --out Q``: one folder per expressible case,
    REFUSED.json for the rest (checked on a two-case set)."""
    from refq.cli import main
    from refq.golden import generate

    src = tmp_path / "g"
    generate(src, "gelu.lut.int8.exhaustive,softmax.lis.rows16x37", progress=False)
    out = tmp_path / "Q"
    assert main(["golden", "export", str(src), "--format", "qonnx", "--out", str(out)]) == 0
    assert (out / "gelu.lut.int8.exhaustive" / "model.onnx").is_file()
    notes = json.loads((out / "gelu.lut.int8.exhaustive" / "notes.json").read_text())
    assert notes["contract"]
    refused = json.loads((out / "REFUSED.json").read_text())
    assert list(refused) == ["softmax.lis.rows16x37"]
    res = export_set(src, tmp_path / "Q2")
    assert res.exported == ["gelu.lut.int8.exhaustive"]


def test_int64_path_is_exact_beyond_float() -> None:
    """A dyadic requantization whose product passes 2^53 is emitted on int64 (named) and
    still equals refq at the ties."""
    from refq.golden.kernels import kernel_case
    from refq.intmath import INT8
    from refq.ops import RequantParams

    p = RequantParams("dyadic", (2**31 - 1,), (40,), "half_even", 0, 0, INT8)
    x = np.array([2**31 - 1, -(2**31), 0, 1, -1, 3 << 8, 12345678], dtype=np.int64)
    case = kernel_case("k", 0, "requantize.dyadic", p, {"x": x})
    m = export_case(case)
    assert any(n.kind == "int64-path" for n in m.notes)
    program, inputs = case_program(case)
    assert all(t.equal for t in compare(case, execute(m.model, inputs), set(program.tensors)))


def test_qonnx_half_up_rounds_twice() -> None:
    """qonnx's HALF_UP is sign(x)·floor(|x| + 1/2), and |x| + 1/2 is itself rounded: the
    largest float64 below 1/2 becomes 1 (C's round() and refq's half_away give 0); the same
    at 2^52 + 1. The export uses HALF_UP only where |x| + 1/2 is exact (x·b + 2^c < 2^52,
    docs/backends/qonnx.md); this pins the executor's behaviour the bound guards against."""
    from qonnx.custom_op.general.intquant import resolve_rounding_mode

    from refq.intmath.rounding import round_shift

    half_up = resolve_rounding_mode("HALF_UP")
    below_half = np.nextafter(0.5, 0.0)  # (2^53 - 1)·2^-54
    got = half_up(np.array([below_half, -below_half, 2.0**52 + 1]))
    assert got.tolist() == [1.0, -1.0, 2.0**52 + 2]
    exact = round_shift(np.array([2**53 - 1, -(2**53 - 1)], np.int64), 54, "half_away")
    assert exact.tolist() == [0, 0]  # refq: (2^53 - 1)·2^-54 < 1/2 rounds to 0


ENGINE_KEYS = ["requantize.fp32", "requantize.fp32_zp", "requantize.fp64", "requantize.double_up"]


def test_engine_requantizations_generated() -> None:
    """The engine families on refq's own hypothesis cases (near ties, whole parameter
    ranges), through the qonnx backend."""
    from refq.crosscheck import run_suite
    from refq.crosscheck.adapters.qonnx_backend import QonnxBackend

    report = run_suite(QonnxBackend(), ops=ENGINE_KEYS, examples=10)
    statuses = {e.key: e.status for e in report.entries}
    assert statuses == dict.fromkeys(ENGINE_KEYS, "pass"), statuses


@pytest.mark.parametrize("family", ["fp32", "fp32_zp", "fp64", "double_up"])
def test_engine_requantization_inside_a_gemm(family: str) -> None:
    """linear.gemm with an engine requantization (the GEMM path must not take it for a
    TFLite one), at a zero point, per channel."""
    from refq.golden.kernels import kernel_case
    from refq.intmath import UINT8
    from refq.ops import GemmParams
    from refq.params import requant_params

    rng = np.random.default_rng(7)
    r = requant_params([0.0123, 0.0071, 0.0457], family=family, out_zero_point=5,
                       out_format=UINT8)
    p = GemmParams(requant=r)
    x = rng.integers(-128, 128, (4, 16))
    w = rng.integers(-128, 128, (3, 16))
    b = rng.integers(-3000, 3000, 3)
    case = kernel_case("g", 0, "linear.gemm", p, {"x": x, "w": w, "bias": b})
    m = export_case(case)
    assert any(family in n.reason for n in m.notes)
    program, inputs = case_program(case)
    assert all(t.equal for t in compare(case, execute(m.model, inputs), set(program.tensors)))


def test_wrong_engine_rounding_is_caught() -> None:
    """Negative control: fp64 with ties toward zero instead of away, and fp32 with
    HALF_DOWN instead of ROUND (197.5 -> 197, the value exact arithmetic would give), differ
    from refq on the committed tie cases."""
    for name, swap in (("requantize.fp32.int32_uint8.product-rounds-to-tie", "Quant"),
                       ("requantize.fp64.int32_int8.ties-away", "GreaterOrEqual")):
        case = read_case(GOLDEN / name)
        m = export_case(case)
        for n in m.model.graph.node:
            if n.op_type == "Quant" and swap == "Quant":
                for a in n.attribute:
                    if a.name == "rounding_mode":
                        a.s = b"HALF_DOWN"
            if n.op_type == "GreaterOrEqual" and swap == "GreaterOrEqual":
                n.op_type = "Greater"  # ties toward zero: a wrong tie rule
        program, inputs = case_program(case)
        results = compare(case, execute(m.model, inputs), set(program.tensors))
        assert [t.name for t in results if not t.equal] == ["y"], name
