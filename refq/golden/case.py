"""A golden case: named integer tensors of declared formats plus everything needed to
re-run it by hand, and its on-disk form (one folder: meta.json + one .npy per tensor)."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np
import numpy.typing as npt

from refq._version import __version__
from refq.errors import GoldenError, SpecError
from refq.files import json_bytes, npy_bytes, read_npy
from refq.golden.tensorfmt import to_storage
from refq.intmath import IntFormat

GOLDEN_FORMAT = 1
"""Version of the on-disk layout (meta.json schema, MANIFEST.json schema, .npy spelling)."""

Role = Literal["input", "param", "intermediate", "output"]
ROLES: tuple[str, ...] = ("input", "param", "intermediate", "output")
_NAME = re.compile(r"^[a-z0-9][a-z0-9_.\-]*$")
_TENSOR = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-@]*$")


@dataclass(frozen=True)
class Tensor:
    """One golden tensor: its values (int64 or narrower), declared format, role and layout."""

    values: npt.NDArray[np.integer[Any]]
    fmt: IntFormat
    role: Role
    layout: str = "row-major"

    def describe(self) -> dict[str, Any]:
        return {
            "shape": [int(d) for d in self.values.shape],
            "format": self.fmt.to_dict(),
            "role": self.role,
            "layout": self.layout,
        }


@dataclass
class Case:
    """A golden case. ``meta`` holds the op or program, parameters, variant, rounding — any
    JSON-safe data; the tensors' shapes and formats are added to it when written."""

    name: str
    kind: str
    seed: int
    meta: dict[str, Any]
    tensors: dict[str, Tensor] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise SpecError(f"case name {self.name!r}: use lower-case letters, digits, _ . -")
        for t in self.tensors:
            if not _TENSOR.match(t):
                raise SpecError(f"case {self.name}: tensor name {t!r} is not a safe file name")

    def add(
        self,
        name: str,
        values: npt.ArrayLike,
        fmt: IntFormat,
        role: Role,
        layout: str = "row-major",
    ) -> None:
        if not _TENSOR.match(name):
            raise SpecError(f"case {self.name}: tensor name {name!r} is not a safe file name")
        if role not in ROLES:
            raise SpecError(f"case {self.name}: tensor {name!r} role {role!r} not in {ROLES}")
        self.tensors[name] = Tensor(to_storage(values, fmt, name), fmt, role, layout)

    def full_meta(self) -> dict[str, Any]:
        return {
            "case": self.name,
            "kind": self.kind,
            "seed": self.seed,
            "refq_version": __version__,
            "golden_format": GOLDEN_FORMAT,
            **self.meta,
            "tensors": {
                n: {"file": f"{n}.npy", **t.describe()} for n, t in sorted(self.tensors.items())
            },
        }


def write_case(case: Case, folder: Path) -> list[Path]:
    """Write ``case`` into a new ``folder``; returns the files written."""
    folder.mkdir(parents=True, exist_ok=False)
    written = [folder / "meta.json"]
    written[0].write_bytes(json_bytes(case.full_meta()))
    for name, t in sorted(case.tensors.items()):
        path = folder / f"{name}.npy"
        path.write_bytes(npy_bytes(t.values))
        written.append(path)
    return written


def read_meta(folder: Path) -> dict[str, Any]:
    path = folder / "meta.json"
    try:
        meta = json.loads(path.read_text())
    except FileNotFoundError:
        raise GoldenError(f"{path}: missing") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GoldenError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(meta, dict) or not isinstance(meta.get("tensors"), dict):
        raise GoldenError(f"{path}: no 'tensors' table")
    return meta


def read_case(folder: Path) -> Case:
    """Read a case folder back, checking every tensor against its declared shape/format."""
    meta = read_meta(folder)
    tensors: dict[str, Tensor] = {}
    for name, d in meta["tensors"].items():
        try:
            fmt = IntFormat.from_dict(d["format"])
            shape, role, layout = tuple(d["shape"]), d["role"], d["layout"]
            file = d["file"]
        except (KeyError, TypeError, SpecError) as exc:
            raise GoldenError(
                f"{folder / 'meta.json'}: tensor {name!r} entry malformed ({exc})"
            ) from None
        if file != f"{name}.npy":
            raise GoldenError(f"{folder / 'meta.json'}: tensor {name!r} file must be {name}.npy")
        values = read_npy(folder / file)
        if values.shape != shape:
            raise GoldenError(f"{folder / file}: shape {values.shape}, meta says {shape}")
        to_storage(values, fmt, f"{folder.name}/{name}")
        tensors[name] = Tensor(values, fmt, role, layout)
    rest = {k: v for k, v in meta.items() if k not in _BOOKKEEPING}
    return Case(
        str(meta.get("case", folder.name)),
        str(meta.get("kind", "")),
        int(meta.get("seed", 0)),
        rest,
        tensors,
    )


_BOOKKEEPING = {"case", "kind", "seed", "refq_version", "golden_format", "tensors"}

__all__ = ["GOLDEN_FORMAT", "Case", "Tensor", "json_bytes", "read_case", "read_meta", "write_case"]
