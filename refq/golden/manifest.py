"""MANIFEST.json: the sha256 of every file of a golden set, checked before any file is
trusted."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from refq._version import __version__
from refq.errors import GoldenError
from refq.files import json_bytes
from refq.golden.case import GOLDEN_FORMAT

MANIFEST = "MANIFEST.json"
UNLISTED = {MANIFEST, "README.md"}
"""Top-level files outside the manifest: the manifest itself and a human README."""


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build_manifest(root: Path, cases: dict[str, str]) -> dict[str, Any]:
    """The manifest of every file under ``root`` (``cases`` maps case name → kind).

    The generating versions recorded are refq's and the golden layout's; NumPy's and
    Python's are deliberately not recorded, because the bytes must not depend on them.
    """
    files = {
        p.relative_to(root).as_posix(): sha256(p)
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.relative_to(root).as_posix() not in UNLISTED
    }
    return {
        "golden_format": GOLDEN_FORMAT,
        "generated_by": f"refq {__version__}",
        "cases": dict(sorted(cases.items())),
        "files": files,
    }


def write_manifest(root: Path, cases: dict[str, str]) -> None:
    (root / MANIFEST).write_bytes(json_bytes(build_manifest(root, cases)))


def read_manifest(root: Path) -> dict[str, Any]:
    path = root / MANIFEST
    try:
        m = json.loads(path.read_text())
    except FileNotFoundError:
        raise GoldenError(f"{path}: missing — not a golden set") from None
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GoldenError(f"{path}: not valid JSON ({exc})") from None
    if not isinstance(m, dict) or not isinstance(m.get("files"), dict):
        raise GoldenError(f"{path}: malformed (no 'files' table)")
    if m.get("golden_format") != GOLDEN_FORMAT:
        raise GoldenError(
            f"{path}: golden_format {m.get('golden_format')!r}, this refq reads {GOLDEN_FORMAT}"
        )
    if not isinstance(m.get("cases"), dict):
        raise GoldenError(f"{path}: malformed (no 'cases' table)")
    return m


def check_files(root: Path, manifest: dict[str, Any]) -> list[str]:
    """Problems with the files of ``root`` against ``manifest``: each names the file."""
    problems = []
    listed: dict[str, str] = manifest["files"]
    present = {
        p.relative_to(root).as_posix()
        for p in root.rglob("*")
        if p.is_file() and p.relative_to(root).as_posix() not in UNLISTED
    }
    for rel in sorted(set(listed) - present):
        problems.append(f"{rel}: listed in {MANIFEST} but missing")
    for rel in sorted(present - set(listed)):
        problems.append(f"{rel}: present but not listed in {MANIFEST}")
    for rel in sorted(set(listed) & present):
        if sha256(root / rel) != listed[rel]:
            problems.append(f"{rel}: sha256 differs from {MANIFEST} (file modified)")
    return problems


__all__ = ["MANIFEST", "build_manifest", "check_files", "read_manifest", "sha256", "write_manifest"]
