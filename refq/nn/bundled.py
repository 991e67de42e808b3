"""The bundled bench model: a small DeiT-style ViT trained on scikit-learn's digits.

Files (written by ``tools/train_bundled.py``; refq needs neither sklearn nor torch to use
them):

* ``refq/data/digits.npz`` — ``values`` (1797, 8, 8) uint8 in 0..16 (sklearn's
  ``load_digits().images``), ``labels`` (1797,) uint8, and the disjoint index arrays
  ``train_idx``, ``calib_idx``, ``test_idx``.
* ``refq/data/deit_digits.safetensors`` — float32 weights in refq (= timm) naming.
* ``refq/data/deit_digits.json`` — ``config`` (a :class:`ViTConfig` dict), the recorded
  FP test accuracy and correct count (of refq's float64 NumPy forward), training details.

Images: pixel = value * 255 // 16 (uint8), then a 4x bilinear upscale 8x8 -> 32x32 computed
exactly in integers (:func:`upscale4`), so every platform derives the same bytes.
The model takes (B, 1, 32, 32) images normalised with mean = std = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.files import load_json
from refq.files.schema import Json, Obj, validate
from refq.nn.base import Model
from refq.nn.configs import CONFIG_SCHEMA, ViTConfig, config_from_dict, register_config_loader
from refq.nn.layers import FloatArray

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DIGITS_FILE = DATA_DIR / "digits.npz"
WEIGHTS_FILE = DATA_DIR / "deit_digits.safetensors"
INFO_FILE = DATA_DIR / "deit_digits.json"
BUNDLED_INFO_SCHEMA = Obj({"config": CONFIG_SCHEMA}, extra=Json(),
                          title="bundled model info (refq/data/deit_digits.json)",
                          doc="the model config, then recorded accuracy and training details "
                          "(information)")

U8 = npt.NDArray[np.uint8]


def _upscale_matrix(n: int, factor: int) -> npt.NDArray[np.int64]:
    """(n factor, n) integer bilinear weights (sum 2 factor per row): half-pixel centres,
    edge clamp; output i samples source (2 i + 1 - factor) / (2 factor)."""
    den = 2 * factor
    a = np.zeros((n * factor, n), dtype=np.int64)
    for i in range(n * factor):
        num = 2 * i + 1 - factor  # source coordinate times den
        lo = num // den
        frac = num - lo * den  # in 0..den-1
        a[i, min(max(lo, 0), n - 1)] += den - frac
        a[i, min(max(lo + 1, 0), n - 1)] += frac
    return a


def upscale4(pixels: U8) -> U8:
    """Exact 4x bilinear upscale of (..., 8, 8) uint8 images to (..., 32, 32).

    ``round_half_up((A @ x @ A.T) / 64)`` in int64, with A the integer weight matrix of
    :func:`_upscale_matrix` (weights k/8): no floating point, identical on every platform.
    """
    a = _upscale_matrix(pixels.shape[-1], 4)
    x = pixels.astype(np.int64)
    num = np.einsum("ij,...jk,lk->...il", a, x, a)
    den = 64
    out: U8 = ((num + den // 2) // den).astype(np.uint8)
    return out


def digits_pixels(values: npt.ArrayLike) -> U8:
    """sklearn digit values (..., 8, 8) in 0..16 -> uint8 (..., 32, 32) pixels."""
    v = np.asarray(values).astype(np.int64)
    if v.shape[-2:] != (8, 8) or v.min() < 0 or v.max() > 16:
        raise SpecError(f"digits: expected (..., 8, 8) values in 0..16, got {v.shape}")
    return upscale4((v * 255 // 16).astype(np.uint8))


@dataclass(frozen=True)
class DigitsData:
    """The digits data set: ``images`` (N, 1, 32, 32) uint8, ``labels`` (N,) int64 and the
    disjoint ``train_idx`` / ``calib_idx`` / ``test_idx`` index arrays."""

    images: U8
    labels: npt.NDArray[np.int64]
    train_idx: npt.NDArray[np.int64]
    calib_idx: npt.NDArray[np.int64]
    test_idx: npt.NDArray[np.int64]
    mean: float = 0.5
    std: float = 0.5

    def split(self, name: str) -> tuple[U8, npt.NDArray[np.int64]]:
        """(images, labels) of "train", "calib" or "test"."""
        idx = {"train": self.train_idx, "calib": self.calib_idx, "test": self.test_idx}
        if name not in idx:
            raise SpecError(f"digits: unknown split {name!r} (train, calib or test)")
        return self.images[idx[name]], self.labels[idx[name]]

    def normalize(self, images: npt.ArrayLike) -> FloatArray:
        """uint8 pixels -> float64 ``(x/255 - mean)/std``, the float model's input."""
        x: FloatArray = (np.asarray(images, dtype=np.float64) / 255.0 - self.mean) / self.std
        return x


def load_digits(path: str | Path = DIGITS_FILE) -> DigitsData:
    """Load the bundled digits (see the module docstring). SpecError if missing/corrupt."""
    p = Path(path)
    try:
        with np.load(p, allow_pickle=False) as z:
            values, labels = z["values"], z["labels"]
            idx = [z[k].astype(np.int64) for k in ("train_idx", "calib_idx", "test_idx")]
    except Exception as e:
        raise SpecError(f"digits data {p}: cannot read: {type(e).__name__}: {e}") from None
    images = digits_pixels(values)[:, None]
    return DigitsData(images, labels.astype(np.int64), *idx)


def bundled_info(path: str | Path = INFO_FILE) -> dict[str, Any]:
    """The bundled model's json: config, recorded accuracy, training details."""
    p = Path(path)
    info: dict[str, Any] = load_json(p, 1 << 20, None, SpecError, "bundled model info")
    validate(BUNDLED_INFO_SCHEMA, info, p)
    return info


def bundled_config() -> ViTConfig:
    """The :class:`ViTConfig` of the bundled model (``deit_digits``)."""
    cfg = config_from_dict(bundled_info()["config"], f"{INFO_FILE} ($.config)")
    if not isinstance(cfg, ViTConfig):
        raise SpecError(f"{INFO_FILE}: the bundled model must be a ViT config")
    return cfg


register_config_loader("deit_digits", bundled_config)

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""The bundled model's class names: output k is the digit ``str(k)``."""


def load_bundled(dtype: npt.DTypeLike = np.float64) -> tuple[Model, DigitsData]:
    """(model, data): the bundled digits DeiT (float input, mean = std = 0.5) and its data.

    ``model.fold_normalization()`` gives the integer-pixel version taking
    ``data.images`` directly.
    """
    from refq.nn.factory import create_model

    model = create_model(bundled_config(), WEIGHTS_FILE, dtype, weights_format="timm")
    return model, load_digits()


__all__ = [
    "DIGIT_CLASSES",
    "DigitsData",
    "bundled_config",
    "bundled_info",
    "digits_pixels",
    "load_bundled",
    "load_digits",
    "upscale4",
]
