"""Limit the BLAS thread pool of the model commands.

The bundled model's matrices are tiny (65 tokens × 64 features): a multi-threaded BLAS
spends most of its CPU time spinning in its thread pool, and on a loaded machine that costs
up to 10× the CPU time of one thread (measured: FP forward of 100 images, 0.6 s CPU with
1 OpenBLAS thread, 6.9 s with 2, on a shared 2-core machine). ``refq demo`` therefore runs
with 1 BLAS thread by default; ``refq eval --threads N`` chooses.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Iterator
from contextlib import contextmanager

_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

@contextmanager
def blas_threads(n: int | None) -> Iterator[str]:
    """Use at most ``n`` BLAS threads inside the ``with`` block (None: leave as is); yields
    how the limit was applied: "env", "threadpoolctl", "unchanged" or "not applied (...)".

    Before NumPy is imported this sets the thread environment variables (OpenBLAS, MKL,
    OpenMP, BLIS, Accelerate), which then hold for the whole process (a fresh ``refq``
    command); afterwards (e.g. ``main([...])`` called from a test) it uses
    ``threadpoolctl`` if that is installed and restores the previous limits on exit.
    """
    if n is None:
        yield "unchanged"
        return
    if "numpy" not in sys.modules:
        for k in _ENV:
            os.environ[k] = str(n)
        yield "env"
        return
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        yield "not applied (NumPy already imported and threadpoolctl missing)"
        return
    with threadpool_limits(limits=n, user_api="blas"):
        yield "threadpoolctl"
