"""Tiny checks of refq.methods: bad input and the fake-quant tap really quantizes."""
import numpy as np
import pytest

from refq.errors import SpecError
from refq.methods import fake_quant, quantize_model
from refq.nn import load_bundled


def test_bad_input_and_fake_quant_levels() -> None:
    m, d = load_bundled()
    ci, _ = d.split("calib")
    x = d.normalize(ci[:4])
    with pytest.raises(SpecError):
        quantize_model(m, "nope", 8, 8, x)
    with pytest.raises(SpecError):
        quantize_model(m, "minmax", 1, 8, x)
    spec = quantize_model(m, "minmax", 4, 4, x)
    mq, tap = fake_quant(m, spec)
    w = mq.params["blocks.0.attn.qkv.weight"]
    assert all(len(np.unique(row)) <= 16 for row in w)  # 4-bit: at most 16 levels per row
    _, taps = mq.forward_with_taps(x, tap=tap, names=["blocks.0.norm2"])
    assert len(np.unique(taps["blocks.0.norm2"])) <= 16
