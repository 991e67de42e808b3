"""The ias recipe with SOS (refq.methods ``sos=True``) on the bundled model, tiny budgets:
determinism (same seed -> same spec bytes), per-block loss decrease, lossless stage 2,
option validation."""

from __future__ import annotations

import json
from typing import Any

import numpy as np
import pytest

from refq.errors import SpecError


@pytest.fixture(scope="module")
def calib() -> tuple[Any, np.ndarray]:
    from refq.nn import load_bundled

    m, d = load_bundled()
    ci, _ = d.split("calib")
    return m, d.normalize(ci[:4])


def _spec_bytes(spec: Any) -> bytes:
    return json.dumps(spec.to_dict(), sort_keys=True).encode()


def test_ias_sos_deterministic_and_reconstructs(calib: tuple[Any, np.ndarray]) -> None:
    from refq.methods import quantize_model

    m, x = calib
    opts = {"sos": True, "sos_iters": 2, "sos_lr": 1e-4, "sos_batch": 4,
            "sos_zero_point": "half_even"}
    s1 = quantize_model(m, "ias", 4, 4, x, seed=3, calib_sub=2, **opts)
    s2 = quantize_model(m, "ias", 4, 4, x, seed=3, calib_sub=2, **opts)
    assert _spec_bytes(s1) == _spec_bytes(s2)
    sos = s1.notes["sos"]
    assert sos["calib_images"] == 4 and sos["iters"] == 2
    # stage 2 is lossless on the block outputs (every linear input is re-quantized)
    assert sos["stage2_max_abs_diff"] is not None and sos["stage2_max_abs_diff"] <= 1e-9
    # full-batch Adam steps: every block's reconstruction loss goes down in both stages
    for stage in ("stage1", "stage3"):
        assert len(sos["losses"][stage]) == m.config.depth
        for before, after in sos["losses"][stage]:
            assert after < before, (stage, before, after)
    # post-LN taps folded to per-tensor quantizers with an integer zero point (lowerable)
    q = s1.activations["blocks.0.norm1"]
    assert q.to_dict()["axis"] is None and q.integer_exact
    # the learned block weights differ from the model's and from the no-SOS recipe's
    s0 = quantize_model(m, "ias", 4, 4, x, seed=3, calib_sub=2)
    w = "blocks.1.mlp.fc2.weight"
    assert not np.array_equal(s1.params[w], np.asarray(m.params[w], dtype=np.float64))
    assert s0.notes["sos"] is False and w not in s0.params
    # the official stage 2 keeps the mean zero point unrounded (not lossless, not lowerable
    # without rounding it): the default
    s3 = quantize_model(m, "ias", 4, 4, x, seed=3, calib_sub=2,
                        **{**opts, "sos_zero_point": "none"})
    assert not s3.activations["blocks.0.norm1"].integer_exact
    assert s3.notes["sos"]["stage2_max_abs_diff"] > 1e-9


def test_ias_sos_bad_options(calib: tuple[Any, np.ndarray]) -> None:
    from refq.methods import quantize_model

    m, x = calib
    for bad in ({"sos": True, "sos_iters": -1}, {"sos": True, "sos_lr": 0.0},
                {"sos": True, "sos_batch": 0}, {"sos": 1}, {"iters": 5}):
        with pytest.raises(SpecError):
            quantize_model(m, "ias", 4, 4, x[:2], calib_sub=2, **bad)
