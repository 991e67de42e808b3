"""Known disagreements of a backend: reported as such, never silently skipped.

A known-disagreements file is JSON::

    {"backend": "onnxruntime",
     "disagreements": [
        {"match": "quantize_linear.*", "reason": "ORT rounds ... (issue link)",
         "reproducer": "tests/crosscheck/test_onnxruntime.py::test_..."}
     ]}

``match`` is a glob over suite keys (``op.variant``) and golden case names. A matching
failure is reported ``known``; a matching pass is reported ``fixed?`` so stale entries are
noticed. An optional ``engines`` list names the members of a multi-engine backend (e.g. the
torch-native engines, the LiteRT resolvers) the entry applies to; without it the entry
applies to every member (:func:`for_engine`). An optional ``when`` condition says on which
CPUs the disagreement exists, as data (:mod:`refq.crosscheck.cpu`)::

    "when": {"cpu_lacks": ["avx512_vnni", "avx_vnni"]}     # every listed flag absent
    "when": {"cpu_has": ["avx2"]}                           # every listed flag present

:func:`load_known` keeps only the entries whose condition holds on the CPU (this machine's
flags by default; where they cannot be read every entry is kept), so a case that saturates
only without VNNI is expected to agree, and fails if it does not, on a CPU with VNNI.
Unknown keys in an entry are errors.
"""

from __future__ import annotations

import fnmatch
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refq.crosscheck.cpu import check_condition, condition_holds, cpu_flags
from refq.errors import BackendError

_KEYS = {"match", "reason", "reproducer", "engines", "when"}
_UNSET: Any = object()


@dataclass(frozen=True)
class Known:
    match: str
    reason: str
    reproducer: str = ""
    engines: tuple[str, ...] = ()
    when: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def holds(self, flags: frozenset[str] | None) -> bool:
        """Whether the entry's CPU condition holds for ``flags`` (always, without one)."""
        return condition_holds(dict(self.when), flags)


def load_known(path: Path | None, cpu: frozenset[str] | None = _UNSET) -> list[Known]:
    """The entries of a known-disagreements file whose CPU condition holds for ``cpu``
    (default: this machine's flags, :func:`refq.crosscheck.cpu.cpu_flags`; None: unknown,
    every entry kept)."""
    if path is None:
        return []
    flags = cpu_flags() if cpu is _UNSET else cpu
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
        unknown = set(item) - _KEYS
        if unknown:
            raise BackendError(f"{path}: disagreement #{i}: unknown keys {sorted(unknown)}")
        engines = item.get("engines", [])
        if not isinstance(engines, list) or not all(isinstance(e, str) for e in engines):
            raise BackendError(f"{path}: disagreement #{i}: 'engines' must be a list of names")
        when = check_condition(item.get("when", {}), f"{path}: disagreement #{i}")
        entry = Known(str(item["match"]), str(item["reason"]), str(item.get("reproducer", "")),
                      tuple(engines), tuple(sorted(when.items())))
        if entry.holds(flags):
            out.append(entry)
    return out


def for_engine(known: list[Known], engine: str | None) -> list[Known]:
    """The entries that apply to member ``engine`` (all of them for None)."""
    if engine is None:
        return list(known)
    return [k for k in known if not k.engines or engine in k.engines]


def find_known(known: list[Known], key: str) -> Known | None:
    return next((k for k in known if fnmatch.fnmatchcase(key, k.match)), None)


__all__ = ["Known", "find_known", "for_engine", "load_known"]
