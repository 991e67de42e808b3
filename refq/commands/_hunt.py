"""``refq check --workers N / --scheduler ADDRESS``: one long hypothesis hunt split by seed
over a Dask cluster, the parts' reports merged into one.

Part k runs the generated cases of every selected op with hypothesis seed ``seed + k`` and
⌈examples / parts⌉ examples per op (the golden cases, if any, run once, in part 0); each
part writes its shrunk failing cases under ``ARTIFACTS/seed-<seed + k>/``. The merged
report has one line per op: its examples summed over the parts, "pass" when every part
passed; every part that failed adds its own line (``op [seed s]``) with its minimal example,
the folder of the shrunk case and the replay command.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

from refq.crosscheck.report import Entry, SuiteReport

_BAD = ("fail", "error")


def hunt_part(backend_spec: str, ops: list[str] | None, examples: int, seed: int,
              golden: str | None, known: str | None, artifacts: str,
              generated: bool, extras: bool = True, first: bool = True) -> SuiteReport:
    """One part of a split hunt (a task run by a worker). With ``extras`` the backend's own
    strategies and known file apply as in ``refq check`` (its regression cases run in the
    ``first`` part only)."""
    from refq.crosscheck import load_backend, run_suite
    from refq.crosscheck.backend import extras_of

    backend = load_backend(backend_spec)
    ex = extras_of(backend) if extras else None
    known_arg: Any = Path(known) if known else (list(ex.known) if ex else None)
    return run_suite(backend, ops=ops, examples=examples,
                     golden=Path(golden) if golden else None,
                     known=known_arg,
                     artifacts=Path(artifacts) / f"seed-{seed}", generated=generated,
                     backend_spec=backend_spec, seed=seed,
                     extra_strategies=ex.strategies if ex else None,
                     regressions=ex.regressions if ex and first else None)


def merge(backend: str, parts: list[tuple[int, SuiteReport]]) -> SuiteReport:
    """One report from the parts' reports (see the module docstring)."""
    keys: dict[tuple[str, str], list[tuple[int, Entry]]] = {}
    for seed, rep in sorted(parts, key=lambda p: p[0]):
        for e in rep.entries:
            keys.setdefault((e.source, e.key), []).append((seed, e))
    out = SuiteReport(backend)
    for (source, key), entries in keys.items():
        ran = [(s, e) for s, e in entries if e.status != "skip"]
        if not ran:
            out.entries.append(entries[0][1])
            continue
        bad = [(s, e) for s, e in ran if e.status in _BAD]
        statuses = {e.status for _, e in ran}
        if bad:
            status = "fail"
        elif "known" in statuses:
            status = "known"
        elif statuses == {"fixed?"}:
            status = "fixed?"
        else:
            status = "pass"
        first = ran[0][1]
        merged = Entry(key, source, status, sum(e.examples for _, e in ran),
                       reason=first.reason if status in ("known", "fixed?") else "")
        if bad:
            merged.error = (f"failed in {len(bad)} of {len(ran)} seeds: "
                            f"{', '.join(str(s) for s, _ in bad)}")
        out.entries.append(merged)
        for s, e in bad:
            e.key = f"{key} [seed {s}]"
            out.entries.append(e)
    return out


def split_hunt(args: Any) -> SuiteReport:
    """Run ``refq check``'s hunt as parts on the cluster of ``--workers``/``--scheduler``."""
    from refq.dist import DaskExecutor, open_cluster
    from refq.errors import SpecError

    if args.workers is not None and args.workers < 1:
        raise SpecError(f"--workers must be >= 1, got {args.workers}")
    if args.examples < 1:
        raise SpecError(f"--examples must be >= 1, got {args.examples}")
    ops = [p.strip() for p in args.ops.split(",")] if args.ops else None
    artifacts = str(Path(args.artifacts).resolve())
    with open_cluster(args.workers, args.scheduler) as cluster:
        n_workers = max(1, len(cluster.client.scheduler_info().get("workers", {})))
        parts = args.seeds or n_workers
        if parts < 1:
            raise SpecError(f"--seeds must be >= 1, got {parts}")
        per_part = math.ceil(args.examples / parts)
        print(f"hunt: {parts} parts × {per_part} examples per op, seeds {args.seed}.."
              f"{args.seed + parts - 1}, on {cluster.description}; dashboard "
              f"{cluster.dashboard}")
        ex = DaskExecutor(cluster.client, cluster.description)
        seeds = {}
        for k in range(parts):
            seed = args.seed + k
            h = ex.submit(f"refq-hunt-{seed}", hunt_part, args.backend, ops, per_part, seed,
                          str(args.golden.resolve()) if args.golden and k == 0 else None,
                          str(args.known.resolve()) if args.known else None, artifacts,
                          not args.no_generated, not args.no_extras, k == 0)
            seeds[h.key] = seed
        done: list[tuple[int, SuiteReport]] = []
        for h in ex.completed():
            ok, value = ex.outcome(h)
            if not ok:
                raise value
            done.append((seeds[h.key], value))
    return merge(f"{done[0][1].backend} (split over {parts} seeds)", done)


__all__ = ["hunt_part", "merge", "split_hunt"]
