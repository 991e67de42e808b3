"""refq.calib.hessian ``loss="fisher_balanced"`` (refq's image-balanced Fisher policy):
each image's weights sum to the same value, the weights equal an explicit per-image loop over
``fisher_diagonal`` run on ONE image at a time, an all-zero image gets the uniform weight,
and the metric is the mean over images of each image's normalised Fisher-weighted error,
invariant to scaling one image's raw weights."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.hessian import (
    HESSIAN_LOSSES,
    balance_images,
    balanced_fisher_diagonal,
    fisher_diagonal,
    hessian_metric_factory,
)
from refq.errors import SpecError
from refq.nn.configs import ViTConfig
from refq.nn.factory import create_model


def _model() -> object:
    cfg = ViTConfig(name="tiny", img_size=8, patch_size=4, in_chans=1, num_classes=4,
                    embed_dim=8, depth=2, num_heads=2, mlp_ratio=2.0)
    m = create_model(cfg, seed=5)
    return m.with_params({k: v * 6 for k, v in m.params.items()})


@pytest.fixture(scope="module")
def setup() -> tuple[object, np.ndarray, dict[str, np.ndarray], dict[str, np.ndarray]]:
    model = _model()
    x = np.random.default_rng(0).normal(size=(3, 1, 8, 8))
    return model, x, fisher_diagonal(model, x), balanced_fisher_diagonal(model, x)


def test_loss_name_registered() -> None:
    assert "fisher_balanced" in HESSIAN_LOSSES


def test_each_image_sums_to_one(setup: tuple) -> None:  # type: ignore[type-arg]
    _, x, raw, bal = setup
    assert set(bal) == set(raw)
    for op, u in bal.items():
        assert u.shape == raw[op].shape
        sums = u.reshape(u.shape[0], -1).sum(axis=1)
        np.testing.assert_allclose(sums, np.ones(x.shape[0]), rtol=1e-12, atol=0)
        assert np.all(u >= 0)


def test_raw_fisher_is_unbalanced_so_the_test_above_can_fail(setup: tuple) -> None:  # type: ignore[type-arg]
    _, _, raw, _ = setup
    s = raw["blocks.0.attn.qkv"].reshape(3, -1).sum(axis=1)
    assert s.max() > 1.5 * s.min()


def test_equals_per_image_loop_over_fisher_diagonal(setup: tuple) -> None:  # type: ignore[type-arg]
    model, x, _, bal = setup
    for b in range(x.shape[0]):
        # the Fisher of image b alone (batch of 1): the per-image term of the batch Fisher
        wb = fisher_diagonal(model, x[b:b + 1])
        for op, u in bal.items():
            expect = wb[op][0] / wb[op][0].sum()
            np.testing.assert_allclose(u[b], expect, rtol=1e-9,
                                       atol=1e-12 * float(expect.max()))


def test_all_zero_image_gets_uniform_weight() -> None:
    w = np.zeros((3, 2, 5))
    w[0] = np.arange(10.0).reshape(2, 5)
    w[2, 1, 3] = 7.0
    u = balance_images(w)
    np.testing.assert_array_equal(u[1], np.full((2, 5), 0.1), strict=True)
    np.testing.assert_allclose(u[0], np.arange(10.0).reshape(2, 5) / 45.0, rtol=1e-15)
    expect2 = np.zeros((2, 5))
    expect2[1, 3] = 1.0
    np.testing.assert_array_equal(u[2], expect2, strict=True)


def test_tiny_weights_do_not_underflow() -> None:
    w = np.array([[1e-320, 3e-320, 0.0], [1.0, 1.0, 2.0]])
    u = balance_images(w)
    np.testing.assert_allclose(u[0], [0.25, 0.75, 0.0], rtol=1e-2)
    np.testing.assert_allclose(u[1], [0.25, 0.25, 0.5], rtol=1e-15)


@pytest.mark.parametrize("bad", [np.array([[1.0, -1.0]]), np.array([[np.nan, 1.0]]),
                                 np.array([[np.inf, 1.0]]), np.zeros((0, 3)), np.zeros(())])
def test_bad_weights_raise(bad: np.ndarray) -> None:
    with pytest.raises(SpecError):
        balance_images(bad)


def test_metric_is_mean_over_images_and_scale_free(setup: tuple) -> None:  # type: ignore[type-arg]
    model, x, raw, bal = setup
    rng = np.random.default_rng(3)
    op = "blocks.1.mlp.fc1"
    w = raw[op]
    ref = rng.normal(size=w.shape)
    approx = ref + rng.normal(size=w.shape)
    err2 = (ref - approx) ** 2
    m_per_image = w[0].size
    # explicit: mean over images of (Σ_j w_b[j] err²_b[j] / Σ_j w_b[j]), over M elements
    per_image = [float(np.sum(w[b] * err2[b]) / np.sum(w[b])) for b in range(w.shape[0])]
    expect = float(np.mean(per_image)) / m_per_image
    metric = hessian_metric_factory(model, x, loss="fisher_balanced")(op)
    assert metric(ref, approx) == pytest.approx(expect, rel=1e-10)
    # scaling one image's raw Fisher weight by 1e6 leaves the balanced weight (hence the
    # metric) unchanged, while it changes the plain Fisher metric
    scaled = w.copy()
    scaled[1] *= 1e6
    np.testing.assert_allclose(balance_images(scaled), bal[op], rtol=1e-12, atol=0)
    from refq.calib.metrics import weighted_mse
    assert weighted_mse(np.sqrt(balance_images(scaled)))(ref, approx) == pytest.approx(
        expect, rel=1e-10)
    plain = hessian_metric_factory(model, x, loss="fisher")(op)
    assert weighted_mse(np.sqrt(scaled))(ref, approx) != pytest.approx(
        plain(ref, approx), rel=1e-3)


def test_factory_fisher_balanced_rejects_labels(setup: tuple) -> None:  # type: ignore[type-arg]
    model, x, _, _ = setup
    with pytest.raises(SpecError):
        hessian_metric_factory(model, x, labels=np.zeros(3, dtype=np.int64),
                               loss="fisher_balanced")


def test_ptq4vit_accepts_fisher_balanced_and_rejects_unknown() -> None:
    from refq.methods import quantize_model
    model = _model()
    x = np.random.default_rng(4).normal(size=(4, 1, 8, 8))
    spec = quantize_model(model, "ptq4vit", 4, 4, x, seed=0, n=4, rounds=1,
                          hessian_loss="fisher_balanced")
    assert spec.notes["hessian_loss"] == "fisher_balanced"
    with pytest.raises(SpecError):
        quantize_model(model, "ptq4vit", 4, 4, x, seed=0, n=4, rounds=1,
                       hessian_loss="fisher_balancd")
