"""Canonical JSON bytes and file hashes."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any


def json_bytes(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, 2-space indent, ASCII, trailing newline."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True) + "\n").encode()


def sha256_file(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


__all__ = ["json_bytes", "sha256_file"]
