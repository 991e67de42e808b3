"""MANIFEST.json: the sha256 of every file of a golden set, checked before any file is
trusted."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from refq._version import __version__
from refq.errors import GoldenError
from refq.files import json_bytes, load_json, read_bytes, require_folder
from refq.files.safe import MiB, member
from refq.files.schema import validate
from refq.golden.schema import GOLDEN_FORMAT, MANIFEST_SCHEMA

if TYPE_CHECKING:
    from refq.golden.case import Case

MANIFEST_LIMIT = 64 * MiB
FILE_LIMIT = 4096 * MiB

MANIFEST = "MANIFEST.json"
UNLISTED = {MANIFEST, "README.md"}
"""Top-level files outside the manifest: the manifest itself and a human README."""


def sha256(path: Path, root: Path | None = None) -> str:
    """sha256 of the regular file ``path`` (inside ``root`` if given)."""
    return hashlib.sha256(read_bytes(path, FILE_LIMIT, root, GoldenError, "golden file")
                          ).hexdigest()


def _walk(root: Path) -> tuple[set[str], list[str]]:
    """(relative paths of the regular files under ``root`` outside :data:`UNLISTED`,
    problems with the entries that are not: links, FIFOs, devices). Links are not
    followed."""
    files: set[str] = set()
    problems: list[str] = []
    for dirpath, dirs, names in os.walk(root, followlinks=False):
        base = Path(dirpath)
        for name in sorted(names) + [d for d in dirs if (base / d).is_symlink()]:
            p = base / name
            rel = p.relative_to(root).as_posix()
            if rel in UNLISTED:
                continue
            mode = os.lstat(p).st_mode
            if stat.S_ISREG(mode):
                files.add(rel)
            else:
                kind = "a link" if stat.S_ISLNK(mode) else "not a regular file"
                problems.append(f"{rel}: {kind}; a golden set holds regular files only")
    return files, problems


def build_manifest(root: Path, cases: dict[str, str]) -> dict[str, Any]:
    """The manifest of every file under ``root`` (``cases`` maps case name → kind).

    The generating versions recorded are refq's and the golden layout's; NumPy's and
    Python's are deliberately not recorded, because the bytes must not depend on them.
    """
    present, problems = _walk(root)
    if problems:
        raise GoldenError(f"{root}: {problems[0]}")
    files = {rel: sha256(root / rel, root) for rel in sorted(present)}
    return {
        "golden_format": GOLDEN_FORMAT,
        "generated_by": f"refq {__version__}",
        "cases": dict(sorted(cases.items())),
        "files": files,
    }


def write_manifest(root: Path, cases: dict[str, str]) -> None:
    (root / MANIFEST).write_bytes(json_bytes(build_manifest(root, cases)))


def read_manifest(root: Path) -> dict[str, Any]:
    """The set's MANIFEST.json, checked against its declared schema
    (:data:`refq.golden.schema.MANIFEST_SCHEMA`); GoldenError naming the file and JSON
    path (a folder that is no golden set, or a file, is an error too)."""
    root = require_folder(root, GoldenError, "golden set folder")
    path = root / MANIFEST
    if not os.path.lexists(path):
        raise GoldenError(f"{path}: missing — not a golden set")
    m = load_json(path, MANIFEST_LIMIT, root, GoldenError, MANIFEST)
    if not isinstance(m, dict) or m.get("golden_format") != GOLDEN_FORMAT:
        got = m.get("golden_format") if isinstance(m, dict) else None
        raise GoldenError(f"{path}: golden_format {got!r}, this refq reads {GOLDEN_FORMAT}")
    validate(MANIFEST_SCHEMA, m, path, GoldenError)
    for rel in m["files"]:
        member(root, rel, GoldenError)
        case = rel.split("/", 1)[0]
        if "/" not in rel or case not in m["cases"]:
            raise GoldenError(f"{path}: at $.files[{rel!r}]: not a file of a listed case")
    return m


def check_files(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with the files of ``root`` against ``manifest``: each names the file."""
    listed: dict[str, str] = manifest["files"]
    present, problems = _walk(root)
    for rel in sorted(set(listed) - present):
        if not any(p.startswith(f"{rel}:") for p in problems):
            problems.append(f"{rel}: listed in {MANIFEST} but missing")
    for rel in sorted(present - set(listed)):
        problems.append(f"{rel}: present but not listed in {MANIFEST}")
    for rel in sorted(set(listed) & present):
        try:
            digest = sha256(root / rel, root)
        except GoldenError as exc:
            problems.append(f"{rel}: {exc}")
            continue
        if digest != listed[rel]:
            problems.append(f"{rel}: sha256 differs from {MANIFEST} (file modified)")
    return problems


__all__ = ["MANIFEST", "build_manifest", "check_files", "read_manifest", "sha256", "write_case_set",
           "write_manifest"]


def write_case_set(folder: Path, cases: Sequence[Case]) -> list[str]:
    """Write ``cases`` as a golden set in the new folder ``folder`` (one case folder each,
    then MANIFEST.json); their names."""
    from refq.golden.case import write_case  # case.py loads the registry: only when writing

    folder.mkdir(parents=True, exist_ok=False)
    for c in cases:
        write_case(c, folder / c.name)
    write_manifest(folder, {c.name: c.kind for c in cases})
    return [c.name for c in cases]

