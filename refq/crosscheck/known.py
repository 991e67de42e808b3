"""Known disagreements of a backend: reported as such, never silently skipped.

A known-disagreements file is JSON::

    {"backend": "onnxruntime",
     "disagreements": [
        {"match": "quantize_linear.*", "reason": "ORT rounds ... (issue link)",
         "reproducer": "tests/crosscheck/test_onnxruntime.py::test_..."}
     ]}

``match`` is a glob over suite keys (``op.variant``) and golden case names. A matching
failure is reported ``known``; a matching pass is reported ``fixed?`` so stale entries are
noticed.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refq.errors import BackendError


@dataclass(frozen=True)
class Known:
    match: str
    reason: str
    reproducer: str = ""


def load_known(path: Path | None) -> list[Known]:
    if path is None:
        return []
    try:
        data: Any = json.loads(Path(path).read_text())
    except FileNotFoundError:
        raise BackendError(f"known-disagreements file {path} not found") from None
    except json.JSONDecodeError as exc:
        raise BackendError(f"{path}: not valid JSON ({exc})") from None
    items = data.get("disagreements") if isinstance(data, dict) else None
    if not isinstance(items, list):
        raise BackendError(f"{path}: expected {{'disagreements': [...]}}")
    out = []
    for i, item in enumerate(items):
        if not isinstance(item, dict) or not item.get("match") or not item.get("reason"):
            raise BackendError(f"{path}: disagreement #{i} needs 'match' and 'reason'")
        out.append(Known(str(item["match"]), str(item["reason"]), str(item.get("reproducer", ""))))
    return out


def find_known(known: list[Known], key: str) -> Known | None:
    return next((k for k in known if fnmatch.fnmatchcase(key, k.match)), None)


__all__ = ["Known", "find_known", "load_known"]
