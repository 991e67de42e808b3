"""Running a TOSA flatbuffer on Arm's TOSA reference model (``tosa_reference_model``).

The reference model is the TOSA specification made executable: it reports, besides the
outputs, the graph status — ``TOSA_VALID``, ``TOSA_UNPREDICTABLE`` (a REQUIRE failed: the
specification gives no result) or ``TOSA_ERROR`` (an ERROR_IF: the graph is not legal). Its
diagnostics go to the process's stderr; :func:`run_reference` captures them so that a
status other than VALID comes back with its reason.
"""

from __future__ import annotations

import os
import sys
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError


@dataclass
class RefResult:
    """Outputs (in graph output order), the graph status name and the captured log."""

    outputs: list[npt.NDArray[Any]]
    status: str
    log: str = ""
    reasons: list[str] = field(default_factory=list)

    @property
    def valid(self) -> bool:
        return self.status == "TOSA_VALID"


def _model() -> Any:
    try:
        import tosa_reference_model
    except ImportError as exc:
        raise BackendError(f"the TOSA reference model needs tosa-tools: pip install "
                           f"'refq[tosa]' ({exc})") from None
    return tosa_reference_model


def run_reference(graph: bytes, inputs: Sequence[npt.ArrayLike]) -> RefResult:
    """Run the serialized TOSA ``graph`` on ``inputs`` (graph input order, numpy arrays of
    the inputs' element types). The C++ model's stderr is captured into ``log``; the lines
    that explain an UNPREDICTABLE or ERROR status are in ``reasons``."""
    trm = _model()
    arrays = [np.ascontiguousarray(a) for a in inputs]
    sys.stderr.flush()
    with tempfile.TemporaryFile(mode="w+b") as cap:
        saved = os.dup(2)
        os.dup2(cap.fileno(), 2)
        try:
            outs, status = trm.run(graph, arrays)
        except ValueError as exc:
            os.dup2(saved, 2)
            cap.seek(0)
            log = cap.read().decode(errors="replace")
            raise BackendError(f"TOSA reference model rejected the graph: {exc}; "
                               f"{_reasons(log)[:3]}") from None
        finally:
            os.dup2(saved, 2)
            os.close(saved)
        cap.seek(0)
        log = cap.read().decode(errors="replace")
    name = str(status).split(".")[-1].split(":")[0]
    return RefResult([np.asarray(o) for o in outs], name, log, _reasons(log))


def _reasons(log: str) -> list[str]:
    keep = []
    for line in log.splitlines():
        s = line.strip()
        if s and not s.startswith(("WARNING AT", "An error occurred")):
            keep.append(s)
    return keep


__all__ = ["RefResult", "run_reference"]
