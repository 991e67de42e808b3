"""refq.calib.hessian ``loss="fisher"``: the diagonal Fisher weight of each op output against
(1) an explicit loop over classes with the per-label cross-entropy gradients and (2) the
second-order finite difference of the KL between the FP model and the FP model with one op
output element perturbed (through model.forward taps, independent of the backward code)."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.hessian import fisher_diagonal, hessian_metric_factory, layer_output_grads
from refq.errors import SpecError
from refq.nn.configs import ViTConfig
from refq.nn.factory import create_model


def _model(distilled: bool = False, depth: int = 2) -> object:
    cfg = ViTConfig(name="tiny", img_size=8, patch_size=4, in_chans=1, num_classes=4,
                    embed_dim=8, depth=depth, num_heads=2, mlp_ratio=2.0, distilled=distilled)
    m = create_model(cfg, seed=5)
    # larger weights: less uniform predictions, so the weights are not tiny
    return m.with_params({k: v * 6 for k, v in m.params.items()})


def _logsoftmax(z: np.ndarray) -> np.ndarray:
    z = z - z.max(axis=-1, keepdims=True)
    return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))


def _kl_sum(zp: np.ndarray, zq: np.ndarray) -> float:
    lp, lq = _logsoftmax(zp), _logsoftmax(zq)
    return float(np.sum(np.exp(lp) * (lp - lq)))


@pytest.mark.parametrize("distilled", [False, True])
def test_fisher_vs_loop_over_class_ce_grads(distilled: bool) -> None:
    model = _model(distilled)
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8))
    w = fisher_diagonal(model, x)
    prob = np.exp(_logsoftmax(model.forward(x)))  # type: ignore[attr-defined]
    b, k = prob.shape
    for op in w:
        acc = np.zeros_like(w[op])
        for y in range(k):
            # per-label mean CE gradient (1/B), times B = gradient of -log p_y per image
            g = layer_output_grads(model, x, labels=np.full(b, y), loss="ce")[op] * b
            acc += prob[:, y].reshape((-1,) + (1,) * (g.ndim - 1)) * g * g
        np.testing.assert_allclose(w[op], acc, rtol=1e-10, atol=1e-12 * float(acc.max()))
        assert np.all(w[op] >= 0)


@pytest.mark.parametrize("distilled", [False, True])
def test_fisher_is_second_order_of_kl(distilled: bool) -> None:
    model = _model(distilled)
    x = np.random.default_rng(1).normal(size=(2, 1, 8, 8))
    w = fisher_diagonal(model, x)
    z0 = model.forward(x)  # type: ignore[attr-defined]
    tap_of = {o.name: o.output for o in model.ops()}  # type: ignore[attr-defined]
    rr = np.random.default_rng(2)
    eps = 1e-3
    for op in ["blocks.0.attn.qkv", "blocks.1.attn.q@k", "blocks.0.attn.attn@v",
               "blocks.1.mlp.fc1", "blocks.0.mlp.fc2", "blocks.1.attn.proj", "head",
               "patch_embed.proj"]:
        wo = w[op]
        # probes: the largest weight and two random elements among the non-negligible ones
        # (in the last block only the class-token rows reach the logits)
        big = np.argwhere(wo > 1e-3 * wo.max())
        probes = [tuple(int(i) for i in np.unravel_index(int(np.argmax(wo)), wo.shape))]
        probes += [tuple(int(i) for i in big[j]) for j in rr.integers(0, len(big), size=2)]
        for idx in probes:
            def kl(e: float, op: str = op, idx: tuple[int, ...] = idx) -> float:
                def tap(name: str, a: np.ndarray) -> np.ndarray | None:
                    if name == tap_of[op]:
                        a = a.copy()
                        a[idx] += e
                        return a
                    return None
                return _kl_sum(z0, model.forward(x, tap=tap))  # type: ignore[attr-defined]

            # second difference = w_j + c eps^2 + O(eps^4); Richardson removes the eps^2 term
            d1 = (kl(eps) + kl(-eps)) / eps ** 2
            d2 = (kl(eps / 2) + kl(-eps / 2)) / (eps / 2) ** 2
            fd = (4 * d2 - d1) / 3
            # tolerance: 1e-4 relative, plus 2e-9 absolute for the float64 rounding of KLs
            # of order 1e-12 (small weights)
            assert abs(fd - wo[idx]) <= 1e-4 * abs(fd) + 2e-9, (op, idx, fd, wo[idx])
        assert wo.max() > 1e-6, op   # the largest weight of every probed op is checked


def test_fisher_metric_and_options() -> None:
    model = _model(depth=1)
    x = np.random.default_rng(3).normal(size=(2, 1, 8, 8))
    w = fisher_diagonal(model, x)
    fac = hessian_metric_factory(model, x, loss="fisher")
    o = np.random.default_rng(4).normal(size=w["blocks.0.mlp.fc1"].shape)
    d = np.random.default_rng(5).normal(size=o.shape)
    assert fac("blocks.0.mlp.fc1")(o, o + d) == pytest.approx(
        float(np.mean(w["blocks.0.mlp.fc1"] * d * d)), rel=1e-12)
    # per-head layout (B, H, N, d) of the merged attn@v output (B, N, H*d)
    wa = w["blocks.0.attn.attn@v"]
    bb, n, c = wa.shape
    shape = (bb, 2, n, c // 2)
    w4 = wa.reshape(bb, n, 2, c // 2).transpose(0, 2, 1, 3)
    o4 = np.random.default_rng(6).normal(size=shape)
    d4 = np.random.default_rng(7).normal(size=shape)
    assert fac("blocks.0.attn.attn@v", shape)(o4, o4 + d4) == pytest.approx(
        float(np.mean(w4 * d4 * d4)), rel=1e-12)
    with pytest.raises(SpecError):
        hessian_metric_factory(model, x, loss="fisher", labels=np.zeros(2, dtype=np.int64))
    with pytest.raises(SpecError):
        layer_output_grads(model, x, loss="fisher")
