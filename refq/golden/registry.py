"""The case registry: every golden case by stable name, with its kind and seed.

Case modules register builders with :func:`register`; :func:`cases` imports them on first
use. A builder takes the seed and returns a :class:`~refq.golden.case.Case`; the same seed
must give the same case on every platform.

Registered is not committed: an entry with ``committed=False`` (an *extended* case) is as
reproducible and verifiable as any other, but the default selection — ``generate(out)``,
``refq golden generate`` without ``--only``/``--all``, the committed ``golden/`` — leaves it
out (golden/ must stay within 22 MiB). A pattern (``--only``) matches over every
registered case, committed or not.
"""

from __future__ import annotations

import fnmatch
import importlib
from collections.abc import Callable
from dataclasses import dataclass

from refq.errors import GoldenError
from refq.golden.case import Case

CASE_MODULES = (
    "refq.golden.cases_kernels",
    "refq.golden.cases_program",
    "refq.golden.cases_hls4ml",
    "refq.golden.cases_method_programs",
    "refq.golden.cases_swin",
    "refq.golden.cases_corners",
)


@dataclass(frozen=True)
class CaseEntry:
    name: str
    kind: str
    seed: int
    build: Callable[[int], Case]
    description: str
    committed: bool = True
    """Part of the default selection (the committed golden/ set); False: extended case,
    generated only on request (a pattern, or ``include_extended``)."""

    def make(self) -> Case:
        case = self.build(self.seed)
        if (case.name, case.kind, case.seed) != (self.name, self.kind, self.seed):
            raise GoldenError(f"builder of {self.name} returned case {case.name}/{case.seed}")
        return case


_REGISTRY: dict[str, CaseEntry] = {}
_SOURCES: list[Callable[[], list[CaseEntry]]] = []
"""Functions deriving cases from another registry on every :func:`cases` call (the kernel
cases of :mod:`refq.golden.cases_kernels` come from the variant registry of refq.ops)."""


def register(
    name: str, kind: str, seed: int, description: str = "", committed: bool = True
) -> Callable[[Callable[[int], Case]], Callable[[int], Case]]:
    """Register the builder of case ``name``; ``committed=False`` for an extended case
    (registered and verifiable, not part of the default selection / golden/)."""

    def deco(fn: Callable[[int], Case]) -> Callable[[int], Case]:
        if name in _REGISTRY:
            raise GoldenError(f"golden case {name} registered twice")
        _REGISTRY[name] = CaseEntry(
            name, kind, seed, fn, description or (fn.__doc__ or "").strip(), committed
        )
        return fn

    return deco


def register_source(source: Callable[[], list[CaseEntry]]) -> Callable[[], list[CaseEntry]]:
    """Add a function whose entries join the registered cases on every :func:`cases` call
    (names must not clash: GoldenError)."""
    if source not in _SOURCES:
        _SOURCES.append(source)
    return source


def cases() -> dict[str, CaseEntry]:
    """All registered cases, by name (sorted): those registered by the case modules and
    those derived by the registered sources."""
    for module in CASE_MODULES:
        importlib.import_module(module)
    table = dict(_REGISTRY)
    for source in _SOURCES:
        for entry in source():
            if entry.name in table:
                raise GoldenError(f"golden case {entry.name} registered twice")
            table[entry.name] = entry
    return dict(sorted(table.items()))


def select(patterns: str | None, include_extended: bool = False) -> list[CaseEntry]:
    """Cases whose name matches any of the comma-separated glob ``patterns``, searched over
    EVERY registered case (committed or extended); without patterns, the committed cases —
    plus the extended ones if ``include_extended``. Sorted by name."""
    table = cases()
    if not patterns:
        return [e for e in table.values() if e.committed or include_extended]
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


__all__ = ["CASE_MODULES", "CaseEntry", "cases", "lookup", "register", "register_source", "select"]
