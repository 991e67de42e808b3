"""Program files: ``program.json`` (canonical JSON: declarations, ops, meta, and the sha256
of every constant) plus ``consts/<name>.npy`` (deterministic, pickle-free).

Loading reads regular files only, inside the folder, of bounded size; checks the format
version, the declared schema (:mod:`refq.program.schema`: every op's params against its
variant's params type, nothing defaulted), every hash before a constant is parsed, every
declaration and the op graph — a tampered, truncated or malformed program fails with a
SpecError naming the file, the JSON path and what was expected."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

from refq._version import __version__
from refq.errors import SpecError
from refq.files import atomic_folder, json_bytes, load_json, npy_bytes, require_folder
from refq.files.jsonfile import sha256_bytes
from refq.files.npy import NPY_LIMIT, parse_npy
from refq.files.safe import MiB, read_bytes
from refq.program.ir import PROGRAM_FORMAT, Program
from refq.program.schema import check_program, program_from_dict

_SAFE = re.compile(r"^[A-Za-z0-9_.@\-]+$")
PROGRAM_JSON_LIMIT = 256 * MiB


def program_dict(program: Program) -> dict[str, Any]:
    return {
        "program_format": PROGRAM_FORMAT,
        "refq_version": __version__,
        "name": program.name,
        "meta": program.meta,
        "inputs": program.inputs,
        "outputs": program.outputs,
        "tensors": {n: t.to_dict() for n, t in program.tensors.items()},
        "ops": [op.to_dict() for op in program.ops],
    }


def save(program: Program, folder: Path, force: bool = False) -> None:
    """Write ``program`` into a new ``folder`` atomically (same program → same bytes)."""
    program.validate()
    for name in program.consts:
        if not _SAFE.match(name):
            raise SpecError(f"const name {name!r} is not a safe file name")
    with atomic_folder(Path(folder), force=force) as tmp:
        (tmp / "consts").mkdir()
        hashes = {}
        for name in sorted(program.consts):
            raw = npy_bytes(program.consts[name])
            (tmp / "consts" / f"{name}.npy").write_bytes(raw)
            hashes[name] = sha256_bytes(raw)
        d = program_dict(program)
        d["const_sha256"] = hashes
        (tmp / "program.json").write_bytes(json_bytes(d))


def load(folder: Path) -> Program:
    """Read and validate a program folder (module docstring)."""
    folder = require_folder(folder, SpecError, "program folder")
    path = folder / "program.json"
    d = load_json(path, PROGRAM_JSON_LIMIT, folder, SpecError, "program.json")
    fmt = d.get("program_format") if isinstance(d, dict) else None
    if fmt != PROGRAM_FORMAT:
        raise SpecError(f"{path}: program_format {fmt!r}, this refq reads {PROGRAM_FORMAT}")
    program = program_from_dict(d, path)
    hashes: dict[str, str] = d["const_sha256"]
    const_names = {n for n, t in program.tensors.items() if t.kind == "const"}
    if set(hashes) != const_names:
        extra, missing = sorted(set(hashes) - const_names), sorted(const_names - set(hashes))
        raise SpecError(f"{path}: at $.const_sha256: must list exactly the declared consts "
                        f"(extra {extra}, missing {missing})")
    for name in sorted(const_names):
        if not _SAFE.match(name):
            raise SpecError(f"{path}: at $.tensors[{name!r}]: const name is not a safe file "
                            "name")
        cpath = folder / "consts" / f"{name}.npy"
        raw = read_bytes(cpath, NPY_LIMIT, folder, SpecError, "constant")
        if sha256_bytes(raw) != hashes[name]:
            raise SpecError(f"{cpath}: sha256 differs from program.json (file modified)")
        arr = parse_npy(raw, str(cpath), error=SpecError)
        if arr.shape != program.tensors[name].shape:
            raise SpecError(f"{cpath}: shape {list(arr.shape)}, declared "
                            f"{list(program.tensors[name].shape)}")
        if arr.dtype.kind == "u" and arr.dtype.itemsize == 8 and arr.size and int(
                arr.max()) >= 1 << 63:
            raise SpecError(f"{cpath}: values beyond int64")
        program.consts[name] = arr.astype("int64")
    check_program(program, path)
    program.source = str(path)
    return program


__all__ = ["PROGRAM_JSON_LIMIT", "load", "program_dict", "save"]
