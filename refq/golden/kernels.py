"""Kernel cases: one kernel of :data:`refq.ops.table.KERNELS` on named inputs, packaged as a
golden Case so that it can be stored, re-computed and handed to another backend.

A kernel case's ``meta`` holds ``op``, ``variant`` and ``params`` (the Params' ``to_dict``);
its tensors are the named inputs (role ``input``) and the output ``y`` (role ``output``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
from refq.golden.case import Case
from refq.intmath import IntArray, IntFormat
from refq.ops._common import Params
from refq.ops.table import KERNELS, Kernel


def kernel_of(case: Case) -> Kernel:
    key = f"{case.meta.get('op')}.{case.meta.get('variant')}"
    if key not in KERNELS:
        raise GoldenError(f"case {case.name}: no kernel {key!r} in refq.ops.table")
    return KERNELS[key]


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
    """Compute kernel ``key`` on ``inputs`` and package inputs + output ``y`` as a Case."""
    k = KERNELS[key]
    declared = getattr(params, "family", None) or getattr(params, "scheme", None)
    if declared is not None and declared != k.variant:
        raise GoldenError(f"case {name}: params say {declared!r}, kernel is {key!r}")
    arrays = {n: np.asarray(inputs[n], dtype=np.int64) for n in k.inputs}
    y = k.compute(arrays, params)
    case = Case(
        name,
        kind,
        seed,
        {"op": k.op, "variant": k.variant, "params": params.to_dict(), **(extra or {})},
    )
    for n, fmt in zip(k.inputs, k.in_formats(params), strict=True):
        case.add(n, arrays[n], fmt, "input")
    for n, (value, fmt) in (param_tensors or {}).items():
        case.add(n, np.array([value]), fmt, "param")  # for testbenches that read files only
    case.add("y", y, k.out_format(params), "output")
    return case


def recompute(case: Case) -> dict[str, IntArray]:
    """refq's outputs for a kernel case (what every backend must reproduce)."""
    k = kernel_of(case)
    inputs = {n: case.tensors[n].values.astype(np.int64) for n in k.inputs}
    return {"y": k.compute(inputs, params_of(case))}


__all__ = ["KERNELS", "Kernel", "kernel_case", "kernel_of", "params_of", "recompute"]
