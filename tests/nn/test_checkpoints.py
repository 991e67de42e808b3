"""Checkpoint folders and ``--model`` spellings (refq.nn.checkpoints, refq.nn.sources).

The transformers-built folder (non-default config: 64×64, patch 8, 10 named labels, its own
ViTImageProcessor mean/std) must give transformers' logits; malformed or unsupported
folders must be refused naming what is missing. The error cases need no torch: their
config.json files are written by hand.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from refq.errors import SpecError
from refq.nn import save_weights
from refq.nn.checkpoints import read_checkpoint
from refq.nn.configs import ViTConfig, get_config
from refq.nn.factory import random_params
from refq.nn.sources import parse_model

_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

VIT_JSON = {
    "architectures": ["ViTForImageClassification"], "model_type": "vit",
    "hidden_size": 16, "num_hidden_layers": 1, "num_attention_heads": 2,
    "intermediate_size": 32, "image_size": 16, "patch_size": 8, "num_channels": 3,
    "layer_norm_eps": 1e-12, "qkv_bias": True, "hidden_act": "gelu",
    "id2label": {"0": "LABEL_0", "1": "LABEL_1", "2": "LABEL_2"},
}


def write_folder(root: Path, config: dict[str, object]) -> Path:
    root.mkdir(parents=True, exist_ok=True)
    (root / "config.json").write_text(json.dumps(config))
    return root


def test_hand_written_hf_folder_reads_every_field(tmp_path: Path) -> None:
    root = write_folder(tmp_path / "m", VIT_JSON)
    (root / "model.safetensors").write_bytes(b"")
    ck = read_checkpoint(root)
    c = ck.config
    assert isinstance(c, ViTConfig)
    assert (c.img_size, c.patch_size, c.embed_dim, c.depth, c.num_heads, c.mlp_hidden,
            c.num_classes, c.ln_eps, c.distilled, c.family) == (
        16, 8, 16, 1, 2, 32, 3, 1e-12, False, "vit")
    assert (c.mean, c.std, c.crop_pct) == ((0.5,) * 3, (0.5,) * 3, 0.9)  # ViT defaults
    assert ck.class_names is None  # LABEL_k placeholders name nothing
    assert "no preprocessor_config.json" in ck.preprocessing


@pytest.mark.parametrize(
    ("change", "needle"),
    [
        ({"model_type": None, "architecture": None}, "neither 'model_type'"),
        ({"architectures": ["ViTModel"]}, "'ViTModel' is not supported"),
        ({"architectures": ["DeiTForImageClassification"], "model_type": "deit"},
         "DeiTForImageClassification"),
        ({"architectures": None}, "missing key 'architectures'"),
        ({"model_type": "beit"}, "unknown model_type 'beit'"),
        ({"patch_size": None}, "missing key 'patch_size'"),
        ({"hidden_act": "gelu_new"}, "hidden_act 'gelu_new' is not supported"),
        ({"hidden_size": 11, "intermediate_size": 15}, "intermediate_size 15 is not "),
        ({"image_size": [16, 24]}, "'image_size' must be a positive integer (square)"),
        ({"id2label": {"0": "a", "2": "b"}}, "'id2label' keys must be 0..1"),
    ],
)
def test_bad_hf_folder_is_refused(tmp_path: Path, change: dict[str, object],
                                  needle: str) -> None:
    cfg = {k: v for k, v in {**VIT_JSON, **change}.items() if v is not None}
    root = write_folder(tmp_path / "m", cfg)
    (root / "model.safetensors").write_bytes(b"")
    with pytest.raises(SpecError, match=r"config\.json") as err:
        read_checkpoint(root)
    assert needle in str(err.value)


def test_missing_files_are_named(tmp_path: Path) -> None:
    (tmp_path / "empty").mkdir()
    with pytest.raises(SpecError, match=r"no config\.json"):
        parse_model(str(tmp_path / "empty"))
    root = write_folder(tmp_path / "noweights", VIT_JSON)
    with pytest.raises(SpecError, match=r"no model\.safetensors$"):
        parse_model(str(root))
    (root / "pytorch_model.bin").write_bytes(b"x")
    with pytest.raises(SpecError, match=r"found pytorch_model\.bin: convert it"):
        parse_model(str(root))
    with pytest.raises(SpecError, match="no such checkpoint folder"):
        parse_model(str(tmp_path / "nosuch"))


def test_model_spellings(tmp_path: Path) -> None:
    cfg = get_config("deit_tiny_patch16_224", depth=1)
    w = tmp_path / "w.npz"
    save_weights(w, random_params(cfg))
    assert parse_model("bundled").kind == "bundled"
    src = parse_model(f"deit_tiny_patch16_224.fb_in1k={w}")  # a timm tag is ignored
    assert (src.kind, src.name, src.weights) == ("named", "deit_tiny_patch16_224", w.resolve())
    assert parse_model("deit_tiny_patch16_224", w) == src
    assert src.class_names() is None
    with pytest.raises(SpecError, match="weights given twice"):
        parse_model(f"deit_tiny_patch16_224={w}", w)
    with pytest.raises(SpecError, match="--weights FILE"):
        parse_model("deit_tiny_patch16_224")
    with pytest.raises(SpecError, match="unknown model 'resnet50'"):
        parse_model("resnet50", w)
    with pytest.raises(SpecError, match="cannot be used with --model bundled"):
        parse_model("bundled", w)
    assert parse_model("bundled").class_names() == tuple("0123456789")
    # fingerprints follow content, not the path
    w2 = tmp_path / "copy.npz"
    w2.write_bytes(w.read_bytes())
    assert parse_model("deit_tiny_patch16_224", w2).fingerprint() == src.fingerprint()
    assert parse_model("bundled").fingerprint() != src.fingerprint()


def test_timm_folder(tmp_path: Path) -> None:
    base = get_config("deit_tiny_patch16_224")
    names = [f"c{i}" for i in range(5)]
    cfg = {"architecture": "deit_tiny_patch16_224", "num_classes": 5,
           "label_names": names,
           "pretrained_cfg": {"input_size": [3, 32, 32], "mean": [0.1, 0.2, 0.3],
                              "std": [0.4, 0.5, 0.6], "crop_pct": 0.95}}
    root = tmp_path / "timm"
    root.mkdir()
    (root / "config.json").write_text(json.dumps(cfg))
    small = get_config("deit_tiny_patch16_224", num_classes=5, img_size=32, depth=12)
    save_weights(root / "model.safetensors", random_params(small))
    src = parse_model(str(root))
    c = src.config()
    assert (c.img_size, c.num_classes, c.mean, c.std, c.crop_pct, c.embed_dim) == (
        32, 5, (0.1, 0.2, 0.3), (0.4, 0.5, 0.6), 0.95, base.embed_dim)
    assert src.class_names() == tuple(names)
    assert src.load().forward(np.zeros((1, 3, 32, 32))).shape == (1, 5)
    cfg["architecture"] = "convnext_tiny"
    (root / "config.json").write_text(json.dumps(cfg))
    with pytest.raises(SpecError, match="'convnext_tiny' is not one of refq's configs"):
        parse_model(str(root))


@pytest.fixture(scope="module")
def torch_extra() -> None:
    try:
        import torch  # noqa: F401
        import transformers  # noqa: F401
    except ImportError:
        if _CI:
            raise
        pytest.skip("torch/transformers not installed (CI installs them)")


@pytest.fixture(scope="module")
def hf_case(tmp_path_factory: pytest.TempPathFactory, torch_extra: None) -> tuple[Path, Path]:
    from tests.nn.hf_util import make_hf_case

    return make_hf_case(tmp_path_factory.mktemp("hf"))  # type: ignore[no-any-return]


@pytest.mark.torch
def test_transformers_folder_matches_transformers(hf_case: tuple[Path, Path]) -> None:
    """Non-default config, preprocessing and label names all read from the folder: refq's
    folded float64 forward on the images' pixels gives transformers' float64 logits."""
    import transformers
    from PIL import Image

    from tests.nn.hf_util import HF_NAMES, hf_predict

    model_dir, data_dir = hf_case
    src = parse_model(str(model_dir))
    c = src.config()
    assert (c.img_size, c.patch_size, c.num_classes, c.embed_dim, c.depth) == (64, 8, 10, 32, 2)
    assert (c.mean, c.std, c.crop_pct) == ((0.4, 0.5, 0.6), (0.2, 0.25, 0.3), 1.0)
    assert src.class_names() == tuple(HF_NAMES)
    files = sorted(data_dir.rglob("*.png"))
    pixels = np.stack([np.asarray(Image.open(f)).transpose(2, 0, 1) for f in files])
    ref = transformers.ViTForImageClassification.from_pretrained(model_dir).double().eval()
    want = hf_predict(ref, pixels)
    got = src.load().fold_normalization().forward(pixels)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
    # every image sits in the folder of transformers' prediction
    assert [HF_NAMES[int(p)] for p in want.argmax(-1)] == [f.parent.name for f in files]


@pytest.mark.torch
@pytest.mark.parametrize("family", ["deit", "swin"])
def test_other_transformers_folders(tmp_path: Path, torch_extra: None, family: str) -> None:
    """DeiT with teacher (distilled: both heads) and Swin, saved by transformers with
    non-default configs, load to transformers' logits (no preprocessor file: family
    defaults)."""
    import torch
    import transformers

    from tests.nn.hf_util import perturb

    if family == "deit":
        cfg = transformers.DeiTConfig(image_size=32, patch_size=8, hidden_size=24,
                                      num_hidden_layers=2, num_attention_heads=3,
                                      intermediate_size=48, num_labels=5)
        model = perturb(transformers.DeiTForImageClassificationWithTeacher(cfg), seed=3)
    else:
        cfg = transformers.SwinConfig(image_size=32, patch_size=2, embed_dim=8,
                                      depths=[2, 2], num_heads=[2, 4], window_size=4,
                                      num_labels=5)
        model = perturb(transformers.SwinForImageClassification(cfg), seed=4)
    model.float().save_pretrained(tmp_path)
    src = parse_model(str(tmp_path))
    c = src.config()
    assert c.num_classes == 5 and c.img_size == 32 and c.family == family
    assert getattr(c, "distilled", family == "deit") is (family == "deit")
    x = np.random.default_rng(5).standard_normal((2, 3, 32, 32))
    with torch.no_grad():
        want = model.double()(torch.from_numpy(x)).logits.numpy()
    got = src.load().forward(x)
    np.testing.assert_allclose(got, want, rtol=0, atol=1e-9 * np.abs(want).max())
