"""Shared test configuration: one BLAS thread, hypothesis profiles.

One BLAS thread: the suite is many small matmuls (the bundled model is 65 tokens × 64
features), where a multi-threaded OpenBLAS mostly spins — measured 3–10× the CPU time on a
2-core machine for identical results (refq/commands/_blas.py). The thread variables are set
before NumPy loads (an explicit ``OPENBLAS_NUM_THREADS`` etc. wins); if NumPy was already
loaded, threadpoolctl (when installed) applies the limit for the session.

``CI=true`` selects the ``ci`` profile (derandomized, no deadline, more examples), so CI
runs are reproducible; locally the ``dev`` profile runs fewer, random examples. Pick one
explicitly with ``HYPOTHESIS_PROFILE=<name>``.
"""

from __future__ import annotations

import os
import sys

for _var in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ.setdefault(_var, "1")

from collections.abc import Iterator  # noqa: E402

import pytest  # noqa: E402
from hypothesis import HealthCheck, settings  # noqa: E402


@pytest.fixture(scope="session", autouse=True)
def _one_blas_thread() -> Iterator[None]:
    if "numpy" not in sys.modules or os.environ.get("OPENBLAS_NUM_THREADS") != "1":
        yield
        return
    try:
        from threadpoolctl import threadpool_limits  # type: ignore[import-untyped]
    except ImportError:  # optional: only a speed-up
        yield
        return
    with threadpool_limits(limits=1, user_api="blas"):
        yield

settings.register_profile(
    "ci",
    derandomize=True,
    deadline=None,
    max_examples=200,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    print_blob=True,
)
settings.register_profile(
    "dev",
    deadline=None,
    max_examples=100,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
settings.register_profile("thorough", deadline=None, max_examples=5000)

_default = "ci" if os.environ.get("CI", "").lower() in ("1", "true", "yes") else "dev"
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", _default))
