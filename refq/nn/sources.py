"""What ``--model`` names: the bundled model, a named config with a weight file, or a
checkpoint folder — parsed once into a small, picklable :class:`ModelSource` that loads the
model, its class names and a content fingerprint wherever it is (a sweep ships sources to
workers, which load the weights themselves).

Spellings (:func:`parse_model`):

* ``bundled`` — the bundled digits DeiT (``refq/data``); ``deit_digits`` or
  ``swin_digits`` without weights — that bundled model (:data:`refq.nn.bundled.BUNDLED_MODELS`);
* ``NAME`` with ``weights=FILE``, or ``NAME=FILE`` — a timm name of
  :data:`refq.nn.configs.CONFIGS` (a timm tag such as ``.fb_in1k`` is allowed and ignored)
  and a ``.safetensors`` / ``.npz`` weight file in timm or Hugging Face keys;
* a folder — a Hugging Face or timm checkpoint folder (:mod:`refq.nn.checkpoints`).
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.base import Model
from refq.nn.checkpoints import Checkpoint, is_checkpoint_folder, read_checkpoint
from refq.nn.configs import CONFIGS, ModelConfig, get_config

BUNDLED = "bundled"


@dataclass(frozen=True)
class ModelSource:
    """A parsed ``--model``: ``kind`` "bundled", "named" or "folder"; ``name`` the config
    name (for "bundled": "bundled" = deit_digits, or the bundled model's name) or the
    folder's absolute path; ``weights`` the weight file (named models)."""

    kind: str
    name: str
    weights: Path | None = None

    @property
    def label(self) -> str:
        """A short display name: "bundled", the config name, or the folder's name."""
        if self.kind == "folder":
            return Path(self.name).name
        return self.name

    @property
    def bundled_name(self) -> str:
        """The bundled model's name (``deit_digits`` for "bundled"); "" for other kinds."""
        if self.kind != "bundled":
            return ""
        from refq.nn.bundled import DEFAULT_BUNDLED

        return DEFAULT_BUNDLED if self.name == BUNDLED else self.name

    def checkpoint(self) -> Checkpoint | None:
        """The folder read (None for the other kinds)."""
        return read_checkpoint(self.name) if self.kind == "folder" else None

    def config(self) -> ModelConfig:
        """The model config (read from the folder, the bundled json or the registry)."""
        ck = self.checkpoint()
        if ck is not None:
            return ck.config
        return get_config(self.bundled_name or self.name)

    def class_names(self) -> tuple[str, ...] | None:
        """Output k's class name, when the source names them (bundled: the digits; a
        folder: its labels); None for a named config (ImageNet outputs in timm order)."""
        if self.kind == "bundled":
            from refq.nn.bundled import DIGIT_CLASSES

            return DIGIT_CLASSES
        ck = self.checkpoint()
        return ck.class_names if ck is not None else None

    def load(self, dtype: npt.DTypeLike = np.float64) -> Model:
        """The float model (normalised-float input; fold it for uint8 pixels)."""
        from refq.nn.factory import create_model

        if self.kind == "bundled":
            from refq.nn.bundled import BUNDLED_MODELS, bundled_config

            return create_model(bundled_config(self.bundled_name),
                                BUNDLED_MODELS[self.bundled_name][0], dtype,
                                weights_format="timm")
        ck = self.checkpoint()
        if ck is not None:
            return create_model(ck.config, ck.weights, dtype, weights_format=ck.weights_format)
        assert self.weights is not None
        return create_model(self.config(), self.weights, dtype)

    def describe(self) -> str:
        """One line for reports: what was loaded, from where, with which preprocessing."""
        ck = self.checkpoint()
        if ck is not None:
            return (f"{self.label} ({ck.config.name}, {ck.weights_format} checkpoint folder "
                    f"{self.name}; preprocessing: {ck.preprocessing})")
        if self.kind == "bundled":
            return (f"bundled ({self.bundled_name})" if self.name == BUNDLED
                    else f"{self.name} (bundled)")
        return f"{self.name} (weights {self.weights})"

    def fingerprint(self) -> str:
        """sha256 (hex) of the config and the weight file's bytes: equal fingerprints,
        equal models, wherever the files lie."""
        h = hashlib.sha256()
        cfg = self.config().to_dict()
        cfg.pop("name")
        h.update(json.dumps(cfg, sort_keys=True).encode())
        ck = self.checkpoint()
        if ck is not None:
            h.update(ck.weights_format.encode())
            h.update(json.dumps(ck.class_names).encode())
        h.update(_file_sha256(self._weight_file()).encode())
        return h.hexdigest()

    def _weight_file(self) -> Path:
        if self.kind == "bundled":
            from refq.nn.bundled import BUNDLED_MODELS

            return BUNDLED_MODELS[self.bundled_name][0]
        ck = self.checkpoint()
        if ck is not None:
            return ck.weights
        assert self.weights is not None
        return self.weights


def _file_sha256(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _config_name(name: str) -> str:
    """A timm name, a timm tag (``deit_small_patch16_224.fb_in1k``) dropped."""
    base = name.split(".", 1)[0]
    return base if name not in CONFIGS and base in CONFIGS else name


def parse_model(text: str, weights: str | Path | None = None) -> ModelSource:
    """Parse a ``--model`` value (see the module docstring); ``weights`` is ``--weights``.

    SpecError when the folder, config name or weight file does not exist, or when weights
    are given twice or for a source that carries its own.
    """
    text = str(text).strip()
    if not text:
        raise SpecError("--model: empty")
    if text == BUNDLED:
        if weights is not None:
            raise SpecError("--weights cannot be used with --model bundled")
        return ModelSource("bundled", BUNDLED)
    path = Path(text)
    if path.is_dir():
        if weights is not None:
            raise SpecError(f"--model {text}: a checkpoint folder carries its weights; "
                            "--weights cannot be used with it")
        if not is_checkpoint_folder(path):
            read_checkpoint(path)  # raises, naming what is missing
        src = ModelSource("folder", str(path.resolve()))
        src.config()  # read now: a bad folder fails here, not on a worker
        return src
    from refq.nn.bundled import BUNDLED_MODELS

    if text in BUNDLED_MODELS and weights is None:
        return ModelSource("bundled", text)
    name, eq, file = text.partition("=")
    if eq:
        if weights is not None:
            raise SpecError(f"--model {text}: weights given twice (NAME=FILE and --weights)")
        weights = file
    elif "/" in text or text.startswith("."):
        raise SpecError(f"--model {text}: no such checkpoint folder")
    name = _config_name(name)
    get_config(name)  # SpecError: unknown model, naming the known ones
    if weights is None:
        raise SpecError(f"--model {name}: --weights FILE (or --model {name}=FILE) is "
                        "required, or give a checkpoint folder")
    wpath = Path(weights)
    if not wpath.is_file():
        raise SpecError(f"--weights {weights}: no such file")
    return ModelSource("named", name, wpath.resolve())


__all__ = ["BUNDLED", "ModelSource", "parse_model"]
