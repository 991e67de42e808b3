"""The bundled bench models: a small DeiT-style ViT (``deit_digits``) and a small Swin
(``swin_digits``) trained on scikit-learn's digits.

Files (written by ``tools/train_bundled.py``; refq needs neither sklearn nor torch to use
them):

* ``refq/data/digits.npz`` — ``values`` (1797, 8, 8) uint8 in 0..16 (sklearn's
  ``load_digits().images``), ``labels`` (1797,) uint8, and the disjoint index arrays
  ``train_idx``, ``calib_idx``, ``test_idx``.
* ``refq/data/deit_digits.safetensors`` — float32 weights in refq (= timm) naming.
* ``refq/data/deit_digits.json`` — ``config`` (a :class:`ViTConfig` dict), the recorded
  FP test accuracy and correct count (of refq's float64 NumPy forward), training details.
* ``refq/data/swin_digits.safetensors`` / ``swin_digits.json`` — the same for the Swin
  (a :class:`SwinConfig`: two stages, shifted windows, a patch merging, a last stage whose
  window is its whole resolution; ``tools/train_bundled.py --model swin_digits``).

Images: pixel = value * 255 // 16 (uint8), then a 4x bilinear upscale 8x8 -> 32x32 computed
exactly in integers (:func:`upscale4`), so every platform derives the same bytes.
Both models take (B, 1, 32, 32) images normalised with mean = std = 0.5.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.files import load_json
from refq.files.schema import Json, Obj, validate
from refq.nn.base import Model
from refq.nn.configs import (
    CONFIG_SCHEMA,
    ModelConfig,
    SwinConfig,
    ViTConfig,
    config_from_dict,
    register_config_loader,
)
from refq.nn.layers import FloatArray

DATA_DIR = Path(__file__).resolve().parent.parent / "data"
DIGITS_FILE = DATA_DIR / "digits.npz"
WEIGHTS_FILE = DATA_DIR / "deit_digits.safetensors"
INFO_FILE = DATA_DIR / "deit_digits.json"
SWIN_WEIGHTS_FILE = DATA_DIR / "swin_digits.safetensors"
SWIN_INFO_FILE = DATA_DIR / "swin_digits.json"
BUNDLED_MODELS: dict[str, tuple[Path, Path, type]] = {
    "deit_digits": (WEIGHTS_FILE, INFO_FILE, ViTConfig),
    "swin_digits": (SWIN_WEIGHTS_FILE, SWIN_INFO_FILE, SwinConfig),
}
"""The bundled models: name -> (weights, info json, config type)."""
DEFAULT_BUNDLED = "deit_digits"
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


def _files(model: str) -> tuple[Path, Path, type]:
    if model not in BUNDLED_MODELS:
        raise SpecError(f"unknown bundled model {model!r}; bundled: "
                        f"{', '.join(BUNDLED_MODELS)}")
    return BUNDLED_MODELS[model]


def bundled_info(path: str | Path | None = None, *,
                 model: str = DEFAULT_BUNDLED) -> dict[str, Any]:
    """A bundled model's json (``path``, default that of ``model``): config, recorded
    accuracy, training details."""
    p = Path(path) if path is not None else _files(model)[1]
    info: dict[str, Any] = load_json(p, 1 << 20, None, SpecError, "bundled model info")
    validate(BUNDLED_INFO_SCHEMA, info, p)
    return info


def bundled_config(model: str = DEFAULT_BUNDLED) -> ModelConfig:
    """The config of the bundled ``model`` (``deit_digits``, a :class:`ViTConfig`, or
    ``swin_digits``, a :class:`SwinConfig`); SpecError if its json names another model or
    kind."""
    _, info_file, kind = _files(model)
    cfg = config_from_dict(bundled_info(info_file)["config"], f"{info_file} ($.config)")
    if not isinstance(cfg, kind) or cfg.name != model:
        raise SpecError(f"{info_file}: the bundled {model} must be a {kind.__name__} named "
                        f"{model!r}, got a {type(cfg).__name__} named {cfg.name!r}")
    return cfg


for _name in BUNDLED_MODELS:
    register_config_loader(_name, partial(bundled_config, _name))

DIGIT_CLASSES: tuple[str, ...] = tuple(str(d) for d in range(10))
"""The bundled model's class names: output k is the digit ``str(k)``."""


def load_bundled(dtype: npt.DTypeLike = np.float64, *,
                 model: str = DEFAULT_BUNDLED) -> tuple[Model, DigitsData]:
    """(model, data): the bundled digits ``model`` (default the DeiT; ``"swin_digits"`` the
    Swin), float input with mean = std = 0.5, and its data.

    ``model.fold_normalization()`` gives the integer-pixel version taking
    ``data.images`` directly.
    """
    from refq.nn.factory import create_model

    net = create_model(bundled_config(model), _files(model)[0], dtype, weights_format="timm")
    return net, load_digits()


__all__ = [
    "BUNDLED_MODELS",
    "DEFAULT_BUNDLED",
    "DIGIT_CLASSES",
    "DigitsData",
    "bundled_config",
    "bundled_info",
    "digits_pixels",
    "load_bundled",
    "load_digits",
    "upscale4",
]
