"""Checkpoint folders: a Hugging Face ``save_pretrained`` folder or a timm hub folder, read
into a model config, the weight file and the class names.

Hugging Face folder (``config.json`` with ``model_type``, ``model.safetensors``):

* ``model_type`` "vit" or "deit" with ``architectures`` ``ViTForImageClassification`` or
  ``DeiTForImageClassificationWithTeacher`` (a :class:`ViTConfig`; the teacher variant is
  distilled: two heads averaged), or "swin" with ``SwinForImageClassification``
  (a :class:`SwinConfig`). Other heads are refused: ``DeiTForImageClassification`` carries a
  distillation token but classifies from the cls token alone, which no refq config describes.
* Every architecture key is read and must be present (``hidden_size``,
  ``num_hidden_layers``, ``num_attention_heads``, ``intermediate_size``, ``image_size``,
  ``patch_size``, ``num_channels``, ``layer_norm_eps``, ``qkv_bias``, ``hidden_act``; Swin:
  ``embed_dim``, ``depths``, ``num_heads``, ``window_size``, ``mlp_ratio``,
  ``use_absolute_embeddings``). ``hidden_act`` must be "gelu" (the exact erf GELU refq
  implements); Swin's ``use_absolute_embeddings`` must be false.
* Classes: ``id2label`` (``{"0": name, ...}``; its length is the head width). When absent,
  the head has ``num_labels`` outputs, else 2 — transformers' own default, which its
  ``save_pretrained`` leaves out of the file. Names of the form ``LABEL_<k>`` (transformers'
  placeholders) are no class names.
* Preprocessing: ``preprocessor_config.json`` when present gives ``image_mean``,
  ``image_std`` and crop_pct: crop size / resize size with a center crop, 1.0 without one;
  without the file the family's defaults apply (:mod:`refq.nn.configs`). refq always resizes
  the short side with bicubic interpolation and center-crops (timm's eval transform), where
  transformers' ViTImageProcessor stretches the image to a square with bilinear
  interpolation: the two agree on square images of the model's size.

timm hub folder (``config.json`` with ``architecture``, ``model.safetensors`` in timm keys):
the architecture must be one of :data:`refq.nn.configs.CONFIGS`; ``num_classes`` and the
``pretrained_cfg`` (``input_size``, ``mean``, ``std``, ``crop_pct``) replace its fields;
``label_names`` when present are the class names.

Every problem raises SpecError naming the folder and what is missing or unsupported.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from refq.errors import SpecError
from refq.files import load_json
from refq.files.schema import AnyOf, Arr, Bool, Int, Json, Map, Num, Obj, Str, Tagged, validate
from refq.nn.configs import CONFIGS as NAMED
from refq.nn.configs import HALF, IMAGENET_MEAN, IMAGENET_STD, ModelConfig, SwinConfig, ViTConfig

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "config.json"
PREPROCESSOR_FILE = "preprocessor_config.json"
MAX_JSON_BYTES = 16 << 20

_HF_HEADS = {
    "ViTForImageClassification": ("vit", False),
    "DeiTForImageClassificationWithTeacher": ("deit", True),
    "SwinForImageClassification": ("swin", False),
}
_VIT_KEYS = ("hidden_size", "num_hidden_layers", "num_attention_heads", "intermediate_size",
             "image_size", "patch_size", "num_channels", "layer_norm_eps", "qkv_bias",
             "hidden_act")
_SWIN_KEYS = ("embed_dim", "depths", "num_heads", "window_size", "mlp_ratio", "image_size",
              "patch_size", "num_channels", "layer_norm_eps", "qkv_bias", "hidden_act",
              "use_absolute_embeddings")
_PLACEHOLDER = re.compile(r"^LABEL_[0-9]+$")
_POS = Int(1, 1 << 20)
_SIDE = AnyOf(_POS, Arr(_POS, 2, 2), doc="a side, or [h, w] with h == w")
_COMMON = {
    "architectures": Arr(Str(max_len=256), lo=1),
    "image_size": _SIDE, "patch_size": _SIDE, "num_channels": Int(1, 64),
    "layer_norm_eps": Num(0, 1, open_lo=True), "qkv_bias": Bool(), "hidden_act": Str(max_len=64),
}
_LABELS = {"id2label": Map(Str(max_len=1024), keys=Str(pattern="0|[1-9][0-9]{0,6}")),
           "num_labels": _POS}
HF_SCHEMA = Tagged("model_type", lambda: {
    t: Obj({"model_type": Str(enum=(t,)), **_COMMON,
            **({"embed_dim": _POS, "depths": Arr(_POS, 1, 16), "num_heads": Arr(_POS, 1, 16),
                "window_size": _POS, "mlp_ratio": Num(0, 64, open_lo=True),
                "use_absolute_embeddings": Bool()} if t == "swin" else
               {"hidden_size": _POS, "num_hidden_layers": Int(1, 1024),
                "num_attention_heads": Int(1, 1024), "intermediate_size": _POS})},
           _LABELS, extra=Json(), title=f"Hugging Face config.json (model_type {t!r})")
    for t in ("vit", "deit", "swin")}, what="model_type")
"""A Hugging Face ``config.json`` as refq reads it: the keys it uses, typed and ranged;
the many keys it does not use are allowed (any JSON)."""
TIMM_SCHEMA = Obj({"architecture": Str(max_len=256)}, {
    "num_classes": _POS,
    "pretrained_cfg": Obj({}, {"input_size": Arr(_POS, 3, 3), "mean": Arr(Num(), 1, 64),
                              "std": Arr(Num(0, open_lo=True), 1, 64),
                              "crop_pct": Num(0, 1, open_lo=True), "num_classes": _POS},
                          extra=Json()),
    "label_names": Arr(Str(max_len=1024)),
}, extra=Json(), title="timm hub config.json")
"""A timm hub ``config.json`` as refq reads it."""
PREPROCESSOR_SCHEMA = Obj({}, {
    "image_mean": Arr(Num(), 1, 64), "image_std": Arr(Num(0, open_lo=True), 1, 64),
    "do_center_crop": Bool(), "do_resize": Bool(),
    "size": AnyOf(Obj({}, {"shortest_edge": _POS, "height": _POS, "width": _POS}), _POS),
    "crop_size": AnyOf(Obj({}, {"height": _POS, "width": _POS}), _POS),
}, extra=Json(), title="Hugging Face preprocessor_config.json")


@dataclass(frozen=True)
class Checkpoint:
    """A checkpoint folder read: its config, weight file, weight key convention ("hf" or
    "timm"), class names (None when the folder names none) and how preprocessing was set."""

    config: ModelConfig
    weights: Path
    weights_format: str
    class_names: tuple[str, ...] | None
    preprocessing: str


def read_json(path: Path) -> dict[str, Any]:
    """A JSON object from a regular file of at most 16 MiB; SpecError naming the file."""
    d = load_json(path, MAX_JSON_BYTES, None, SpecError, path.name)
    if not isinstance(d, dict):
        raise SpecError(f"{path}: expected a JSON object, got {type(d).__name__}")
    return d


def is_checkpoint_folder(path: str | Path) -> bool:
    """True for a folder holding a ``config.json`` (the folder kinds read here)."""
    return Path(path).is_dir() and (Path(path) / CONFIG_FILE).is_file()


def read_checkpoint(folder: str | Path) -> Checkpoint:
    """Read a Hugging Face or timm checkpoint folder (see the module docstring)."""
    root = Path(folder)
    if not root.is_dir():
        raise SpecError(f"model folder {root}: no such folder")
    cfg_path = root / CONFIG_FILE
    if not cfg_path.is_file():
        raise SpecError(f"model folder {root}: no {CONFIG_FILE} (a Hugging Face or timm "
                        f"checkpoint folder holds {CONFIG_FILE} and {WEIGHTS_FILE})")
    d = read_json(cfg_path)
    if "architecture" in d:
        validate(TIMM_SCHEMA, d, cfg_path)
    elif "model_type" in d:
        validate(HF_SCHEMA, d, cfg_path)
    weights = root / WEIGHTS_FILE
    if not weights.is_file():
        found = sorted(p.name for p in root.iterdir() if p.suffix in (".bin", ".pth", ".pt"))
        hint = (f"; found {', '.join(found)}: convert it to {WEIGHTS_FILE} (refq reads no "
                "pickled weights)") if found else ""
        raise SpecError(f"model folder {root}: no {WEIGHTS_FILE}{hint}")
    if "architecture" in d:
        return _timm_folder(root, d, weights)
    if "model_type" in d:
        return _hf_folder(root, d, weights)
    raise SpecError(f"{cfg_path}: neither 'model_type' (Hugging Face) nor 'architecture' "
                    "(timm) is given")


def _need(d: dict[str, Any], keys: tuple[str, ...], where: Path) -> None:
    missing = [k for k in keys if k not in d]
    if missing:
        raise SpecError(f"{where}: missing {', '.join(repr(k) for k in missing)}")


def _int(d: dict[str, Any], key: str, where: Path) -> int:
    v = d[key]
    if isinstance(v, list) and len(v) == 2 and v[0] == v[1]:
        v = v[0]  # (h, w) with h == w
    if not isinstance(v, int) or isinstance(v, bool) or v < 1:
        raise SpecError(f"{where}: {key!r} must be a positive integer (square), got {v!r}")
    return v


def _hf_labels(d: dict[str, Any], where: Path) -> tuple[int, tuple[str, ...] | None]:
    raw = d.get("id2label")
    if raw is None:
        n = d.get("num_labels", 2)
        if not isinstance(n, int) or n < 1:
            raise SpecError(f"{where}: 'num_labels' must be a positive integer, got {n!r}")
        return n, None
    if not isinstance(raw, dict) or not raw:
        raise SpecError(f"{where}: 'id2label' must be a non-empty object")
    try:
        by_id = {int(k): str(v) for k, v in raw.items()}
    except ValueError:
        raise SpecError(f"{where}: 'id2label' keys must be integers") from None
    if sorted(by_id) != list(range(len(by_id))):
        raise SpecError(f"{where}: 'id2label' keys must be 0..{len(by_id) - 1}")
    names = tuple(by_id[i] for i in range(len(by_id)))
    if all(_PLACEHOLDER.match(n) for n in names):
        return len(names), None
    if len(set(names)) != len(names):
        raise SpecError(f"{where}: 'id2label' names a class twice")
    return len(names), names


def _hf_preprocessing(root: Path, family: str) -> tuple[dict[str, Any], str]:
    """Config overrides (mean, std, crop_pct) and a description of where they came from."""
    path = root / PREPROCESSOR_FILE
    if not path.is_file():
        return {}, f"{family} defaults (no {PREPROCESSOR_FILE})"
    p = read_json(path)
    validate(PREPROCESSOR_SCHEMA, p, path)
    out: dict[str, Any] = {}
    for key, field in (("image_mean", "mean"), ("image_std", "std")):
        v = p.get(key)
        if v is not None:
            if not (isinstance(v, list) and v and all(isinstance(x, (int, float)) for x in v)):
                raise SpecError(f"{path}: {key!r} must be a list of numbers")
            out[field] = tuple(float(x) for x in v)
    size, crop = p.get("size"), p.get("crop_size")
    if p.get("do_center_crop") and isinstance(size, dict) and isinstance(crop, dict):
        short, side = size.get("shortest_edge"), crop.get("height")
        if isinstance(short, int) and isinstance(side, int) and 0 < side <= short:
            out["crop_pct"] = side / short
    elif p.get("do_resize", True) and not p.get("do_center_crop"):
        out["crop_pct"] = 1.0
    return out, f"{PREPROCESSOR_FILE} ({', '.join(sorted(out)) or 'no field used'})"


def _hf_folder(root: Path, d: dict[str, Any], weights: Path) -> Checkpoint:
    where = root / CONFIG_FILE
    archs = d.get("architectures")
    if not isinstance(archs, list) or not archs:
        raise SpecError(f"{where}: no 'architectures' (expected one of "
                        f"{', '.join(_HF_HEADS)})")
    arch = str(archs[0])
    if arch == "DeiTForImageClassification":
        raise SpecError(f"{where}: DeiTForImageClassification (a distillation token, but the "
                        "logits from the cls token alone) is not supported; "
                        "DeiTForImageClassificationWithTeacher and ViTForImageClassification "
                        "are")
    if arch not in _HF_HEADS:
        raise SpecError(f"{where}: architecture {arch!r} is not supported (supported: "
                        f"{', '.join(_HF_HEADS)})")
    family, distilled = _HF_HEADS[arch]
    model_type = d.get("model_type")
    if model_type != family:
        raise SpecError(f"{where}: model_type {model_type!r} does not match {arch} "
                        f"(expected {family!r})")
    num_classes, names = _hf_labels(d, where)
    pre, how = _hf_preprocessing(root, family)
    name = f"hf:{root.name}"
    if family == "swin":
        _need(d, _SWIN_KEYS, where)
        _check_act(d, where)
        if d["use_absolute_embeddings"]:
            raise SpecError(f"{where}: use_absolute_embeddings=true is not supported")
        depths, heads = d["depths"], d["num_heads"]
        if not (_int_list(depths) and _int_list(heads) and len(depths) == len(heads)):
            raise SpecError(f"{where}: 'depths' and 'num_heads' must be integer lists of one "
                            "length")
        cfg: ModelConfig = SwinConfig(
            name=name, img_size=_int(d, "image_size", where),
            patch_size=_int(d, "patch_size", where), in_chans=_int(d, "num_channels", where),
            num_classes=num_classes, embed_dim=_int(d, "embed_dim", where),
            depths=tuple(depths), num_heads=tuple(heads),
            window_size=_int(d, "window_size", where), mlp_ratio=float(d["mlp_ratio"]),
            qkv_bias=bool(d["qkv_bias"]), ln_eps=float(d["layer_norm_eps"]),
            mean=IMAGENET_MEAN, std=IMAGENET_STD, crop_pct=0.9, family="swin")
    else:
        _need(d, _VIT_KEYS, where)
        _check_act(d, where)
        dim, hidden = _int(d, "hidden_size", where), _int(d, "intermediate_size", where)
        cfg = ViTConfig(
            name=name, img_size=_int(d, "image_size", where),
            patch_size=_int(d, "patch_size", where), in_chans=_int(d, "num_channels", where),
            num_classes=num_classes, embed_dim=dim,
            depth=_int(d, "num_hidden_layers", where),
            num_heads=_int(d, "num_attention_heads", where), mlp_ratio=hidden / dim,
            qkv_bias=bool(d["qkv_bias"]), distilled=distilled,
            ln_eps=float(d["layer_norm_eps"]),
            mean=HALF if family == "vit" else IMAGENET_MEAN,
            std=HALF if family == "vit" else IMAGENET_STD,
            crop_pct=0.9 if family == "vit" else 0.875, family=family)
        if cfg.mlp_hidden != hidden:
            raise SpecError(f"{where}: intermediate_size {hidden} is not representable as "
                            f"int(hidden_size * mlp_ratio) (got {cfg.mlp_hidden})")
    cfg = _with_checked(cfg, pre, where)
    return Checkpoint(cfg, weights, "hf", names, how)


def _check_act(d: dict[str, Any], where: Path) -> None:
    if d["hidden_act"] != "gelu":
        raise SpecError(f"{where}: hidden_act {d['hidden_act']!r} is not supported (refq "
                        "implements the exact erf GELU, 'gelu')")


def _int_list(v: Any) -> bool:
    return isinstance(v, list) and bool(v) and all(
        isinstance(x, int) and not isinstance(x, bool) and x > 0 for x in v)


def _with_checked(cfg: ModelConfig, fields: dict[str, Any], where: Path) -> ModelConfig:
    out = replace(cfg, **fields)
    if len(out.mean) != out.in_chans or len(out.std) != out.in_chans:
        raise SpecError(f"{where}: mean {list(out.mean)} and std {list(out.std)} need one "
                        f"entry per input channel ({out.in_chans})")
    if not 0 < out.crop_pct <= 1:
        raise SpecError(f"{where}: crop_pct {out.crop_pct} is not in (0, 1]")
    return out


def _timm_folder(root: Path, d: dict[str, Any], weights: Path) -> Checkpoint:
    where = root / CONFIG_FILE
    arch = str(d["architecture"])
    if arch not in NAMED:
        raise SpecError(f"{where}: timm architecture {arch!r} is not one of refq's configs "
                        f"({', '.join(sorted(NAMED))})")
    pc = d.get("pretrained_cfg", {})
    if not isinstance(pc, dict):
        raise SpecError(f"{where}: 'pretrained_cfg' must be an object")
    fields: dict[str, Any] = {"name": f"timm:{arch}"}
    n = d.get("num_classes", pc.get("num_classes"))
    if n is not None:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SpecError(f"{where}: 'num_classes' must be a positive integer, got {n!r}")
        fields["num_classes"] = n
    size = pc.get("input_size")
    if size is not None:
        if not (_int_list(size) and len(size) == 3 and size[1] == size[2]):
            raise SpecError(f"{where}: pretrained_cfg.input_size must be [C, S, S], "
                            f"got {size!r}")
        fields["in_chans"], fields["img_size"] = size[0], size[1]
    for key in ("mean", "std"):
        if key in pc:
            v = pc[key]
            if not (isinstance(v, list) and all(isinstance(x, (int, float)) for x in v)):
                raise SpecError(f"{where}: pretrained_cfg.{key} must be a list of numbers")
            fields[key] = tuple(float(x) for x in v)
    if "crop_pct" in pc:
        fields["crop_pct"] = float(pc["crop_pct"])
    cfg = _with_checked(NAMED[arch], fields, where)
    names = d.get("label_names")
    if names is not None:
        if not (isinstance(names, list) and all(isinstance(x, str) for x in names)
                and len(names) == cfg.num_classes and len(set(names)) == len(names)):
            raise SpecError(f"{where}: label_names must be {cfg.num_classes} distinct strings")
        names = tuple(names)
    used = sorted(k for k in ("input_size", "mean", "std", "crop_pct") if k in pc)
    return Checkpoint(cfg, weights, "timm", names,
                      f"pretrained_cfg ({', '.join(used) or 'no field used'})")


__all__ = ["CONFIG_FILE", "HF_SCHEMA", "PREPROCESSOR_SCHEMA", "TIMM_SCHEMA", "WEIGHTS_FILE",
           "Checkpoint", "is_checkpoint_folder", "read_checkpoint", "read_json"]
