"""refq.calib.hessian on a Swin: the Fisher diagonal (``loss="fisher"``, ``"fisher_balanced"``)
against the second-order finite difference of the KL through ``model.forward`` taps, and the
sequential calibration's KL gradient (``ptq4vit(sequential=True)``) against first-order
finite differences at the partially quantized model — both independent of the backward code
(refq.nn.grad_swin). Window ops have the (B·W, ...) layout of their taps."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refq.calib.hessian import balanced_fisher_diagonal, fisher_diagonal, sequential_state
from refq.methods import quantize_model
from tests.calib.test_hessian_sequential import _kl_mean, _quantized, _upstream_quantizers
from tests.nn.swin_util import pixels, random_swin

OPS = ["patch_embed.proj", "layers.0.blocks.1.attn.q@k", "layers.0.blocks.1.attn.attn@v",
       "layers.0.blocks.0.attn.proj", "layers.1.downsample.reduction",
       "layers.1.blocks.0.mlp.fc1", "layers.1.blocks.1.mlp.fc2", "head"]


@pytest.fixture(scope="module")
def swin() -> Any:
    return random_swin(std=0.5)


def _probes(w: np.ndarray, seed: int) -> list[tuple[int, ...]]:
    rr = np.random.default_rng(seed)
    big = np.argwhere(np.abs(w) > 1e-2 * np.abs(w).max())
    out = [tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(w))), w.shape))]
    return out + [tuple(int(i) for i in big[j]) for j in rr.integers(0, len(big), size=2)]


def _kl_sum(zp: np.ndarray, zq: np.ndarray) -> float:
    return _kl_mean(zp, zq) * zp.shape[0]


def test_fisher_is_second_order_of_kl_on_swin(swin: Any) -> None:
    x = pixels(2, seed=3)
    w = fisher_diagonal(swin, x)
    z0 = swin.forward(x)
    tap_of = {o.name: o.output for o in swin.ops()}
    for op in OPS:
        wo = w[op]
        _, taps = swin.forward_with_taps(x, names=[tap_of[op]])
        assert wo.shape == taps[tap_of[op]].shape, op
        for idx in _probes(wo, 2):
            def kl(e: float, op: str = op, idx: tuple[int, ...] = idx) -> float:
                def tap(name: str, a: np.ndarray) -> np.ndarray | None:
                    if name == tap_of[op]:
                        a = a.copy()
                        a[idx] += e
                        return a
                    return None
                return _kl_sum(z0, swin.forward(x, tap=tap))

            eps = 1e-2  # Richardson leaves O(eps^4); a smaller eps drowns in KL rounding
            d1 = (kl(eps) + kl(-eps)) / eps ** 2
            d2 = (kl(eps / 2) + kl(-eps / 2)) / (eps / 2) ** 2
            fd = (4 * d2 - d1) / 3
            assert abs(fd - wo[idx]) <= 1e-4 * abs(fd) + 2e-9, (op, idx, fd, wo[idx])
        assert wo.max() > 1e-7, op  # the 2e-9 absolute slack is < 2 % of the largest


def test_balanced_fisher_sums_to_one_per_image_over_its_windows(swin: Any) -> None:
    """A window op's weight (B·W, ...) is balanced over the W windows of each image, not per
    window: every image's weights sum to 1, and each window's share differs."""
    x = pixels(3, seed=4)
    u = balanced_fisher_diagonal(swin, x)
    w = fisher_diagonal(swin, x)
    for op in OPS:
        per_image = u[op].reshape(3, -1).sum(axis=1)
        np.testing.assert_allclose(per_image, 1.0, rtol=1e-12)
        np.testing.assert_allclose(u[op].reshape(3, -1),
                                   w[op].reshape(3, -1) / w[op].reshape(3, -1).sum(1)[:, None],
                                   rtol=1e-9)
    q = u["layers.0.blocks.1.attn.q@k"]
    assert q.shape[0] == 12 and not np.allclose(q.reshape(12, -1).sum(1), 1.0)


def test_sequential_grad_vs_finite_differences_on_swin(swin: Any) -> None:
    x = pixels(1, seed=6)
    zfp = swin.forward(x)
    tap_of = {o.name: o.output for o in swin.ops()}
    for op in OPS[1:]:
        w, a = _upstream_quantizers(swin, x, op)
        st = sequential_state(swin, x, w, a, zfp)
        assert st.grads is not None
        g = st.grads[op]
        mq, qtap = _quantized(swin, w, a)
        assert st.kl == pytest.approx(_kl_mean(zfp, mq.forward(x, tap=qtap)), rel=1e-12)
        assert st.kl > 1e-8
        for idx in _probes(g, 7):
            def kl(e: float, op: str = op, idx: tuple[int, ...] = idx, mq: Any = mq,
                   qtap: Any = qtap) -> float:
                def tap(name: str, t: np.ndarray) -> np.ndarray | None:
                    r = qtap(name, t)
                    if name == tap_of[op]:
                        r = (t if r is None else r).copy()
                        r[idx] += e
                    return r
                return _kl_mean(zfp, mq.forward(x, tap=tap))

            def d(h: float, kl: Any = kl) -> float:
                return (kl(h) - kl(-h)) / (2 * h)

            h = 1e-4 * max(1.0, float(np.abs(st.taps[tap_of[op]]).max()))
            fd = (4 * d(h / 2) - d(h)) / 3
            assert abs(fd - g[idx]) <= 1e-6 * abs(g[idx]) + 1e-12, (op, idx, fd, g[idx])


@pytest.mark.parametrize("opts", [
    {"sequential": True}, {"sequential": True, "metric": "cosine"},
    {"hessian_loss": "fisher"}, {"hessian_loss": "fisher_balanced"}])
def test_ptq4vit_options_run_on_swin(swin: Any, opts: dict[str, Any]) -> None:
    spec = quantize_model(swin, "ptq4vit", 8, 8, pixels(4), calib_sub=4, n=8, rounds=1,
                          **opts)
    assert "layers.1.downsample.norm" in spec.activations
    assert spec.notes.get("sequential", False) == bool(opts.get("sequential"))
    if "hessian_loss" in opts:
        assert spec.notes["hessian_loss"] == opts["hessian_loss"]
