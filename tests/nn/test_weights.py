"""Weight files: round trips, timm / HF key mapping, and clear errors."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.errors import SpecError
from refq.nn import create_model, load_state_dict, random_params, save_weights
from refq.nn.configs import get_config

CFG = get_config("deit_tiny_patch16_224", img_size=32, patch_size=8, embed_dim=16, depth=2,
                 num_heads=2, num_classes=5, distilled=True)
SWIN = get_config("swin_tiny_patch4_window7_224", img_size=32, patch_size=2, embed_dim=8,
                  depths=(2, 2), num_heads=(2, 2), window_size=4, num_classes=5)
X = np.random.default_rng(3).standard_normal((1, 3, 32, 32))


def hf_hub_keys(params: dict[str, np.ndarray], prefix: str = "deit") -> dict[str, np.ndarray]:
    """refq (timm) names -> the Hugging Face hub naming of DeiTForImageClassificationWithTeacher."""
    out: dict[str, np.ndarray] = {}
    top = {"cls_token": "embeddings.cls_token", "dist_token": "embeddings.distillation_token",
           "pos_embed": "embeddings.position_embeddings", "norm.weight": "layernorm.weight",
           "norm.bias": "layernorm.bias",
           "patch_embed.proj.weight": "embeddings.patch_embeddings.projection.weight",
           "patch_embed.proj.bias": "embeddings.patch_embeddings.projection.bias"}
    sub = {"norm1": "layernorm_before", "norm2": "layernorm_after",
           "attn.proj": "attention.output.dense", "mlp.fc1": "intermediate.dense",
           "mlp.fc2": "output.dense"}
    for k, v in params.items():
        if k in top:
            out[f"{prefix}.{top[k]}"] = v
        elif k.startswith("head_dist."):
            out["distillation_classifier." + k.split(".")[-1]] = v
        elif k.startswith("head."):
            out["cls_classifier." + k.split(".")[-1]] = v
        else:
            _, i, rest = k.split(".", 2)
            mod, kind = rest.rsplit(".", 1)
            base = f"{prefix}.encoder.layer.{i}."
            if mod == "attn.qkv":
                for name, part in zip(("query", "key", "value"), np.split(v, 3), strict=True):
                    out[f"{base}attention.attention.{name}.{kind}"] = part
            else:
                out[f"{base}{sub[mod]}.{kind}"] = v
    return out


@pytest.mark.parametrize("suffix", [".safetensors", ".npz"])
def test_roundtrip(tmp_path: Path, suffix: str) -> None:
    params = random_params(CFG, seed=1)
    f = tmp_path / ("w" + suffix)
    save_weights(f, params)
    assert set(load_state_dict(f)) == set(params)
    a = create_model(CFG, params)
    b = create_model(CFG, f)
    np.testing.assert_array_equal(a.forward(X), b.forward(X))


def test_hf_hub_naming_maps_to_timm(tmp_path: Path) -> None:
    params = random_params(CFG, seed=2)
    f = tmp_path / "hf.safetensors"
    save_weights(f, hf_hub_keys(params))
    np.testing.assert_array_equal(create_model(CFG, f).forward(X),
                                  create_model(CFG, params).forward(X))


def test_old_timm_swin_layout() -> None:
    params = random_params(SWIN, seed=4)
    old = {}
    for k, v in params.items():
        if k.startswith("layers.1.downsample."):
            k = k.replace("layers.1.", "layers.0.")
        old[k.replace("head.fc.", "head.")] = v
    old["layers.0.blocks.0.attn.relative_position_index"] = np.zeros((16, 16), np.int64)
    x = X
    np.testing.assert_array_equal(create_model(SWIN, old).forward(x),
                                  create_model(SWIN, params).forward(x))


def test_errors_name_file_and_key(tmp_path: Path) -> None:
    params = random_params(CFG, seed=1)
    f = tmp_path / "w.safetensors"

    missing = dict(params)
    del missing["blocks.1.mlp.fc2.bias"]
    save_weights(f, missing)
    with pytest.raises(SpecError, match=r"w\.safetensors.*missing keys.*blocks\.1\.mlp\.fc2\.bias"):
        create_model(CFG, f)

    save_weights(f, {**params, "blocks.0.extra": np.zeros(3)})
    with pytest.raises(SpecError, match=r"w\.safetensors.*unexpected keys.*blocks\.0\.extra"):
        create_model(CFG, f)

    save_weights(f, {**params, "head.weight": np.zeros((6, 16))})
    with pytest.raises(SpecError, match=r"w\.safetensors.*'head\.weight' has shape \(6, 16\)"):
        create_model(CFG, f)

    save_weights(f, {**params, "head.bias": np.full(5, np.nan)})
    with pytest.raises(SpecError, match="non-finite"):
        create_model(CFG, f)

    hf = hf_hub_keys(params)
    del hf["deit.encoder.layer.0.attention.attention.key.weight"]
    with pytest.raises(SpecError, match="query, key and value"):
        create_model(CFG, hf)

    bad = tmp_path / "corrupt.safetensors"
    bad.write_bytes(b"not a safetensors file")
    with pytest.raises(SpecError, match=r"corrupt\.safetensors.*cannot read"):
        create_model(CFG, bad)
    f.with_suffix(".pth").write_bytes(b"")
    with pytest.raises(SpecError, match="does not exist"):
        create_model(CFG, tmp_path / "none.npz")
    with pytest.raises(SpecError, match="unsupported suffix"):
        create_model(CFG, f.with_suffix(".pth"))
    with pytest.raises(SpecError, match="weights must be"):
        create_model(CFG, 3)  # type: ignore[arg-type]
    pickled = tmp_path / "obj.npz"
    np.savez(pickled, a=np.array([{"x": 1}], dtype=object))
    with pytest.raises(SpecError, match=r"obj\.npz.*cannot read"):
        load_state_dict(pickled)
