"""The bundled digits DeiT: files, data derivation, and the recorded FP accuracy."""

from __future__ import annotations

import numpy as np

from refq.nn import load_bundled
from refq.nn.bundled import (
    DIGITS_FILE,
    INFO_FILE,
    WEIGHTS_FILE,
    _upscale_matrix,
    bundled_info,
    upscale4,
)


def test_files_are_small() -> None:
    assert DIGITS_FILE.stat().st_size < 300_000
    assert WEIGHTS_FILE.stat().st_size <= 2_000_000
    assert INFO_FILE.stat().st_size < 10_000


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


def test_recorded_accuracy_is_reproduced() -> None:
    model, data = load_bundled()
    info = bundled_info()
    x, y = data.split("test")
    correct = int((model.predict(data.normalize(x)) == y).sum())
    assert correct == info["fp_test_correct"]
    assert info["fp_test_accuracy"] >= 0.95
    # the integer-pixel path (normalisation folded) gives the same predictions
    folded = model.fold_normalization()
    assert int((folded.predict(x) == y).sum()) == correct
