"""The conformance run of the ``tosa`` and ``iree`` backends: refq's suite (every kernel
variant's hypothesis strategy, optionally a golden set) plus named regression cases that pin
each difference of contract between TOSA and refq, with the known-cases files
(refq/crosscheck/known/tosa.json, iree.json) naming them.

``tosa.regress.*``: the regression cases force the *native* mapping of TFLite
requantization — one RESCALE whatever its preconditions (``meta["tosa"]["rescale"] =
"native"``) — where refq's default export would have chosen exact arithmetic instead; their
``exact`` twins (same inputs, default export) must pass. ``iree.regress.*``: valid TOSA
graphs IREE mishandles (they pass on the reference model).
"""

from __future__ import annotations

import fnmatch
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from refq.crosscheck.backend import SuiteExtras
from refq.crosscheck.known import Known, load_known
from refq.crosscheck.report import SuiteReport
from refq.crosscheck.suite import run_suite
from refq.errors import SpecError
from refq.golden.case import Case
from refq.golden.kernels import kernel_case
from refq.golden.manifest import write_case_set
from refq.intmath import INT8, INT32
from refq.ops import LayerNormParams, RequantParams

KNOWN = Path(__file__).resolve().parent.parent / "known"
KNOWN_FILES = {"tosa": KNOWN / "tosa.json", "iree": KNOWN / "iree.json"}


def _requant(name: str, family: str, shift: int, out: Any, x: list[int],
             native: bool) -> Case:
    p = RequantParams(family, (1 << 30,), (shift,), None, 0, 0, out)
    extra = {"tosa": {"rescale": "native"}} if native else None
    return kernel_case(name, 0, f"requantize.{family}", p, {"x": np.array(x)}, extra=extra)


def regression_cases() -> list[Case]:
    """The named regression cases (module docstring)."""
    edge = [2**30, -(2**30) - 1, 2**31 - 1, -(2**31), 5]
    cases = []
    for family in ("single", "double"):
        cases.append(_requant(f"tosa.regress.rescale-shift31-{family}", family, 0, INT32, edge,
                              True))
        cases.append(_requant(f"tosa.regress.exact-shift31-{family}", family, 0, INT32, edge,
                              False))
    cases.append(_requant("tosa.regress.rescale-shift1", "single", 30, INT8, [1, 0, -1, 3],
                          True))
    cases.append(_requant("tosa.regress.exact-shift1", "single", 30, INT8, [1, 0, -1, 3],
                          False))
    # iree-compile 3.13: "circular dependency: input operation uses partition output"
    cases.append(kernel_case("iree.regress.layernorm-ibert-one-element", 0, "layernorm.ibert",
                             LayerNormParams(in_format=INT8), {"x": np.array([[0]])}))
    cases.append(kernel_case("iree.regress.layernorm-ibert-two-elements", 0,
                             "layernorm.ibert", LayerNormParams(in_format=INT8),
                             {"x": np.array([[0, 5]])}))
    return cases


def write_regressions(folder: Path) -> list[str]:
    """Write :func:`regression_cases` as a golden set (``refq check --golden``); names."""
    return write_case_set(folder, regression_cases())


def check_known_file(path: Path) -> list[Known]:
    """The known file, validated: every entry has a reproducer, and an entry naming
    ``tosa.regress.*`` or ``iree.regress.*`` matches a regression case."""
    known = load_known(path)
    names = [c.name for c in regression_cases()]
    for k in known:
        if not k.reproducer:
            raise SpecError(f"{path}: {k.match} has no reproducer")
        if k.match.startswith(("tosa.regress.", "iree.regress.")) and not fnmatch.filter(
                names, k.match):
            raise SpecError(f"{path}: {k.match} names no regression case")
    return known


def run_tosa_suite(backend: Any, *, examples: int = 20, golden: Path | None = None,
                   ops: list[str] | None = None, regressions: bool = True,
                   known: list[Known] | None = None,
                   artifacts: Path | None = None) -> SuiteReport:
    """refq's suite on ``backend`` (``tosa`` or ``iree``): the hypothesis strategies of the
    kernel keys ``ops`` (default every variant), ``golden`` if given, and the regression
    cases — with the backend's known file unless ``known`` is given. ``ops=[]`` with no
    ``golden`` runs the regression cases only."""
    if known is None:
        known = backend_known(backend.name)
    if ops == [] and golden is None:
        report = SuiteReport(backend.name)
    else:
        report = run_suite(backend, ops=ops, golden=golden, examples=examples, known=known,
                           artifacts=artifacts, backend_spec=backend.name)
    if regressions:
        with tempfile.TemporaryDirectory() as tmp:
            folder = Path(tmp) / "regressions"
            write_regressions(folder)
            extra = run_suite(backend, generated=False, golden=folder, known=known,
                              backend_spec=backend.name)
        for e in extra.entries:
            e.source = "regression"
        report.entries.extend(extra.entries)
    return report


def suite_extras(backend_name: str) -> SuiteExtras:
    """What ``refq check --backend tosa|iree…`` adds to the suite: the named regression cases
    and the backend's known file (tosa.json, or iree.json for every iree target)."""
    return SuiteExtras(regressions=regression_cases(), known=backend_known(backend_name))


def backend_known(backend_name: str) -> list[Known]:
    """The known file of ``backend_name`` (tosa.json, or iree.json for every iree target).
    An ``…-avoid-known`` backend declines the cases of the named IREE defects, so the
    key-level entries those defects explain (an entry whose reproducer is an
    ``iree.regress.*`` case) are dropped: its agreement on the rest of the key is a pass,
    not ``fixed?``."""
    known = check_known_file(KNOWN_FILES.get(backend_name.split("-")[0], KNOWN_FILES["tosa"]))
    if backend_name.endswith("-avoid-known"):
        known = [k for k in known if k.match.startswith("iree.regress.")
                 or not k.reproducer.startswith("iree.regress.")]
    return known


__all__ = ["KNOWN_FILES", "backend_known", "check_known_file", "regression_cases", "run_tosa_suite",
           "suite_extras", "write_regressions"]
