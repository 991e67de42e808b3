"""refq.crosscheck — run refq's conformance suite against any backend.

A backend implements ``name``, ``supports(case)`` and ``run(case) -> outputs`` (see
:class:`Backend`); :func:`run_suite` feeds it hypothesis-generated cases of every kernel and
the cases of a golden set, compares exactly, shrinks failures and reports. The suite needs
the ``test`` extra (hypothesis).
"""

from refq.crosscheck.backend import BUILTIN, Backend, Outputs, load_backend
from refq.crosscheck.known import Known, load_known
from refq.crosscheck.report import Entry, SuiteReport
from refq.crosscheck.suite import replay, run_case, run_suite

__all__ = [
    "BUILTIN",
    "Backend",
    "Entry",
    "Known",
    "Outputs",
    "SuiteReport",
    "load_backend",
    "load_known",
    "replay",
    "run_case",
    "run_suite",
]
