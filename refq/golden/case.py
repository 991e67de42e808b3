"""A golden case: named integer tensors of declared formats plus everything needed to
re-run it by hand, and its on-disk form (one folder: meta.json + one .npy per tensor)."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq._version import __version__
from refq.errors import GoldenError, SpecError
from refq.files import (
    atomic_folder,
    json_bytes,
    json_bytes_flat_arrays,
    load_json,
    npy_bytes,
    read_bytes,
    require_folder,
)
from refq.files.npy import NPY_LIMIT, parse_header, parse_npy
from refq.files.safe import MiB
from refq.files.schema import validate
from refq.golden.schema import GOLDEN_FORMAT, META, ROLES, Role
from refq.golden.schema import NAME_RE as _NAME
from refq.golden.schema import TENSOR_RE as _TENSOR
from refq.golden.tensorfmt import to_storage
from refq.intmath import IntFormat
from refq.ops.registry import lookup
from refq.program.schema import program_from_dict

META_LIMIT = 64 * MiB


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
    """Write ``case`` into the new folder ``folder``, atomically
    (:func:`refq.files.atomic_folder`); returns the files written."""
    with atomic_folder(Path(folder)) as tmp:
        names = [p.name for p in write_case_files(case, tmp)]
    return [Path(folder) / n for n in names]


def write_case_files(case: Case, folder: Path) -> list[Path]:
    """Write ``case``'s files into the existing, empty ``folder`` (inside an atomic write of
    a whole set); returns the files written."""
    written = [folder / "meta.json"]
    written[0].write_bytes(json_bytes_flat_arrays(case.full_meta()))
    for name, t in sorted(case.tensors.items()):
        path = folder / f"{name}.npy"
        path.write_bytes(npy_bytes(t.values))
        written.append(path)
    return written


def read_meta(folder: Path, root: Path | None = None) -> dict[str, Any]:
    """The ``meta.json`` of case folder ``folder``, checked against its declared schema
    (:data:`refq.golden.schema.META`); GoldenError naming the file and JSON path."""
    folder = require_folder(folder, GoldenError, "case folder")
    path = folder / "meta.json"
    meta: dict[str, Any] = load_json(path, META_LIMIT, root or folder, GoldenError, "meta.json")
    validate(META, meta, path, GoldenError)
    for name, d in meta["tensors"].items():
        if d["file"] != f"{name}.npy":
            raise GoldenError(f"{path}: at $.tensors[{name!r}].file: must be {name}.npy")
        try:
            IntFormat.from_dict(d["format"])
        except SpecError as exc:
            raise GoldenError(f"{path}: at $.tensors[{name!r}].format: {exc}") from None
    try:
        if meta["kind"] == "kernel":
            v = lookup(f"{meta['op']}.{meta['variant']}")
            try:
                v.check_params(v.params_type.from_dict(meta["params"]))
            except SpecError as exc:
                raise SpecError(f"{path}: at $.params: {exc}") from None
        elif meta["kind"] in ("block", "program"):
            program_from_dict(meta["program"], f"{path} ($.program)", with_hashes=False,
                              checked=True)
    except SpecError as exc:
        raise GoldenError(str(exc)) from None
    return meta


def read_case(folder: Path, root: Path | None = None) -> Case:
    """Read a case folder back (regular files inside ``root``, default the folder itself),
    checking ``meta.json`` against its schema and every tensor against its declared shape
    (in the .npy header, before its data is parsed) and format."""
    folder = Path(folder)
    meta = read_meta(folder, root)
    listed = {"meta.json", *(d["file"] for d in meta["tensors"].values())}
    extra = sorted(set(os.listdir(folder)) - listed)
    if extra:
        raise GoldenError(f"{folder / extra[0]}: not listed in meta.json (at $.tensors) — a "
                          "case folder holds meta.json and its listed tensors only")
    tensors: dict[str, Tensor] = {}
    for name, d in meta["tensors"].items():
        fmt = IntFormat.from_dict(d["format"])
        shape, role, layout = tuple(d["shape"]), d["role"], d["layout"]
        path = folder / d["file"]
        raw = read_bytes(path, NPY_LIMIT, root or folder, GoldenError, ".npy file")
        head_shape = parse_header(raw, str(path))[1]
        if head_shape != shape:
            raise GoldenError(f"{path}: shape {head_shape}, meta says {shape}")
        values = parse_npy(raw, str(path))
        to_storage(values, fmt, f"{folder.name}/{name}")
        tensors[name] = Tensor(values, fmt, role, layout)
    rest = {k: v for k, v in meta.items() if k not in _BOOKKEEPING}
    try:
        return Case(meta["case"], meta["kind"], meta["seed"], rest, tensors)
    except SpecError as exc:
        raise GoldenError(f"{folder / 'meta.json'}: {exc}") from None


_BOOKKEEPING = {"case", "kind", "seed", "refq_version", "golden_format", "tensors"}

__all__ = ["GOLDEN_FORMAT", "ROLES", "Case", "Role", "Tensor", "json_bytes", "read_case",
           "read_meta", "write_case", "write_case_files"]
