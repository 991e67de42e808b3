"""ViT / DeiT / Swin forward: shapes, taps, hooks, ops, dtypes, bad input."""

from __future__ import annotations

import time
from typing import Any

import numpy as np
import pytest

from refq.errors import SpecError
from refq.nn import CONFIGS, create_model, get_config

SMALL = {
    "deit": dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2, num_classes=7),
    "deit_dist": dict(img_size=32, patch_size=8, embed_dim=32, depth=2, num_heads=2,
                      num_classes=7, distilled=True),
    "swin": dict(img_size=32, patch_size=2, embed_dim=16, depths=(2, 2, 2), num_heads=(2, 2, 4),
                 window_size=4, num_classes=7),
}
BASE = {"deit": "deit_tiny_patch16_224", "deit_dist": "deit_tiny_patch16_224",
        "swin": "swin_tiny_patch4_window7_224"}


def small(kind: str, **kw: Any) -> Any:
    return create_model(BASE[kind], **{**SMALL[kind], **kw})


def x_of(m: Any, b: int = 2, seed: int = 0) -> np.ndarray:
    c = m.config
    return np.random.default_rng(seed).standard_normal((b, c.in_chans, c.img_size, c.img_size))


def test_every_timm_name_has_a_config() -> None:
    for name in ["deit_tiny_patch16_224", "deit_small_patch16_224", "deit_base_patch16_224",
                 "vit_small_patch16_224", "vit_base_patch16_224",
                 "swin_tiny_patch4_window7_224", "swin_small_patch4_window7_224",
                 "swin_base_patch4_window7_224"]:
        assert name in CONFIGS
    assert get_config("vit_base_patch16_224").mean == (0.5, 0.5, 0.5)
    assert get_config("deit_digits").img_size == 32
    with pytest.raises(SpecError, match="unknown model"):
        get_config("resnet50")


@pytest.mark.parametrize("kind", ["deit", "deit_dist", "swin"])
def test_shapes_taps_and_ops(kind: str) -> None:
    m = small(kind)
    x = x_of(m)
    logits, taps = m.forward_with_taps(x)
    assert logits.shape == (2, 7) and logits.dtype == np.float64
    assert list(taps) == m.tap_names()
    np.testing.assert_array_equal(m.forward(x), logits)
    for op in m.ops():
        assert all(i in taps for i in op.inputs) and op.output in taps
        assert op.weight is None or op.weight in m.params
    assert np.array_equal(taps["head"] if kind != "deit_dist" else taps["logits"], logits)
    if kind == "deit_dist":
        np.testing.assert_allclose((taps["head"] + taps["head_dist"]) / 2, logits)
    pre = "blocks.1." if kind != "swin" else "layers.1.blocks.1."
    np.testing.assert_allclose(taps[pre + "attn.softmax"].sum(-1), 1.0)
    assert taps[pre + "mlp.fc1"].shape[-1] == 4 * taps[pre + "mlp.fc2"].shape[-1]


@pytest.mark.parametrize("kind", ["deit", "swin"])
def test_hook_replaces_tensors(kind: str) -> None:
    m = small(kind)
    x = x_of(m)
    seen: list[str] = []

    def observe(name: str, a: np.ndarray) -> None:
        seen.append(name)

    ref = m.forward(x, observe)
    assert seen == m.tap_names()
    np.testing.assert_array_equal(m.forward(x, lambda n, a: a.copy()), ref)
    pre = "blocks.0." if kind == "deit" else "layers.0.blocks.1."

    def uniform_attention(name: str, a: np.ndarray) -> np.ndarray | None:
        return np.full_like(a, 1.0 / a.shape[-1]) if name == pre + "attn.softmax" else None

    _, taps = m.forward_with_taps(x, uniform_attention, names=[pre + "attn.softmax"])
    assert list(taps) == [pre + "attn.softmax"]
    assert np.all(taps[pre + "attn.softmax"] == 1.0 / taps[pre + "attn.softmax"].shape[-1])
    assert not np.allclose(m.forward(x, uniform_attention), ref)

    def bad(name: str, a: np.ndarray) -> np.ndarray:
        return a[..., :1]

    with pytest.raises(SpecError, match="hook returned shape"):
        m.forward(x, bad)
    with pytest.raises(SpecError, match="unknown tap names"):
        m.forward_with_taps(x, names=["nope"])


def test_float32_option() -> None:
    m64 = small("deit")
    m32 = create_model("deit_tiny_patch16_224", dtype=np.float32, **SMALL["deit"])
    x = x_of(m64)
    y32 = m32.forward(x.astype(np.float32))
    assert y32.dtype == np.float32
    np.testing.assert_allclose(y32, m64.forward(x), rtol=1e-4, atol=1e-5)
    with pytest.raises(SpecError, match="float64 or float32"):
        create_model("deit_tiny_patch16_224", dtype=np.int32, **SMALL["deit"])


def test_bad_inputs_raise_spec_errors() -> None:
    m = small("deit")
    with pytest.raises(SpecError, match="expected images of shape"):
        m.forward(np.zeros((1, 3, 31, 32)))
    with pytest.raises(SpecError, match="normalised float image"):
        m.forward(np.zeros((1, 3, 32, 32), np.uint8))
    with pytest.raises(SpecError, match="4-D"):
        m.forward(np.zeros((32, 32)))
    with pytest.raises(SpecError, match="layout"):
        m.forward(np.zeros((1, 3, 32, 32)), layout="HWC")
    with pytest.raises(SpecError, match="not divisible"):
        create_model("swin_tiny_patch4_window7_224", img_size=40, **{
            k: v for k, v in SMALL["swin"].items() if k != "img_size"})
    one = m.forward(x_of(m, 1)[0])  # a single CHW image
    assert one.shape == (1, 7)
    nhwc = m.forward(x_of(m, 1).transpose(0, 2, 3, 1), layout="NHWC")
    np.testing.assert_array_equal(nhwc, one)


def test_real_size_deit_small_forward() -> None:
    m = create_model("deit_small_patch16_224")
    assert m.params["pos_embed"].shape == (1, 197, 384)
    t0 = time.perf_counter()
    y = m.forward(np.random.default_rng(0).standard_normal((1, 3, 224, 224)))
    assert y.shape == (1, 1000) and np.all(np.isfinite(y))
    assert time.perf_counter() - t0 < 30


def test_nn_imports_no_later_stage() -> None:
    import subprocess
    import sys

    code = ("import sys, refq.nn; bad = [m for m in sys.modules if m.split('.')[:2] in "
            "(['refq','quant'], ['refq','calib'], ['refq','methods'], ['refq','program'])]; "
            "print(bad); sys.exit(bool(bad) or 'torch' in sys.modules)")
    assert subprocess.run([sys.executable, "-c", code], check=False).returncode == 0
