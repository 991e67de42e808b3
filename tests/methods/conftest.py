"""One BLAS thread for the method tests: the bundled model's matrices are tiny, and a
multi-threaded BLAS mostly spins (10× the CPU time on a loaded 2-core machine; see
refq/commands/_blas.py). Scoped to each test module of this folder."""
from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits
    except ImportError:  # optional: only a speed-up
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
