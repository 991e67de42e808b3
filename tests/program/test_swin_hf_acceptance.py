"""Swin end to end from Hugging Face transformers: a random-weight SwinForImageClassification
(image 64, patch 2, embed 16, depths (2, 2), heads (2, 4), window 4 — a config no other
test uses) saved with ``save_pretrained`` (safetensors) → refq's float model (<= 1e-6
relative to transformers in float64) → every method at W8A8 → lowered program → integer
run: integer top-1 within 1 image in 50 of the fake-quant model.

minmax runs in the default suite; the other methods (about 3 minutes together on 2 cores)
are marked slow."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refq.methods import METHODS, fake_quant, quantize_model

try:
    import torch
    import transformers

    HAVE = True
except ImportError:  # pragma: no cover
    HAVE = False

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(not HAVE and os.environ.get("CI") != "true",
                       reason="torch/transformers not installed (CI installs them)"),
]

N_CAL, N_TEST = 16, 50


@pytest.fixture(scope="module")
def hf_swin(tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    """(folded refq model, calibration pixels, test pixels); checks the float agreement."""
    from refq.nn.sources import parse_model
    from tests.nn.hf_util import perturb

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        cfg = transformers.SwinConfig(image_size=64, patch_size=2, embed_dim=16, depths=[2, 2],
                                      num_heads=[2, 4], window_size=4, num_labels=10)
        # transformers initialises from torch's global generator: seeded here (and the
        # global state restored), so the model does not depend on which tests ran before
        with torch.random.fork_rng():
            torch.manual_seed(11)
            model = perturb(transformers.SwinForImageClassification(cfg), seed=11, std=0.1)
        folder: Path = tmp_path_factory.mktemp("hf_swin")
        model.float().save_pretrained(folder)
        assert (folder / "model.safetensors").is_file()
        m = parse_model(str(folder)).load()
        rng = np.random.default_rng(0)
        base = rng.integers(0, 256, (N_CAL + N_TEST, 3, 1, 1))
        noise = rng.integers(-60, 61, (N_CAL + N_TEST, 3, 64, 64))
        pix = np.clip(base + noise, 0, 255).astype(np.uint8)
        mean = np.asarray(m.config.mean)[:, None, None]
        std = np.asarray(m.config.std)[:, None, None]
        xf = (pix[:8].astype(np.float64) / 255 - mean) / std
        with torch.no_grad():
            want = model.double()(torch.from_numpy(xf)).logits.numpy()
    finally:
        torch.set_num_threads(n)
    got = m.forward(xf)
    assert float(np.abs(got - want).max()) <= 1e-6 * float(np.abs(want).max())
    return m.fold_normalization(), pix[:N_CAL], pix[N_CAL:]


@pytest.mark.parametrize("method", [
    m if m == "minmax" else pytest.param(m, marks=pytest.mark.slow) for m in METHODS])
def test_hf_swin_every_method_integer_top1(hf_swin: tuple[Any, Any, Any], method: str) -> None:
    from refq.program import lower, run

    fm, cal, test = hf_swin
    spec = quantize_model(fm, method, 8, 8, cal)
    mq, tap = fake_quant(fm, spec)
    yq = mq.forward(test, tap=tap)
    prog = lower(fm, spec, cal)
    out = run(prog, {"input": test}, keep="outputs")
    d = prog.tensors["head"]
    assert d.scale is not None
    yi = (out["head"] - d.zero_point) * d.scale
    differ = int((yi.argmax(1) != yq.argmax(1)).sum())
    print(f"\n{method} W8A8: integer top-1 differs from fake-quant on {differ} of {N_TEST}")
    assert differ <= 1  # within 1 image in 50
    assert len(np.unique(yq.argmax(1))) >= 2  # the comparison has classes to confuse
