"""Shared timing helper for the benchmarks in tools/bench.

Candidates are timed round-robin (one call of each per round), so drifts of machine load
affect all of them alike; the reported time is each candidate's median over the rounds.
"""

from __future__ import annotations

import argparse
import contextlib
import statistics
import time
from collections.abc import Callable, Mapping


def interleaved_medians(
    candidates: Mapping[str, Callable[[], object]],
    rounds: int,
    warmup: int = 2,
    clock: Callable[[], float] = time.perf_counter,
) -> dict[str, float]:
    """Median seconds per call of each candidate, timed round-robin over ``rounds`` with
    ``clock`` (wall: ``time.perf_counter``; CPU of this process: ``time.process_time``)."""
    for fn in candidates.values():
        for _ in range(warmup):
            fn()
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(rounds):
        for name, fn in candidates.items():
            t0 = clock()
            fn()
            times[name].append(clock() - t0)
    return {name: statistics.median(ts) for name, ts in times.items()}


def blas_limit(threads: int | None) -> contextlib.AbstractContextManager[object]:
    """At most ``threads`` BLAS threads inside the ``with`` block (None: unchanged; needs
    threadpoolctl otherwise)."""
    if threads is None:
        return contextlib.nullcontext()
    from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]

    limit: contextlib.AbstractContextManager[object] = threadpool_limits(threads)
    return limit


def add_timing_arguments(parser: argparse.ArgumentParser) -> None:
    """``--threads T`` (BLAS threads for every candidate alike) and ``--cpu`` (time with the
    process CPU time instead of the wall clock)."""
    parser.add_argument("--threads", type=int, default=None, help="BLAS threads (default: all)")
    parser.add_argument("--cpu", action="store_true", help="time with process CPU time")


def chosen_clock(args: argparse.Namespace) -> Callable[[], float]:
    """The clock ``--cpu`` selects: ``time.process_time`` or ``time.perf_counter``."""
    return time.process_time if args.cpu else time.perf_counter


def timing_summary(args: argparse.Namespace) -> str:
    """The line a benchmark prints last: BLAS threads and clock used."""
    return f"BLAS threads: {args.threads or 'default'}; clock: {'cpu' if args.cpu else 'wall'}"
