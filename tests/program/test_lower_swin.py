"""Swin lowered to an integer program (refq.program.lower_swin): the movement ops against
the float model's own functions, the relative position bias and the shifted-window mask in
the integer domain, every method lowered and run, integer vs fake-quant."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refq.errors import SpecError
from refq.methods import METHODS, fake_quant, quantize_model
from refq.methods.registry import recipe
from refq.nn.swin import patch_merge, shift_mask, window_partition, window_reverse
from refq.program import lower, run
from refq.program.lower_swin import MASK_GAP, mask_proof
from refq.program.movement import movement
from tests.nn.swin_util import TINY, pixels, random_swin

N_CAL, N_TEST = 6, 16
LOWERED = list(METHODS)
"""Every method's Swin placement lowers (fqvit's with quantized ``attn.logits``)."""


@st.composite
def grids(draw: Any) -> tuple[np.ndarray, int, int]:
    w = draw(st.integers(1, 4))
    k = draw(st.integers(1, 3))
    b = draw(st.integers(1, 2))
    c = draw(st.integers(1, 3))
    side = w * k
    seed = draw(st.integers(0, 2**16))
    x = np.random.default_rng(seed).integers(-(2**40), 2**40, (b, side * side, c))
    return x, side, w


@settings(max_examples=40, deadline=None)
@given(grids(), st.integers(-5, 5))
@example((np.arange(2 * 64 * 3).reshape(2, 64, 3) - 200, 8, 4), 2)
def test_movement_ops_match_float_swin(g: tuple[np.ndarray, int, int], shift: int) -> None:
    """Exact: the integer ops move the same elements as refq.nn.swin's float functions."""
    x, side, w = g
    b, _, c = x.shape
    (win,) = movement("window_partition")(x, side=side, window=w)
    want = window_partition(x.reshape(b, side, side, c), w)
    np.testing.assert_array_equal(win, want, strict=True)
    (back,) = movement("window_reverse")(win, side=side, window=w)
    np.testing.assert_array_equal(back, x, strict=True)
    np.testing.assert_array_equal(
        back, window_reverse(want, w, side).reshape(b, side * side, c), strict=True)
    (r,) = movement("roll")(x, side=side, shift=shift)
    want_r = np.roll(x.reshape(b, side, side, c), (shift, shift), axis=(1, 2))
    np.testing.assert_array_equal(r, want_r.reshape(x.shape), strict=True)
    (r2,) = movement("roll")(r, side=side, shift=-shift)
    np.testing.assert_array_equal(r2, x, strict=True)
    if side % 2 == 0:
        (mg,) = movement("patch_merge")(x, side=side)
        np.testing.assert_array_equal(mg, patch_merge(x, side // 2), strict=True)


def test_movement_ops_refuse_bad_shapes() -> None:
    x = np.zeros((1, 16, 2), dtype=np.int64)
    with pytest.raises(SpecError, match="window_partition"):
        movement("window_partition")(x, side=4, window=3)
    with pytest.raises(SpecError, match="roll"):
        movement("roll")(x, side=5, shift=1)
    with pytest.raises(SpecError, match="patch_merge"):
        movement("patch_merge")(np.zeros((1, 9, 2), np.int64), side=3)
    with pytest.raises(SpecError, match="window_reverse"):
        movement("window_reverse")(np.zeros((3, 4, 2), np.int64), side=4, window=2)
    with pytest.raises(SpecError, match="window_mask"):
        movement("window_mask")(np.zeros((2, 1, 4, 4), np.int64), np.zeros((4, 3, 3), np.int64),
                                value=-9)


def test_window_mask_sets_masked_lanes_only() -> None:
    rng = np.random.default_rng(3)
    m = (shift_mask(8, 4, 2) != 0).astype(np.int64)  # (4, 16, 16)
    x = rng.integers(-100, 100, (2 * 4, 3, 16, 16))
    (y,) = movement("window_mask")(x, m, value=-32768)
    for bw in range(8):
        sel = m[bw % 4].astype(bool)
        assert np.all(y[bw][:, sel] == -32768)
        np.testing.assert_array_equal(y[bw][:, ~sel], x[bw][:, ~sel], strict=True)
    assert np.all(np.diagonal(m, axis1=1, axis2=2) == 0)  # no token masked from itself


@pytest.fixture(scope="module")
def swin():  # type: ignore[no-untyped-def]
    return random_swin()


@pytest.fixture(scope="module")
def lowered(swin):  # type: ignore[no-untyped-def]
    x = pixels(N_CAL)
    spec = quantize_model(swin, "minmax", 8, 8, x)
    return spec, lower(swin, spec, x)


def test_program_structure(lowered) -> None:  # type: ignore[no-untyped-def]
    _, prog = lowered
    keys = [op.key for op in prog.ops]
    assert keys.count("roll") == 2  # one shifted block (stage 0, block 1): -w/2 and +w/2
    assert keys.count("window_partition") == keys.count("window_reverse") == 4
    assert keys.count("patch_merge") == 1 and keys.count("window_mask") == 1
    assert prog.outputs == ["head"]
    shifts = [op.params["shift"] for op in prog.ops if op.key == "roll"]
    assert shifts == [-2, 2]
    note = prog.meta["notes"]["layers.0.blocks.1.attn.masked"]
    assert "proven to give masked lanes exactly 0" in note


def test_relative_position_bias_integer(swin, lowered) -> None:  # type: ignore[no-untyped-def]
    """rel_bias = round_half_even(table[index] / S_q@k) - zp, index re-derived here."""
    _, prog = lowered
    w, heads = 4, 2
    pre = "layers.0.blocks.0.attn."
    table = np.asarray(swin.params[pre + "relative_position_bias_table"], np.float64)
    coords = [(i, j) for i in range(w) for j in range(w)]
    bias = np.empty((heads, w * w, w * w))
    for a, (ia, ja) in enumerate(coords):
        for c, (ic, jc) in enumerate(coords):
            bias[:, a, c] = table[(ia - ic + w - 1) * (2 * w - 1) + (ja - jc + w - 1)]
    qk = prog.tensors[pre + "q@k"]
    want = np.rint(bias / qk.scale).astype(np.int64) - qk.zero_point
    np.testing.assert_array_equal(prog.consts[pre + "rel_bias"], want, strict=True)


def test_masked_lanes_are_exactly_zero(lowered) -> None:  # type: ignore[no-untyped-def]
    _, prog = lowered
    out = run(prog, {"input": pixels(3, seed=9)})
    pre = "layers.0.blocks.1.attn."
    mask = shift_mask(8, 4, 2) != 0
    logits, sm = out[pre + "masked"], out[pre + "softmax"]
    fmt = prog.tensors[pre + "masked"].fmt
    sel = np.broadcast_to(np.tile(mask, (3, 1, 1))[:, None], logits.shape)
    assert np.all(logits[sel] == fmt.min) and np.all(logits[~sel] >= -(2 ** (fmt.bits - 2)))
    # the unmasked logits (the attn.logits tap) on the int(b-1) grid, unchanged where unmasked
    np.testing.assert_array_equal(out[pre + "logits"][~sel], logits[~sel], strict=True)
    assert np.all(sm[sel] == 0) and np.all(sm[~sel].reshape(-1)[:5] >= 0)
    assert int(sel.sum()) > 0
    # the gap is at least MASK_GAP in real terms
    s = prog.tensors[pre + "masked"].scale
    assert s is not None and s * 2 ** (fmt.bits - 2) >= MASK_GAP


def test_mask_proof_refuses_a_small_gap(lowered) -> None:  # type: ignore[no-untyped-def]
    """Negative control: a 'masked' value right below the unmasked ones is not proven."""
    from refq.intmath import IntFormat
    from refq.program.ir import Program
    from refq.program.lower_quant import Act, Builder

    spec, _prog = lowered
    b = Builder(Program("t"), spec, {}, {})
    x = Act("l", 0.05, 0, IntFormat(16, True), (-1, 2, 16, 16))
    with pytest.raises(SpecError, match="masked lane"):
        mask_proof(b, "layers.0.blocks.1.attn.masked", x, -32767, 32767, 16)
    mask_proof(b, "layers.0.blocks.1.attn.masked", x, -16384, 16383, 16)  # gap 819 real


@pytest.mark.parametrize("method", LOWERED)
def test_every_method_lowers_and_agrees(swin, method: str) -> None:  # type: ignore[no-untyped-def]
    x, xt = pixels(N_CAL), pixels(N_TEST, seed=5)
    # the recipes that take calib_sub search on the first 4 images (fqvit, minmax: none)
    takes = recipe(method).options.keys()
    opts: dict[str, Any] = {"calib_sub": 4} if "calib_sub" in takes else {}
    if method == "ptq4vit":
        opts.update(metric="cosine", n=8, rounds=1)
    spec = quantize_model(swin, method, 8, 8, x, **opts)
    mq, tap = fake_quant(swin, spec)
    yf = mq.forward(xt, tap=tap)
    prog = lower(swin, spec, x)
    out = run(prog, {"input": xt})
    d = prog.tensors["head"]
    assert d.scale is not None
    yi = (out["head"] - d.zero_point) * d.scale
    assert int((yi.argmax(1) != yf.argmax(1)).sum()) <= 1
    assert float(np.abs(yi - yf).max()) <= 0.1 * float(np.abs(yf).max())
    # tap by tap: the pooled row and the last block's output are close to fake-quant (on
    # average: a value near a decision threshold may land one quantizer level away, and a
    # PTF level at 2^alpha x the scale is coarse)
    _, taps = mq.forward_with_taps(xt, tap=tap, names=["pool", "layers.1.blocks.1.add2"])
    for t in ("pool", "layers.1.blocks.1.add2"):
        dt = prog.tensors[t]
        assert dt.scale is not None
        v = (out[t] - dt.zero_point) * dt.scale
        assert float(np.abs(v - taps[t]).mean()) <= 0.02 * float(np.abs(taps[t]).max()), t


@pytest.fixture(scope="module")
def fq_lowered(swin):  # type: ignore[no-untyped-def]
    x = pixels(N_CAL)
    spec = quantize_model(swin, "fqvit", 8, 8, x)
    return spec, lower(swin, spec, x)


def test_fqvit_logits_and_mask(swin, fq_lowered) -> None:  # type: ignore[no-untyped-def]
    """fqvit (FQ-ViT ``swin_quant.py`` 191-213 at 5daf591: ``qact2`` on q@k plus the
    quantized bias table, the shift mask after it, the LIS at qact2's scale): the logits
    tap holds the logits quantizer's codes of q@k + bias on a 2^-8 finer grid (re-derived
    here from the program's own q@k codes and the spec), every masked lane of
    ``attn.masked`` holds one value below the i-exp clamp of every row, and the LIS gives
    every masked lane exactly 0 (the zero code, 2^4)."""
    spec, prog = fq_lowered
    out = run(prog, {"input": pixels(3, seed=9)})
    w, heads = 4, 2
    for pre, shifted in (("layers.0.blocks.0.attn.", False), ("layers.0.blocks.1.attn.", True)):
        table = np.asarray(spec.params[pre + "relative_position_bias_table"], np.float64)
        coords = [(i, j) for i in range(w) for j in range(w)]
        bias = np.empty((heads, w * w, w * w))
        for a, (ia, ja) in enumerate(coords):
            for c, (ic, jc) in enumerate(coords):
                bias[:, a, c] = table[(ia - ic + w - 1) * (2 * w - 1) + (ja - jc + w - 1)]
        qk = prog.tensors[pre + "q@k"]
        assert qk.scale is not None
        sg = qk.scale / 256
        fine = (out[pre + "q@k"] - qk.zero_point) * 256 + np.rint(bias / sg).astype(np.int64)
        want = spec.activations[pre + "logits"].quantize(fine * sg)
        np.testing.assert_array_equal(out[pre + "logits"], want, strict=True)
        assert (pre + "masked" in prog.tensors) == shifted
    pre = "layers.0.blocks.1.attn."
    mask = shift_mask(8, 4, 2) != 0
    masked, logits = out[pre + "masked"], out[pre + "logits"]
    sel = np.broadcast_to(np.tile(mask, (3, 1, 1))[:, None], masked.shape)
    assert int(sel.sum()) > 0
    m = int(masked[sel][0])
    assert np.all(masked[sel] == m)
    np.testing.assert_array_equal(masked[~sel], logits[~sel], strict=True)
    d = prog.tensors[pre + "logits"]
    assert d.scale is not None
    x0 = int(np.floor(-0.6931 / d.scale))
    assert m - 0 <= 30 * x0 and m <= -MASK_GAP / d.scale  # past the clamp from any max >= 0
    assert np.all(out[pre + "softmax.code"][sel] == 16) and np.all(out[pre + "softmax"][sel] == 0)
    assert np.all(out[pre + "softmax.code"][~sel] < 16)  # the diagonal at least is nonzero
    note = prog.meta["notes"][pre + "masked"]
    assert "softmax.lis proven to give masked lanes exactly 0" in note


def test_fqvit_mask_proof_refuses_a_small_gap(fq_lowered) -> None:  # type: ignore[no-untyped-def]
    """Negative control: masked lanes right below the LIS's uint8 codes are not zero (the
    sweep over the row's other lanes finds the counterexample)."""
    from refq.intmath import IntFormat
    from refq.program.ir import Program
    from refq.program.lower_quant import Act, Builder

    spec, prog = fq_lowered
    b = Builder(Program("t"), spec, {}, {})
    t = prog.tensors["layers.0.blocks.1.attn.logits"]
    assert t.scale is not None
    x = Act("l", t.scale, t.zero_point, IntFormat(16, True), (-1, 2, 16, 16))
    with pytest.raises(SpecError, match=r"softmax\.lis at .*masked lane"):
        mask_proof(b, "layers.0.blocks.1.attn.masked", x, 0, 255, 16, masked=-8)
    mask_proof(b, "layers.0.blocks.1.attn.masked", x, 0, 255, 16, masked=-5000)


def test_tiny_config_shapes() -> None:
    assert TINY.stage_resolution(1) == TINY.stage_window(1) == 4  # window == resolution
    assert TINY.block_shift(0, 1) == 2 and TINY.block_shift(1, 1) == 0


def test_integer_gap_per_swin_block(swin, lowered) -> None:  # type: ignore[no-untyped-def]
    """refq.program.integer_gap tensor by tensor on Swin (W8A8 min-max): every tap of every
    block, the patch merging and the pooling is compared, each with cosine >= 0.999 — but
    ``attn.masked``, whose masked lanes hold the softmax input's minimum, not the float
    model's logit - 100 (both give those lanes a softmax output of 0)."""
    from refq.program.gap import integer_gap

    spec, prog = lowered
    g = integer_gap(prog, fake_quant(swin, spec), pixels(N_TEST, seed=5), np.zeros(N_TEST, int))
    for s, j in ((0, 0), (0, 1), (1, 0), (1, 1)):
        for t in ("norm1", "attn.q@k", "attn.logits", "attn.softmax", "attn.proj", "add1",
                  "mlp.fc1", "add2"):
            assert f"layers.{s}.blocks.{j}.{t}" in g.tensors
    for t in ("patch_embed.norm", "layers.1.downsample.norm", "layers.1.downsample.reduction",
              "norm", "pool", "head"):
        assert t in g.tensors
    assert "layers.0.blocks.1.attn.masked" in g.tensors
    worst = min(c for t, (c, _) in g.tensors.items() if not t.endswith("attn.masked"))
    assert worst >= 0.999, g.table()


@pytest.mark.slow
def test_swin_tiny_geometry_lowers_and_runs() -> None:
    """swin_tiny_patch4_window7_224 (random weights, min-max W8A8): 4 stages, 5 shifted
    blocks, a 1536-channel patch-merging LayerNorm (int16 input) — lowered and run."""
    from refq.golden.cases_swin import _lowered

    prog, image = _lowered("swin_tiny_patch4_window7_224", 8, 11)
    notes = prog.meta["notes"]
    assert sum("proven to give masked lanes exactly 0" in v for v in notes.values()) == 5
    out = run(prog, {"input": image}, keep="outputs")
    assert out["head"].shape == (1, 1000)
    assert prog.tensors["layers.3.downsample.in"].fmt.bits == 16


@pytest.mark.parametrize("kernels", [None, "ibert", "ivit", "tflite"])
def test_quantized_logits_under_every_profile(swin, kernels: str | None) -> None:  # type: ignore[no-untyped-def]
    """A quantizer on ``attn.logits`` (fqvit with a float-softmax log2 quantizer, so any
    softmax variant may sit) lowers under every kernel profile: the masked lanes hold one
    code below the logits' codes and the variant gives them exactly 0 (proven at lowering
    time, and seen in the run)."""
    x = pixels(N_CAL)
    spec = quantize_model(swin, "fqvit", 8, 8, x, softmax="log2")
    prog = lower(swin, spec, x, kernels=kernels)
    pre = "layers.0.blocks.1.attn."
    assert "proven to give masked lanes exactly 0" in prog.meta["notes"][pre + "masked"]
    out = run(prog, {"input": pixels(2, seed=9)})
    sel = np.broadcast_to(np.tile(shift_mask(8, 4, 2) != 0, (2, 1, 1))[:, None],
                          out[pre + "masked"].shape)
    raw = next(n for n in (pre + "softmax.raw", pre + "softmax") if n in out)
    d = prog.tensors[raw]
    assert np.all(out[raw][sel] == d.zero_point) and np.any(out[raw][~sel] != d.zero_point)
