"""Running a sweep plan against its result store: find what is missing, submit it, and
write each result the moment its task ends.

:func:`pending` compares the plan with the store (the cells are recorded first) and lists
the shards without a row and the preps they need — nothing, on a re-run of a finished
sweep. :func:`execute` submits them to an executor (:mod:`refq.dist.executor`): each prep
once, with a small summary task beside it, and every missing shard depending on its prep;
then, as tasks end, one transaction per result (a prep row, a shard row). The process that
runs this is the only writer; workers never touch the database.

An interrupt (Ctrl-C) cancels what is still queued and leaves every finished row in
place: the same command resumes. A task that fails with an exception that is not a
RefqError is reported, not stored, and runs again on the next try.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass, field, replace
from typing import Any

from refq.dist.executor import Executor
from refq.dist.store import Store
from refq.errors import DistError
from refq.sweep.plan import Cell, Plan, PrepJob, ShardJob
from refq.sweep.progress import Progress
from refq.sweep.tasks import evaluate_shard, prepare, summarize, versions


@dataclass
class Work:
    """What is left: the preps to run and the (cell, shard) pairs without a row."""

    preps: list[PrepJob] = field(default_factory=list)
    shards: list[tuple[Cell, ShardJob]] = field(default_factory=list)

    @property
    def tasks(self) -> int:
        return len(self.shards) + len(self.preps)

    @property
    def images(self) -> int:
        return sum(len(s.images) for _, s in self.shards)


@dataclass
class Outcome:
    """What a run did: tasks finished, rows written, failures (not stored)."""

    tasks: int = 0
    rows: int = 0
    failures: list[str] = field(default_factory=list)


def pending(plan: Plan, store: Store) -> Work:
    """Record the plan's cells in ``store`` and list the work still missing."""
    store.add_cells([c.record() for c in plan.cells])
    work = Work()
    lower: dict[str, bool] = {}
    for cell in plan.cells:
        done = store.done_shards(cell.cell)
        missing = [s for s in cell.shards if s.shard not in done]
        if not missing:
            continue
        if cell.prep is not None:
            row = store.prep(cell.prep)
            if row is not None and row["recipe_error"] is not None:
                continue  # refused for good: n/a
            if (cell.mode == "integer" and row is not None and row["lowered"]
                    and row["lowering_error"] is not None):
                continue
            lower[cell.prep] = lower.get(cell.prep, False) or cell.mode == "integer"
        work.shards += [(cell, s) for s in missing]
    work.preps = [replace(plan.preps[p], lower=low) for p, low in lower.items()]
    return work


def check_versions(executor: Executor) -> None:
    """DistError if a worker runs another refq or NumPy than this process."""
    here = versions()
    try:
        there = executor.everywhere(versions)
    except Exception as e:  # e.g. refq missing on a worker: the call cannot unpickle
        raise DistError(f"the workers cannot run refq's tasks: {type(e).__name__}: {e}"
                        ) from None
    bad = {w: v for w, v in there.items() if v != here}
    if bad:
        listed = "; ".join(f"{w}: {v}" for w, v in sorted(bad.items())[:4])
        raise DistError(f"workers run other versions than this process ({here}): {listed}")


def _label(cell: Cell) -> str:
    bits = f" W{cell.w_bits}A{cell.a_bits}" if cell.w_bits is not None else ""
    return f"{cell.model} s{cell.seed} {cell.method}{bits} {cell.mode}"


def execute(work: Work, store: Store, executor: Executor, *, progress: bool = True,
            ) -> Outcome:
    """Run ``work`` on ``executor``, writing rows to ``store`` as tasks end."""
    out = Outcome()
    if not work.tasks:
        return out
    check_versions(executor)
    token = secrets.token_hex(4)
    bar = Progress(work.images, work.tasks, progress)
    kinds: dict[str, tuple[str, Any]] = {}  # task key → ("prep" | "summary", job) or shard
    deps: dict[str, Any] = {}  # prep → its handle, while tasks that need it are left
    left: dict[str, int] = {}  # prep → its summary and shard tasks not finished yet
    failed_preps: set[str] = set()
    try:
        for job in work.preps:
            h = executor.submit(f"refq-prep-{job.prep[:16]}-{token}", prepare, job,
                                priority=10)
            deps[job.prep], kinds[h.key] = h, ("prep", job)
            s = executor.submit(f"refq-summary-{job.prep[:16]}-{token}", summarize, h,
                                priority=10)
            kinds[s.key], left[job.prep] = ("summary", job), 1
        for cell, shard in work.shards:
            h = executor.submit(f"refq-shard-{cell.cell[:16]}-{shard.shard}-{token}",
                                evaluate_shard, shard, deps.get(cell.prep or ""))
            kinds[h.key] = ("shard", (cell, shard))
            if cell.prep is not None:
                left[cell.prep] += 1
        by_cell: dict[str, tuple[Cell, list[ShardJob]]] = {}
        for cell, shard in work.shards:
            by_cell.setdefault(cell.cell, (cell, []))[1].append(shard)
        for key, (cell, jobs) in by_cell.items():
            bar.add_cell(key, _label(cell), sum(len(s.images) for s in jobs), len(jobs))
        for h in executor.completed():
            kind, what = kinds.pop(h.key)
            ok, value = executor.outcome(h, fetch=kind != "prep")
            out.tasks += kind != "summary"
            prep = what.prep if kind != "shard" else what[0].prep
            if kind == "prep":
                if not ok:
                    failed_preps.add(what.prep)
                    out.failures.append(f"prep {what.method} W{what.w_bits}A{what.a_bits} "
                                        f"({what.source.label}, seed {what.seed}) FAILED: "
                                        f"{type(value).__name__}: {value}")
                bar.task()
                continue
            if kind == "summary":
                if ok:
                    store.put_prep(value)
            else:
                cell, shard = what
                if ok and value is not None:
                    out.rows += int(store.put_row(value))
                elif not ok and cell.prep not in failed_preps:
                    out.failures.append(f"shard {shard.shard} of {_label(cell)} FAILED: "
                                        f"{type(value).__name__}: {value}")
                bar.task(cell.cell, len(shard.images))
            if prep is not None:
                left[prep] -= 1
                if left[prep] == 0:  # nothing needs the spec and program any more
                    executor.release(deps.pop(prep))
    except BaseException:
        executor.cancel()
        raise
    finally:
        bar.close()
    return out


__all__ = ["Outcome", "Work", "check_versions", "execute", "pending"]

