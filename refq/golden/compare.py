"""Exact comparison of golden tensors, with the report a hardware engineer needs: the first
differing element, its index, both values and their bit patterns, and the mismatch count."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.intmath import IntFormat


def bits(value: int, fmt: IntFormat) -> str:
    """Two's-complement (or unsigned) bit pattern of ``value`` in ``fmt.bits`` bits."""
    return format(value & ((1 << fmt.bits) - 1), f"0{fmt.bits}b")


@dataclass(frozen=True)
class TensorDiff:
    name: str
    equal: bool
    detail: str
    index: tuple[int, ...] | None = None
    """The first differing element's index (None when equal or not comparable)."""
    bins: tuple[str, ...] = ()
    """The coverage bins that element belongs to (``refq golden diff``; empty if unknown)."""


def compare_tensor(
    name: str,
    a: npt.NDArray[np.integer[Any]],
    b: npt.NDArray[np.integer[Any]],
    fmt: IntFormat,
    labels: tuple[str, str] = ("A", "B"),
) -> TensorDiff:
    """Equal only with identical dtype, shape and values."""
    la, lb = labels
    if a.shape != b.shape:
        return TensorDiff(name, False, f"shape {la} {a.shape} != {lb} {b.shape}")
    if a.dtype != b.dtype:
        return TensorDiff(name, False, f"dtype {la} {a.dtype} != {lb} {b.dtype}")
    neq = a != b
    count = int(neq.sum())
    if count == 0:
        return TensorDiff(name, True, "equal")
    flat = int(np.flatnonzero(neq.ravel())[0])
    idx = tuple(int(i) for i in np.unravel_index(flat, a.shape))
    va, vb = int(a[idx]), int(b[idx])
    return TensorDiff(
        name,
        False,
        f"{count} of {a.size} elements differ; first at index {idx}: "
        f"{la}={va} ({bits(va, fmt)}) {lb}={vb} ({bits(vb, fmt)}), "
        f"xor {bits(va ^ vb, fmt)}, difference {vb - va:+d}",
        idx,
    )


__all__ = ["TensorDiff", "bits", "compare_tensor"]
