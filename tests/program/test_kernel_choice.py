"""Lowering in any kernel variant: the choice per family (profiles and family=variant items,
derived from the registry), programs of the ibert / ivit / tflite profiles that run and
match the fake-quant model, and variants that cannot sit at a tap refused naming both."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytest

from refq.calib.minmax import minmax_spec
from refq.errors import SpecError
from refq.intmath import IntFormat
from refq.methods import fake_quant
from refq.nn import load_bundled
from refq.ops import lookup
from refq.program import integer_gap, lower, run
from refq.program.files import program_dict
from refq.program.kernels import FAMILIES, PROFILES, choose, fallbacks, lowerable, recorded
from refq.program.lower_kernels import softmax_ibert, var_shift
from refq.quant import UniformQuantizer

N_CAL, N_TEST = 16, 60


@pytest.fixture(scope="module")
def bundled() -> tuple[Any, Any, Any, Any, Any]:
    model, data = load_bundled()
    fm = model.fold_normalization()
    cal, _ = data.split("calib")
    test, lab = data.split("test")
    return fm, cal[:N_CAL], test[:N_TEST], lab[:N_TEST], minmax_spec(fm, cal[:N_CAL], 8)


def test_choices_come_from_profiles_items_and_the_registry() -> None:
    assert choose() == PROFILES["refq"] == choose("refq")
    assert choose("ibert") == {"softmax": "ibert", "gelu": "ibert", "layernorm": "ibert",
                               "add": "ivit", "requantize": "dyadic"}
    assert choose("softmax=shiftmax,gelu=shiftgelu") == {**PROFILES["refq"],
                                                         "softmax": "shiftmax",
                                                         "gelu": "shiftgelu"}
    assert choose("ivit,softmax=refq")["softmax"] == "refq"
    assert choose("ivit", spec_kernels={"layernorm": "refq"})["layernorm"] == "ivit"
    assert choose(None, spec_kernels={"layernorm": "ibert"})["layernorm"] == "ibert"
    assert recorded(choose()) == {} and recorded(choose("tflite")) == {
        "requantize": "double", "softmax": "tflite"}
    assert fallbacks("tflite") == {"requantize": "dyadic"}
    assert fallbacks("tflite,requantize=double") == {} and fallbacks("requantize=double") == {}
    for fam in FAMILIES:  # every profile's variant is a lowerable registry variant
        for prof in PROFILES.values():
            assert prof[fam] in lowerable(fam)
            assert "lower" in lookup(f"{fam}.{prof[fam]}").meta
    assert "lis" in lowerable("softmax") and "shiftmax_deploy" in lowerable("softmax")


@pytest.mark.parametrize(("text", "match"), [
    ("ibrt", "unknown profile 'ibrt'; did you mean ibert"),
    ("softmax=shiftmx", "unknown variant 'shiftmx'; did you mean shiftmax"),
    ("softmx=refq", "family 'softmx' is not chosen by lowering; did you mean softmax"),
    ("linear=gemm", "family 'linear' is not chosen by lowering"),
    ("requantize=fp32", r"requantize\.fp32 is not lowered \(lowerable: double, dyadic"),
    ("softmax=refq,softmax=ibert", "chosen twice"),
    ("softmax=refq,ibert", "a profile comes first"),
])
def test_bad_choices_are_refused(text: str, match: str) -> None:
    with pytest.raises(SpecError, match=match):
        choose(text)


def test_the_default_profile_is_todays_program(bundled: Any) -> None:
    fm, cal, _, _, spec = bundled
    a, b = lower(fm, spec, cal), lower(fm, spec, cal, kernels="refq")
    assert program_dict(a) == program_dict(b) and a.meta["kernels"] == {}


@pytest.mark.parametrize("profile", ["ibert", "ivit", "tflite"])
def test_profiles_lower_run_and_match_fake_quant(profile: str, bundled: Any) -> None:
    fm, cal, test, lab, spec = bundled
    prog = lower(fm, spec, cal, kernels=profile)
    keys = {op.key for op in prog.ops if op.kind == "kernel"}
    want = {f"{f}.{v}" for f, v in PROFILES[profile].items()}
    assert want <= keys, want - keys
    assert prog.meta["kernels"] == recorded(choose(profile))
    gap = integer_gap(prog, fake_quant(fm, spec), test, lab)
    assert gap.fq_top1 >= 0.9 and abs(gap.int_top1 - gap.fq_top1) <= 2 / N_TEST, gap.table()
    # the first quantized tensor after the first kernel of the profile (norm1) stays close
    assert gap.tensors["blocks.0.norm1"][0] >= 0.99


def _per_head(spec: Any, fm: Any, cal: Any) -> Any:
    """q/k/v per head (axis 1): decoded at 16-bit levels, so q@k accumulates in int48."""
    _, taps = fm.forward_with_taps(cal)
    out = copy.copy(spec)
    out.activations = dict(spec.activations)
    for t in out.activations:
        if t.split(".")[-1] in ("q", "k", "v"):
            amax = np.abs(taps[t]).max(axis=(0, 2, 3))
            out.activations[t] = UniformQuantizer.from_minmax(-amax, amax, 8, symmetric=True,
                                                              narrow=True, axis=1)
    return out


def test_a_variant_that_cannot_sit_is_refused_naming_both(bundled: Any) -> None:
    fm, cal, test, _, spec = bundled
    wide = _per_head(spec, fm, cal)
    with pytest.raises(SpecError, match=r"requantize\.double cannot sit at tap "
                                        r"'blocks\.0\.attn\.q@k': it takes an int32 "
                                        r"accumulator, the source is int48"):
        lower(fm, wide, cal, kernels="requantize=double")
    # the tflite profile falls back to dyadic there, and says so in the program's notes
    prog = lower(fm, wide, cal, kernels="tflite")
    note = prog.meta["notes"]["blocks.0.attn.q@k"]
    assert "requantize.double takes int32" in note and "requantize.dyadic" in note
    run(prog, {"input": test[:2]}, keep="outputs")
    # a logit scale so fine that i-exp reaches 2^55: its QuantAct multiplier would keep too
    # few bits for an exact int64 product
    v = lookup("softmax.ibert")
    with pytest.raises(SpecError, match=r"softmax\.ibert cannot sit at tap 't'.*too small"):
        softmax_ibert(v, "t", 5e-5, IntFormat(16, True), False)
    with pytest.raises(SpecError, match=r"softmax\.ibert cannot sit at tap 't'.*shift 92"):
        softmax_ibert(v, "t", 1e-9, IntFormat(16, True), False)  # its derivation refuses


def test_ibert_var_shift_is_proven_from_the_input_format() -> None:
    for fmt, c in ((IntFormat(8, True), 64), (IntFormat(20, True), 64),
                   (IntFormat(24, True), 768)):
        s = var_shift(fmt, 0, c)
        span = fmt.max - fmt.min
        assert c * ((span >> s) + 1) ** 2 <= 2**32 - 1
        assert s == 0 or c * ((span >> (s - 1)) + 1) ** 2 > 2**32 - 1  # the smallest


def test_eval_takes_a_kernel_choice(capsys: pytest.CaptureFixture[str]) -> None:
    from refq.cli import main

    assert main(["eval", "--methods", "minmax", "--kernels", "ibrt", "--integer",
                 "--limit", "4", "--quiet"]) == 2
    assert "unknown profile 'ibrt'; did you mean ibert" in capsys.readouterr().err
    assert main(["eval", "--methods", "minmax", "--kernels", "softmax=shiftmax",
                 "--integer", "--limit", "20", "--calib", "8", "--quiet"]) == 0
    out = capsys.readouterr().out
    assert "integer kernels: softmax=shiftmax" in out and "minmax" in out
