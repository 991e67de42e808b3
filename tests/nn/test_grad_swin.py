"""Swin's whole-model backward (refq.nn.grad_swin) against central finite differences of the
model's own forward, perturbing each op's output tap."""

from __future__ import annotations

import numpy as np
import pytest

from refq.errors import SpecError
from refq.nn.grad_swin import swin_op_output_grads
from refq.nn.swin import window_partition
from tests.nn.swin_util import pixels, random_swin


def test_op_output_grads_match_finite_differences() -> None:
    m = random_swin(seed=3)
    x = pixels(2)
    c = np.random.default_rng(4).standard_normal((2, 5))
    _, grads = swin_op_output_grads(m, x, lambda logits: c)
    ops = {op.name: op.output for op in m.ops()}
    assert set(grads) == set(ops)
    rng = np.random.default_rng(5)
    for name in ("patch_embed.proj", "layers.0.blocks.1.attn.qkv", "layers.0.blocks.1.attn.q@k",
                 "layers.0.blocks.1.attn.attn@v", "layers.0.blocks.1.attn.proj",
                 "layers.0.blocks.1.mlp.fc1", "layers.1.downsample.reduction",
                 "layers.1.blocks.0.attn.proj", "head"):
        tap = ops[name]
        g = grads[name]
        d = rng.standard_normal(g.shape)
        dt = d
        if name.endswith("attn.qkv"):  # token-layout gradient; the tap holds windows
            grid = np.roll(d.reshape(2, 8, 8, -1), (-2, -2), axis=(1, 2))
            dt = window_partition(grid, 4)


        def loss(sign: float, tap: str = tap, d: np.ndarray = dt) -> float:
            def hook(n: str, v: np.ndarray) -> np.ndarray:
                return v + sign * 1e-6 * d if n == tap else v
            return float((m.forward(x, tap=hook) * c).sum())

        fd = (loss(1.0) - loss(-1.0)) / 2e-6
        an = float((g * d).sum())
        assert abs(fd - an) <= 1e-6 * max(1.0, abs(an)), (name, fd, an)


def test_refuses_a_vit() -> None:
    from refq.nn.configs import ViTConfig
    from refq.nn.factory import create_model, param_shapes

    cfg = ViTConfig(name="v", img_size=8, patch_size=4, embed_dim=8, depth=1, num_heads=2,
                    num_classes=3)
    m = create_model(cfg, {k: np.zeros(s) for k, s in param_shapes(cfg).items()})
    with pytest.raises(SpecError, match="not a Swin"):
        swin_op_output_grads(m, np.zeros((1, 3, 8, 8)), lambda y: y)
