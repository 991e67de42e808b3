"""The onnxruntime conformance run: refq's suite on the kernel variants the adapter maps,
the family's and the big-K hunts, and the named regressions, with this machine's known
disagreements (:data:`~refq.crosscheck.adapters.onnx_cases.KNOWN_FILE`)."""

from __future__ import annotations

import fnmatch
import tempfile
from pathlib import Path
from typing import Any

from refq.crosscheck.adapters.onnx_cases import (
    KNOWN_FILE,
    hunt_strategies,
    regression_cases,
    write_regressions,
)
from refq.crosscheck.known import Known, load_known
from refq.crosscheck.report import SuiteReport
from refq.crosscheck.suite import run_suite
from refq.errors import SpecError


def run_onnx_suite(
    backend: Any,
    *,
    examples: int = 50,
    known: list[Known] | Path | None = KNOWN_FILE,
    artifacts: Path | None = None,
    kernel_ops: list[str] | None = None,
    keys: list[str] | None = None,
    regressions: bool = True,
) -> SuiteReport:
    """The onnxruntime conformance run: refq's own suite on the kernel keys the adapter maps
    (``kernel_ops``, default matmul/linear gemm and requantize.dyadic), the family's and the
    big-K hypothesis strategies (``keys``), and the named regression cases — with the known
    disagreements reported as ``known``.
    """
    known_list = load_known(known) if isinstance(known, (str, Path)) else list(known or [])
    hunts = {k: v for k, v in hunt_strategies().items() if keys is None or k in keys}
    with tempfile.TemporaryDirectory() as tmp:
        golden = None
        if regressions:
            golden = Path(tmp) / "regressions"
            write_regressions(golden)
        report = run_suite(
            backend,
            ops=[
                *(kernel_ops if kernel_ops is not None else ["matmul.gemm", "linear.gemm"]),
                *hunts,
                "onnx.regress.*",
            ],
            golden=golden,
            examples=examples,
            known=known_list,
            artifacts=artifacts,
            backend_spec="onnxruntime",
            extra_strategies=hunts,
        )
        if regressions:
            for e in report.entries:
                if e.source == "golden":
                    e.source = "regression"
    return report


def check_known_file(path: Path = KNOWN_FILE) -> list[Known]:
    """The known file, validated (each entry has a reproducer naming a regression case),
    whatever the CPU (entries conditioned on CPU features included)."""
    known = load_known(path, cpu=None)
    names = {c.name for c in regression_cases()}
    for k in known:
        if not k.reproducer:
            raise SpecError(f"{path}: {k.match} has no reproducer")
        if k.match.startswith("onnx.regress.") and not fnmatch.filter(names, k.match):
            raise SpecError(f"{path}: {k.match} names no regression case")
    return known


__all__ = ["check_known_file", "run_onnx_suite"]
