"""refq.interop.qonnx — refq programs and golden cases as QONNX graphs (extra ``hls``:
qonnx, onnx, onnxruntime), run in qonnx's executor and compared tensor by tensor.

    from refq.interop.qonnx import to_qonnx, check_case, export_set

``to_qonnx(program)`` translates a Program (refq.interop.qonnx.export), ``export_set``
writes a golden set as QONNX folders (``refq golden export DIR --format qonnx --out Q``),
``check_case`` runs one case's export in qonnx's ``execute_onnx`` and compares every tensor
(refq.interop.qonnx.run). Where float arithmetic would stop being exact the export computes
on int64 and names the place (notes.json); what it cannot express it refuses with a
SpecError naming the op and the reason. docs/backends/qonnx.md is the user's page.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from refq.errors import BackendError


@dataclass(frozen=True)
class _Api:
    """The few qonnx entry points the export uses, imported once."""

    modelwrapper: Any
    execute_onnx: Any
    infer_shapes_cls: Any

    def wrap(self, model: Any) -> Any:
        return self.modelwrapper(model)

    def infer_shapes(self, model: Any) -> Any:
        return self.modelwrapper(model).transform(self.infer_shapes_cls())

    def annotate(self, wrapper: Any, name: str, dtype: str) -> None:
        from qonnx.core.datatype import DataType

        wrapper.set_tensor_datatype(name, DataType[dtype])

    def execute(self, wrapper: Any, feed: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = self.execute_onnx(wrapper, feed, return_full_exec_context=True)
        return out


@lru_cache(maxsize=1)
def _qonnx_api() -> _Api:
    try:
        from qonnx.core.modelwrapper import ModelWrapper
        from qonnx.core.onnx_exec import execute_onnx
        from qonnx.transformation.infer_shapes import InferShapes
    except ImportError as exc:
        raise BackendError(f"the QONNX export needs the hls extra: pip install 'refq[hls]' "
                           f"({exc})") from None
    return _Api(ModelWrapper, execute_onnx, InferShapes)


from refq.interop.qonnx.export import (  # noqa: E402
    CONTRACT,
    QonnxModel,
    SetExport,
    case_program,
    export_case,
    export_set,
    to_qonnx,
    write_model,
)
from refq.interop.qonnx.run import CaseResult, check_case, compare, execute  # noqa: E402

__all__ = [
    "CONTRACT",
    "CaseResult",
    "QonnxModel",
    "SetExport",
    "case_program",
    "check_case",
    "compare",
    "execute",
    "export_case",
    "export_set",
    "to_qonnx",
    "write_model",
]
