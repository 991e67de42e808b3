"""refq.program — the integer program: IR (:class:`Program`), save/load, listing, the
interpreter :func:`run`, lowering of a quantized float model (:func:`lower`, the only place
where real numbers become integer parameters) and the integerization gap
(:func:`integer_gap`)."""

from refq.program.files import load, save
from refq.program.gap import integer_gap
from refq.program.ir import Op, Program, TensorDecl
from refq.program.listing import listing
from refq.program.lower import lower
from refq.program.run import run

__all__ = ["Op", "Program", "TensorDecl", "integer_gap", "listing", "load", "lower", "run",
           "save"]
