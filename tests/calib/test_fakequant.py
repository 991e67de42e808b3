"""refq.calib.fakequant.fake_quantized_model: the one fake-quant construction behind
refq.methods.fake_quant and the sequential PTQ4ViT calibration."""

from __future__ import annotations

import numpy as np
import pytest

from refq.calib.fakequant import fake_quantized_model
from refq.errors import SpecError
from refq.nn.base import Model
from refq.nn.configs import ViTConfig
from refq.nn.factory import create_model
from refq.quant import UniformQuantizer


def _model() -> Model:
    cfg = ViTConfig(name="t", img_size=8, patch_size=4, in_chans=1, num_classes=3,
                    embed_dim=8, depth=1, num_heads=2, mlp_ratio=2.0)
    return create_model(cfg, seed=0)


def test_weights_params_and_taps() -> None:
    model = _model()
    w = "blocks.0.mlp.fc1.weight"
    q = UniformQuantizer(np.float64(0.05), 4, 0, signed=True)
    shifted = np.asarray(model.params[w]) + 0.5
    tq = UniformQuantizer(np.float64(0.25), 4, 0, signed=True)
    mq, tap = fake_quantized_model(model, {w: q}, {"blocks.0.norm2": tq}, params={w: shifted})
    # the params override comes first, then the weight is fake-quantized
    np.testing.assert_array_equal(mq.params[w], q.fake_quant(shifted), strict=True)
    other = "blocks.0.mlp.fc2.weight"
    np.testing.assert_array_equal(mq.params[other], model.params[other], strict=True)
    x = np.linspace(-1.0, 1.0, 12).reshape(3, 4)
    got = tap("blocks.0.norm2", x)
    assert got is not None
    np.testing.assert_array_equal(got, tq.fake_quant(x), strict=True)
    assert tap("blocks.0.norm1", x) is None


def test_unknown_weight_is_a_spec_error() -> None:
    q = UniformQuantizer(np.float64(0.05), 4, 0, signed=True)
    with pytest.raises(SpecError, match=r"no parameter 'nope\.weight'"):
        fake_quantized_model(_model(), {"nope.weight": q}, {})
