"""A pytest entry point for backend projects: one call inside a test function.

.. code-block:: python

    # tests/test_refq_conformance.py in your engine's repository
    from refq.crosscheck.testing import assert_conforms
    from my_engine.refq_adapter import MyBackend

    def test_my_engine_matches_refq():
        assert_conforms(MyBackend(), ops=["requantize.*", "softmax.refq"], examples=200)

On failure the assertion message is the suite's text report: each failing op with its first
mismatching element, bits, mismatch pattern, the minimal failing case and a replay command.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from refq.crosscheck.backend import Backend
from refq.crosscheck.known import Known
from refq.crosscheck.report import SuiteReport
from refq.crosscheck.suite import run_suite


def assert_conforms(
    backend: Backend,
    *,
    ops: Iterable[str] | None = None,
    golden: Path | None = None,
    examples: int = 100,
    known: list[Known] | Path | None = None,
    artifacts: Path | None = None,
    require_support: bool = True,
) -> SuiteReport:
    """Run the suite and raise AssertionError with the report unless the backend conforms.

    ``require_support``: also fail when the backend supports none of the selected cases
    (so a mis-wired adapter cannot pass by skipping everything).
    """
    report = run_suite(
        backend, ops=ops, golden=golden, examples=examples, known=known, artifacts=artifacts
    )
    counts = report.counts()
    if not report.ok:
        raise AssertionError(report.text())
    if require_support and sum(counts.values()) == counts["skip"]:
        raise AssertionError(
            f"backend {backend.name} supports none of the selected cases\n" + report.text()
        )
    return report


__all__ = ["assert_conforms"]
