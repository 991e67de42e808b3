"""Every recipe on a Swin Transformer in fake-quant (random weights: img 32, patch 2, embed
24, depths (2, 2), heads (2, 4), window 4 — shifted windows in stage 0, patch merging,
average-pooled head), with the placement each official code gives a Swin
(FQ-ViT ``models/swin_quant.py``; RepQ-ViT / I&S-ViT ``quant/quant_model.py`` and their
``test_quant.py`` folds; PTQ4ViT ``utils/net_wrap.py`` / ``configs/PTQ4ViT.py``)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refq.methods import METHODS, fake_quant, quantize_model
from refq.nn.configs import SwinConfig
from refq.nn.factory import create_model
from refq.quant import UniformQuantizer

from ..torch_oracle import needs_torch

CFG = SwinConfig(name="swin_test", img_size=32, patch_size=2, in_chans=3, num_classes=10,
                 embed_dim=24, depths=(2, 2), num_heads=(2, 4), window_size=4)
FAST = {"ptq4vit": {"metric": "cosine", "n": 6, "rounds": 1}}


@pytest.fixture(scope="module")
def swin() -> tuple[Any, np.ndarray]:
    return create_model(CFG, seed=0), np.random.default_rng(0).standard_normal((3, 3, 32, 32))


@pytest.fixture(scope="module")
def specs(swin: tuple[Any, np.ndarray]) -> dict[str, Any]:
    m, x = swin
    return {meth: quantize_model(m, meth, 6, 6, x, **FAST.get(meth, {})) for meth in METHODS}


@pytest.mark.parametrize("method", METHODS)
def test_every_recipe_runs_and_simulates(swin: tuple[Any, np.ndarray], specs: dict[str, Any],
                                         method: str) -> None:
    m, x = swin
    mq, tap = fake_quant(m, specs[method])
    y = mq.forward(x, tap=tap)
    assert y.shape == (3, 10) and np.all(np.isfinite(y))
    assert not np.array_equal(y, m.forward(x))


def test_fqvit_swin_placement(specs: dict[str, Any]) -> None:
    """``swin_quant.py``: qact_input; PatchEmbed's qact_before_norm and qact (uniform, the
    LayerNorm input and output); per block qact1 (norm1), the qkv output, qact_attn1
    (q@k), qact_table (the bias table), qact2 (logits + bias, the LIS scale), qact3
    (attn@v), qact4 (proj output), Block.qact2 / qact4 (PTF, the sums), qact3 (norm2),
    the MLP's two; PatchMerging's qact1 (norm, uniform) and qact2 (reduction output: PTF,
    ``swin_quant.py:439-444`` at 5daf591 builds it with ``CALIBRATION_MODE_A_LN`` /
    ``OBSERVER_A_LN``, ``ptf`` under ``--ptf``: it is the next stage's LayerNorm input);
    the final norm, the pooled features, the logits."""
    s = specs["fqvit"]
    a = s.activations
    for t in ("input", "patch_embed", "patch_embed.norm", "layers.1.downsample.norm", "norm",
              "pool", "head"):
        assert a[t].kind == "uniform" and a[t].axis is None, t
    assert a["layers.1.downsample.reduction"].kind == "ptf"
    b = "layers.0.blocks.1."
    for t in ("norm1", "attn.q", "attn.k", "attn.v", "attn.q@k", "attn.logits",
              "attn.attn@v", "attn.proj", "norm2", "mlp.gelu", "mlp.fc2"):
        assert a[b + t].kind == "uniform", t
    assert a[b + "attn.q"] is a[b + "attn.v"]
    assert a[b + "add1"].kind == a[b + "add2"].kind == "ptf"
    assert b + "mlp.fc1" not in a and b + "attn.masked" not in a
    assert s.kernels == {"softmax": "lis"}
    assert b + "attn.relative_position_bias_table" in s.weights
    assert b + "attn.relative_position_bias_table" in s.params


@pytest.mark.torch
@needs_torch
def test_fqvit_swin_softmax_is_lis_of_the_masked_logits(swin: tuple[Any, np.ndarray],
                                                        specs: dict[str, Any]) -> None:
    """In a shifted-window block the LIS reads qact2(logits + bias) + mask with qact2's
    scale (``swin_quant.py`` 204-213)."""
    import torch

    from .oracles.fqvit import log_int_softmax

    m, x = swin
    s = specs["fqvit"]
    mq, tap = fake_quant(m, s)
    _, qt = mq.forward_with_taps(x, tap=tap)
    for b in ("layers.0.blocks.0.attn.", "layers.0.blocks.1.attn.", "layers.1.blocks.1.attn."):
        src = qt.get(b + "masked", qt[b + "logits"])
        sc = torch.tensor(float(s.activations[b + "logits"].scale), dtype=torch.float64)
        want = log_int_softmax(torch.from_numpy(src), sc, 4).numpy()
        ok = ~np.isnan(want)
        np.testing.assert_array_equal(qt[b + "softmax"][ok], want[ok], strict=True)
    assert "layers.0.blocks.1.attn.masked" in qt  # stage 0, block 1: shifted windows


def test_repq_ias_ptq4vit_swin_placement(specs: dict[str, Any]) -> None:
    red = "layers.1.downsample.norm"
    # RepQ-ViT: the reduction's input per channel (not folded: no reduction bias in refq)
    q = specs["repq"].activations[red]
    assert isinstance(q, UniformQuantizer) and q.axis == -1
    assert specs["repq"].activations["layers.0.blocks.0.norm1"].axis is None  # folded
    assert "layers.1.downsample.norm.weight" not in specs["repq"].params
    # I&S-ViT: per tensor ('qkv' / 'fc1' only are channel-wise), head input the pooled
    assert specs["ias"].activations[red].axis is None
    assert "pool" in specs["ias"].activations and "input" not in specs["ias"].activations
    # PTQ4ViT: the reduction searched like the other linears; the head reads the pool
    p = specs["ptq4vit"]
    assert p.weights["layers.1.downsample.reduction.weight"].axis is None
    assert p.activations["pool"].signed and p.activations[red].signed
    assert p.weights["patch_embed.proj.weight"].axis == 0
