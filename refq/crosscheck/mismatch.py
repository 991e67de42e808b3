"""Exact comparison of a backend's outputs with refq's, and a description of the pattern of
the mismatches (how far off, in which direction, where) that points at the likely cause."""

from __future__ import annotations

from collections import Counter
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.golden.compare import bits
from refq.intmath import IntFormat


@dataclass
class Mismatch:
    tensor: str
    kind: str  # "missing", "dtype", "shape", "values"
    detail: str
    count: int = 0
    total: int = 0
    first_index: list[int] = field(default_factory=list)
    expected: int | None = None
    got: int | None = None
    expected_bits: str = ""
    got_bits: str = ""
    pattern: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def describe_pattern(
    expected: npt.NDArray[np.integer[Any]], got: npt.NDArray[np.integer[Any]], fmt: IntFormat
) -> str:
    """E.g. "all differ by +1; 3 of 4 at expected value -128 (format min)"."""
    neq = expected != got
    diffs = (got.astype(object) - expected.astype(object))[neq]
    hist = Counter(int(d) for d in diffs.ravel())
    top = ", ".join(f"{d:+d}: {c}" for d, c in hist.most_common(4))
    parts = [f"differences {{{top}}}" + (" …" if len(hist) > 4 else "")]
    if len(hist) == 1 and abs(next(iter(hist))) == 1:
        parts.append("all off by one LSB in one direction (a rounding or tie-breaking rule?)")
    elif set(hist) <= {-1, 1}:
        parts.append("all off by one LSB (rounding?)")
    exp_bad = expected[neq]
    at_edges = int(np.sum((exp_bad == fmt.min) | (exp_bad == fmt.max)))
    if at_edges:
        parts.append(f"{at_edges} at the format's min/max (saturation?)")
    got_bad = got[neq]
    outside = int(np.sum((got_bad < fmt.min) | (got_bad > fmt.max)))
    if outside:
        parts.append(f"{outside} outside {fmt.name} (missing saturation or wrap?)")
    return "; ".join(parts)


def compare_outputs(
    expected: dict[str, tuple[npt.NDArray[np.integer[Any]], IntFormat]],
    got: dict[str, Any],
) -> list[Mismatch]:
    """Mismatches of ``got`` against ``expected`` (name → (values, format)); [] if equal.

    Exact comparison: the backend's array must be an integer array of the same shape with the
    same values (its integer dtype may differ from refq's storage dtype; values decide).
    """
    out: list[Mismatch] = []
    for name, (exp, fmt) in sorted(expected.items()):
        if name not in got:
            out.append(Mismatch(name, "missing", f"backend returned no tensor {name!r}"))
            continue
        arr = np.asarray(got[name])
        if arr.dtype.kind not in "iu":
            out.append(Mismatch(name, "dtype", f"backend returned dtype {arr.dtype}, not integer"))
            continue
        if arr.shape != exp.shape:
            out.append(Mismatch(name, "shape", f"shape {arr.shape}, expected {exp.shape}"))
            continue
        e64, g64 = exp.astype(np.int64), arr.astype(np.int64)
        if arr.dtype == np.uint64 and arr.size and int(arr.max()) >= 2**63:
            g64 = arr.astype(object)  # keep huge values honest
        neq = e64 != g64
        count = int(np.sum(neq))
        if count == 0:
            continue
        idx = np.unravel_index(int(np.flatnonzero(np.ravel(neq))[0]), exp.shape)
        e, g = int(e64[idx]), int(g64[idx])
        out.append(
            Mismatch(
                name,
                "values",
                f"{count} of {exp.size} elements differ; first at {tuple(int(i) for i in idx)}",
                count,
                int(exp.size),
                [int(i) for i in idx],
                e,
                g,
                bits(e, fmt),
                bits(g, IntFormat(64, True)) if not fmt.min <= g <= fmt.max else bits(g, fmt),
                describe_pattern(e64, g64, fmt),
            )
        )
    return out


__all__ = ["Mismatch", "compare_outputs", "describe_pattern"]
