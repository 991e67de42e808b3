"""Torch backend: refq's kernel variants re-implemented in torch int64 tensor ops
(:mod:`refq.crosscheck.adapters.torch_kernels`), and whole program / block cases run op by
op (:mod:`refq.crosscheck.adapters.torch_program`).

Kernels claimed by :meth:`TorchBackend.supports`: the variants of
:data:`~refq.crosscheck.adapters.torch_kernels.SUPPORTED` (every other variant is reported
as skipped by the suite), and every program/block case (an op the torch interpreter lacks
raises BackendError naming it).

torch is an optional extra: it is imported when the backend is constructed; a missing torch
raises BackendError.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.crosscheck.adapters.torch_kernels import SUPPORTED, TorchKernels
from refq.crosscheck.adapters.torch_program import run_program_torch
from refq.errors import BackendError
from refq.golden.case import Case


class TorchBackend(TorchKernels):
    """The ``torch`` backend (module docstring) on ``device`` ("cpu" or "cuda")."""

    def supports(self, case: Case) -> bool:
        if "program" in case.meta:  # every kernel of the stored program must be implemented
            ops = case.meta["program"].get("ops", [])
            return all(o.get("kind") != "kernel" or o.get("key") in SUPPORTED for o in ops)
        return f"{case.meta.get('op')}.{case.meta.get('variant')}" in SUPPORTED

    def run(self, case: Case) -> dict[str, npt.NDArray[np.integer[Any]]]:
        if "program" in case.meta:  # program/block cases: the stored program, op by op
            from refq.golden.cases_program import program_of

            program, inputs = program_of(case)
            return dict(run_program_torch(program, inputs, self.device, backend=self,
                                          keep="outputs"))
        key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
        if key not in SUPPORTED:
            raise BackendError(f"torch backend: kernel {key!r} not supported")
        p: dict[str, Any] = case.meta["params"]
        t = {n: self._t(v.values) for n, v in case.tensors.items() if v.role == "input"}
        y = self.kernel(key, t, p)
        return {"y": y.cpu().numpy().astype(np.int64)}


def cuda_backend() -> TorchBackend:
    """The torch backend on "cuda" (BackendError if CUDA is unavailable)."""
    return TorchBackend("cuda")


__all__ = ["SUPPORTED", "TorchBackend", "cuda_backend"]
