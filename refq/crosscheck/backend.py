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
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import Any, Protocol, runtime_checkable

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError
from refq.golden.case import Case

Outputs = dict[str, npt.NDArray[np.integer[Any]]]


@runtime_checkable
class Backend(Protocol):
    name: str

    def supports(self, case: Case) -> bool: ...

    def run(self, case: Case) -> Outputs: ...


BUILTIN: dict[str, str] = {
    "reference": "refq.crosscheck.adapters.reference:ReferenceBackend",
    "torch": "refq.crosscheck.adapters.torch_backend:TorchBackend",
    "torch-cuda": "refq.crosscheck.adapters.torch_backend:cuda_backend",
    "onnxruntime": "refq.crosscheck.adapters.onnxruntime_backend:OnnxRuntimeBackend",
    "rtl": "refq.crosscheck.adapters.rtl_backend:RtlBackend",
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


__all__ = ["BUILTIN", "Backend", "Outputs", "load_backend"]
