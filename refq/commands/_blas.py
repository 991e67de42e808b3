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
from typing import Any

_ENV = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS",
        "BLIS_NUM_THREADS", "VECLIB_MAXIMUM_THREADS", "NUMEXPR_NUM_THREADS")

_KEEP: list[Any] = []


def limit_blas_threads(n: int | None) -> str:
    """Use at most ``n`` BLAS threads for the rest of the process (None: leave as is).

    Before NumPy is imported this sets the thread environment variables (OpenBLAS, MKL,
    OpenMP, BLIS, Accelerate); afterwards it uses ``threadpoolctl`` if that is installed.
    Returns how the limit was applied ("env", "threadpoolctl", "unchanged" or
    "not applied (...)"), for the command's output.
    """
    if n is None:
        return "unchanged"
    if "numpy" not in sys.modules:
        for k in _ENV:
            os.environ[k] = str(n)
        return "env"
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:
        return "not applied (NumPy already imported and threadpoolctl missing)"
    _KEEP.append(threadpool_limits(limits=n, user_api="blas"))
    return "threadpoolctl"
