"""The ``tosa`` backend: refq cases exported as TOSA graphs (refq.interop.tosa) and run on
Arm's TOSA reference model, the specification made executable.

Kernel cases run as one-kernel graphs; program and block cases run whole, every refq tensor
a graph output, and are compared with refq's interpreter tensor by tensor (the first
differing tensor, index and bits are reported; refq.crosscheck.adapters.tosa_cases). A graph
status other than TOSA_VALID — UNPREDICTABLE (a REQUIRE failed) or ERROR — is an error naming
the reference model's reason; where it marks a difference of contract between TOSA and
refq, the known-cases file (refq/crosscheck/known/tosa.json) names it.

Needs the ``tosa`` extra (tosa-tools).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.tosa_cases import prepare, run_prepared, supported
from refq.crosscheck.backend import Outputs, SuiteExtras
from refq.errors import BackendError
from refq.golden.case import Case


def run_on_reference(exported: Any, feed: list[npt.NDArray[Any]]) -> list[npt.NDArray[Any]]:
    """The graph's outputs on the reference model (BackendError unless TOSA_VALID)."""
    from refq.interop.tosa.reference import run_reference

    res = run_reference(exported.graph, feed)
    if not res.valid:
        why = "; ".join(res.reasons[:3]) or "(no reason printed)"
        raise BackendError(f"TOSA reference model: {res.status}: {why}")
    return [np.asarray(o) for o in res.outputs]


class TosaBackend:
    """The TOSA reference model as a refq backend (module docstring)."""

    name = "tosa"

    def __init__(self) -> None:
        from refq.interop.tosa.graph import load_serializer
        from refq.interop.tosa.reference import _model

        load_serializer()
        _model()

    def suite_extras(self) -> SuiteExtras:
        """The regression cases and known file of refq check (tosa_suite.suite_extras)."""
        from refq.crosscheck.adapters.tosa_suite import suite_extras

        return suite_extras(self.name)

    def supports(self, case: Case) -> bool:
        return supported(case)

    def run(self, case: Case) -> Outputs:
        prep = prepare(case)
        return dict(run_prepared(prep, case, self.name, run_on_reference))


__all__ = ["TosaBackend", "run_on_reference"]
