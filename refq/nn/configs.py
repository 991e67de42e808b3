"""Model configurations under their timm names, and the eval transform of each family.

Two config types: :class:`ViTConfig` (ViT and DeiT, with an optional DeiT distillation
token) and :class:`SwinConfig`. :data:`CONFIGS` maps timm names to configs. This module
knows no model file: configs read from elsewhere (the bundled digits model's
``deit_digits``, registered by :mod:`refq.nn.bundled`) are added through
:func:`register_config_loader` and read on first use. Eval transforms follow METHODS.md
§6: DeiT ImageNet mean/std with crop_pct 0.875; ViT mean = std = 0.5 with crop_pct 0.9;
Swin ImageNet mean/std with crop_pct 0.9; all bicubic.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, ClassVar

from refq.errors import SpecError
from refq.files.schema import Tagged, validate
from refq.nn.config_schema import check_config, check_consistent, dataclass_schema

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)
HALF = (0.5, 0.5, 0.5)


@dataclass(frozen=True)
class ViTConfig:
    """A ViT / DeiT: patch embedding, cls token (+ DeiT distillation token), pre-norm blocks.

    ``distilled=True`` adds the distillation token after the cls token and a second head
    ``head_dist`` on it; at eval the logits are the mean of the two heads (DeiT).
    ``ln_eps`` is 1e-6 in timm and 1e-12 in Hugging Face configs.
    """

    KIND: ClassVar[str] = "vit"
    LIMITS: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "img_size": (1, 16384), "patch_size": (1, 16384), "in_chans": (1, 64),
        "num_classes": (1, 1 << 20), "embed_dim": (1, 1 << 16), "depth": (1, 1024),
        "num_heads": (1, 1024), "mlp_ratio": (0, 64), "ln_eps": (0, 1), "mean": (-1e6, 1e6),
        "std": (0, 1e6), "crop_pct": (0, 1),
    }
    """Declared ranges of the fields (numbers: [lo, hi], lo excluded for floats; tuples:
    each element), part of the config's schema (:mod:`refq.nn.config_schema`)."""
    FAMILIES: ClassVar[tuple[str, ...]] = ("deit", "vit")

    name: str
    img_size: int = 224
    patch_size: int = 16
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 768
    depth: int = 12
    num_heads: int = 12
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    distilled: bool = False
    ln_eps: float = 1e-6
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop_pct: float = 0.875
    family: str = "deit"

    def __post_init__(self) -> None:
        check_config(self)

    @property
    def num_patches(self) -> int:
        """(img_size / patch_size)^2."""
        return (self.img_size // self.patch_size) ** 2

    @property
    def num_prefix_tokens(self) -> int:
        """1 (cls) or 2 (cls, dist)."""
        return 2 if self.distilled else 1

    @property
    def mlp_hidden(self) -> int:
        """Width of fc1's output: int(embed_dim * mlp_ratio)."""
        return int(self.embed_dim * self.mlp_ratio)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form (tuples become lists); ``kind`` = "vit"."""
        return _to_dict(self)


@dataclass(frozen=True)
class SwinConfig:
    """A Swin Transformer: patch embedding + LayerNorm, stages of (shifted-)window blocks,
    patch merging between stages, final LayerNorm, average pooling and a linear head.

    Windows never exceed the stage resolution: where ``min(resolution) <= window_size``
    the window is the whole stage and no shift is applied (original Swin and timm rule).
    """

    KIND: ClassVar[str] = "swin"
    LIMITS: ClassVar[dict[str, tuple[float | None, float | None]]] = {
        "img_size": (1, 16384), "patch_size": (1, 16384), "in_chans": (1, 64),
        "num_classes": (1, 1 << 20), "embed_dim": (1, 1 << 16), "depths": (1, 1024),
        "num_heads": (1, 1024), "window_size": (1, 16384), "mlp_ratio": (0, 64),
        "ln_eps": (0, 1), "mean": (-1e6, 1e6), "std": (0, 1e6), "crop_pct": (0, 1),
    }
    """Declared ranges of the fields (see :attr:`ViTConfig.LIMITS`)."""
    FAMILIES: ClassVar[tuple[str, ...]] = ("swin",)

    name: str
    img_size: int = 224
    patch_size: int = 4
    in_chans: int = 3
    num_classes: int = 1000
    embed_dim: int = 96
    depths: tuple[int, ...] = (2, 2, 6, 2)
    num_heads: tuple[int, ...] = (3, 6, 12, 24)
    window_size: int = 7
    mlp_ratio: float = 4.0
    qkv_bias: bool = True
    ln_eps: float = 1e-5
    mean: tuple[float, ...] = IMAGENET_MEAN
    std: tuple[float, ...] = IMAGENET_STD
    crop_pct: float = 0.9
    family: str = "swin"

    def __post_init__(self) -> None:
        check_config(self)

    def stage_dim(self, stage: int) -> int:
        """Channels of stage ``stage``: embed_dim * 2^stage."""
        return int(self.embed_dim * 2**stage)

    def stage_resolution(self, stage: int) -> int:
        """Token-grid side of stage ``stage``: img_size / patch_size / 2^stage."""
        return int(self.img_size // self.patch_size // 2**stage)

    def stage_window(self, stage: int) -> int:
        """Effective window side at ``stage`` (clamped to the resolution)."""
        return min(self.window_size, self.stage_resolution(stage))

    def block_shift(self, stage: int, block: int) -> int:
        """Cyclic shift of block ``block`` in ``stage``: window/2 on odd blocks, else 0
        (and 0 when the window covers the whole stage)."""
        if block % 2 == 0 or self.stage_resolution(stage) <= self.window_size:
            return 0
        return self.window_size // 2

    @property
    def num_features(self) -> int:
        """Channels of the last stage (the head's input width)."""
        return self.stage_dim(len(self.depths) - 1)

    def to_dict(self) -> dict[str, Any]:
        """JSON-serialisable form; ``kind`` = "swin"."""
        return _to_dict(self)


ModelConfig = ViTConfig | SwinConfig
CONFIG_TYPES: dict[str, type[ViTConfig] | type[SwinConfig]] = {"vit": ViTConfig, "swin": SwinConfig}
"""``kind`` → config class (the model config schema's branches)."""


CONFIG_SCHEMA = Tagged("kind", lambda: {k: dataclass_schema(c) for k, c in CONFIG_TYPES.items()},
                       what="config kind")
"""A model config (``to_dict`` form), derived from the config dataclasses."""


def _to_dict(cfg: ModelConfig) -> dict[str, Any]:
    d = {f.name: getattr(cfg, f.name) for f in dataclasses.fields(cfg)}
    d = {k: list(v) if isinstance(v, tuple) else v for k, v in d.items()}
    d["kind"] = cfg.KIND
    return d


def _deit(name: str, dim: int, heads: int, distilled: bool = False) -> ViTConfig:
    return ViTConfig(name=name, embed_dim=dim, depth=12, num_heads=heads, distilled=distilled)


def _vit(name: str, dim: int, heads: int) -> ViTConfig:
    return ViTConfig(
        name=name, embed_dim=dim, depth=12, num_heads=heads, mean=HALF, std=HALF,
        crop_pct=0.9, family="vit",
    )


def _swin(name: str, dim: int, depths: tuple[int, ...], heads: tuple[int, ...]) -> SwinConfig:
    return SwinConfig(name=name, embed_dim=dim, depths=depths, num_heads=heads)


CONFIGS: dict[str, ModelConfig] = {
    c.name: c
    for c in (
        _deit("deit_tiny_patch16_224", 192, 3),
        _deit("deit_small_patch16_224", 384, 6),
        _deit("deit_base_patch16_224", 768, 12),
        _deit("deit_tiny_distilled_patch16_224", 192, 3, distilled=True),
        _deit("deit_small_distilled_patch16_224", 384, 6, distilled=True),
        _deit("deit_base_distilled_patch16_224", 768, 12, distilled=True),
        _vit("vit_small_patch16_224", 384, 6),
        _vit("vit_base_patch16_224", 768, 12),
        _swin("swin_tiny_patch4_window7_224", 96, (2, 2, 6, 2), (3, 6, 12, 24)),
        _swin("swin_small_patch4_window7_224", 96, (2, 2, 18, 2), (3, 6, 12, 24)),
        _swin("swin_base_patch4_window7_224", 128, (2, 2, 18, 2), (4, 8, 16, 32)),
    )
}
"""The timm-named configs (ImageNet-1k heads), plus the configs of registered loaders once
they have been asked for."""

_LOADERS: dict[str, Callable[[], ModelConfig]] = {}


def register_config_loader(name: str, loader: Callable[[], ModelConfig]) -> None:
    """Make ``get_config(name)`` call ``loader()`` on first use (and keep its result in
    :data:`CONFIGS`). SpecError if ``name`` is already a config or has a loader."""
    if name in CONFIGS or name in _LOADERS:
        raise SpecError(f"model config {name!r} is already registered")
    _LOADERS[name] = loader


def config_from_dict(d: Any, where: object = "model config") -> ModelConfig:
    """Inverse of ``to_dict``: a ViTConfig (kind "vit") or SwinConfig (kind "swin"), every
    field given (nothing defaulted), each of its declared type and range, the fields
    consistent with each other (:func:`refq.nn.config_schema.check_consistent`).
    SpecError naming ``where``, the JSON path and what was expected."""
    validate(CONFIG_SCHEMA, d, where)
    cls = CONFIG_TYPES[d["kind"]]
    kwargs: dict[str, Any] = {k: tuple(v) if isinstance(v, list) else v
                              for k, v in d.items() if k != "kind"}
    try:
        cfg = cls(**kwargs)
    except SpecError as exc:
        raise SpecError(f"{where}: {exc}") from None
    check_consistent(cfg, where)
    return cfg


def get_config(name: str, **overrides: Any) -> ModelConfig:
    """The config registered under ``name``, with dataclass fields replaced by ``overrides``
    (e.g. ``num_classes=10``). Raises SpecError on an unknown name or field."""
    if name not in CONFIGS and name in _LOADERS:
        CONFIGS[name] = _LOADERS[name]()
    if name not in CONFIGS:
        raise SpecError(f"unknown model {name!r}; known: {sorted({*CONFIGS, *_LOADERS})}")
    cfg = CONFIGS[name]
    try:
        return dataclasses.replace(cfg, **overrides)
    except TypeError as e:
        raise SpecError(f"model {name!r}: bad override: {e}") from None


__all__ = [
    "CONFIGS",
    "CONFIG_SCHEMA",
    "CONFIG_TYPES",
    "HALF",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "ModelConfig",
    "SwinConfig",
    "ViTConfig",
    "config_from_dict",
    "get_config",
    "register_config_loader",
]
