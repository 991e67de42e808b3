"""Reading and writing weight files; mapping timm and Hugging Face keys to refq's naming.

refq's internal parameter naming is timm's (ViT/DeiT: ``blocks.{i}.attn.qkv.weight`` ...;
Swin: timm >= 0.9 layout, i.e. the patch merging that starts stage s is
``layers.{s}.downsample.*`` and the head is ``head.fc.*``).

Accepted inputs:

* ``.safetensors`` (read with ``safetensors.numpy``) and ``.npz`` (``np.load`` with
  ``allow_pickle=False``);
* timm state dicts, including old Swin checkpoints (``layers.{s}.downsample`` at the END of
  stage s, ``head.weight``), and Hugging Face ``ViTForImageClassification``,
  ``DeiTForImageClassification[WithTeacher]`` and ``SwinForImageClassification`` state
  dicts in both the hub naming (``encoder.layer.{i}.attention.attention.query`` ...) and the
  transformers-5 naming (``layers.{i}.attention.q_proj`` ...). HF's separate q, k, v are
  concatenated into timm's fused ``qkv``.

Non-parameter buffers (``relative_position_index``, ``attn_mask``) are dropped. Everything
else must map to an expected key with the expected shape: the model constructor raises
SpecError naming the file and the key otherwise.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.configs import ModelConfig, SwinConfig

StateDict = dict[str, npt.NDArray[Any]]

_BUFFERS = ("relative_position_index", "attn_mask", "num_batches_tracked")
_HF_PREFIXES = ("vit.", "deit.", "swin.")
_HF_HEADS = {
    "classifier.": "head.",
    "cls_classifier.": "head.",
    "distillation_classifier.": "head_dist.",
}
_HF_BLOCK_RULES = [
    ("layernorm_before.", "norm1."),
    ("layernorm_after.", "norm2."),
    ("attention.attention.query.", "attn.q."),
    ("attention.attention.key.", "attn.k."),
    ("attention.attention.value.", "attn.v."),
    ("attention.self.query.", "attn.q."),
    ("attention.self.key.", "attn.k."),
    ("attention.self.value.", "attn.v."),
    ("attention.self.relative_position_bias_table", "attn.relative_position_bias_table"),
    ("attention.relative_position_bias.relative_position_bias_table",
     "attn.relative_position_bias_table"),
    ("attention.q_proj.", "attn.q."),
    ("attention.k_proj.", "attn.k."),
    ("attention.v_proj.", "attn.v."),
    ("attention.o_proj.", "attn.proj."),
    ("attention.output.dense.", "attn.proj."),
    ("intermediate.dense.", "mlp.fc1."),
    ("output.dense.", "mlp.fc2."),
    ("mlp.fc1.", "mlp.fc1."),
    ("mlp.fc2.", "mlp.fc2."),
]
_HF_TOP = {
    "embeddings.cls_token": "cls_token",
    "embeddings.distillation_token": "dist_token",
    "embeddings.position_embeddings": "pos_embed",
    "embeddings.patch_embeddings.projection.weight": "patch_embed.proj.weight",
    "embeddings.patch_embeddings.projection.bias": "patch_embed.proj.bias",
    "embeddings.norm.weight": "patch_embed.norm.weight",
    "embeddings.norm.bias": "patch_embed.norm.bias",
    "layernorm.weight": "norm.weight",
    "layernorm.bias": "norm.bias",
}


def load_state_dict(path: str | Path) -> StateDict:
    """Read every tensor of a ``.safetensors`` or ``.npz`` file as NumPy arrays.

    Raises SpecError naming the file if it is missing, has another suffix, or cannot be
    parsed (corrupt file, pickled objects, unsupported dtype such as bfloat16).
    """
    p = Path(path)
    if not p.is_file():
        raise SpecError(f"weight file {p} does not exist")
    try:
        if p.suffix == ".safetensors":
            from safetensors.numpy import load_file

            return dict(load_file(str(p)))
        if p.suffix == ".npz":
            with np.load(p, allow_pickle=False) as z:
                return {k: np.asarray(z[k]) for k in z.files}
    except Exception as e:
        raise SpecError(f"weight file {p}: cannot read: {type(e).__name__}: {e}") from None
    raise SpecError(f"weight file {p}: unsupported suffix {p.suffix!r} "
                    "(expected .safetensors or .npz)")


def save_weights(path: str | Path, params: Mapping[str, npt.ArrayLike]) -> None:
    """Write ``params`` to ``.safetensors`` (safetensors.numpy) or ``.npz`` (uncompressed)."""
    p = Path(path)
    arrays = {k: np.ascontiguousarray(np.asarray(v)) for k, v in params.items()}
    if p.suffix == ".safetensors":
        from safetensors.numpy import save_file

        save_file(arrays, str(p))
    elif p.suffix == ".npz":
        np.savez(p, **arrays)  # type: ignore[arg-type, unused-ignore]
    else:
        raise SpecError(f"weight file {p}: unsupported suffix {p.suffix!r}")


def detect_format(keys: Any) -> str:
    """"hf" if any key starts with ``vit.``/``deit.``/``swin.`` or is an HF classifier key,
    else "timm"."""
    for k in keys:
        if k.startswith(_HF_PREFIXES) or k.startswith(("cls_classifier.", "classifier.")):
            return "hf"
    return "timm"


def to_internal(
    sd: Mapping[str, npt.NDArray[Any]],
    config: ModelConfig,
    fmt: str = "auto",
    source: str = "<state dict>",
) -> StateDict:
    """Map a timm or HF state dict (``fmt`` "timm", "hf" or "auto") to refq naming.

    Shapes are not checked here (the model constructor does that, naming ``source``).
    """
    if fmt == "auto":
        fmt = detect_format(sd.keys())
    sd = {k: v for k, v in sd.items() if not k.endswith(_BUFFERS)}
    if fmt == "timm":
        return _from_timm(sd, config)
    if fmt == "hf":
        return _from_hf(sd, config, source)
    raise SpecError(f"{source}: unknown weight format {fmt!r} (expected timm, hf or auto)")


def load_weights(path: str | Path, config: ModelConfig, fmt: str = "auto") -> StateDict:
    """:func:`load_state_dict` then :func:`to_internal` (errors name ``path``)."""
    return to_internal(load_state_dict(path), config, fmt, source=str(path))


def _from_timm(sd: dict[str, npt.NDArray[Any]], config: ModelConfig) -> StateDict:
    if not isinstance(config, SwinConfig):
        return dict(sd)
    out: StateDict = {}
    old_layout = any(re.match(r"layers\.0\.downsample\.", k) for k in sd)
    for k, v in sd.items():
        m = re.match(r"layers\.(\d+)\.downsample\.(.*)", k)
        if m and old_layout:
            k = f"layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
        elif k in ("head.weight", "head.bias"):
            k = "head.fc." + k.split(".")[-1]
        out[k] = v
    return out


def _from_hf(sd: dict[str, npt.NDArray[Any]], config: ModelConfig, source: str) -> StateDict:
    out: StateDict = {}
    for key, v in sd.items():
        k = key
        for pre in _HF_PREFIXES:
            if k.startswith(pre):
                k = k[len(pre):]
                break
        new = _map_hf_key(k, isinstance(config, SwinConfig))
        if new is None:
            new = key  # left as is: reported as unexpected by the model constructor
        if new in out:
            raise SpecError(f"{source}: key {key!r} maps to {new!r}, which is already set")
        out[new] = v
    return _fuse_qkv(out, source)


def _map_hf_key(k: str, swin: bool) -> str | None:
    if k in _HF_TOP:
        return _HF_TOP[k]
    for pre, rep in _HF_HEADS.items():
        if k.startswith(pre):
            return ("head.fc." if swin else rep) + k[len(pre):]
    if swin:
        m = re.match(r"encoder\.layers\.(\d+)\.downsample\.(.*)", k)
        if m:
            return f"layers.{int(m.group(1)) + 1}.downsample.{m.group(2)}"
        if k.startswith("head."):
            return None
        m = re.match(r"encoder\.layers\.(\d+)\.blocks\.(\d+)\.(.*)", k)
        block = f"layers.{m.group(1)}.blocks.{m.group(2)}." if m else None
    else:
        m = re.match(r"(?:encoder\.layer|layers)\.(\d+)\.(.*)", k)
        block = f"blocks.{m.group(1)}." if m else None
    if m is None or block is None:
        return None
    rest = m.group(m.lastindex or 0)
    for pre, rep in _HF_BLOCK_RULES:
        if rest.startswith(pre):
            return block + rep + rest[len(pre):]
    return None


def _fuse_qkv(sd: StateDict, source: str) -> StateDict:
    out: StateDict = {}
    parts: dict[str, dict[str, npt.NDArray[Any]]] = {}
    for k, v in sd.items():
        m = re.match(r"(.*attn\.)([qkv])\.(weight|bias)$", k)
        if m:
            parts.setdefault(m.group(1) + "qkv." + m.group(3), {})[m.group(2)] = v
        else:
            out[k] = v
    for k, d in parts.items():
        if set(d) != {"q", "k", "v"}:
            raise SpecError(f"{source}: {k!r} needs query, key and value; found only "
                            f"{sorted(d)}")
        shapes = {n: a.shape for n, a in d.items()}
        if len(set(shapes.values())) != 1:
            raise SpecError(f"{source}: query/key/value of {k!r} differ in shape: {shapes}")
        out[k] = np.concatenate([d["q"], d["k"], d["v"]], axis=0)
    return out


__all__ = ["detect_format", "load_state_dict", "load_weights", "save_weights", "to_internal"]
