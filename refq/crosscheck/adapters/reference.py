"""The reference backend: refq's own kernels, re-run from the case (a sanity baseline —
it must agree with every golden case and every generated case)."""

from __future__ import annotations

from refq.crosscheck.backend import Outputs
from refq.golden.case import Case
from refq.golden.kernels import recompute
from refq.ops.table import KERNELS


class ReferenceBackend:
    name = "reference"

    def supports(self, case: Case) -> bool:
        return f"{case.meta.get('op')}.{case.meta.get('variant')}" in KERNELS

    def run(self, case: Case) -> Outputs:
        return dict(recompute(case))
