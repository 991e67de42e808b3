"""One BLAS thread for the golden tests: lowering's calibration forwards use tiny matrices,
and a 2-thread OpenBLAS mostly spins on a loaded 2-core machine (generating the per-method
block cases: 10.4 s CPU with the default 2 threads, 3.1 s with one; identical bytes — the
committed-set test checks that). Scoped to each test module of this folder."""

from __future__ import annotations

from collections.abc import Iterator

import pytest


@pytest.fixture(scope="module", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # optional: only a speed-up
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield
