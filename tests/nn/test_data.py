"""ImageFolder loader, mode rule, eval transform, and the folded integer-pixel path."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refq.errors import RefqError, SpecError
from refq.nn import (
    EvalTransform,
    ImageDataError,
    ImageFolder,
    create_model,
    eval_transform,
    fold_normalization,
    get_config,
    load_image,
    normalize,
)


def write_png(path: Path, arr: np.ndarray, mode: str | None = None) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(arr, mode=mode).save(path) if mode else Image.fromarray(arr).save(path)
    return path


def make_tree(root: Path) -> None:
    rng = np.random.default_rng(0)
    for c, n in (("cat", 2), ("dog", 3)):
        for i in range(n):
            write_png(root / c / f"{i}.png", rng.integers(0, 256, (40, 50, 3), dtype=np.uint8))
    (root / "dog" / "notes.txt").write_text("not an image")


def test_image_folder(tmp_path: Path) -> None:
    make_tree(tmp_path)
    ds = ImageFolder(tmp_path, EvalTransform(16, 0.875, (0.5,) * 3, (0.5,) * 3))
    assert ds.classes == ["cat", "dog"] and len(ds) == 5
    x, y = ds.load()
    assert x.shape == (5, 3, 16, 16) and x.dtype == np.uint8
    assert y.tolist() == [0, 0, 1, 1, 1]


def test_corrupt_empty_missing(tmp_path: Path) -> None:
    make_tree(tmp_path)
    (tmp_path / "cat" / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\n garbage")
    ds = ImageFolder(tmp_path, eval_transform(get_config("deit_tiny_patch16_224")))
    i = [p.name for p, _ in ds.samples].index("broken.png")
    with pytest.raises(ImageDataError, match=r"broken\.png.*cannot decode"):
        ds[i]
    (tmp_path / "empty").mkdir()
    with pytest.raises(ImageDataError, match=r"empty.*holds no image"):
        ImageFolder(tmp_path, ds.transform)
    with pytest.raises(ImageDataError, match="does not exist"):
        ImageFolder(tmp_path / "nope", ds.transform)
    (tmp_path / "flat").mkdir()
    with pytest.raises(ImageDataError, match="no class subfolders"):
        ImageFolder(tmp_path / "flat", ds.transform)
    with pytest.raises(ImageDataError, match="no such image"):
        load_image(tmp_path / "missing.png")


def test_mode_rule(tmp_path: Path) -> None:
    gray = write_png(tmp_path / "g.png", np.full((4, 4), 77, np.uint8))
    assert np.asarray(load_image(gray)).shape == (4, 4, 3)
    assert np.all(np.asarray(load_image(gray)) == 77)
    rgba = np.zeros((4, 4, 4), np.uint8)
    rgba[..., 0], rgba[..., 3] = 200, 10
    im = np.asarray(load_image(write_png(tmp_path / "a.png", rgba)))
    assert im.shape == (4, 4, 3) and np.all(im[..., 0] == 200)  # alpha dropped
    assert np.asarray(load_image(gray, mode="L")).shape == (4, 4)
    deep = write_png(tmp_path / "d16.png", np.full((4, 4), 40000, np.uint16))
    with pytest.raises(ImageDataError, match=r"d16\.png.*not an 8-bit mode"):
        load_image(deep)
    with pytest.raises(SpecError, match="mode must be"):
        load_image(gray, mode="CMYK")
    assert issubclass(ImageDataError, RefqError)


def test_eval_transform_resize_and_center_crop() -> None:
    t = eval_transform(get_config("deit_small_patch16_224"))
    assert t.resize_size == 256 and t.mean == (0.485, 0.456, 0.406)
    assert eval_transform(get_config("vit_base_patch16_224")).resize_size == 248
    assert eval_transform(get_config("swin_tiny_patch4_window7_224")).resize_size == 248
    # a 256 x 512 (h x w) image is not resized; the crop starts at row 16, column 144
    arr = np.zeros((256, 512, 3), np.uint8)
    arr[16, 144] = 255
    arr[16 + 223, 144 + 223] = 128
    px = t.pixels(Image.fromarray(arr))
    assert px.shape == (3, 224, 224)
    assert px[0, 0, 0] == 255 and px[0, 223, 223] == 128 and px.sum() == 3 * (255 + 128)
    big = t(Image.fromarray(np.full((300, 400, 3), 255, np.uint8)))
    np.testing.assert_allclose(big[:, 0, 0], (1 - np.array(t.mean)) / np.array(t.std))
    with pytest.raises(SpecError, match="crop_pct"):
        EvalTransform(224, 1.5, (0.5,), (0.5,))


@pytest.mark.parametrize("name", ["deit_tiny_patch16_224", "swin_tiny_patch4_window7_224"])
def test_folded_normalization_equals_normalized_input(name: str) -> None:
    small = {"deit_tiny_patch16_224": dict(img_size=32, patch_size=8, embed_dim=16, depth=1,
                                           num_heads=2, num_classes=5),
             "swin_tiny_patch4_window7_224": dict(img_size=32, patch_size=4, embed_dim=8,
                                                  depths=(1, 1), num_heads=(2, 2),
                                                  window_size=4, num_classes=5)}[name]
    m = create_model(name, **small)
    cfg = m.config
    pix = np.random.default_rng(0).integers(0, 256, (2, 3, 32, 32), dtype=np.uint8)
    folded = m.fold_normalization()
    ref_logits, ref = m.forward_with_taps(normalize(pix, cfg.mean, cfg.std))
    logits, got = folded.forward_with_taps(pix)
    np.testing.assert_allclose(got["patch_embed"], ref["patch_embed"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(logits, ref_logits, rtol=1e-12, atol=1e-12)
    np.testing.assert_array_equal(folded.forward(pix.transpose(0, 2, 3, 1), layout="NHWC"),
                                  logits)
    with pytest.raises(SpecError, match="integer pixels"):
        folded.forward(pix.astype(np.float64))
    with pytest.raises(SpecError, match=r"0\.\.255"):
        folded.forward(pix.astype(np.int64) + 1)
    with pytest.raises(SpecError, match="already folded"):
        folded.fold_normalization()


def test_fold_normalization_function_checks() -> None:
    w = np.ones((4, 3, 2, 2))
    with pytest.raises(SpecError, match="one entry per input channel"):
        fold_normalization(w, np.zeros(4), (0.5,), (0.5,))
    with pytest.raises(SpecError, match="non-zero"):
        fold_normalization(w, np.zeros(4), (0.5,) * 3, (0.5, 0.0, 0.5))
    w2, b2 = fold_normalization(w, np.zeros(4), (0.5,) * 3, (0.25,) * 3)
    np.testing.assert_allclose(w2, 1 / (255 * 0.25))
    np.testing.assert_allclose(b2, -12 * 0.5 / 0.25)
