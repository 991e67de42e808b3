"""The qonnx backend: a refq case exported to QONNX (refq.interop.qonnx) and run by qonnx's
``execute_onnx`` (extra ``hls``). Supports every case the export can express (program and
block cases, and kernel cases as one-op programs); the outputs are compared by the suite —
``refq.interop.qonnx.check_case`` compares every tensor."""

from __future__ import annotations

from typing import Any

from refq.crosscheck.backend import Outputs
from refq.errors import BackendError, SpecError
from refq.golden.case import Case


class QonnxBackend:
    name = "qonnx"

    def __init__(self) -> None:
        from refq.interop.qonnx import _qonnx_api

        _qonnx_api()  # BackendError without the extra
        self._exports: dict[int, Any] = {}

    def _export(self, case: Case) -> Any:
        key = id(case)
        if key not in self._exports:
            from refq.interop.qonnx import export_case

            try:
                self._exports[key] = (case, export_case(case))
            except SpecError:
                self._exports[key] = (case, None)
        hit = self._exports[key]
        return hit[1] if hit[0] is case else None

    def supports(self, case: Case) -> bool:
        return self._export(case) is not None

    def run(self, case: Case) -> Outputs:
        from refq.interop.qonnx import case_program, execute
        from refq.interop.qonnx.run import as_codes

        exported = self._export(case)
        if exported is None:
            raise BackendError(f"qonnx: case {case.name} cannot be exported")
        program, inputs = case_program(case)
        values = execute(exported.model, inputs)
        out: Outputs = {}
        for name in program.outputs:
            codes = as_codes(values[name])
            if codes is None:
                raise BackendError(f"qonnx: {name} holds non-integer values")
            out[name] = codes
        self._exports.pop(id(case), None)
        return out


__all__ = ["QonnxBackend"]
