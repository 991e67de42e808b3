"""Images: a Pillow loader for ImageFolder trees and the papers' eval transform.

Mode rule (:func:`load_image`): 8-bit modes (``1``, ``L``, ``P``, ``RGB``, ``RGBA``, ``LA``,
``PA``, ``RGBX``, ``CMYK``, ``YCbCr``, ``La``, ``RGBa``) are converted with Pillow's
``convert`` to the requested mode ("RGB" default, or "L"); alpha is dropped (the
timm/torchvision loader rule), palette images with transparency go through RGBA first.
A colour image is refused for "L" (a one-channel model): only an image whose red, green and
blue channels are equal everywhere converts to gray losslessly (Pillow's L = (19595 R +
38470 G + 7471 B + 2^15) >> 16 is then exactly R), so any other would silently feed the
model data it was not made for.
High-bit-depth modes (``I``, ``I;16*``, ``F``, ...) are refused, since scaling them to
8 bits is a choice the caller must make.

Eval transform (timm's ``transforms_factory`` for eval, METHODS.md §6): resize the short
side to ``floor(img_size / crop_pct)`` with bicubic interpolation (long side
``int(scale * long / short)``), center-crop ``img_size`` (offsets ``round((h - s) / 2)``),
then ``(x/255 - mean)/std`` per channel. :meth:`EvalTransform.pixels` stops before the
normalisation and returns uint8 (C, S, S) — the input of the integer pixel path.

Every problem with a file raises :class:`ImageDataError` (a SpecError) naming the file.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt
from PIL import Image

from refq.errors import SpecError
from refq.nn.configs import ModelConfig
from refq.nn.layers import FloatArray

U8 = npt.NDArray[np.uint8]
IMG_EXTENSIONS = (".png", ".jpg", ".jpeg", ".bmp", ".ppm", ".pgm", ".tif", ".tiff", ".webp")
_CONVERTIBLE = {"1", "L", "P", "RGB", "RGBA", "LA", "PA", "RGBX", "CMYK", "YCbCr", "La", "RGBa"}
_GRAY = {"1", "L", "LA", "La"}


class ImageDataError(SpecError):
    """An image file or image folder is missing, empty, corrupt or of an unusable mode."""


def load_image(path: str | Path, mode: str = "RGB") -> Image.Image:
    """Open and fully decode ``path``, converted to ``mode`` ("RGB" or "L") by the rule in
    the module docstring. Raises ImageDataError naming the file."""
    if mode not in ("RGB", "L"):
        raise SpecError(f"load_image: mode must be 'RGB' or 'L', got {mode!r}")
    p = Path(path)
    try:
        with Image.open(p) as im:
            im.load()
            src = im.mode
            if src not in _CONVERTIBLE:
                raise ImageDataError(f"{p}: image mode {src!r} is not an 8-bit mode; convert "
                                     f"it to {mode} yourself (scaling is the caller's choice)")
            if src == "P" and "transparency" in im.info:
                im = im.convert("RGBA")
            if mode == "L" and im.mode not in _GRAY:
                rgb = np.asarray(im.convert("RGB"))
                if not (np.array_equal(rgb[..., 0], rgb[..., 1])
                        and np.array_equal(rgb[..., 0], rgb[..., 2])):
                    raise ImageDataError(f"{p}: a colour image (mode {src}, channels differ) "
                                         "cannot feed a 1-channel (grayscale) model")
            out: Image.Image = im if im.mode == mode else im.convert(mode)
            return out
    except ImageDataError:
        raise
    except FileNotFoundError:
        raise ImageDataError(f"{p}: no such image file") from None
    except Exception as e:
        raise ImageDataError(f"{p}: cannot decode image: {type(e).__name__}: {e}") from None


def normalize(pixels: npt.ArrayLike, mean: Sequence[float], std: Sequence[float]) -> FloatArray:
    """uint8 (..., C, H, W) -> float64 ``(x/255 - mean[c]) / std[c]``."""
    x = np.asarray(pixels)
    m = np.asarray(mean, dtype=np.float64)
    s = np.asarray(std, dtype=np.float64)
    if x.ndim < 3 or x.shape[-3] != m.size or m.shape != s.shape:
        raise SpecError(f"normalize: pixels {x.shape} need (..., C, H, W) with C = "
                        f"{m.size} = len(mean) = len(std)")
    y: FloatArray = (x.astype(np.float64) / 255.0 - m[:, None, None]) / s[:, None, None]
    return y


@dataclass(frozen=True)
class EvalTransform:
    """Resize (bicubic, short side floor(img_size / crop_pct)), center crop, normalise."""

    img_size: int
    crop_pct: float
    mean: tuple[float, ...]
    std: tuple[float, ...]

    def __post_init__(self) -> None:
        if not 0 < self.crop_pct <= 1 or self.img_size < 1:
            raise SpecError(f"EvalTransform: need 0 < crop_pct <= 1 and img_size >= 1, got "
                            f"{self.crop_pct}, {self.img_size}")

    @property
    def mode(self) -> str:
        """"L" for one channel, else "RGB"."""
        return "L" if len(self.mean) == 1 else "RGB"

    @property
    def resize_size(self) -> int:
        """Short side after resizing: floor(img_size / crop_pct)."""
        return math.floor(self.img_size / self.crop_pct)

    def pixels(self, img: Image.Image) -> U8:
        """PIL image -> uint8 (C, img_size, img_size) after resize and center crop."""
        if img.mode != self.mode:
            img = img.convert(self.mode)
        w, h = img.size
        short, long = (w, h) if w <= h else (h, w)
        size = self.resize_size
        new_long = int(size * long / short)
        new_w, new_h = (size, new_long) if w <= h else (new_long, size)
        if (new_w, new_h) != (w, h):
            img = img.resize((new_w, new_h), Image.Resampling.BICUBIC)
        s = self.img_size
        top, left = round((new_h - s) / 2.0), round((new_w - s) / 2.0)
        img = img.crop((left, top, left + s, top + s))
        arr = np.asarray(img, dtype=np.uint8)
        out: U8 = arr[None] if arr.ndim == 2 else arr.transpose(2, 0, 1)
        return np.ascontiguousarray(out)

    def __call__(self, img: Image.Image) -> FloatArray:
        """PIL image -> float64 (C, img_size, img_size), normalised."""
        return normalize(self.pixels(img), self.mean, self.std)


def eval_transform(config: ModelConfig) -> EvalTransform:
    """The eval transform of a model config (its img_size, crop_pct, mean and std)."""
    return EvalTransform(config.img_size, config.crop_pct, tuple(config.mean), tuple(config.std))


class ImageFolder:
    """A class-per-subfolder image tree: ``root/<class>/<image>``.

    Classes are the sorted subfolder names, labels their indices; files with an extension
    in ``extensions`` are the samples (sorted). Raises ImageDataError if ``root`` is not a
    folder, has no class subfolders, or a class folder holds no image.
    ``self[i]`` is ``(uint8 (C, S, S) pixels, label)`` through ``transform.pixels``.
    """

    def __init__(
        self,
        root: str | Path,
        transform: EvalTransform,
        extensions: Sequence[str] = IMG_EXTENSIONS,
    ) -> None:
        self.root = Path(root)
        self.transform = transform
        if not self.root.is_dir():
            raise ImageDataError(f"{self.root}: image folder does not exist")
        self.classes = sorted(d.name for d in self.root.iterdir() if d.is_dir())
        if not self.classes:
            raise ImageDataError(f"{self.root}: no class subfolders")
        self.class_to_idx = {c: i for i, c in enumerate(self.classes)}
        exts = tuple(e.lower() for e in extensions)
        self.samples: list[tuple[Path, int]] = []
        for c in self.classes:
            files = sorted(f for f in (self.root / c).rglob("*")
                           if f.is_file() and f.suffix.lower() in exts)
            if not files:
                raise ImageDataError(f"{self.root / c}: class folder holds no image "
                                     f"(extensions {', '.join(exts)})")
            self.samples += [(f, self.class_to_idx[c]) for f in files]

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, i: int) -> tuple[U8, int]:
        path, label = self.samples[i]
        try:
            return self.transform.pixels(load_image(path, self.transform.mode)), label
        except ImageDataError:
            raise
        except Exception as e:
            raise ImageDataError(f"{path}: transform failed: {type(e).__name__}: {e}") from None

    def load(self, indices: Sequence[int] | None = None) -> tuple[U8, npt.NDArray[np.int64]]:
        """Stack samples (all, or ``indices``): uint8 (B, C, S, S) and int64 labels (B,)."""
        idx = range(len(self)) if indices is None else indices
        items: list[Any] = [self[i] for i in idx]
        if not items:
            c = len(self.transform.mean)
            s = self.transform.img_size
            return np.zeros((0, c, s, s), np.uint8), np.zeros(0, np.int64)
        return (np.stack([a for a, _ in items]),
                np.asarray([lab for _, lab in items], dtype=np.int64))


__all__ = ["IMG_EXTENSIONS", "EvalTransform", "ImageDataError", "ImageFolder", "eval_transform",
           "load_image", "normalize"]
