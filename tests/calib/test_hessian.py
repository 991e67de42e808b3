"""refq.calib.hessian: op-output gradients vs finite differences through model.forward taps."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.hessian import hessian_metric_factory, layer_output_grads
from refq.errors import SpecError
from refq.nn.configs import ViTConfig
from refq.nn.factory import create_model
from refq.nn.grad_vit import vit_forward_cached


def _ce(logits: np.ndarray, lab: np.ndarray) -> float:
    z = logits - logits.max(axis=-1, keepdims=True)
    lq = z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    return float(-np.mean(lq[np.arange(len(lab)), lab]))


@pytest.mark.parametrize("distilled", [False, True])
def test_grads_vs_fd_through_taps(distilled: bool) -> None:
    cfg = ViTConfig(name="tiny", img_size=8, patch_size=4, in_chans=1, num_classes=3,
                    embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0, distilled=distilled)
    model = create_model(cfg, seed=3)
    # larger weights so the gradients are not tiny
    model = model.with_params({k: v * 20 for k, v in model.params.items()})
    r = np.random.default_rng(0)
    x = r.normal(size=(2, 1, 8, 8))
    np.testing.assert_allclose(vit_forward_cached(model, x)[0], model.forward(x), rtol=1e-10)
    lab = np.array([0, 2])
    grads = layer_output_grads(model, x, labels=lab)
    tap_of = {o.name: o.output for o in model.ops()}
    assert set(tap_of) <= set(grads)
    h = 1e-6
    rr = np.random.default_rng(1)
    for op in ["blocks.0.attn.qkv", "blocks.1.attn.q@k", "blocks.0.attn.attn@v",
               "blocks.1.mlp.fc1", "blocks.0.mlp.fc2", "head", "patch_embed.proj"]:
        g = grads[op]
        for _ in range(3):
            idx = tuple(int(rr.integers(0, s)) for s in g.shape)

            def f(eps: float, op: str = op, idx: tuple[int, ...] = idx) -> float:
                def tap(name: str, a: np.ndarray) -> np.ndarray | None:
                    if name == tap_of[op]:
                        a = a.copy()
                        a[idx] += eps
                        return a
                    return None
                return _ce(model.forward(x, tap=tap), lab)

            fd = (f(h) - f(-h)) / (2 * h)
            assert abs(fd - g[idx]) <= 1e-6 * max(abs(fd), 1e-3), (op, idx, fd, g[idx])


def test_policy_and_metric() -> None:
    cfg = ViTConfig(name="tiny", img_size=8, patch_size=4, in_chans=1, num_classes=3,
                    embed_dim=8, depth=1, num_heads=2, mlp_ratio=2.0)
    model = create_model(cfg, seed=1)
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8))
    with pytest.raises(SpecError):
        layer_output_grads(model, x, loss="kl")
    with pytest.raises(SpecError):
        layer_output_grads(model, x, loss="nope")
    # own-argmax CE gradient is not zero (the policy for issue #23)
    g = layer_output_grads(model, x)
    assert float(np.abs(g["head"]).sum()) > 0
    m = hessian_metric_factory(model, x)("blocks.0.mlp.fc1")
    o = np.ones_like(g["blocks.0.mlp.fc1"])
    d = o + 0.5
    expected = float(np.mean((g["blocks.0.mlp.fc1"] * 0.5) ** 2))
    assert m(o, d) == pytest.approx(expected, rel=1e-12)
    with pytest.raises(SpecError):
        hessian_metric_factory(model, x)("nope")
