"""Kernel cases: one kernel variant of the registry (:mod:`refq.ops.registry`) on named
inputs, packaged as a golden Case so that it can be stored, re-computed and handed to
another backend.

A kernel case's ``meta`` holds ``op`` (the variant's family), ``variant`` (its name) and
``params`` (the Params' ``to_dict``); its tensors are the named inputs (role ``input``) and
the output ``y`` (role ``output``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError, SpecError
from refq.golden.case import Case
from refq.intmath import IntArray, IntFormat
from refq.ops._common import Params
from refq.ops.registry import Variant, lookup
from refq.ops.table import KERNELS, Kernel


def kernel_of(case: Case) -> Variant:
    key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
    try:
        return lookup(key)
    except SpecError as exc:
        raise GoldenError(f"case {case.name}: {exc}") from None


def params_of(case: Case) -> Params:
    return kernel_of(case).params_type.from_dict(case.meta["params"])


def kernel_case(
    name: str,
    seed: int,
    key: str,
    params: Params,
    inputs: Mapping[str, npt.ArrayLike],
    kind: str = "kernel",
    extra: dict[str, Any] | None = None,
    param_tensors: dict[str, tuple[int, IntFormat]] | None = None,
) -> Case:
    """Compute variant ``key`` on ``inputs`` and package inputs + output ``y`` as a Case
    (GoldenError if ``params`` are not the variant's, or name another variant)."""
    v = lookup(key)
    try:
        v.check_params(params)
    except SpecError as exc:
        raise GoldenError(f"case {name}: {exc}") from None
    arrays = {n: np.asarray(inputs[n], dtype=np.int64) for n in v.inputs}
    y = v.compute(arrays, params)
    case = Case(
        name,
        kind,
        seed,
        {"op": v.family, "variant": v.name, "params": params.to_dict(), **(extra or {})},
    )
    for n, fmt in zip(v.inputs, v.in_formats(params), strict=True):
        case.add(n, arrays[n], fmt, "input")
    for n, (value, fmt) in (param_tensors or {}).items():
        case.add(n, np.array([value]), fmt, "param")  # for testbenches that read files only
    case.add("y", y, v.out_format(params), "output")
    return case


def recompute(case: Case) -> dict[str, IntArray]:
    """refq's outputs for a kernel case (what every backend must reproduce)."""
    v = kernel_of(case)
    inputs = {n: case.tensors[n].values.astype(np.int64) for n in v.inputs}
    return {"y": v.compute(inputs, params_of(case))}


__all__ = ["KERNELS", "Kernel", "kernel_case", "kernel_of", "params_of", "recompute"]
