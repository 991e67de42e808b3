"""Run an exported model in qonnx's executor and compare it with a golden case, tensor by
tensor — the designer's flow in code (docs/backends/qonnx.md)."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError
from refq.golden.case import Case
from refq.interop.qonnx.export import case_program, export_case


@contextmanager
def _raw_values() -> Iterator[None]:
    """qonnx's executor rounds tensors whose values break their datatype annotation
    (SANITIZE_QUANT_TENSORS, default on); switched off so that its raw results are compared."""
    old = os.environ.get("SANITIZE_QUANT_TENSORS")
    os.environ["SANITIZE_QUANT_TENSORS"] = "0"
    try:
        yield
    finally:
        if old is None:
            os.environ.pop("SANITIZE_QUANT_TENSORS", None)
        else:
            os.environ["SANITIZE_QUANT_TENSORS"] = old


def execute(model: Any, inputs: Mapping[str, npt.ArrayLike]) -> dict[str, npt.NDArray[Any]]:
    """Every value of ``model`` (an onnx ModelProto) after qonnx's ``execute_onnx``, with
    the graph inputs given as integer codes (converted to each input's container)."""
    from onnx import TensorProto

    from refq.interop.qonnx import _qonnx_api

    api = _qonnx_api()
    wrapper = api.wrap(model)
    feed = {}
    for vi in model.graph.input:
        arr = np.asarray(inputs[vi.name])
        dt = np.float32 if vi.type.tensor_type.elem_type == TensorProto.FLOAT else np.int64
        feed[vi.name] = arr.astype(dt)
    with _raw_values():
        ctx = api.execute(wrapper, feed)
    return {k: np.asarray(v) for k, v in ctx.items()}


def as_codes(values: npt.NDArray[Any]) -> npt.NDArray[np.int64] | None:
    """Executor values as int64 codes, or None when some value is not an integer."""
    v = np.asarray(values)
    if v.dtype.kind in "iu":
        return v.astype(np.int64)
    if not np.all(np.isfinite(v)) or not np.all(np.floor(v) == v):
        return None
    return v.astype(np.int64)


@dataclass
class TensorResult:
    name: str
    equal: bool
    detail: str = ""


@dataclass
class CaseResult:
    case: str
    tensors: list[TensorResult] = field(default_factory=list)
    notes: list[dict[str, str]] = field(default_factory=list)

    @property
    def differing(self) -> list[TensorResult]:
        return [t for t in self.tensors if not t.equal]


def compare(case: Case, values: Mapping[str, npt.NDArray[Any]],
            names: set[str] | None = None) -> list[TensorResult]:
    """Every tensor of ``case`` (of ``names``: the program's tensors — a kernel case's
    testbench-only parameter tensors are not part of its program) against the executor's
    ``values``: equal, or the first differing element (index, refq value, qonnx value) and
    the count."""
    out = []
    for name, t in sorted(case.tensors.items()):
        if names is not None and name not in names:
            continue
        if name not in values:
            out.append(TensorResult(name, False, "not computed by the graph"))
            continue
        got = as_codes(values[name])
        want = t.values.astype(np.int64)
        if got is None:
            out.append(TensorResult(name, False, "non-integer values"))
        elif got.shape != want.shape:
            out.append(TensorResult(name, False, f"shape {got.shape}, refq {want.shape}"))
        elif not np.array_equal(got, want):
            bad = got != want
            idx = tuple(int(i) for i in np.argwhere(bad)[0])
            out.append(TensorResult(name, False, f"{int(bad.sum())} of {bad.size} differ; first "
                                    f"at {idx}: refq {int(want[idx])}, qonnx {int(got[idx])}"))
        else:
            out.append(TensorResult(name, True))
    return out


def check_case(case: Case) -> CaseResult:
    """Export ``case``, run it in qonnx's executor, compare every tensor."""
    exported = export_case(case)
    program, inputs = case_program(case)
    try:
        values = execute(exported.model, inputs)
    except Exception as exc:  # the executor's own failure is a finding
        raise BackendError(f"qonnx executor failed on {case.name}: {type(exc).__name__}: "
                           f"{exc}") from exc
    return CaseResult(case.name, compare(case, values, set(program.tensors)),
                      [n.to_dict() for n in exported.notes])


__all__ = ["CaseResult", "TensorResult", "as_codes", "check_case", "compare", "execute"]
