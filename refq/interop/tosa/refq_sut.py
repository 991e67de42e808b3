"""refq as the "system under test" of tosa-tools' conformance runner.

``tosa_verif_run_tests -t <folders> --sut-module refq.interop.tosa.refq_sut`` runs each
folder written by refq.interop.tosa.conformance: the runner's compliance pass runs the TOSA
reference model, this module supplies refq's expected results (the files refq.json names)
as the system's outputs, and tosa_verify compares them EXACT, output by output. The runner
and verifier are tosa-tools' own; this module only hands them refq's numbers.
"""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from runner.tosa_test_runner import TosaTestRunner

from refq.interop.tosa.conformance import read_refq


class TosaSUTRunner(TosaTestRunner):  # type: ignore[misc]
    """Copies refq's expected results to the descriptor's output files."""

    def __init__(self, args: Any, runner_args: Any, test_dir: Path) -> None:
        super().__init__(args, runner_args, test_dir)

    def runTestGraph(self) -> tuple[Any, str | None]:
        folder = Path(self.testDirPath)
        try:
            files = read_refq(folder)["expected_result_file"]
            outs = self.testDesc["ofm_file"]
            if len(files) != len(outs):
                raise ValueError(f"{len(files)} expected results for {len(outs)} outputs")
            for src, dst in zip(files, outs, strict=True):
                shutil.copyfile(folder / src, folder / dst)
        except Exception as exc:
            return TosaTestRunner.TosaGraphResult.OTHER_ERROR, f"refq: {exc}"
        return TosaTestRunner.TosaGraphResult.TOSA_VALID, None


__all__ = ["TosaSUTRunner"]
