"""The litert backend: each LiteRT resolver is predicted bit-exactly by the refq family of its
rule (fp64 reference FULLY_CONNECTED, double_up ruy, fp32 XNNPACK, double gemmlowp
BATCH_MATMUL, the tflite softmax), the engine bugs are named known cases, the flatbuffers
carry exactly the scales given, and a wrong adapter is caught."""

from __future__ import annotations

import numpy as np
import pytest

from ..extras import require_extra

pytestmark = pytest.mark.litert

require_extra("litert", ("ai_edge_litert", "tflite", "flatbuffers"))

from refq.crosscheck.adapters.litert_backend import LiteRtResolver  # noqa: E402
from refq.crosscheck.adapters.litert_rules import RULES, derive, scales_for_family  # noqa: E402
from refq.crosscheck.backend import extras_of  # noqa: E402
from refq.crosscheck.suite import run_case, run_suite  # noqa: E402


def _suite(backend: LiteRtResolver, keys: list[str], examples: int = 12) -> object:
    ex = extras_of(backend)
    assert ex is not None
    return run_suite(backend, ops=keys, examples=examples, known=list(ex.known),
                     extra_strategies=ex.strategies, regressions=ex.regressions)


@pytest.mark.parametrize("resolver", ["ref", "optimized", "default"])
def test_each_resolver_is_predicted_by_its_rule(resolver: str) -> None:
    backend = LiteRtResolver(resolver)
    fc = RULES[("fully_connected", resolver)]
    bmm = RULES[("batch_matmul", resolver)]
    keys = [f"litert.fully_connected_{fc}", f"litert.fully_connected_uint8_{fc}",
            f"litert.batch_matmul_{bmm}", "litert.batch_matmul", "litert.softmax",
            "softmax.tflite", "litert.gelu", f"litert.requantize_{fc}"]
    report = _suite(backend, keys)
    status = {e.key: e.status for e in report.entries}  # type: ignore[attr-defined]
    assert report.ok, report.text()  # type: ignore[attr-defined]
    for key in keys:
        assert status[key] == "pass", (key, report.text())  # type: ignore[attr-defined]


def test_reference_requantize_double_matches_batch_matmul() -> None:
    """refq's TFLite double-rounding requantization is what the reference BATCH_MATMUL
    computes (this wheel is a double-rounding build)."""
    report = _suite(LiteRtResolver("ref"), ["requantize.double", "litert.requantize_double"],
                    examples=6)
    for entry in report.entries:  # type: ignore[attr-defined]
        assert entry.status == "pass" and entry.examples > 0, report.text()  # type: ignore


def test_other_rules_are_declined_not_passed() -> None:
    backend = LiteRtResolver("ref")
    report = _suite(backend, ["litert.fully_connected_fp32", "litert.fully_connected_double_up",
                              "requantize.single"], examples=5)
    assert {e.status for e in report.entries} == {"skip"}  # type: ignore[attr-defined]


def test_engine_bugs_are_known_with_reproducers() -> None:
    report = _suite(LiteRtResolver("ref"), ["litert.regress.*"])
    status = {e.key: e.status for e in report.entries}  # type: ignore[attr-defined]
    assert status["litert.regress.batch-matmul-int32-ignores-zero-points"] == "known"
    assert status["litert.regress.fc-reference-int32-cast-overflow"] == "known"
    report = _suite(LiteRtResolver("default"), ["litert.regress.*"])
    status = {e.key: e.status for e in report.entries}  # type: ignore[attr-defined]
    assert status["litert.regress.xnnpack-batch-matmul-rhs-zero-point"] == "known"


@pytest.mark.parametrize("resolver", ["ref", "optimized", "default"])
def test_wrong_zero_point_adapter_is_caught(resolver: str) -> None:
    backend = LiteRtResolver(resolver, defect="zero_point")
    fc = RULES[("fully_connected", resolver)]
    report = _suite(backend, [f"litert.fully_connected_{fc}"], examples=5)
    entry = report.entries[0]  # type: ignore[attr-defined]
    assert entry.status == "fail" and entry.mismatches
    assert "+1" in entry.mismatches[0].pattern


@pytest.mark.parametrize("family", ["double", "double_up", "fp32", "fp64"])
def test_scales_reproduce_the_multiplier(family: str) -> None:
    rng = np.random.default_rng(0)
    for _ in range(10):
        if family in ("fp32", "fp64"):
            m, c = int(rng.integers(1, 1 << 24)) | 1, int(rng.integers(20, 50))
        else:
            m, c = int(rng.integers(1 << 30, 1 << 31)), int(rng.integers(-31, 8))
        scales = scales_for_family(family, m, c)
        assert scales is not None
        assert derive(family, *scales) == (m, c)
        assert all(float(np.float32(s)) == s for s in scales)  # float32 values


def test_flatbuffer_carries_the_exact_scales() -> None:
    from ai_edge_litert.interpreter import Interpreter

    from refq.crosscheck.adapters.tflite_flatbuffer import OpDef, TensorDef, build_model

    s_x, s_w = 0.0123456789, 3.0e-5
    ts = [TensorDef((2, 3), "int8", (s_x,), (-7,)),
          TensorDef((4, 3), "int8", (s_w, 2 * s_w, 3 * s_w, 4 * s_w), (0, 0, 0, 0), 0,
                    data=np.arange(12).reshape(4, 3)),
          TensorDef((4,), "int32", (s_x * s_w,) * 4, (0,) * 4, 0, data=np.array([1, 2, 3, 4])),
          TensorDef((2, 4), "int8", (0.5,), (3,))]
    model = build_model(ts, [OpDef("FULLY_CONNECTED", (0, 1, 2), (3,),
                                   ("FullyConnectedOptions", {}))], [0], [3])
    it = Interpreter(model_content=model)
    details = {d["index"]: d["quantization_parameters"] for d in it.get_tensor_details()}
    assert details[0]["scales"].tolist() == [np.float32(s_x)]
    assert details[0]["zero_points"].tolist() == [-7]
    assert details[1]["scales"].tolist() == [np.float32(s_w * k) for k in (1, 2, 3, 4)]
    np.testing.assert_array_equal(it.get_tensor(1), np.arange(12).reshape(4, 3))


def test_a_case_outside_every_rule_raises_when_run() -> None:
    from refq.errors import BackendError
    from refq.golden.kernels import kernel_case
    from refq.intmath import INT8
    from refq.ops import RequantParams

    case = kernel_case("t", 0, "requantize.single", RequantParams("single", (1 << 30,), (-3,),
                                                                  out_format=INT8), {"x": [5]})
    backend = LiteRtResolver("ref")
    assert not backend.supports(case)
    with pytest.raises(BackendError):
        backend.run(case)
    assert run_case(backend, case)[1].startswith("BackendError")
