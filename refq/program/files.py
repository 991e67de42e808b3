"""Program files: ``program.json`` (canonical JSON: declarations, ops, meta, and the sha256
of every constant) plus ``consts/<name>.npy`` (deterministic, pickle-free). Loading checks
the format version, every hash, every declaration and the op graph, so a tampered or
truncated program fails with a SpecError naming what is wrong."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

from refq._version import __version__
from refq.errors import RefqError, SpecError
from refq.files import atomic_folder, json_bytes, npy_bytes, read_npy, sha256_file
from refq.program.ir import PROGRAM_FORMAT, Op, Program, TensorDecl

_SAFE = re.compile(r"^[A-Za-z0-9_.@\-]+$")


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
            path = tmp / "consts" / f"{name}.npy"
            path.write_bytes(npy_bytes(program.consts[name]))
            hashes[name] = sha256_file(path)
        d = program_dict(program)
        d["const_sha256"] = hashes
        (tmp / "program.json").write_bytes(json_bytes(d))


def load(folder: Path) -> Program:
    """Read and validate a program folder."""
    folder = Path(folder)
    path = folder / "program.json"
    try:
        d = json.loads(path.read_text())
    except FileNotFoundError:
        raise SpecError(f"{path}: missing — not a program folder") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise SpecError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(d, dict) or d.get("program_format") != PROGRAM_FORMAT:
        raise SpecError(
            f"{path}: program_format {d.get('program_format') if isinstance(d, dict) else None!r}, "
            f"this refq reads {PROGRAM_FORMAT}"
        )
    try:
        program = Program(
            str(d["name"]),
            {n: TensorDecl.from_dict(n, t) for n, t in d["tensors"].items()},
            {},
            [Op.from_dict(i, o) for i, o in enumerate(d["ops"])],
            [str(v) for v in d["inputs"]],
            [str(v) for v in d["outputs"]],
            dict(d["meta"]),
        )
        hashes: dict[str, str] = dict(d["const_sha256"])
    except (KeyError, TypeError, AttributeError) as exc:
        raise SpecError(f"{path}: malformed ({exc})") from None
    const_names = {n for n, t in program.tensors.items() if t.kind == "const"}
    if set(hashes) != const_names:
        raise SpecError(f"{path}: const_sha256 does not list exactly the declared consts")
    for name in sorted(const_names):
        if not _SAFE.match(name):
            raise SpecError(f"{path}: const name {name!r} is not a safe file name")
        cpath = folder / "consts" / f"{name}.npy"
        if not cpath.is_file():
            raise SpecError(f"{cpath}: missing")
        if sha256_file(cpath) != hashes[name]:
            raise SpecError(f"{cpath}: sha256 differs from program.json (file modified)")
        try:
            program.consts[name] = read_npy(cpath).astype("int64")
        except RefqError as exc:
            raise SpecError(str(exc)) from None
    program.validate()
    return program


__all__ = ["load", "program_dict", "save"]
