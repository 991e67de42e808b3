"""Dask clusters: start an embedded LocalCluster or attach to a running scheduler.

Dask (``dask.distributed``) is the optional extra ``dist``; it is imported only here, and
only when a cluster is asked for. Without it :func:`import_distributed` raises a DistError
that says how to install it.

LocalCluster workers are processes with one thread each (refq's work is NumPy/BLAS bound
and holds the GIL between calls); each worker's BLAS uses ``blas_threads`` threads
(default 1), set through the worker processes' environment before NumPy loads there.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import signal
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from refq.errors import DistError

INSTALL = "pip install 'refq[dist]'"
_BLAS_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
             "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")


def import_distributed() -> Any:
    """The ``distributed`` module; DistError asking for the ``dist`` extra if missing."""
    try:
        import distributed
    except ImportError as e:
        raise DistError(f"Dask is not installed ({e}): {INSTALL}; or run in this process "
                        "without a cluster (--workers 0)") from None
    return distributed


def machine_workers() -> int:
    """Workers of a LocalCluster sized to this machine: the CPUs this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:  # not on Linux
        return max(1, os.cpu_count() or 1)


@dataclass
class Cluster:
    """An open connection: the Dask ``client``, a description, and the dashboard link."""

    client: Any
    description: str
    dashboard: str


def dashboard_note(link: str) -> str:
    """The dashboard link, with what serving it needs when bokeh is missing."""
    if importlib.util.find_spec("bokeh") is None:
        return f"{link} (served only with bokeh installed: pip install 'bokeh>=3.1')"
    return link


@contextmanager
def _sigint_ignored() -> Iterator[None]:
    """SIGINT ignored while worker processes start, so they inherit "ignore": a Ctrl-C at
    the terminal then interrupts the sweep (which shuts its cluster down) instead of every
    worker printing a KeyboardInterrupt. Only in the main thread (where signals live)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


@contextmanager
def open_cluster(workers: int | None = None, scheduler: str | None = None,
                 blas_threads: int | None = None, timeout: float = 30.0) -> Iterator[Cluster]:
    """A connected cluster for the ``with`` block, closed afterwards (a LocalCluster is
    shut down with its workers; an attached cluster is left running).

    ``scheduler``: the address of a running scheduler (``tcp://host:8786``); else a
    LocalCluster of ``workers`` processes (None: :func:`machine_workers`).
    """
    distributed = import_distributed()
    if scheduler is not None and workers is not None:
        raise DistError("give --workers (a local cluster) or --scheduler (a running one), "
                        "not both")
    if workers is not None and workers < 1:
        raise DistError(f"a cluster needs >= 1 worker, got {workers}")
    if scheduler is not None:
        try:
            client = distributed.Client(scheduler, timeout=timeout)
        except (OSError, TimeoutError) as e:
            raise DistError(f"cannot reach the Dask scheduler at {scheduler}: {e}") from None
        try:
            n = len(client.scheduler_info().get("workers", {}))
            yield Cluster(client, f"scheduler {scheduler} ({n} workers now)",
                          dashboard_note(str(client.dashboard_link)))
        finally:
            client.close()
        return
    import dask

    n = machine_workers() if workers is None else workers
    environ: dict[str, str | None] = {
        f"distributed.nanny.pre-spawn-environ.{k}": str(blas_threads or 1) for k in _BLAS_ENV}
    # Dask sets MALLOC_TRIM_THRESHOLD_ (64 KiB) in its workers by default; glibc then
    # stops adapting its mmap threshold, so every NumPy temporary is mapped and unmapped
    # afresh: measured 1.7x the CPU time of the same forward pass (half of it in the
    # kernel) on the bundled model. refq's tasks allocate the same sizes over and over.
    environ["distributed.nanny.pre-spawn-environ.MALLOC_TRIM_THRESHOLD_"] = None
    with dask.config.set(environ), _sigint_ignored():
        cluster = distributed.LocalCluster(
            n_workers=n, threads_per_worker=1, processes=True, silence_logs=logging.CRITICAL)
    try:
        client = distributed.Client(cluster)
        try:
            yield Cluster(client, f"local cluster of {n} worker processes",
                          dashboard_note(str(client.dashboard_link)))
        finally:
            client.close()
    finally:
        cluster.close()


__all__ = ["INSTALL", "Cluster", "dashboard_note", "import_distributed", "machine_workers",
           "open_cluster"]
