"""The ``iree`` backend (refq's TOSA export compiled by IREE for llvm-cpu and run with
iree.runtime): the committed golden set — program and block cases tensor by tensor against
refq's interpreter run live — every kernel variant's hypothesis strategy, the named IREE
defect as a known regression case, CUDA reported as skipped without a GPU, and a wrong
export caught.

IREE compiles take seconds (about half a CPU second per iree-compile run plus ~7 ms per TOSA
operator), so the kernel cases of the golden set are compiled together in one module
(IreeBackend.precompile) and each program once per session."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model", "iree.compiler", "iree.runtime")

from refq.crosscheck import run_suite  # noqa: E402
from refq.crosscheck.adapters import tosa_cases  # noqa: E402
from refq.crosscheck.adapters.iree_backend import IreeBackend, predicted_known  # noqa: E402
from refq.crosscheck.adapters.tosa_suite import (  # noqa: E402
    KNOWN_FILES,
    check_known_file,
    run_tosa_suite,
)
from refq.crosscheck.suite import golden_cases  # noqa: E402
from refq.ops.table import KERNELS  # noqa: E402
from tests.crosscheck.test_tosa import NOT_TRANSLATED  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
METHODS = ("minmax", "ptq4vit", "tsptq", "dopq", "ias", "repq", "fqvit")


@pytest.fixture(scope="module")
def iree() -> IreeBackend:
    backend = IreeBackend()
    assert backend.available, backend.why
    return backend


# iree-compile of every committed case takes CPU-minutes: -m slow (the reference model's
# golden-set test runs by default)
@pytest.mark.slow
def test_committed_golden_set_every_tensor_identical(iree: IreeBackend) -> None:
    cases = golden_cases(GOLDEN)
    kernels = [c for c in cases if "program" not in c.meta]
    assert iree.precompile(kernels) >= len(kernels) // 2  # shared graphs compile once
    report = run_suite(iree, golden=GOLDEN, generated=False,
                       known=check_known_file(KNOWN_FILES["iree"]))
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    refused = {k for k in status if k.startswith(("requantize.fp32_zp", "requantize.fp64"))}
    # corner cases outside TOSA's encodings are unsupported (skip, by name), the rest known
    assert refused and {status[k] for k in refused if ".corners." not in k} == {"known"}
    assert {status[k] for k in refused if ".corners." in k} <= {"known", "skip"}
    # the hls4ml-style cases (ap_fixed types) declare no TOSA translation: skipped by name
    skipped = {k for k in status if status[k] == "skip"}
    assert all("hls4ml" in k or "ap_fixed" in k or ".corners." in k for k in skipped), skipped
    assert {status[k] for k in status if k not in refused | skipped} == {"pass"}
    assert len(status) == len(cases)
    programs = [e.key for e in report.entries if e.key.startswith("program.")]
    for method in METHODS:
        assert any(f".{method}.w8a8" in k for k in programs), method


def test_every_variant_passes_and_the_iree_defect_is_named(iree: IreeBackend) -> None:
    avoiding = IreeBackend(avoid_known=True)
    report = run_tosa_suite(avoiding, examples=3, regressions=False,
                            ops=[k for k in KERNELS if k != "layernorm.ibert"])
    # three derandomized draws of layernorm.ibert can all be the declined one-element inputs
    report.entries += run_tosa_suite(avoiding, examples=12, regressions=False,
                                     ops=["layernorm.ibert"]).entries
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    # hls4ml-style variants (ap_fixed types) declare no TOSA translation: skipped by name
    other_family = {k for k in KERNELS if not tosa_cases.exportable(k)}
    assert other_family and {status[k] for k in other_family} == {"skip"}
    # layernorm.ibert passes (not "fixed?"): the avoiding backend drops the key-level entry
    assert {k for k, s in status.items() if s == "pass"} == (
        set(KERNELS) - NOT_TRANSLATED - other_family)
    assert {k for k, s in status.items() if s == "known"} == NOT_TRANSLATED
    regress = run_tosa_suite(iree, ops=[])
    assert regress.ok, regress.text()
    status = {e.key: e.status for e in regress.entries}
    assert status["iree.regress.layernorm-ibert-one-element"] == "known"
    assert status["iree.regress.layernorm-ibert-two-elements"] == "pass"
    for name in ("exact-shift31-single", "exact-shift31-double", "exact-shift1"):
        assert status[f"tosa.regress.{name}"] == "pass"


def test_the_defect_prediction_is_exact() -> None:
    from refq.crosscheck.adapters.tosa_suite import regression_cases

    named = {c.name: c for c in regression_cases()}
    assert predicted_known(named["iree.regress.layernorm-ibert-one-element"])
    assert not predicted_known(named["iree.regress.layernorm-ibert-two-elements"])
    assert not IreeBackend(avoid_known=True).supports(
        named["iree.regress.layernorm-ibert-one-element"])


def test_cuda_is_reported_skipped_without_a_gpu() -> None:
    cuda = IreeBackend("cuda")
    if cuda.available:
        pytest.skip("a CUDA device is visible: the cuda target runs instead")
    assert cuda.name == "iree-cuda" and cuda.why
    report = run_suite(cuda, golden=GOLDEN, generated=False, ops=["gelu.*"])
    assert report.entries and {e.status for e in report.entries} == {"skip"}


def test_single_round_where_double_round_is_meant_is_caught(
        iree: IreeBackend, monkeypatch: pytest.MonkeyPatch) -> None:
    from refq.interop.tosa import requant

    monkeypatch.setitem(requant.RESCALE_ROUNDING, "double", "SINGLE_ROUND")
    monkeypatch.setattr(tosa_cases, "_CACHE", {})
    wrong = [c for c in golden_cases(GOLDEN) if c.name.startswith("requantize.tflite_double")]
    iree.precompile(wrong)
    report = run_suite(iree, golden=GOLDEN, generated=False, ops=["requantize.double"])
    failed = [e for e in report.entries if e.status == "fail"]
    # the committed cases of the key (its directed corner cases too) and nothing else
    assert failed and all(e.key.startswith(("requantize.tflite_double",
                                            "requantize.double.corners.")) for e in failed)
    assert any(e.key.startswith("requantize.tflite_double") for e in failed)
    m = failed[0].mismatches[0]
    assert abs(m.expected - m.got) == 1  # one rounding step off
