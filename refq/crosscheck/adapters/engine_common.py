"""Plumbing shared by the engine backends (litert, torch-native): a backend that runs every
member engine and returns their common answer, and the exact synthesis of integer GEMM
accumulators from 8-bit operands (how a requantize case, or an int32 bias, is fed to an
engine that only takes 8-bit GEMM inputs).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, Protocol

import numpy as np
import numpy.typing as npt

from refq.crosscheck.backend import Outputs, SuiteExtras
from refq.errors import BackendError
from refq.golden.case import Case


class _Member(Protocol):
    name: str

    def supports(self, case: Case) -> bool: ...

    def run(self, case: Case) -> Outputs: ...


class AllAgree:
    """A backend made of member backends (e.g. one engine each): ``run`` runs the case on
    every member that supports it and returns their common outputs; members that disagree
    with each other raise BackendError naming each member's first differing value, so the
    suite reports the case (as an error, or as a known case) instead of picking a winner.
    Supported when at least one member supports the case."""

    def __init__(
        self, name: str, members: Sequence[_Member],
        extras: Callable[[], SuiteExtras] | None = None,
    ) -> None:
        if not members:
            raise BackendError(f"{name}: no member backends")
        self.name = name
        self.members = list(members)
        self._extras = extras

    def suite_extras(self) -> SuiteExtras:
        """The members' suite additions (given by the factory), or none."""
        return self._extras() if self._extras is not None else SuiteExtras()

    def supports(self, case: Case) -> bool:
        return any(m.supports(case) for m in self.members)

    def run(self, case: Case) -> Outputs:
        results = [(m.name, m.run(case)) for m in self.members if m.supports(case)]
        if not results:
            raise BackendError(f"{self.name}: no member supports case {case.name}")
        first_name, first = results[0]
        for name, out in results[1:]:
            for key, value in first.items():
                other = np.asarray(out.get(key))
                mine = np.asarray(value)
                if other.shape != mine.shape or not np.array_equal(other, mine):
                    idx = _first_difference(mine, other)
                    raise BackendError(
                        f"{self.name}: members disagree on {key!r}: {first_name} and {name} "
                        f"differ at {idx} ({_at(mine, idx)} vs {_at(other, idx)}); run them "
                        "one by one to see which agrees with refq"
                    )
        return first


def _first_difference(a: npt.NDArray[Any], b: npt.NDArray[Any]) -> tuple[int, ...] | str:
    if a.shape != b.shape:
        return f"shape {a.shape} vs {b.shape}"
    return tuple(int(i) for i in np.argwhere(a != b)[0])


def _at(a: npt.NDArray[Any], idx: tuple[int, ...] | str) -> object:
    return a[idx].item() if isinstance(idx, tuple) else a.shape


def solve_columns(
    targets: Sequence[int], steps: Sequence[int], lo: int, hi: int
) -> tuple[npt.NDArray[np.int64], npt.NDArray[np.int64]] | None:
    """Integer columns reaching each target exactly: (e, d) with e (T × C) in [lo, hi]
    (lo <= 0 <= hi) and d (C,) drawn from ``steps``, such that e @ d == targets — or None
    where the greedy fill cannot reach some target (e.g. every available step and
    coefficient sign pushes the wrong way).

    Greedy per target: for each step in the order given, as many full columns of the
    largest useful coefficient as fit, then one partial column; whatever remains goes to
    the next step (put ±1 last to finish any target). The columns of one step form a group
    as wide as the widest need of any target; other targets put 0 there. Used to synthesize
    GEMM accumulators exactly: d as one operand's fixed zero-point-corrected values, e as
    the other operand's, Σ_c e·d is the accumulator (an int32 bias, or a requantize input).
    """
    if lo > 0 or hi < 0:
        return None
    # per target and step: (number of full columns, their coefficient, partial coefficient)
    plans: list[list[tuple[int, int, int]]] = []
    for t in targets:
        rest = int(t)
        plan: list[tuple[int, int, int]] = []
        for d in steps:
            n_full, e_best, partial = 0, 0, 0
            if d != 0 and rest != 0:
                e_best = hi if (d > 0) == (rest > 0) else lo  # moves rest toward 0 fastest
                step = d * e_best
                if step != 0:
                    n_full = abs(rest) // abs(step)
                    rest -= n_full * step
                    partial = (abs(rest) // abs(d)) * (1 if (d > 0) == (rest > 0) else -1)
                    rest -= partial * d
            plan.append((n_full, e_best, partial))
        if rest != 0:
            return None
        plans.append(plan)
    widths = [max((p[k][0] + (p[k][2] != 0) for p in plans), default=0)
              for k in range(len(steps))]
    if sum(widths) == 0:  # every target 0: one zero column keeps the GEMM non-empty
        widths = [1] + [0] * (len(steps) - 1)
    e = np.zeros((len(plans), sum(widths)), dtype=np.int64)
    for i, plan in enumerate(plans):
        col = 0
        for k, (n_full, e_best, partial) in enumerate(plan):
            e[i, col : col + n_full] = e_best
            if partial:
                e[i, col + n_full] = partial
            col += widths[k]
    d_col = np.repeat(np.asarray(steps, dtype=np.int64), widths)
    return e, d_col


__all__ = ["AllAgree", "solve_columns"]
