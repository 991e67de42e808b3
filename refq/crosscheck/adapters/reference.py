"""The reference backend: refq's own kernels (or, for program and block cases, refq's
interpreter on the stored program), re-run from the case (a sanity baseline — it must agree
with every golden case and every generated case)."""

from __future__ import annotations

from refq.crosscheck.backend import Outputs
from refq.golden.case import Case
from refq.golden.kernels import recompute
from refq.ops.table import KERNELS


class ReferenceBackend:
    name = "reference"

    def supports(self, case: Case) -> bool:
        if "program" in case.meta:
            return True
        return f"{case.meta.get('op')}.{case.meta.get('variant')}" in KERNELS

    def run(self, case: Case) -> Outputs:
        if "program" in case.meta:  # program/block cases: re-run the stored program
            from refq.golden.cases_program import program_of
            from refq.program.run import run

            program, inputs = program_of(case)
            return dict(run(program, inputs, keep="outputs"))
        return dict(recompute(case))
