"""What the ``tosa`` and ``iree`` backends share: a case (kernel, block or whole program) as
an exported TOSA graph, and the tensor-by-tensor check of a program run.

Kernel cases become a graph of the kernel alone; program and block cases the stored program
with EVERY refq tensor as a graph output. A program run is compared with refq's interpreter
run live on the same inputs, tensor by tensor in op order; the first difference (tensor,
index, both values and their bits, count) is raised as :class:`ProgramMismatch`, so the
suite reports it even where the golden case stores only the outputs and block boundaries.
Exports are cached per case content (the graph of one case is built once per process).
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import BackendError
from refq.golden.case import Case
from refq.golden.compare import compare_tensor
from refq.program.ir import Program


class ProgramMismatch(BackendError):
    """A program run differs from refq's interpreter (message: first differing tensor)."""


@dataclass
class Prepared:
    """A case as a TOSA graph, its inputs, and (program cases) the program."""

    exported: Any
    inputs: dict[str, npt.NDArray[np.int64]]
    program: Program | None


_CACHE: dict[str, Prepared] = {}


def _key(case: Case) -> str:
    h = hashlib.sha256(json.dumps(case.meta, sort_keys=True, default=str).encode())
    for name in sorted(case.tensors):
        t = case.tensors[name]
        h.update(name.encode())
        h.update(str(t.values.shape).encode())
        if t.role in ("input", "param"):
            h.update(np.ascontiguousarray(t.values.astype(np.int64)).tobytes())
    return h.hexdigest()


def prepare(case: Case) -> Prepared:
    """The case's TOSA graph (cached); ExportError (a BackendError for the suite) where a
    kernel variant or program op cannot be expressed in TOSA."""
    from refq.interop.tosa.export import export_kernel, export_program

    key = _key(case)
    hit = _CACHE.get(key)
    if hit is not None:
        return hit
    if "program" in case.meta:
        from refq.golden.cases_program import program_of

        program, inputs = program_of(case)
        batch = next(iter(inputs.values())).shape[0] if inputs else 1
        prep = Prepared(export_program(program, batch=batch, keep="all"), inputs, program)
    else:
        from refq.golden.kernels import kernel_of, params_of

        k = kernel_of(case)
        p = params_of(case)
        inputs = {n: case.tensors[n].values.astype(np.int64) for n in k.inputs}
        shapes = {n: v.shape for n, v in inputs.items()}
        tosa_meta = case.meta.get("tosa", {})
        rescale = tosa_meta.get("rescale", "exact") if isinstance(tosa_meta, dict) else "exact"
        prep = Prepared(export_kernel(k.key, p, shapes, name=case.name, rescale=rescale),
                        inputs, None)
    if len(_CACHE) > 256:
        _CACHE.clear()
    _CACHE[key] = prep
    return prep


def finish(prep: Prepared, got: dict[str, npt.NDArray[np.int64]], case: Case,
           engine: str) -> dict[str, npt.NDArray[np.int64]]:
    """The case's outputs from a run; for programs, first check every tensor against
    refq's interpreter (ProgramMismatch naming the first difference)."""
    if prep.program is None:
        return {"y": got["y"]}
    from refq.program.run import run

    expected = run(prep.program, prep.inputs, keep="all")
    for op in prep.program.ops:
        for name in op.outputs:
            fmt = prep.program.tensors[name].fmt
            if name not in got:
                raise ProgramMismatch(f"{engine}: tensor {name!r} missing from the run")
            d = compare_tensor(name, expected[name], got[name].astype(np.int64), fmt,
                               ("refq", engine))
            if not d.equal:
                raise ProgramMismatch(f"{engine}: first differing tensor {name!r} (op "
                                      f"{op.key} {op.name}): {d.detail}")
    outs = [n for n, t in case.tensors.items() if t.role == "output"]
    return {n: got[n] for n in outs}


def run_prepared(prep: Prepared, case: Case, engine: str,
                 execute: Callable[[Any, list[npt.NDArray[Any]]],
                                   list[npt.NDArray[Any]]]) -> dict[str, npt.NDArray[np.int64]]:
    feed = prep.exported.feed(prep.inputs)
    got = prep.exported.assemble(execute(prep.exported, feed))
    return finish(prep, got, case, engine)


def kernel_key(case: Case) -> str:
    return f"{case.meta.get('op', '?')}.{case.meta.get('variant', '?')}"


REFUSED_BY_NAME = ("requantize.fp32_zp", "requantize.fp64")
"""Variants the export refuses by name (binary32/binary64 engine arithmetic): the tosa/iree
backends run them and report the refusal as a known entry, not a skip."""


def exportable(key: str) -> bool:
    """Whether kernel variant ``key`` declares a TOSA translation (or is refused by name).
    Variants of other hardware families (the hls4ml ``ap_fixed`` types) declare none: the
    tosa/iree backends skip them, and program cases using them, by name."""
    from refq.interop.tosa.export import LOWERING_KEY
    from refq.ops.table import KERNELS, kernel

    if key not in KERNELS:
        return False
    return key in REFUSED_BY_NAME or LOWERING_KEY in kernel(key).meta


def supported(case: Case) -> bool:
    """A kernel case whose variant is exportable, or a program case all of whose kernels are."""
    if "program" in case.meta:
        ops = case.meta["program"].get("ops", [])
        return all(o.get("kind") != "kernel" or exportable(str(o.get("key"))) for o in ops)
    if not exportable(kernel_key(case)):
        return False
    if ".corners." in case.name:
        # directed corner cases reach parameter ends (a multiplier of 2^32, Σy² near 2^53)
        # that TOSA's int32 encodings cannot hold: such a corner is unsupported, not an error
        from refq.interop.tosa.graph import ExportError

        try:
            prepare(case)
        except ExportError:
            return False
    return True


__all__ = ["REFUSED_BY_NAME", "Prepared", "ProgramMismatch", "exportable", "finish", "kernel_key",
           "prepare", "run_prepared", "supported"]
