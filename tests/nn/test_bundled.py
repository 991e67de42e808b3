"""The bundled digits DeiT and Swin: files, data derivation, and the recorded FP accuracy."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.errors import SpecError
from refq.nn import SwinConfig, ViTConfig, load_bundled
from refq.nn.bundled import (
    BUNDLED_MODELS,
    DIGITS_FILE,
    INFO_FILE,
    SWIN_INFO_FILE,
    SWIN_WEIGHTS_FILE,
    WEIGHTS_FILE,
    _upscale_matrix,
    bundled_config,
    bundled_info,
    upscale4,
)
from refq.nn.configs import get_config


def test_files_are_small() -> None:
    assert DIGITS_FILE.stat().st_size < 300_000
    assert WEIGHTS_FILE.stat().st_size <= 2_000_000
    assert INFO_FILE.stat().st_size < 10_000
    assert SWIN_WEIGHTS_FILE.stat().st_size <= 1_000_000
    assert SWIN_INFO_FILE.stat().st_size < 10_000


def test_upscale_is_exact_bilinear() -> None:
    a = _upscale_matrix(8, 4)
    assert np.all(a.sum(axis=1) == 8)
    const = np.full((8, 8), 200, np.uint8)
    np.testing.assert_array_equal(upscale4(const), np.full((32, 32), 200, np.uint8))
    ramp = np.tile(np.arange(8, dtype=np.uint8) * 32, (8, 1))
    up = upscale4(ramp).astype(int)
    assert np.all(np.diff(up[0]) >= 0) and up[0, 0] == 0 and up[0, -1] == 224


def test_splits_are_disjoint_and_cover() -> None:
    _, data = load_bundled()
    idx = np.concatenate([data.train_idx, data.calib_idx, data.test_idx])
    assert sorted(idx.tolist()) == list(range(1797))
    assert data.images.shape == (1797, 1, 32, 32) and data.images.dtype == np.uint8
    assert set(data.labels.tolist()) == set(range(10))


@pytest.mark.parametrize("name", ["deit_digits", "swin_digits"])
def test_recorded_accuracy_is_reproduced(name: str) -> None:
    model, data = load_bundled(model=name)
    info = bundled_info(model=name)
    assert model.config.name == name and info["config"]["name"] == name
    x, y = data.split("test")
    correct = int((model.predict(data.normalize(x)) == y).sum())
    assert correct == info["fp_test_correct"]
    assert info["fp_test_accuracy"] == correct / 400
    assert info["fp_test_accuracy"] >= 0.95
    # the integer-pixel path (normalisation folded) gives the same predictions
    folded = model.fold_normalization()
    assert int((folded.predict(x) == y).sum()) == correct


def test_bundled_swin_is_a_swin_with_what_makes_it_one() -> None:
    """Two stages; stage 0 has several windows and its odd block shifts them; a patch
    merging; the last stage's window is its whole resolution (no shift)."""
    cfg = bundled_config("swin_digits")
    assert isinstance(cfg, SwinConfig) and cfg == get_config("swin_digits")
    assert isinstance(bundled_config("deit_digits"), ViTConfig)
    assert len(cfg.depths) == 2 and cfg.in_chans == 1 and cfg.num_classes == 10
    assert cfg.stage_resolution(0) > cfg.stage_window(0)
    assert [cfg.block_shift(0, j) for j in range(cfg.depths[0])] == [0, 2]
    assert cfg.stage_resolution(1) == cfg.stage_window(1) == cfg.window_size
    assert all(cfg.block_shift(1, j) == 0 for j in range(cfg.depths[1]))
    model, _ = load_bundled(model="swin_digits")
    taps = model.tap_names()
    assert "layers.0.blocks.1.attn.masked" in taps and "layers.1.downsample.reduction" in taps
    assert "layers.1.blocks.1.attn.masked" not in taps


def test_unknown_bundled_model_is_refused() -> None:
    assert set(BUNDLED_MODELS) == {"deit_digits", "swin_digits"}
    with pytest.raises(SpecError, match="unknown bundled model 'vit_digits'"):
        load_bundled(model="vit_digits")


def test_a_bundled_json_naming_another_model_is_refused(tmp_path: Path,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    """swin_digits's json holding the DeiT's config (or a renamed Swin) is refused by name."""
    import json

    import refq.nn.bundled as b

    for cfg, what in ((bundled_info()["config"], "a ViTConfig named 'deit_digits'"),
                      (dict(bundled_info(model="swin_digits")["config"], name="swin_x"),
                       "a SwinConfig named 'swin_x'")):
        info = tmp_path / f"{cfg['name']}.json"
        info.write_text(json.dumps({"config": cfg}))
        monkeypatch.setitem(b.BUNDLED_MODELS, "swin_digits",
                            (SWIN_WEIGHTS_FILE, info, SwinConfig))
        expect = f"must be a SwinConfig named 'swin_digits', got {what}"
        with pytest.raises(SpecError, match=expect):
            bundled_config("swin_digits")
