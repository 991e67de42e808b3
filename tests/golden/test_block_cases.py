"""Per-method block cases: stored specs, block 0 lowered from the depth-1 model, token
truncation — each checked against an independent route (the full model, the full token
count, a fresh calibration)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.calib.minmax import minmax_spec
from refq.errors import GoldenError
from refq.golden import generate
from refq.golden.case import read_case, write_case
from refq.golden.cases_program import (
    BLOCK_TOKENS,
    BLOCKS,
    block_part,
    program_of,
    subprogram,
    with_tokens,
)
from refq.golden.specs import (
    BITS,
    METHODS,
    SPEC_DIR,
    block0_model,
    calib_images,
    calibrate,
    compare_specs,
    golden_image,
    load_spec,
    spec_name,
)
from refq.program import lower
from refq.program.files import program_dict
from refq.program.ir import Program
from refq.program.run import run
from refq.quant import QuantSpec

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def lowered(method: str, bits: int) -> tuple[Program, dict[str, np.ndarray]]:
    prog = lower(block0_model(), load_spec(method, bits), calib_images())
    return prog, run(prog, {"input": golden_image()})


def test_every_method_has_its_encoder_block_at_both_widths() -> None:
    names = {p.name for p in GOLDEN.iterdir()}
    for method in (*METHODS, "minmax"):
        for bits in BITS:
            assert f"block.deit_digits.{method}.w{bits}a{bits}.encoder" in names
    for bits in BITS:  # the min-max parts are extended cases: block_part() of the encoder
        for part in ("attention", "mlp"):
            assert f"block.deit_digits.minmax.w{bits}a{bits}.{part}" not in names


@pytest.mark.parametrize("bits", BITS)
@pytest.mark.parametrize("part", ["attention", "mlp"])
def test_block_part_reproduces_the_computed_parts(bits: int, part: str, tmp_path: Path) -> None:
    """The attention/MLP parts cut from the stored encoder case alone are the part cases
    computed on their own (lowering the part and running it at the full 65 tokens), byte for
    byte (meta.json and every tensor file)."""
    enc = read_case(GOLDEN / f"block.deit_digits.minmax.w{bits}a{bits}.encoder")
    got = block_part(enc, part)
    assert got.name == f"block.deit_digits.minmax.w{bits}a{bits}.{part}"
    write_case(got, tmp_path / got.name)
    generate(tmp_path / "computed", got.name, progress=False)
    want = tmp_path / "computed" / got.name
    assert sorted(p.name for p in (tmp_path / got.name).iterdir()) == sorted(
        p.name for p in want.iterdir())
    for f in want.iterdir():
        assert (tmp_path / got.name / f.name).read_bytes() == f.read_bytes(), f.name


def test_block_part_of_a_method_case_chains(tmp_path: Path) -> None:
    enc = read_case(GOLDEN / "block.deit_digits.tsptq.w4a4.encoder")
    att, mlp = block_part(enc, "attention"), block_part(enc, "mlp")
    assert att.meta["block"]["part"] == "attention" and mlp.meta["block"]["tokens"] == 17
    (a_out,) = [n for n, t in att.tensors.items() if t.role == "output"]
    assert a_out in [n for n, t in mlp.tensors.items() if t.role == "input"]
    for case in (att, mlp):  # each part re-runs from its own files
        prog, inputs = program_of(case)
        got = run(prog, inputs)
        for n, t in case.tensors.items():
            if t.role in ("intermediate", "output"):
                np.testing.assert_array_equal(got[n], t.values.astype(np.int64), strict=True)
    with pytest.raises(GoldenError, match="encoder"):
        block_part(att, "mlp")


@pytest.mark.parametrize("name", [spec_name(m, b) for m in METHODS for b in BITS])
def test_stored_spec_loads_and_round_trips(name: str, tmp_path: Path) -> None:
    method, wa = name.split(".")
    bits = int(wa[1:].split("a")[0])
    spec = load_spec(method, bits)
    assert spec.model == "deit_digits" and spec.notes["golden"]["seed"] == 0
    spec.save(tmp_path / "s")
    assert QuantSpec.load(tmp_path / "s") == spec
    assert (SPEC_DIR / name / "params.npz").exists() == bool(spec.params)


def test_missing_spec_is_named(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match=r"refq\.golden\.specs --write"):
        load_spec("repq", 8, root=tmp_path)


def test_depth1_model_gives_the_full_models_block0() -> None:
    """Block 0 lowered from the truncated model is the committed block 0 of the full model
    (min-max spec, every op, parameter, format and scale)."""
    spec = minmax_spec(block0_model(), calib_images(), 8)
    prog = lower(block0_model(), spec, calib_images(), name="deit_digits.minmax.w8a8")
    sub = subprogram(prog, BLOCKS["encoder"], "x")
    committed = read_case(GOLDEN / "block.deit_digits.minmax.w8a8.encoder")
    want = committed.meta["program"]
    got = program_dict(sub)
    for decl in got["tensors"].values():
        if decl["scale"] is not None:
            decl["scale"] = float(f"{decl['scale']:.9g}")
    assert got["ops"] == want["ops"] and got["tensors"] == want["tensors"]
    for n, t in committed.tensors.items():
        if t.role == "param":
            np.testing.assert_array_equal(sub.consts[n], t.values.astype(np.int64), strict=True)


def test_with_tokens_is_identity_at_full_count_and_rejects_bad_counts() -> None:
    prog, values = lowered("fqvit", 8)
    sub = subprogram(prog, BLOCKS["encoder"], "enc")
    same = with_tokens(sub, 65, 65, "enc")
    a = run(sub, {t: values[t] for t in sub.inputs})
    b = run(same, {t: values[t] for t in sub.inputs})
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], strict=True)
    with pytest.raises(GoldenError):
        with_tokens(sub, 64, 17, "enc")  # 64 is the embedding width (a const dimension)
    with pytest.raises(GoldenError):
        with_tokens(sub, 65, 66, "enc")


@pytest.mark.parametrize("method", ["ptq4vit", "tsptq", "repq"])
def test_truncated_block_agrees_with_the_full_token_run(method: str) -> None:
    """The token-wise tensors of a committed 17-token encoder case (LayerNorm, qkv, q/k/v:
    computed per token) are the first 17 rows of the 65-token run of the same block, and
    q@k's accumulator is the top-left 17x17 corner; from the softmax on (it normalises over
    the tokens) the values legitimately differ."""
    bits = 4 if method == "repq" else 8
    prog, values = lowered(method, bits)
    case = read_case(GOLDEN / f"block.deit_digits.{method}.w{bits}a{bits}.encoder")
    assert case.meta["block"]["tokens"] == BLOCK_TOKENS
    sub = subprogram(prog, BLOCKS["encoder"], "b")
    full = run(sub, {t: values[t] for t in sub.inputs})
    checked = 0
    for n, t in case.tensors.items():
        token_wise = n == "embed" or n.startswith(("blocks.0.norm1", "blocks.0.attn.q",
                                                    "blocks.0.attn.k", "blocks.0.attn.v"))
        if t.role == "param" or not token_wise or "softmax" in n:
            continue
        ref = full[n] if n != "embed" else values[n]
        for ax, (size, want) in enumerate(zip(ref.shape, t.values.shape, strict=True)):
            if size != want:
                assert (size, want) == (65, BLOCK_TOKENS), (n, ref.shape, t.values.shape)
                ref = np.take(ref, np.arange(BLOCK_TOKENS), axis=ax)
        np.testing.assert_array_equal(t.values.astype(np.int64), ref, strict=True)
        checked += 1
    assert checked >= 15 and "blocks.0.attn.q@k.acc" in case.tensors


def test_forced_generate_keeps_the_readme(tmp_path: Path) -> None:
    out = tmp_path / "g"
    generate(out, "requantize.dyadic.*", progress=False)
    (out / "README.md").write_text("hand-written\n")
    generate(out, "requantize.dyadic.*", force=True, progress=False)
    assert (out / "README.md").read_text() == "hand-written\n"


@pytest.mark.slow
@pytest.mark.parametrize("name", [spec_name(m, b) for m in METHODS for b in BITS])
def test_recalibration_reproduces_the_stored_spec(name: str) -> None:
    """The stored specs are what the recipes give today: exactly on the NumPy build that
    wrote them, up to float last bits on another (``compare_specs``); ~15 s CPU in all."""
    method, wa = name.split(".")
    bits = int(wa[1:].split("a")[0])
    assert compare_specs(calibrate(method, bits), load_spec(method, bits)) in ("equal", "close")


def test_compare_specs_tells_last_bits_from_real_changes() -> None:
    spec = load_spec("fqvit", 4)
    assert compare_specs(spec, load_spec("fqvit", 4)) == "equal"
    d = spec.to_dict()
    q = d["activations"]["blocks.0.attn.q@k"]
    q["scale"] = q["scale"] * (1 + 1e-15)
    assert compare_specs(QuantSpec.from_dict(d), spec) == "close"
    q["scale"] = q["scale"] * 1.001
    assert compare_specs(QuantSpec.from_dict(d), spec) == "differs"
    d = spec.to_dict()
    d["activations"]["blocks.0.attn.q@k"]["bits"] = 3
    assert compare_specs(QuantSpec.from_dict(d), spec) == "differs"
