"""The program IR: build, validate, run, save/load byte-exactly, list, refuse tampering."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refq import params as P
from refq.errors import RangeError, SpecError
from refq.intmath import INT8, INT32, UINT8, IntFormat
from refq.ops import GemmParams, RefqSoftmaxParams, linear, softmax_refq
from refq.program import Op, Program, listing, load, run, save


def tiny_program() -> Program:
    """uint8 input → patchify → linear(int32 acc, requant to int8) → softmax(refq)."""
    rng = np.random.default_rng(0)
    p = Program("tiny", meta={"purpose": "test"})
    p.declare("pixels", (-1, 1, 4, 4), UINT8, "input")
    p.declare("patches", (-1, 4, 4), UINT8)
    p.const("w", rng.integers(-127, 128, (8, 4)), INT8)
    p.const("b", rng.integers(-500, 500, (8,)), INT32)
    rq = P.requant_params(0.01, "double")
    p.declare("logits", (-1, 4, 8), INT8, scale=0.05)
    p.declare("probs", (-1, 4, 8), IntFormat(8, False), scale=1 / 255)
    p.add(Op("move", "patchify", ("pixels",), ("patches",), {"patch": 2}, "patch_embed.patchify"))
    gp = GemmParams(a_format=UINT8, a_zero_point=128, requant=rq)
    p.add(Op("kernel", "linear.gemm", ("patches", "w", "b"), ("logits",), gp.to_dict(), "fc"))
    sp = P.refq_softmax_params(0.05, in_format=INT8)
    p.add(Op("kernel", "softmax.refq", ("logits",), ("probs",), sp.to_dict(), "softmax"))
    p.outputs = ["probs"]
    p.validate()
    return p


def test_run_matches_direct_kernel_calls() -> None:
    p = tiny_program()
    x = np.random.default_rng(1).integers(0, 256, (3, 1, 4, 4))
    env = run(p, {"pixels": x})
    patches = x.reshape(3, 1, 2, 2, 2, 2).transpose(0, 2, 4, 1, 3, 5).reshape(3, 4, 4)
    gp = GemmParams.from_dict(p.ops[1].params)
    logits = linear(patches, p.consts["w"], p.consts["b"], gp)
    np.testing.assert_array_equal(env["logits"], logits, strict=True)
    want = softmax_refq(logits, RefqSoftmaxParams.from_dict(p.ops[2].params))
    np.testing.assert_array_equal(env["probs"], want, strict=True)
    assert set(run(p, {"pixels": x}, keep="outputs")) == {"probs"}


def test_save_load_round_trip_is_byte_exact(tmp_path: Path) -> None:
    p = tiny_program()
    save(p, tmp_path / "a")
    q = load(tmp_path / "a")
    save(q, tmp_path / "b")
    for f in sorted((tmp_path / "a").rglob("*")):
        if f.is_file():
            assert f.read_bytes() == (tmp_path / "b" / f.relative_to(tmp_path / "a")).read_bytes()
    x = np.random.default_rng(2).integers(0, 256, (2, 1, 4, 4))
    a, b = run(p, {"pixels": x}), run(q, {"pixels": x})
    assert a.keys() == b.keys()
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], strict=True)


def test_tampered_files_fail_with_clear_errors(tmp_path: Path) -> None:
    p = tiny_program()
    save(p, tmp_path / "p")
    w = tmp_path / "p" / "consts" / "w.npy"
    raw = bytearray(w.read_bytes())
    raw[-1] ^= 1
    w.write_bytes(bytes(raw))
    with pytest.raises(SpecError, match=r"w\.npy.*sha256"):
        load(tmp_path / "p")
    save(p, tmp_path / "q")
    j = tmp_path / "q" / "program.json"
    d = json.loads(j.read_text())
    d["ops"][1]["inputs"] = ["nope", "w", "b"]
    j.write_text(json.dumps(d))
    with pytest.raises(SpecError, match="'nope'"):
        load(tmp_path / "q")
    j.write_text("{not json")
    with pytest.raises(SpecError, match="not valid JSON"):
        load(tmp_path / "q")


def test_out_of_format_values_raise_naming_op_and_tensor() -> None:
    p = tiny_program()
    with pytest.raises(RangeError, match="pixels"):
        run(p, {"pixels": np.full((1, 1, 4, 4), 256)})
    p.tensors["logits"] = p.tensors["logits"].__class__("logits", (-1, 4, 8), IntFormat(2, True))
    with pytest.raises(RangeError, match=r"linear.gemm \(fc\)"):
        run(p, {"pixels": np.random.default_rng(0).integers(0, 256, (1, 1, 4, 4))})


def test_validation_rejects_broken_graphs() -> None:
    p = tiny_program()
    p.ops.insert(0, p.ops.pop())  # softmax before its input exists
    with pytest.raises(SpecError, match="before"):
        p.validate()
    q = tiny_program()
    with pytest.raises(SpecError, match="twice"):
        q.declare("w", (1,), INT8)


def test_listing_names_every_op() -> None:
    text = listing(tiny_program())
    assert "patchify" in text and "linear.gemm" in text and "softmax.refq" in text
    assert "pixels:uint8[B,1,4,4]" in text
