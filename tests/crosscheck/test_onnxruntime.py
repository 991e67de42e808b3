"""The onnxruntime adapter: refq's suite runs on it, agreements pass, and this machine's known
disagreements are reported as known (never hidden)."""

from __future__ import annotations

import importlib.util
import os

import numpy as np
import pytest

pytestmark = pytest.mark.onnx

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
if importlib.util.find_spec("onnxruntime") is None or importlib.util.find_spec("onnx") is None:
    if _CI:
        raise RuntimeError("CI=true: the onnx extra (onnx, onnxruntime) must be installed")
    pytest.skip("onnx extra not installed", allow_module_level=True)

from refq.crosscheck.adapters.onnx_oracles import to_f32_exact  # noqa: E402
from refq.crosscheck.adapters.onnx_suite import check_known_file, run_onnx_suite  # noqa: E402
from refq.crosscheck.adapters.onnxruntime_backend import OnnxRuntimeBackend  # noqa: E402


def test_f32_oracle_rounds_once() -> None:
    from fractions import Fraction

    assert to_f32_exact(Fraction(1, 3)) == np.float32(1 / 3)
    assert to_f32_exact(Fraction(2**24 + 1)) == np.float32(2**24)  # tie to even
    assert to_f32_exact(Fraction(2**24 + 3)) == np.float32(2**24 + 4)


def test_suite_reports_agreements_and_known_disagreements() -> None:
    known = check_known_file()
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
    assert status["onnx.regress.mmi-u8s8-pair-saturation"] == "known"
    assert status["onnx.regress.qlmm-u8s8-pair-saturation"] == "known"
    assert status["onnx.regress.ql-f32-quotient-double-rounding"] == "known"
    assert status["onnx.regress.dql-int32-double-rounding"] == "known"
    # agreements of a key that has a known entry read "fixed?" (the key-level entry matches)
    assert status["onnx.regress.mmi-s8s8-k4096-extreme"] in ("pass", "fixed?")
    assert status["onnx.regress.ql-tie-odd-zp"] in ("pass", "fixed?")


def test_without_known_file_the_disagreements_fail() -> None:
    report = run_onnx_suite(OnnxRuntimeBackend(), examples=5, known=[], keys=[], kernel_ops=[])
    assert not report.ok
    assert report.counts()["fail"] >= 4


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
