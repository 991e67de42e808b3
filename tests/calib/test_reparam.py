"""RepQ-ViT / MOSF reparameterization: lossless in float, per-tensor quantizer as designed."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib import layer_statistic, reparameterize
from refq.errors import SpecError
from refq.nn import load_bundled


@pytest.fixture(scope="module")
def model_and_images():  # type: ignore[no-untyped-def]
    model, data = load_bundled()
    return model, data.normalize(data.images[data.calib_idx[:8]])


def _per_channel(x: np.ndarray, bits: int) -> tuple[np.ndarray, np.ndarray]:
    c = x.reshape(-1, x.shape[-1])
    lo, hi = c.min(0), c.max(0)
    s = (hi - lo) / (2**bits - 1)
    return s, np.rint(-lo / s)


@pytest.mark.parametrize("choice", ["mean", "median", "mad"])
@pytest.mark.parametrize("norm,linear", [("blocks.0.norm1", "blocks.0.attn.qkv"),
                                         ("blocks.2.norm2", "blocks.2.mlp.fc1")])
def test_lossless_and_codes(model_and_images, choice: str, norm: str, linear: str) -> None:  # type: ignore[no-untyped-def]
    model, imgs = model_and_images
    _, taps = model.forward_with_taps(imgs, names=[norm, linear])
    x, y = taps[norm], taps[linear]
    s, z = _per_channel(x, 4)
    new, rec = reparameterize(model.params, norm, linear, s, z, choice=choice,
                              zero_point_rounding="half_even")
    assert set(new) == {f"{norm}.weight", f"{norm}.bias", f"{linear}.weight", f"{linear}.bias"}
    model2 = model.with_params({**model.params, **new})
    _, taps2 = model2.forward_with_taps(imgs, names=[norm, linear])
    rel = np.abs(taps2[linear] - y).max() / np.abs(y).max()
    assert rel < 1e-10
    # the per-tensor quantizer (s~, z~) on the new activation gives the per-channel codes
    st, zt = rec["scale"], rec["zero_point"]
    assert st == pytest.approx(layer_statistic(s, choice))
    assert zt == float(np.rint(layer_statistic(z, choice)))
    q_old = np.clip(np.rint(x / s) + z, 0, 15)
    q_new = np.clip(np.rint(taps2[norm] / st) + zt, 0, 15)
    assert np.mean(q_old == q_new) > 0.999
    assert np.abs(q_old - q_new).max() <= 1


def test_statistics() -> None:
    v = np.array([1.0, 2.0, 3.0, 4.0, 100.0])
    assert layer_statistic(v, "mean") == 22.0
    assert layer_statistic(v, "median") == 3.0
    # median 3, |v-3| = 2,1,0,1,97 -> MAD 1; inliers |dev| <= 3 -> mean(1,2,3,4)
    assert layer_statistic(v, "mad") == 2.5
    assert layer_statistic(np.array([1.0, 2.0, 3.0, 4.0]), "median") == 2.5
    with pytest.raises(SpecError):
        layer_statistic(v, "mode")


def test_repq_formula_unrounded() -> None:
    rng = np.random.default_rng(0)
    c, o = 6, 5
    p = {"n.weight": rng.standard_normal(c), "n.bias": rng.standard_normal(c),
         "l.weight": rng.standard_normal((o, c)), "l.bias": rng.standard_normal(o)}
    s = rng.uniform(0.1, 2.0, c)
    z = rng.integers(0, 16, c).astype(float)
    new, rec = reparameterize(p, "n", "l", s, z)
    st, zt = s.mean(), z.mean()
    r = s / st
    b = -z * s / r + zt * st
    np.testing.assert_allclose(new["n.weight"], p["n.weight"] / r, rtol=1e-14)
    np.testing.assert_allclose(new["n.bias"], p["n.bias"] / r - b, rtol=1e-13, atol=1e-13)
    np.testing.assert_allclose(new["l.weight"], p["l.weight"] * r, rtol=1e-14)
    np.testing.assert_allclose(new["l.bias"], p["l.bias"] + (p["l.weight"] * r) @ b,
                               rtol=1e-13)
    assert rec["zero_point"] == pytest.approx(zt) and rec["zero_point_rounding"] == "none"
    with pytest.raises(SpecError, match="missing"):
        reparameterize({k: v for k, v in p.items() if k != "l.bias"}, "n", "l", s, z)
    with pytest.raises(SpecError):
        reparameterize(p, "n", "l", -s, z)


def test_reparameterize_quantizer() -> None:
    from refq.calib import reparameterize_quantizer
    from refq.quant import UniformQuantizer

    rng = np.random.default_rng(1)
    c, o = 8, 3
    p = {"n.weight": rng.standard_normal(c), "n.bias": rng.standard_normal(c),
         "l.weight": rng.standard_normal((o, c)), "l.bias": rng.standard_normal(o)}
    x = rng.standard_normal((50, c)) * rng.uniform(0.2, 5.0, c)
    qc = UniformQuantizer.from_minmax(x.min(0), x.max(0), 4, axis=1)
    _, qt, rec = reparameterize_quantizer(p, "n", "l", qc, choice="median",
                                          zero_point_rounding="half_even")
    assert qt.axis is None and qt.integer_exact
    assert float(qt.scale) == pytest.approx(float(np.median(qc.scale)))
    # x' = x / r - b: the per-tensor codes of x' equal the per-channel codes of x
    r = qc.scale / rec["scale"]
    b = rec["scale"] * (rec["zero_point"] - qc.zero_point)
    xp = x / r - b
    assert np.mean(qt.quantize(xp) == qc.quantize(x)) > 0.999
    _, qf, _ = reparameterize_quantizer(p, "n", "l", qc)
    assert not qf.integer_exact
    assert float(qf.zero_point) == pytest.approx(float(np.mean(qc.zero_point)))


@pytest.mark.parametrize("signed", [False, True])
def test_reparameterize_quantizer_keeps_code_range_and_is_lossless(signed: bool) -> None:
    """The per-tensor quantizer keeps the sign / clamp range of the per-channel one, and the
    next linear's output after quantization is unchanged (integer mean zero point). Oracle:
    the unfolded per-channel fake-quant followed by the original linear."""
    from refq.calib import reparameterize_quantizer
    from refq.quant import UniformQuantizer

    rng = np.random.default_rng(7)
    c, o = 6, 5
    p = {"n.weight": rng.standard_normal(c), "n.bias": rng.standard_normal(c),
         "l.weight": rng.standard_normal((o, c)), "l.bias": rng.standard_normal(o)}
    scale = rng.uniform(0.05, 0.5, c)
    # zero points within the code range; values exercise both clamps (|x| up to 3 ranges)
    zp = (np.array([1, -2, 0, 1, 3, -3]) if signed else np.array([9, 6, 8, 9, 7, 9]))
    qc = UniformQuantizer(scale, 4, zp, signed=signed, axis=-1)
    y = rng.standard_normal((40, c)) * 2.0  # the LayerNorm's normalised input, kept fixed
    x = y * p["n.weight"] + p["n.bias"]
    newp, qt, _ = reparameterize_quantizer(p, "n", "l", qc, zero_point_rounding="half_even")
    assert qt.signed == signed and qt.code_range() == qc.code_range()
    assert qt.axis is None
    xp = y * newp["n.weight"] + newp["n.bias"]
    codes = qc.quantize(x)
    assert np.any(codes == qc.code_range()[0]) and np.any(codes == qc.code_range()[1])
    np.testing.assert_array_equal(qt.quantize(xp), codes, strict=True)
    ref = qc.fake_quant(x) @ p["l.weight"].T + p["l.bias"]
    got = qt.fake_quant(xp) @ newp["l.weight"].T + newp["l.bias"]
    np.testing.assert_allclose(got, ref, rtol=1e-12, atol=1e-12)
