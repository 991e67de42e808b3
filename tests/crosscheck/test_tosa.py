"""The ``tosa`` backend (refq's TOSA export on Arm's TOSA reference model): every kernel
variant's hypothesis strategy and the committed golden set pass bit-exactly — program and
block cases tensor by tensor against refq's interpreter run live — the differences of
contract are named known cases, and deliberately wrong exports are caught."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model")

from refq.crosscheck import run_suite  # noqa: E402
from refq.crosscheck.adapters import tosa_cases  # noqa: E402
from refq.crosscheck.adapters.tosa_backend import TosaBackend  # noqa: E402
from refq.crosscheck.adapters.tosa_suite import (  # noqa: E402
    KNOWN_FILES,
    check_known_file,
    regression_cases,
    run_tosa_suite,
)
from refq.ops.table import KERNELS  # noqa: E402

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
NOT_TRANSLATED = {"requantize.fp32_zp", "requantize.fp64"}
"""The engine requantizations with a binary32 zero-point sum or binary64 arithmetic: refused by
the export (named known cases in the tosa and iree known files)."""


def test_every_variant_passes_and_the_contract_differences_are_named() -> None:
    report = run_tosa_suite(TosaBackend(), examples=12)
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    # hls4ml-style variants (ap_fixed types) declare no TOSA translation: skipped by name
    other_family = {k for k in KERNELS if not tosa_cases.exportable(k)}
    assert other_family == {"requantize.ap_fixed", "layernorm.hls4ml", "softmax.hls4ml_stable",
                            "softmax.hls4ml_latency", "softmax.hls4ml_legacy"}
    assert {status[k] for k in other_family} == {"skip"}
    assert {k for k, s in status.items() if s == "pass" and k in KERNELS} == (
        set(KERNELS) - NOT_TRANSLATED - other_family)
    assert {k for k, s in status.items() if s == "known" and k in KERNELS} == NOT_TRANSLATED
    assert status["tosa.regress.rescale-shift31-single"] == "known"
    assert status["tosa.regress.rescale-shift31-double"] == "known"
    assert status["tosa.regress.rescale-shift1"] == "known"
    for name in ("exact-shift31-single", "exact-shift31-double", "exact-shift1"):
        assert status[f"tosa.regress.{name}"] == "pass"  # the default export is exact


def test_known_files_name_regression_cases() -> None:
    names = {c.name for c in regression_cases()}
    assert any(n.startswith("tosa.regress.exact") for n in names)
    for path in KNOWN_FILES.values():
        assert check_known_file(path)


def test_committed_golden_set_every_tensor_identical() -> None:
    backend = TosaBackend()
    report = run_suite(backend, golden=GOLDEN, generated=False,
                       known=list(backend.suite_extras().known))
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    refused = {k for k in status if k.startswith(("requantize.fp32_zp", "requantize.fp64"))}
    # corner cases outside TOSA's encodings are unsupported (skip, by name), the rest known
    assert refused and {status[k] for k in refused if ".corners." not in k} == {"known"}
    assert {status[k] for k in refused if ".corners." in k} <= {"known", "skip"}
    fqvit = {k for k in status if ".fqvit." in k}  # attn@V's int17 operand, split in two
    assert fqvit >= {"block.deit_digits.fqvit.w8a8.encoder",
                     "block.deit_digits.fqvit.w4a4.encoder",
                     "program.deit_digits.depth1.fqvit.w8a8"}
    assert {status[k] for k in fqvit} == {"pass"}
    swin = {k for k in status if k.startswith("program.swin")}  # roll, windows, mask, merge
    assert swin and {status[k] for k in swin} == {"pass"}
    # the hls4ml-style cases (ap_fixed types) declare no TOSA translation: skipped by name
    skipped = {k for k in status if status[k] == "skip"}
    assert skipped and all("hls4ml" in k or "ap_fixed" in k or ".corners." in k
                           for k in skipped), skipped
    assert {status[k] for k in status if k not in refused | skipped} == {"pass"}
    assert len(status) == len(list(GOLDEN.glob("*/meta.json")))
    programs = [e.key for e in report.entries if e.key.startswith("program.")]
    for method in ("minmax", "ptq4vit", "tsptq", "dopq", "ias", "repq", "fqvit"):
        assert any(f".{method}.w8a8" in k for k in programs), method


def test_single_round_where_double_round_is_meant_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    from refq.interop.tosa import requant

    monkeypatch.setitem(requant.RESCALE_ROUNDING, "double", "SINGLE_ROUND")
    monkeypatch.setattr(tosa_cases, "_CACHE", {})
    report = run_suite(TosaBackend(), ops=["requantize.double"], examples=200, golden=GOLDEN)
    assert not report.ok
    failed = [e for e in report.entries if e.status == "fail"]
    assert failed and all(e.key.startswith("requantize") for e in failed)
    m = failed[0].mismatches[0]
    assert abs(m.expected - m.got) == 1  # one rounding step off


def test_a_wrong_intermediate_is_named_in_a_program_run(monkeypatch: pytest.MonkeyPatch) -> None:
    from refq.golden.case import read_case
    from refq.interop.tosa import softmax

    real = softmax.div_half_up

    def floor_div(g, n, den):  # type: ignore[no-untyped-def]
        q = g.intdiv(n, den)
        return g.add(q, g.scalar(0, q.rank)) if q is not None else real(g, n, den)

    monkeypatch.setattr(softmax, "div_half_up", floor_div)
    monkeypatch.setattr(tosa_cases, "_CACHE", {})
    case = read_case(GOLDEN / "block.deit_digits.minmax.w8a8.encoder")
    with pytest.raises(tosa_cases.ProgramMismatch, match=r"attn\.softmax") as err:
        TosaBackend().run(case)
    assert "first differing tensor" in str(err.value) and "differ; first at index" in str(
        err.value)


def test_tflite_double_rounding_where_ruy_double_up_is_meant_is_caught(
        monkeypatch: pytest.MonkeyPatch) -> None:
    import dataclasses

    from refq.interop.tosa import requant

    def as_double(g, x, p):  # type: ignore[no-untyped-def]
        return requant.tflite(g, x, dataclasses.replace(p, family="double"))

    monkeypatch.setattr(requant, "double_up", as_double)
    monkeypatch.setattr(tosa_cases, "_CACHE", {})
    report = run_suite(TosaBackend(), golden=GOLDEN, generated=False,
                       ops=["requantize.double_up"])
    status = {e.key: e for e in report.entries}
    tie = status["requantize.double_up.int32_int8.negative-tie"]
    assert tie.status == "fail"
    m = tie.mismatches[0]
    assert m.got == m.expected - 1  # the negative tie rounded away from zero, not up
