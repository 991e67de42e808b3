"""Lowering a quantized ViT/DeiT to an integer Program (refq.program.lower)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.errors import SpecError
from refq.methods import fake_quant
from refq.nn import create_model, load_bundled
from refq.program import load, run, save
from refq.program.gap import integer_gap
from refq.program.lower import lower
from refq.quant import QuantSpec, UniformQuantizer

N_CAL = 24
N_TEST = 40


@pytest.fixture(scope="module")
def bundled():  # type: ignore[no-untyped-def]
    model, data = load_bundled()
    fm = model.fold_normalization()
    cal, _ = data.split("calib")
    test, lab = data.split("test")
    return fm, cal[:N_CAL], test[:N_TEST], lab[:N_TEST]


def minmax_spec(model, cal, bits: int = 8, per_head: bool = False):  # type: ignore[no-untyped-def]
    """Min-max spec built here (independent of refq.methods): per-channel symmetric weights,
    per-tensor asymmetric activations at every linear/matmul input; with ``per_head`` the
    q/k/v quantizers are per head (axis 1) and narrow-range symmetric (threshold route)."""
    _, taps = model.forward_with_taps(cal)
    w = {}
    acts = {}
    for op in model.ops():
        if op.weight:
            wt = model.params[op.weight]
            amax = np.abs(wt.reshape(wt.shape[0], -1)).max(1)
            w[op.weight] = UniformQuantizer.from_minmax(-amax, amax, bits, symmetric=True, axis=0)
        for t in op.inputs:
            if t == "input":
                continue
            x = taps[t]
            if per_head and t.split(".")[-1] in ("q", "k", "v"):
                amax = np.abs(x).max(axis=(0, 2, 3))
                acts[t] = UniformQuantizer.from_minmax(-amax, amax, bits, symmetric=True,
                                                       narrow=True, axis=1)
            else:
                acts[t] = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), bits)
    return QuantSpec("minmax-test", model.config.name, bits, bits, w, acts)


@pytest.fixture(scope="module")
def lowered(bundled):  # type: ignore[no-untyped-def]
    fm, cal, _, _ = bundled
    spec = minmax_spec(fm, cal)
    return spec, lower(fm, spec, cal)


def test_w8a8_matches_fake_quant(bundled, lowered) -> None:  # type: ignore[no-untyped-def]
    fm, _, test, lab = bundled
    spec, prog = lowered
    gap = integer_gap(prog, fake_quant(fm, spec), test, lab)
    assert abs(gap.int_top1 - gap.fq_top1) <= 0.05
    assert gap.int_top1 >= 0.9
    # the first quantized tensors agree to the LSB: same codes up to rounding of exact ties
    assert gap.tensors["blocks.0.norm1"][1] <= 1.0 + 1e-9
    for name, (cos, _) in gap.tensors.items():
        assert cos > 0.995, name


def test_program_structure(lowered) -> None:  # type: ignore[no-untyped-def]
    spec, prog = lowered
    assert prog.inputs == ["input"]
    assert prog.tensors["input"].fmt.name == "uint8"
    assert prog.outputs == ["head"]
    for tap in ("patch_embed", "embed", "blocks.3.mlp.gelu", "blocks.0.attn.softmax", "norm"):
        assert tap in prog.tensors
    # activations quantized by a per-tensor uniform quantizer carry its codes, scale, zp
    q = spec.activations["blocks.1.mlp.gelu"]
    d = prog.tensors["blocks.1.mlp.gelu"]
    assert d.scale == float(q.scale) and d.zero_point == int(q.zero_point)
    assert d.fmt.name == "uint8"


def test_threshold_route_equals_quantizer(bundled) -> None:  # type: ignore[no-untyped-def]
    """Per-head narrow quantizers go through threshold + lookup; the decoded values must
    equal the quantizer's own fake_quant of the dequantized source grid (float oracle)."""
    fm, cal, test, _ = bundled
    spec = minmax_spec(fm, cal, per_head=True)
    prog = lower(fm, spec, cal)
    out = run(prog, {"input": test[:8]})
    for t in ("blocks.0.attn.q", "blocks.2.attn.v"):
        pre = prog.tensors[t + ".pre_l"]
        assert pre.scale is not None
        real = pre.scale * out[t + ".pre_l"].astype(np.float64)
        want = spec.activations[t].fake_quant(real)
        d = prog.tensors[t]
        assert d.scale is not None
        got = d.scale * out[t].astype(np.float64)
        np.testing.assert_allclose(got, want, rtol=0, atol=d.scale / 2)


def test_deterministic_files(bundled, lowered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    fm, cal, _, _ = bundled
    spec, prog = lowered
    again = lower(fm, spec, cal)
    save(prog, tmp_path / "a")
    save(again, tmp_path / "b")
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*"))
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*"))
    assert files_a == files_b
    for f in files_a:
        if (tmp_path / "a" / f).is_file():
            assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f


def test_round_trip_and_tamper(bundled, lowered, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    _, _, test, _ = bundled
    _, prog = lowered
    save(prog, tmp_path / "p")
    back = load(tmp_path / "p")
    x = {"input": test[:4]}
    a, b = run(prog, x), run(back, x)
    assert sorted(a) == sorted(b)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], strict=True)
    wfile = tmp_path / "p" / "consts" / "blocks.0.attn.qkv.w.npy"
    raw = bytearray(wfile.read_bytes())
    raw[-1] ^= 1
    wfile.write_bytes(bytes(raw))
    with pytest.raises(SpecError, match="sha256"):
        load(tmp_path / "p")


def test_distilled_and_unquantized(tmp_path: Path) -> None:
    """A tiny random distilled DeiT with an empty spec: every format internal; the logits
    are the integer average of the two heads and track the float model."""
    m = create_model("deit_tiny_distilled_patch16_224", img_size=32, patch_size=8,
                     embed_dim=32, depth=1, num_heads=2, num_classes=5, seed=1)
    fm = m.fold_normalization()
    rng = np.random.default_rng(0)
    cal = rng.integers(0, 256, (8, 3, 32, 32), dtype=np.uint8)
    spec = QuantSpec("none", "tiny", 8, 8)
    prog = lower(fm, spec, cal)
    assert prog.outputs == ["logits"]
    out = run(prog, {"input": cal})
    d = prog.tensors["logits"]
    assert d.scale is not None
    got = d.scale * out["logits"].astype(np.float64)
    want = fm.forward(cal)
    assert np.max(np.abs(got - want)) <= 0.02 * np.max(np.abs(want)) + 1e-3


def test_refusals(bundled) -> None:  # type: ignore[no-untyped-def]
    fm, cal, _, _ = bundled
    spec = QuantSpec("none", "x", 8, 8, kernels={"softmax": "lis"})
    with pytest.raises(SpecError, match=r"softmax\.lis cannot sit at tap .*uint4 Log2Quantizer"):
        lower(fm, spec, cal)


def test_fake_quant_matches_manual(bundled, lowered) -> None:  # type: ignore[no-untyped-def]
    fm, _, test, _ = bundled
    spec, _ = lowered
    mq, hook = fake_quant(fm, spec)
    _, taps = mq.forward_with_taps(test[:2], hook)
    q = spec.activations["blocks.0.norm1"]
    np.testing.assert_array_equal(taps["blocks.0.norm1"], q.fake_quant(taps["blocks.0.norm1"]))


def test_log2_softmax_by_thresholds(bundled) -> None:  # type: ignore[no-untyped-def]
    """A descending (log2) quantizer on the softmax: codes by thresholds on the 16-bit
    softmax grid, levels by table; equal to Log2Quantizer.fake_quant of that grid."""
    from refq.calib.minmax import minmax_spec as mm

    fm, cal, test, _ = bundled
    spec = mm(fm, cal, 4, softmax="log2")
    prog = lower(fm, spec, cal)
    out = run(prog, {"input": test[:4]})
    t = "blocks.1.attn.softmax"
    raw = prog.tensors[t + ".raw"]
    assert raw.scale is not None and raw.fmt.name == "uint16"
    want = spec.activations[t].fake_quant(raw.scale * out[t + ".raw"].astype(np.float64))
    d = prog.tensors[t]
    assert d.scale is not None
    np.testing.assert_allclose(d.scale * out[t].astype(np.float64), want, rtol=0,
                               atol=d.scale / 2)
