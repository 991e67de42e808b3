"""refq.golden — golden vectors: a case registry, generation into atomic folders with a
sha256 manifest, verification by re-computation, functional coverage (bins per kernel
variant), diffs, and exports for testbenches
($readmemh hex, raw binary, C headers). Files are never unpickled."""

from refq.golden.case import GOLDEN_FORMAT, Case, Tensor, read_case, write_case
from refq.golden.coverage import coverage
from refq.golden.diff import diff
from refq.golden.export import FORMATS, export
from refq.golden.generate import generate
from refq.golden.registry import cases, register, select
from refq.golden.verify import CaseResult, verify

__all__ = [
    "FORMATS",
    "GOLDEN_FORMAT",
    "Case",
    "CaseResult",
    "Tensor",
    "cases",
    "coverage",
    "diff",
    "export",
    "generate",
    "read_case",
    "register",
    "select",
    "verify",
    "write_case",
]
