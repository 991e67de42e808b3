"""The Backend protocol: what an engine under test implements to run refq's suite.

A backend is any object with

- ``name: str``
- ``supports(case: Case) -> bool`` — whether it can run this op/variant/formats; unsupported
  cases are reported as skipped, never as passed;
- ``run(case: Case) -> dict[str, numpy.ndarray]`` — the outputs for the case's input and
  param tensors (``case.tensors`` with role ``input``/``param``; ``case.meta`` holds
  ``op``, ``variant`` and the integer ``params``).

Outputs are compared exactly with refq's (dtype int64 after conversion is NOT applied: a
backend must return integer arrays; shape and values must match).

Optionally, ``suite_extras() -> SuiteExtras``: the adapter's own hypothesis strategies (cases
drawn in the shapes its engine supports), its named regression cases and its known
disagreements, which ``refq check`` runs and applies along with refq's own suite.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from refq.crosscheck.known import Known
from refq.errors import BackendError
from refq.golden.case import Case

Outputs = dict[str, npt.NDArray[np.integer[Any]]]


@runtime_checkable
class Backend(Protocol):
    name: str

    def supports(self, case: Case) -> bool: ...

    def run(self, case: Case) -> Outputs: ...


@dataclass(frozen=True)
class SuiteExtras:
    """What an adapter adds to the suite (see the module docstring): ``strategies`` maps a
    suite key to a zero-argument factory of a hypothesis strategy drawing Cases;
    ``regressions`` are named cases run like golden ones; ``known`` the adapter's known
    disagreements (each with its reason and reproducer)."""

    strategies: Mapping[str, Callable[[], Any]] = field(default_factory=dict)
    regressions: Sequence[Case] = ()
    known: Sequence[Known] = ()


def extras_of(backend: object) -> SuiteExtras | None:
    """The backend's :class:`SuiteExtras`, or None if it declares none."""
    make = getattr(backend, "suite_extras", None)
    if make is None:
        return None
    extras = make()
    if not isinstance(extras, SuiteExtras):
        raise BackendError(f"{getattr(backend, 'name', backend)}: suite_extras() must return "
                           f"SuiteExtras, got {type(extras).__name__}")
    return extras


BUILTIN: dict[str, str] = {
    "reference": "refq.crosscheck.adapters.reference:ReferenceBackend",
    "torch": "refq.crosscheck.adapters.torch_backend:TorchBackend",
    "torch-cuda": "refq.crosscheck.adapters.torch_backend:cuda_backend",
    "onnxruntime": "refq.crosscheck.adapters.onnxruntime_backend:OnnxRuntimeBackend",
    "rtl": "refq.crosscheck.adapters.rtl_backend:RtlBackend",
    "litert": "refq.crosscheck.adapters.litert_backend:litert",
    "litert-ref": "refq.crosscheck.adapters.litert_backend:reference",
    "litert-default": "refq.crosscheck.adapters.litert_backend:default",
    "litert-optimized": "refq.crosscheck.adapters.litert_backend:optimized",
    "torch-native": "refq.crosscheck.adapters.torch_native_backend:torch_native",
    "torch-native-fbgemm": "refq.crosscheck.adapters.torch_native_backend:fbgemm",
    "torch-native-x86": "refq.crosscheck.adapters.torch_native_backend:x86",
    "torch-native-onednn": "refq.crosscheck.adapters.torch_native_backend:onednn",
    "torch-native-qnnpack": "refq.crosscheck.adapters.torch_native_backend:qnnpack",
    "torch-native-cuda": "refq.crosscheck.adapters.torch_native_backend:cuda",
    "hls4ml": "refq.crosscheck.adapters.hls4ml_backend:Hls4mlBackend",
    "qonnx": "refq.crosscheck.adapters.qonnx_backend:QonnxBackend",
    "tosa": "refq.crosscheck.adapters.tosa_backend:TosaBackend",
    "iree": "refq.crosscheck.adapters.iree_backend:IreeBackend",
    "iree-cuda": "refq.crosscheck.adapters.iree_backend:cuda_backend",
    "wrong-rounding": "refq.crosscheck.adapters.wrong:WrongRoundingBackend",
    "no-saturation": "refq.crosscheck.adapters.wrong:NoSaturationBackend",
}


def load_backend(spec: str) -> Backend:
    """A built-in backend by name, or ``module:factory`` (a class or function returning one)."""
    target = BUILTIN.get(spec, spec)
    if ":" not in target:
        raise BackendError(
            f"unknown backend {spec!r}: use one of {sorted(BUILTIN)} or 'module:factory'"
        )
    module_name, attr = target.split(":", 1)
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        raise BackendError(f"backend {spec!r}: cannot import {module_name} ({exc})") from None
    factory: Callable[[], object] | None = getattr(module, attr, None)
    if factory is None:
        raise BackendError(f"backend {spec!r}: {module_name} has no {attr!r}")
    backend = factory()
    if not isinstance(backend, Backend):
        raise BackendError(
            f"backend {spec!r}: {attr} returned {type(backend).__name__}, which lacks "
            "name / supports(case) / run(case)"
        )
    return backend


__all__ = ["BUILTIN", "Backend", "Outputs", "SuiteExtras", "extras_of", "load_backend"]
