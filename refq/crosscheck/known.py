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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refq.crosscheck.cpu import CONDITION_KEYS, check_condition, condition_holds, cpu_flags
from refq.errors import BackendError
from refq.files import load_json
from refq.files.safe import MiB
from refq.files.schema import Arr, Obj, Str, validate

ENTRY = Obj({
    "match": Str(pattern=r".+", max_len=512, what="a non-empty glob over suite keys and "
                 "golden case names"),
    "reason": Str(pattern=r"(.|\n)+", what="a non-empty explanation"),
    "reproducer": Str(pattern=r"(.|\n)+", what="a test, case or command that shows it"),
}, {"engines": Arr(Str(pattern=r".+", max_len=256, what="a non-empty engine name"),
                   doc="the members of a multi-engine backend the entry applies to "
                   "(absent: every member)"),
    "when": Obj({}, {key: Arr(Str(pattern=r".+", max_len=64, what="a CPU flag name"), lo=1)
                     for key in CONDITION_KEYS},
                title="CPU condition", doc="cpu_has: every listed flag present; cpu_lacks: "
                "every listed flag absent (absent: on every CPU)"),
    }, title="known disagreement")
KNOWN_SCHEMA = Obj({
    "backend": Str(max_len=256, doc="the backend the entries are about"),
    "disagreements": Arr(ENTRY),
}, {"machine": Str(doc="where the disagreements were measured (information)")},
    title="refq known-disagreements file")
"""A known-disagreements file (``--known``)."""

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
    """The entries of a known-disagreements file, checked against :data:`KNOWN_SCHEMA`
    (BackendError naming the file and JSON path), whose CPU condition holds for ``cpu``
    (default: this machine's flags, :func:`refq.crosscheck.cpu.cpu_flags`; None: unknown,
    every entry kept)."""
    if path is None:
        return []
    flags = cpu_flags() if cpu is _UNSET else cpu
    data: Any = load_json(path, 16 * MiB, None, BackendError, "known-disagreements file")
    validate(KNOWN_SCHEMA, data, path, BackendError)
    out = []
    seen: dict[tuple[Any, ...], int] = {}
    for i, item in enumerate(data["disagreements"]):
        when = check_condition(item.get("when", {}), f"{path}: at $.disagreements[{i}]")
        entry = Known(item["match"], item["reason"], item["reproducer"],
                      tuple(item.get("engines", ())), tuple(sorted(when.items())))
        key = (entry.match, entry.engines, entry.when)
        if key in seen:
            raise BackendError(f"{path}: at $.disagreements[{i}].match: {entry.match!r} is "
                               f"already entry {seen[key]}'s (same engines and condition)")
        seen[key] = i
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


__all__ = ["ENTRY", "KNOWN_SCHEMA", "Known", "find_known", "for_engine", "load_known"]
