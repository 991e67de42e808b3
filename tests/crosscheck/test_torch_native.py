"""The torch-native backend: PyTorch's quantized CPU engines are predicted bit-exactly by refq's
``fp32`` requantization family, their disagreements are named known cases, and a wrong
adapter is caught."""

from __future__ import annotations

import numpy as np
import pytest

from ..torch_oracle import needs_torch

pytestmark = [pytest.mark.torch, needs_torch]


def _engines() -> list[str]:
    import torch

    return [e for e in torch.backends.quantized.supported_engines if e != "none"]


def _suite(backend: object, keys: list[str], examples: int = 15) -> object:
    from refq.crosscheck.backend import extras_of
    from refq.crosscheck.suite import run_suite

    ex = extras_of(backend)
    assert ex is not None
    return run_suite(
        backend,  # type: ignore[arg-type]
        ops=keys,
        examples=examples,
        known=list(ex.known),
        extra_strategies=ex.strategies,
        regressions=ex.regressions,
    )


@pytest.mark.parametrize("engine", ["fbgemm", "x86", "onednn", "qnnpack"])
def test_each_engine_is_predicted_by_its_rule(engine: str) -> None:
    from refq.crosscheck.adapters.torch_native_backend import LINEAR_RULES, TorchNativeEngine

    if engine not in _engines():
        pytest.fail(f"engine {engine} missing from this torch build: {_engines()}")
    suffix = "_zp_first" if LINEAR_RULES[engine] == "fp32_zp" else ""
    keys = [f"torch_native.linear{suffix}", f"torch_native.requantize{suffix}",
            "torch_native.matmul_pow2", "torch_native.regress.*"]
    report = _suite(TorchNativeEngine(engine), keys)
    status = {e.key: e.status for e in report.entries}  # type: ignore[attr-defined]
    assert report.ok, report.text()  # type: ignore[attr-defined]
    for key in [*keys[:3], "torch_native.regress.matmul-zero-point-before-rounding"]:
        assert status[key] == "pass", (key, report.text())  # type: ignore[attr-defined]
    if engine == "onednn":  # fp32_zp: saturates correctly, ties after adding the zero point
        assert status["torch_native.regress.linear-zero-point-before-rounding"] == "pass"
        assert status["torch_native.regress.linear-overflow-to-zero"] == "skip"
    else:
        assert status["torch_native.regress.linear-overflow-to-zero"] == "known"
        for key in ("torch_native.regress.linear-acc-rounded-to-binary32",
                    "torch_native.regress.linear-product-rounded-to-binary32"):
            assert status[key] == "pass", (key, report.text())  # type: ignore[attr-defined]


def test_big_accumulators_agree() -> None:
    from refq.crosscheck.adapters.torch_native_backend import TorchNativeEngine

    report = _suite(TorchNativeEngine("fbgemm"), ["torch_native.linear_bigacc"], examples=4)
    assert report.ok and report.entries[0].status == "pass", report.text()  # type: ignore


def test_wrong_zero_point_adapter_is_caught() -> None:
    from refq.crosscheck.adapters.torch_native_backend import TorchNativeEngine

    report = _suite(TorchNativeEngine("fbgemm", defect="zero_point"),
                    ["torch_native.linear"], examples=10)
    entry = report.entries[0]  # type: ignore[attr-defined]
    assert entry.status == "fail" and entry.mismatches
    assert "+1" in entry.mismatches[0].pattern


def test_composite_reports_members_that_disagree() -> None:
    from refq.crosscheck.adapters.engine_common import AllAgree
    from refq.crosscheck.suite import run_case
    from refq.golden.case import Case

    class Member:
        def __init__(self, name: str, value: int) -> None:
            self.name, self.value = name, value

        def supports(self, case: Case) -> bool:
            return True

        def run(self, case: Case) -> dict[str, np.ndarray]:
            return {"y": np.array([1, self.value])}

    case = Case("c", "kernel", 0, {"op": "x", "variant": "y"})
    _, error = run_case(AllAgree("both", [Member("a", 2), Member("b", 3)]), case)
    assert "members disagree" in error and "(1,) (2 vs 3)" in error
    assert AllAgree("both", [Member("a", 2), Member("b", 2)]).run(case)["y"].tolist() == [1, 2]


def test_unsupported_cases_are_declined() -> None:
    from refq.crosscheck.adapters.torch_native_backend import TorchNativeEngine
    from refq.golden.kernels import kernel_case
    from refq.intmath import INT8, UINT8
    from refq.ops import GemmParams, RequantParams

    fb = TorchNativeEngine("fbgemm")
    one = TorchNativeEngine("onednn")
    rq = RequantParams("double", (1 << 30,), (-3,), out_format=UINT8)
    tflite = kernel_case("t", 0, "linear.gemm", GemmParams(UINT8, INT8, 0, 0, 32, rq),
                         {"x": [[1]], "w": [[1]], "bias": [0]})
    assert not fb.supports(tflite)  # a TFLite rounding is not what the engines compute
    rq32 = RequantParams("fp32", (1,), (3,), out_format=UINT8)  # fbgemm's rule, not onednn's
    wzp = kernel_case("t", 0, "linear.gemm", GemmParams(UINT8, INT8, 0, 5, 32, rq32),
                      {"x": [[1]], "w": [[1]], "bias": [0]})
    assert fb.supports(wzp) and not one.supports(wzp)  # onednn: another rule, and symmetric
    # weights only
    y = fb.run(wzp)["y"]
    np.testing.assert_array_equal(y, wzp.tensors["y"].values, strict=False)


def test_known_file_entries_name_regressions_or_keys() -> None:
    from refq.crosscheck.adapters.torch_native_cases import known, regression_cases, strategies

    names = {c.name for c in regression_cases()} | set(strategies()) | {"requantize.fp32"}
    import fnmatch

    for k in known():
        assert k.reproducer, k.match
        assert fnmatch.filter(names, k.match), k.match


def test_int_mm_code_path_on_cpu() -> None:
    """torch._int_mm through the torch-native-cuda adapter's code path, run on torch's CPU
    kernel (the GPU run is tools/gpu_check.sh)."""
    from refq.crosscheck.adapters.torch_native_backend import TorchIntMM

    report = _suite(TorchIntMM("cpu"), ["torch_native.int_mm"], examples=10)
    entry = report.entries[0]  # type: ignore[attr-defined]
    assert entry.status == "pass" and entry.examples > 0, report.text()  # type: ignore
