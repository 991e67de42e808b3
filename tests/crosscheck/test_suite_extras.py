"""The suite's adapter hooks: SuiteExtras (strategies, regressions, known), named
regression cases, the early stop on unsupported keys."""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.crosscheck.backend import SuiteExtras, extras_of
from refq.crosscheck.known import Known
from refq.crosscheck.suite import run_suite
from refq.golden.case import Case
from refq.golden.kernels import kernel_case, recompute
from refq.intmath import INT8
from refq.ops import RequantParams


class _Picky:
    """Supports only requantize cases whose first input is odd (a fraction of the draws),
    and gets one named case wrong."""

    name = "picky"

    def supports(self, case: Case) -> bool:
        x = case.tensors.get("x")
        return case.meta.get("op") == "requantize" and x is not None and int(
            x.values.reshape(-1)[0]) % 2 == 1

    def run(self, case: Case) -> dict[str, Any]:
        y = recompute(case)["y"]
        return {"y": y + (case.name == "bad")}

    def suite_extras(self) -> SuiteExtras:
        good = kernel_case("good", 0, "requantize.single",
                           RequantParams("single", (1 << 30,), (0,), out_format=INT8), {"x": [3]})
        bad = kernel_case("bad", 0, "requantize.single",
                          RequantParams("single", (1 << 30,), (0,), out_format=INT8), {"x": [5]})
        return SuiteExtras({}, [good, bad], [Known("bad", "off by one on purpose", "bad")])


def test_regressions_run_like_golden_cases_and_known_applies() -> None:
    backend = _Picky()
    ex = extras_of(backend)
    assert ex is not None
    report = run_suite(backend, ops=["good", "bad"], generated=False,
                       regressions=ex.regressions, known=list(ex.known))
    status = {e.key: (e.source, e.status) for e in report.entries}
    assert status == {"good": ("regression", "pass"), "bad": ("regression", "known")}


def test_partly_supported_and_unsupported_keys_never_crash() -> None:
    report = run_suite(_Picky(), ops=["requantize.*", "softmax.refq"], examples=30)
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    assert status["softmax.refq"] == "skip"
    assert set(status.values()) <= {"pass", "skip"}
    assert np.any([s == "pass" for s in status.values()])  # some key ran its odd draws


def test_a_backend_without_extras_has_none() -> None:
    from refq.crosscheck import load_backend

    assert extras_of(load_backend("reference")) is None
