"""The case registry: every golden case by stable name, with its kind and seed.

Case modules register builders with :func:`register`; :func:`cases` imports them on first
use. A builder takes the seed and returns a :class:`~refq.golden.case.Case`; the same seed
must give the same case on every platform.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from refq.errors import GoldenError
from refq.golden.case import Case

CASE_MODULES = (
    "refq.golden.cases_requantize",
    "refq.golden.cases_kernels",
    "refq.golden.cases_program",
)


@dataclass(frozen=True)
class CaseEntry:
    name: str
    kind: str
    seed: int
    build: Callable[[int], Case]
    description: str

    def make(self) -> Case:
        case = self.build(self.seed)
        if (case.name, case.kind, case.seed) != (self.name, self.kind, self.seed):
            raise GoldenError(f"builder of {self.name} returned case {case.name}/{case.seed}")
        return case


_REGISTRY: dict[str, CaseEntry] = {}


def register(
    name: str, kind: str, seed: int, description: str = ""
) -> Callable[[Callable[[int], Case]], Callable[[int], Case]]:
    def deco(fn: Callable[[int], Case]) -> Callable[[int], Case]:
        if name in _REGISTRY:
            raise GoldenError(f"golden case {name} registered twice")
        _REGISTRY[name] = CaseEntry(name, kind, seed, fn, description or (fn.__doc__ or "").strip())
        return fn

    return deco


def cases() -> dict[str, CaseEntry]:
    """All registered cases, by name (sorted)."""
    for module in CASE_MODULES:
        importlib.import_module(module)
    return dict(sorted(_REGISTRY.items()))


def select(patterns: str | None) -> list[CaseEntry]:
    """Cases whose name matches any of the comma-separated glob ``patterns`` (all if None)."""
    table = cases()
    if not patterns:
        return list(table.values())
    pats = [p.strip() for p in patterns.split(",") if p.strip()]
    chosen = [e for n, e in table.items() if any(fnmatch.fnmatchcase(n, p) for p in pats)]
    if not chosen:
        raise GoldenError(f"no golden case matches {patterns!r}; `refq golden list` shows them")
    return chosen


def lookup(name: str) -> CaseEntry:
    table = cases()
    if name not in table:
        raise GoldenError(f"unknown golden case {name!r} (not in this refq's registry)")
    return table[name]


__all__ = ["CASE_MODULES", "CaseEntry", "cases", "lookup", "register", "select"]
