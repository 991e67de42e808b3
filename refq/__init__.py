"""refq — the bit-exact reference for quantized Vision Transformers.

Stages (each imports only from those before it): :mod:`refq.intmath` (integer ALU),
:mod:`refq.quant` (quantizers), :mod:`refq.ops` (integer kernels), :mod:`refq.nn` (float
models), :mod:`refq.calib` and :mod:`refq.methods` (calibration and method recipes),
:mod:`refq.program` (integer IR), :mod:`refq.golden` (golden vectors) and
:mod:`refq.crosscheck` (backends). ``import refq`` is cheap: submodules load on use.
"""

from refq._version import __version__
from refq.errors import BackendError, GoldenError, RangeError, RefqError, SpecError

__all__ = ["BackendError", "GoldenError", "RangeError", "RefqError", "SpecError", "__version__"]
