"""The declared schema of a model config, derived from the config dataclass itself: one
key per field (every one required when read: nothing is defaulted), its type from the
field's annotation, its range from the class's ``LIMITS`` and, for ``family``, its values
from ``FAMILIES``; plus ``kind`` (the class's ``KIND``). A config is checked against it on
construction (:func:`check_config`, so overrides and checkpoint readers are covered too);
a config read from a file is also checked for consistency (:func:`check_consistent`).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any, get_args, get_origin, get_type_hints

import numpy as np

from refq.errors import SpecError
from refq.files.schema import Arr, Bool, Const, Int, Node, Num, Obj, Str, validate


def _field_node(name: str, tp: Any, cls: type) -> Node:
    lo, hi = getattr(cls, "LIMITS", {}).get(name, (None, None))
    if name == "family":
        return Str(enum=cls.FAMILIES)  # type: ignore[attr-defined]
    if tp is str:
        return Str(max_len=1024)
    if tp is bool:
        return Bool()
    if tp is int:
        return Int(None if lo is None else int(lo), None if hi is None else int(hi))
    if tp is float:
        return Num(lo, hi, open_lo=lo is not None)
    if get_origin(tp) is tuple and get_args(tp)[1:] == (Ellipsis,):
        return Arr(_field_node(name, get_args(tp)[0], cls), lo=1, hi=64)
    raise SpecError(f"{cls.__name__}.{name}: no schema for type {tp!r}")  # a new field type


_SCHEMAS: dict[type, Obj] = {}


def dataclass_schema(cls: type) -> Obj:
    """The config schema of config class ``cls`` (module docstring)."""
    hit = _SCHEMAS.get(cls)
    if hit is None:
        hints = get_type_hints(cls)
        fields = {f.name: _field_node(f.name, hints[f.name], cls)
                  for f in dataclasses.fields(cls)}
        doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
        hit = Obj({"kind": Const(cls.KIND), **fields},  # type: ignore[attr-defined]
                  title=f"{cls.__name__} (kind {cls.KIND!r})", doc=doc)  # type: ignore[attr-defined]
        _SCHEMAS[cls] = hit
    return hit


def _plain(v: Any) -> Any:
    """A field value as the JSON value it writes (NumPy scalars as Python numbers)."""
    if isinstance(v, (tuple, list)):
        return [_plain(e) for e in v]
    if isinstance(v, (bool, np.bool_)):
        return bool(v) if isinstance(v, np.bool_) else v
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, float):
        return float(v)
    return v


def check_config(cfg: Any) -> None:
    """SpecError unless every field of ``cfg`` has its declared type and range (NumPy
    scalars are taken as Python numbers, tuples as tuples of them)."""
    d = {}
    for f in dataclasses.fields(cfg):
        v = getattr(cfg, f.name)
        plain = _plain(v)
        if isinstance(v, (tuple, list)):
            object.__setattr__(cfg, f.name, tuple(plain))
        elif plain is not v:
            object.__setattr__(cfg, f.name, plain)
        d[f.name] = plain
    d["kind"] = cfg.KIND
    name = d.get("name")
    validate(dataclass_schema(type(cfg)), d,
             f"model config {name!r}" if isinstance(name, str) else "model config")


def check_consistent(cfg: Any, where: object) -> None:
    """The checks across fields a schema cannot state: one mean and std per input channel,
    the image divisible into patches, heads dividing the width (per stage for Swin), a
    positive MLP width."""
    problems = []
    if len(cfg.mean) != cfg.in_chans or len(cfg.std) != cfg.in_chans:
        problems.append(f"mean {list(cfg.mean)} and std {list(cfg.std)} need one entry per "
                        f"input channel ({cfg.in_chans})")
    if cfg.img_size % cfg.patch_size:
        problems.append(f"img_size {cfg.img_size} is not a multiple of patch_size "
                        f"{cfg.patch_size}")
    if int(cfg.embed_dim * cfg.mlp_ratio) < 1 or not math.isfinite(cfg.mlp_ratio):
        problems.append(f"mlp_ratio {cfg.mlp_ratio} gives no MLP width")
    if cfg.KIND == "vit":
        if cfg.embed_dim % cfg.num_heads:
            problems.append(f"num_heads {cfg.num_heads} does not divide embed_dim "
                            f"{cfg.embed_dim}")
    else:
        if len(cfg.depths) != len(cfg.num_heads):
            problems.append(f"depths {list(cfg.depths)} and num_heads {list(cfg.num_heads)} "
                            "differ in length")
        grid = cfg.img_size // cfg.patch_size
        for s, h in enumerate(cfg.num_heads):
            if (cfg.embed_dim << s) % h:
                problems.append(f"num_heads[{s}] = {h} does not divide stage {s}'s width "
                                f"{cfg.embed_dim << s}")
        if grid % (1 << (len(cfg.depths) - 1)):
            problems.append(f"the {grid}x{grid} patch grid cannot be merged "
                            f"{len(cfg.depths) - 1} times")
    if problems:
        raise SpecError(f"{where}: {problems[0]}")


__all__ = ["check_config", "check_consistent", "dataclass_schema"]
