"""refq.program — the integer program: IR (:class:`Program`), save/load, listing, the
interpreter :func:`run`, lowering of a quantized float model (:func:`lower`, the only place
where real numbers become integer parameters) and the integerization gap
(:func:`integer_gap`). ``lower`` and ``integer_gap`` are imported lazily (they need
refq.nn and refq.quant)."""

from typing import Any

from refq.program.files import load, save
from refq.program.ir import Op, Program, TensorDecl
from refq.program.listing import listing
from refq.program.run import run


def __getattr__(name: str) -> Any:
    if name == "lower":
        from refq.program.lower import lower

        return lower
    if name == "integer_gap":
        from refq.program.gap import integer_gap

        return integer_gap
    raise AttributeError(f"module 'refq.program' has no attribute {name!r}")


__all__ = ["Op", "Program", "TensorDecl", "integer_gap", "listing", "load", "lower", "run",
           "save"]
