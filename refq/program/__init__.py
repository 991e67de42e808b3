"""refq.program — the integer program: IR (:class:`Program`), save/load, listing, the
interpreter :func:`run`, and lowering of a quantized float model (:mod:`refq.program.lower`,
the only place where real numbers become integer parameters)."""

from refq.program.files import load, save
from refq.program.ir import Op, Program, TensorDecl
from refq.program.listing import listing
from refq.program.run import run

__all__ = ["Op", "Program", "TensorDecl", "listing", "load", "run", "save"]
