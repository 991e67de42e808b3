"""refq's integer GELU variants as TOSA sequences.

``gelu.lut``: out = T[x - in_min]: TABLE for an int8 input and an int8 table (TOSA's 256-entry
int8 lookup, indexed by x + 128), else one GATHER of the table at x - in_min.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

import numpy as np

from refq.interop.tosa.graph import Graph, fits
from refq.interop.tosa.values import Operand, Value, as_i32, tensor
from refq.intmath import INT8, IntFormat
from refq.ops.gelu import GeluLutParams


def lut(g: Graph, ins: Sequence[Operand], p: GeluLutParams, out: IntFormat) -> Value:
    table = np.asarray(p.table, dtype=np.int64)
    t = tensor(g, ins[0])
    if p.in_format == INT8 and fits(int(table.min()), int(table.max()), "int8"):
        return g.table(g.cast(as_i32(g, t), "int8"), table)
    idx = g.addc(as_i32(g, t), -p.in_format.min)
    return g.lookup(table, idx)


TRANSLATIONS: dict[str, Callable[..., Any]] = {"gelu.lut": lut}

__all__ = ["TRANSLATIONS", "lut"]
