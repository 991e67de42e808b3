"""refq.calib.sos: block loss gradient vs finite differences, STE, determinism, progress."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.sos import quant_block_loss_grad, reconstruct_block
from refq.nn.backward import block_forward
from refq.quant import UniformQuantizer

PRE = "blocks.0."


def _params(seed: int, c: int = 4, hid: int = 6) -> dict[str, np.ndarray]:
    r = np.random.default_rng(seed)
    shapes = {
        "norm1.weight": (c,), "norm1.bias": (c,), "attn.qkv.weight": (3 * c, c),
        "attn.qkv.bias": (3 * c,), "attn.proj.weight": (c, c), "attn.proj.bias": (c,),
        "norm2.weight": (c,), "norm2.bias": (c,), "mlp.fc1.weight": (hid, c),
        "mlp.fc1.bias": (hid,), "mlp.fc2.weight": (c, hid), "mlp.fc2.bias": (c,),
    }
    return {PRE + k: r.normal(size=s) * 0.5 for k, s in shapes.items()}


def test_fp_loss_grad_vs_fd() -> None:
    p = _params(0)
    r = np.random.default_rng(1)
    x, t = r.normal(size=(3, 5, 4)), r.normal(size=(3, 5, 4))
    y = block_forward(x, p, PRE, 2, 1e-6)[0]
    # summed over tokens, averaged over images and channels (I&S-ViT's lp_loss)
    assert np.sum((y - t) ** 2) / (3 * 4) == quant_block_loss_grad(p, PRE, 2, 1e-6, x, t, {},
                                                                  {})[0]
    _, g = quant_block_loss_grad(p, PRE, 2, 1e-6, x, t, {}, {})
    for name in (PRE + "attn.qkv.weight", PRE + "mlp.fc2.bias", PRE + "attn.proj.weight"):
        for i in range(3):
            idx = tuple(int(v) for v in np.unravel_index((i * 5) % p[name].size, p[name].shape))
            h = 1e-6
            pp, pm = dict(p), dict(p)
            pp[name] = p[name].copy()
            pm[name] = p[name].copy()
            pp[name][idx] += h
            pm[name][idx] -= h
            fd = (np.sum((block_forward(x, pp, PRE, 2, 1e-6)[0] - t) ** 2)
                  - np.sum((block_forward(x, pm, PRE, 2, 1e-6)[0] - t) ** 2)) / (2 * h * 3 * 4)
            assert abs(fd - g[name][idx]) <= 1e-6 * max(abs(fd), 1e-3)


def test_reconstruction_reduces_loss_and_is_deterministic() -> None:
    p = _params(2)
    r = np.random.default_rng(3)
    x = r.normal(size=(16, 5, 4))
    t = block_forward(x, p, PRE, 2, 1e-6)[0]
    act = {PRE + "norm1": UniformQuantizer(0.3, 3), PRE + "norm2": UniformQuantizer(0.3, 3),
           PRE + "mlp.gelu": UniformQuantizer(0.2, 3)}
    wq = {PRE + "mlp.fc1.weight": UniformQuantizer(0.1, 4)}
    full = dict(p)
    l0 = quant_block_loss_grad(full, PRE, 2, 1e-6, x, t, act, wq)[0]
    new = reconstruct_block(p, PRE, 2, 1e-6, x, t, act, wq, iters=60, lr=1e-2, batch=8, seed=5)
    full.update(new)
    l1 = quant_block_loss_grad(full, PRE, 2, 1e-6, x, t, act, wq)[0]
    assert l1 < l0
    new2 = reconstruct_block(p, PRE, 2, 1e-6, x, t, act, wq, iters=60, lr=1e-2, batch=8, seed=5)
    for k in new:
        assert new[k].tobytes() == new2[k].tobytes()
    assert set(new) == {PRE + s for s in ("attn.qkv.weight", "attn.qkv.bias", "attn.proj.weight",
                                           "attn.proj.bias", "mlp.fc1.weight", "mlp.fc1.bias",
                                           "mlp.fc2.weight", "mlp.fc2.bias")}


def test_sos_reconstruct_tiny_model() -> None:
    from refq.calib.sos import sos_reconstruct
    from refq.nn.configs import ViTConfig
    from refq.nn.factory import create_model
    from refq.quant import QuantSpec

    cfg = ViTConfig(name="tiny", img_size=8, patch_size=4, in_chans=1, num_classes=3,
                    embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0)
    model = create_model(cfg, seed=3)
    model = model.with_params({k: v * 20 for k, v in model.params.items()})
    x = np.random.default_rng(0).normal(size=(8, 1, 8, 8))
    acts = {f"blocks.{i}.{t}": UniformQuantizer(0.25, 3) for i in range(2)
            for t in ("norm1", "norm2", "mlp.gelu")}
    ws = {f"blocks.{i}.mlp.fc1.weight": UniformQuantizer(0.2, 3) for i in range(2)}
    spec = QuantSpec(method="ias", model="tiny", w_bits=3, a_bits=3, weights=ws,
                     activations=acts)
    s0 = sos_reconstruct(model, spec, x, iters=0, seed=1)
    s1 = sos_reconstruct(model, spec, x, iters=30, lr=1e-2, batch=4, seed=1)
    s2 = sos_reconstruct(model, spec, x, iters=30, lr=1e-2, batch=4, seed=1)
    l0 = s0.notes["sos"]["final_block_loss_per_image"]
    l1 = s1.notes["sos"]["final_block_loss_per_image"]
    assert l1[-1] < l0[-1]
    assert set(s1.params) == set(s2.params)
    for k in s1.params:
        assert s1.params[k].tobytes() == s2.params[k].tobytes()


@pytest.mark.parametrize("signed", [False, True])
def test_stage2_reparam_is_lossless(signed: bool) -> None:
    from refq.calib.sos import repq_reparam
    from refq.nn.layers import layernorm, linear
    from refq.quant import QuantSpec

    p = _params(4, c=4)
    x = np.random.default_rng(5).normal(size=(6, 5, 4))
    scale = np.array([0.1, 0.2, 0.4, 0.3])
    # zero points with a non-integer mean: stage 2 rounds the layer zero point (lossless)
    zp = np.array([1, -2, 0, 2]) if signed else np.array([9, 6, 8, 10])
    q = UniformQuantizer(scale, 4, zp, signed=signed, axis=-1)
    spec = QuantSpec(method="ias", model="t", w_bits=4, a_bits=4,
                     activations={PRE + "norm1": q})
    p2, spec2 = repq_reparam(p, spec)
    assert getattr(spec2.activations[PRE + "norm1"], "axis", None) is None

    def out(pp: dict[str, np.ndarray], qq: UniformQuantizer) -> np.ndarray:
        n = layernorm(x, pp[PRE + "norm1.weight"], pp[PRE + "norm1.bias"], 1e-6)
        return linear(qq.fake_quant(n), pp[PRE + "attn.qkv.weight"], pp[PRE + "attn.qkv.bias"])

    class _Id:
        def fake_quant(self, a: np.ndarray) -> np.ndarray:
            return a

    # lossless in float: the folded LayerNorm + linear compute the same function
    np.testing.assert_allclose(out(p2, _Id()), out(p, _Id()), rtol=1e-9, atol=1e-9)  # type: ignore[arg-type]
    np.testing.assert_allclose(out(p2, spec2.activations[PRE + "norm1"]), out(p, q),
                               rtol=1e-9, atol=1e-9)


class _Clip:
    """A 'quantizer' whose fake_quant is clip(x, lo, hi): its exact derivative is the STE
    mask of refq.calib.sos (1 inside [lo, hi], 0 outside), so finite differences of the
    real function are an independent oracle for the STE gradient path."""

    def __init__(self, lo: float, hi: float) -> None:
        self.lo, self.hi = lo, hi

    def fake_quant(self, x: np.ndarray) -> np.ndarray:
        return np.clip(x, self.lo, self.hi)

    def levels(self) -> np.ndarray:
        return np.array([self.lo, self.hi])


def test_ste_masks_vs_fd_of_clip_surrogate() -> None:
    p = _params(6)
    r = np.random.default_rng(7)
    x, t = r.normal(size=(3, 5, 4)), r.normal(size=(3, 5, 4))
    act = {PRE + k: _Clip(-0.6, 0.7) for k in ("norm1", "attn.q", "attn.k", "attn.v",
                                                "attn.attn@v", "norm2", "mlp.gelu")}
    act[PRE + "attn.softmax"] = _Clip(0.05, 0.8)
    wq = {PRE + "mlp.fc1.weight": _Clip(-0.4, 0.4), PRE + "attn.qkv.weight": _Clip(-0.5, 0.5)}
    loss, g = quant_block_loss_grad(p, PRE, 2, 1e-6, x, t, act, wq)  # type: ignore[arg-type]

    def f(pp: dict[str, np.ndarray]) -> float:
        return quant_block_loss_grad(pp, PRE, 2, 1e-6, x, t, act, wq, grad=False)[0]  # type: ignore[arg-type]

    assert f(p) == loss
    checked = 0
    for name in (PRE + "attn.qkv.weight", PRE + "mlp.fc1.weight", PRE + "mlp.fc2.weight",
                 PRE + "attn.proj.bias", PRE + "mlp.fc1.bias"):
        for i in range(0, p[name].size, 3):
            idx = np.unravel_index(i, p[name].shape)
            w0 = p[name][idx]
            if name in wq and min(abs(w0 - wq[name].lo), abs(w0 - wq[name].hi)) < 1e-4:
                continue  # FD across the clip kink
            h = 1e-6
            pp, pm = dict(p), dict(p)
            pp[name], pm[name] = p[name].copy(), p[name].copy()
            pp[name][idx] += h
            pm[name][idx] -= h
            fd = (f(pp) - f(pm)) / (2 * h)
            assert abs(fd - g[name][idx]) <= 1e-5 * max(abs(fd), 1e-2), (name, idx, fd)
            checked += 1
    assert checked > 20
    # clipped weights get no gradient
    clipped = np.abs(p[PRE + "mlp.fc1.weight"]) > 0.4
    assert clipped.any() and np.all(g[PRE + "mlp.fc1.weight"][clipped] == 0)
