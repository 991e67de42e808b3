"""The onnxruntime adapter: refq's suite runs on it, agreements pass, and this machine's known
disagreements are reported as known (never hidden)."""

from __future__ import annotations

import numpy as np
import pytest

from ..extras import require_extra

pytestmark = pytest.mark.onnx

require_extra("onnx", ("onnxruntime", "onnx"))

from refq.crosscheck.adapters.onnx_oracles import to_f32_exact  # noqa: E402
from refq.crosscheck.adapters.onnx_suite import check_known_file, run_onnx_suite  # noqa: E402
from refq.crosscheck.adapters.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402
from refq.crosscheck.cpu import condition_holds, cpu_flags  # noqa: E402

NO_VNNI = {"cpu_lacks": ["avx512_vnni", "avx_vnni"]}
SATURATES = condition_holds(NO_VNNI, cpu_flags())
"""Whether MLAS's u8 x s8 kernel saturates 16-bit pair sums on this CPU (no VNNI)."""


def test_f32_oracle_rounds_once() -> None:
    from fractions import Fraction

    assert to_f32_exact(Fraction(1, 3)) == np.float32(1 / 3)
    assert to_f32_exact(Fraction(2**24 + 1)) == np.float32(2**24)  # tie to even
    assert to_f32_exact(Fraction(2**24 + 3)) == np.float32(2**24 + 4)


def test_suite_reports_agreements_and_known_disagreements() -> None:
    from refq.crosscheck.adapters.onnx_suite import KNOWN_FILE
    from refq.crosscheck.known import load_known

    check_known_file()  # every entry well formed, whatever the CPU
    known = load_known(KNOWN_FILE)  # the entries that hold on this CPU
    report = run_onnx_suite(
        OnnxRuntimeBackend(),
        examples=10,
        known=known,
        kernel_ops=[],  # matmul/linear.gemm: see the avoid_known test (shrinking is slow)
        keys=["onnx.quantize_linear_exact", "onnx.quantize_linear", "onnx.dequantize_linear"],
    )
    status = {e.key: e.status for e in report.entries}
    assert report.ok, report.text()
    assert status["onnx.quantize_linear_exact"] == "pass"
    assert status["onnx.dequantize_linear"] == "pass"
    saturation = "known" if SATURATES else "pass"  # the entries hold only without VNNI
    assert status["onnx.regress.mmi-u8s8-pair-saturation"] == saturation
    assert status["onnx.regress.qlmm-u8s8-pair-saturation"] == saturation
    assert status["onnx.regress.ql-f32-quotient-double-rounding"] == "known"
    assert status["onnx.regress.dql-int32-double-rounding"] == "known"
    # agreements of a key that has a known entry read "fixed?" (the key-level entry matches)
    assert status["onnx.regress.mmi-s8s8-k4096-extreme"] in (
        ("pass", "fixed?") if SATURATES else ("pass",)
    )
    assert status["onnx.regress.ql-tie-odd-zp"] in ("pass", "fixed?")


def test_without_known_file_the_disagreements_fail() -> None:
    report = run_onnx_suite(OnnxRuntimeBackend(), examples=5, known=[], keys=[], kernel_ops=[])
    assert not report.ok
    failed = {e.key for e in report.entries if e.status == "fail"}
    # the float32 roundings fail everywhere; the pair-sum saturation only without VNNI
    assert {"onnx.regress.ql-f32-quotient-double-rounding",
            "onnx.regress.dql-int32-double-rounding"} <= failed
    saturation = {"onnx.regress.mmi-u8s8-pair-saturation",
                  "onnx.regress.mmi-u8s8-pair-saturation-neg",
                  "onnx.regress.linear-u8s8-pair-saturation",
                  "onnx.regress.qlmm-u8s8-pair-saturation"}
    assert (saturation <= failed) if SATURATES else not (saturation & failed)


@pytest.mark.parametrize(
    ("flags", "saturates"),
    [(frozenset({"avx2", "fma"}), True), (frozenset({"avx2", "avx512_vnni"}), False),
     (frozenset({"avx2", "avx_vnni"}), False), (None, True)],
)
def test_known_entries_follow_the_cpu(flags: frozenset[str] | None, saturates: bool) -> None:
    from refq.crosscheck.adapters.onnx_suite import KNOWN_FILE
    from refq.crosscheck.known import load_known

    matches = {k.match for k in load_known(KNOWN_FILE, cpu=flags)}
    assert ("onnx.regress.*u8s8-pair-saturation*" in matches) == saturates
    assert ("matmul.gemm" in matches) == saturates
    # CPU-independent entries always apply
    assert "onnx.regress.ql-f32-quotient-double-rounding" in matches


def test_avoiding_the_predicted_saturation_everything_else_agrees() -> None:
    report = run_onnx_suite(
        OnnxRuntimeBackend(avoid_known=True),
        examples=10,
        known=[],
        keys=["onnx.matmul_bigk"],
        regressions=False,
    )
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    assert status["matmul.gemm"] == status["linear.gemm"] == "pass"
    assert status["onnx.matmul_bigk"] == "pass"
