"""refq's forward against Hugging Face transformers (random weights, float64).

ViT and DeiT (with teacher: two heads averaged) and Swin (shifted windows, relative position
bias, patch merging, a stage whose window is clamped to its resolution) must agree to
1e-5 relative error in float64; in practice they agree to about 1e-15.
"""

from __future__ import annotations

import numpy as np
import pytest

from refq.nn import create_model
from tests.nn.hf_util import perturb, state_dict_np, swin_config_from_hf, vit_config_from_hf

pytestmark = pytest.mark.torch
torch = pytest.importorskip("torch")
transformers = pytest.importorskip("transformers")

X = np.random.default_rng(1).standard_normal((2, 3, 32, 32))
SMALL = dict(image_size=32, patch_size=4, hidden_size=32, num_hidden_layers=2,
             num_attention_heads=4, intermediate_size=64, num_labels=10)


def rel_err(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(a - b).max() / np.abs(b).max())


def hf_logits(model: object) -> np.ndarray:
    with torch.no_grad():
        out = model(torch.from_numpy(X))  # type: ignore[operator]
    return out.logits.numpy()


def test_deit_with_teacher_matches_hf() -> None:
    c = transformers.DeiTConfig(**SMALL)
    assert c.layer_norm_eps == 1e-12
    m = perturb(transformers.DeiTForImageClassificationWithTeacher(c), seed=0)
    ours = create_model(vit_config_from_hf(c, True, "deit"), state_dict_np(m))
    assert rel_err(ours.forward(X), hf_logits(m)) <= 1e-5


def test_vit_matches_hf() -> None:
    c = transformers.ViTConfig(**SMALL)
    m = perturb(transformers.ViTForImageClassification(c), seed=1)
    ours = create_model(vit_config_from_hf(c, False, "vit"), state_dict_np(m))
    assert rel_err(ours.forward(X), hf_logits(m)) <= 1e-5


def test_swin_matches_hf() -> None:
    c = transformers.SwinConfig(image_size=32, patch_size=2, embed_dim=16, depths=[2, 2, 2],
                                num_heads=[2, 4, 8], window_size=4, num_labels=10)
    m = perturb(transformers.SwinForImageClassification(c), seed=2)
    ours = create_model(swin_config_from_hf(c), state_dict_np(m))
    assert rel_err(ours.forward(X), hf_logits(m)) <= 1e-5
