"""Residual add of two integer branches requantized to a common output scale.

Schemes:

``ivit``          I-ViT QuantAct with identity: each branch is requantized on its own,
                  y = round((a - za)·ba / 2^ca) + round((b - zb)·bb / 2^cb) + zo — two
                  roundings (named, default half_even = torch.round), each product in int64.
``shared_shift``  one rounding: acc = (a - za)·ba + (b - zb)·bb in int<acc_bits> (checked),
                  y = round(acc / 2^c) + zo with c = a_shift = b_shift. With ba = 2^c this is the
                  single-multiplier scheme: a already at the output scale, b rescaled once.

Output: saturate(y, out_format). Accuracy vs the real a·Sa + b·Sb: ``ivit`` <= 1 LSB
(two half-LSB roundings) plus the multiplier error; ``shared_shift`` <= 1/2 LSB plus the
multiplier error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import (
    INT8,
    INT32,
    INT64,
    IntArray,
    IntFormat,
    check_range,
    dyadic_requantize_saturate,
    round_shift,
)
from refq.intmath.formats import saturate_offset
from refq.intmath.rounding import check_rounding
from refq.ops._common import Params, int_input, need_choice, need_format, need_int, signed

SCHEMES = ("ivit", "shared_shift")


@dataclass(frozen=True)
class AddParams(Params):
    scheme: str = "ivit"
    a_format: IntFormat = INT32
    b_format: IntFormat = INT32
    a_zero_point: int = 0
    b_zero_point: int = 0
    a_multiplier: int = 1
    a_shift: int = 0
    b_multiplier: int = 1
    b_shift: int = 0
    rounding: str = "half_even"
    out_zero_point: int = 0
    out_format: IntFormat = INT8
    acc_bits: int = 48

    def __post_init__(self) -> None:
        need_choice(self.scheme, "AddParams.scheme", SCHEMES)
        need_format(self.a_format, "AddParams.a_format")
        need_format(self.b_format, "AddParams.b_format")
        fmt = need_format(self.out_format, "AddParams.out_format")
        need_int(self.a_zero_point, "AddParams.a_zero_point")
        need_int(self.b_zero_point, "AddParams.b_zero_point")
        need_int(self.a_multiplier, "AddParams.a_multiplier", 0, 2**31)
        need_int(self.b_multiplier, "AddParams.b_multiplier", 0, 2**31)
        need_int(self.a_shift, "AddParams.a_shift", 0, 62)
        need_int(self.b_shift, "AddParams.b_shift", 0, 62)
        need_int(self.out_zero_point, "AddParams.out_zero_point", fmt.min, fmt.max)
        need_int(self.acc_bits, "AddParams.acc_bits", 8, 64)
        check_rounding(self.rounding, "AddParams.rounding")
        if self.scheme == "shared_shift" and self.a_shift != self.b_shift:
            raise SpecError("AddParams: shared_shift needs a_shift == b_shift")


def add(a: Any, b: Any, params: AddParams) -> IntArray:
    """Residual add (module docstring). a, b broadcastable integer arrays."""
    op = "add"
    p = params
    r = check_rounding(p.rounding)
    aa = _minus_int32(int_input(a, p.a_format, "a", op), p.a_format, p.a_zero_point, "a")
    ba = _minus_int32(int_input(b, p.b_format, "b", op), p.b_format, p.b_zero_point, "b")
    if p.scheme == "ivit":
        # |a|, |b| < 2^31 (checked or proven) and multipliers <= 2^31: the products fit int64.
        y = dyadic_requantize_saturate(aa, p.a_multiplier, p.a_shift, r, 0, INT64)
        yb = dyadic_requantize_saturate(ba, p.b_multiplier, p.b_shift, r, 0, INT64)
        bound = (_branch_bound(p.a_format, p.a_zero_point, p.a_multiplier, p.a_shift)
                 + _branch_bound(p.b_format, p.b_zero_point, p.b_multiplier, p.b_shift)
                 + abs(p.out_zero_point))
        if bound >= 2**63:  # y + yb + zo might leave int64: the exact sum, then saturate
            exact = y.astype(object) + yb.astype(object) + p.out_zero_point
            fmt = p.out_format
            return np.asarray(np.clip(exact, fmt.min, fmt.max), dtype=np.int64)
        if y.shape == np.broadcast_shapes(y.shape, yb.shape):
            np.add(y, yb, out=y)  # y is the fresh result of the requantization above
        else:
            y = y + yb
        del yb
    else:
        acc = aa * np.int64(p.a_multiplier) + ba * np.int64(p.b_multiplier)
        acc = check_range(acc, signed(p.acc_bits), "accumulator", op)
        y = round_shift(acc, p.a_shift, r)
    return saturate_offset(y, p.out_zero_point, p.out_format, in_place=not _shares(y, a, b))


def _minus_int32(x: IntArray, fmt: IntFormat, zero_point: int, name: str) -> IntArray:
    """x - zero_point, which must fit int32: checked element-wise only when the values of
    ``fmt`` (``x`` was checked against it) minus the zero point could leave int32 (no copy
    when the zero point is 0: the caller does not write to it)."""
    y = x - np.int64(zero_point) if zero_point else x
    if INT32.min <= fmt.min - zero_point and fmt.max - zero_point <= INT32.max:
        return y
    return check_range(y, INT32, f"{name} - {name}_zero_point", "add")


def _branch_bound(fmt: IntFormat, zero_point: int, multiplier: int, shift: int) -> int:
    """An upper bound of |round((x - zero_point)·multiplier / 2^shift)| over int32 values
    x - zero_point of ``fmt`` minus the zero point, for every rounding."""
    mag = min(max(abs(fmt.min - zero_point), abs(fmt.max - zero_point)), 2**31)
    return ((mag * multiplier) >> shift) + 1


def _shares(y: IntArray, *inputs: Any) -> bool:
    """Whether ``y`` may share memory with a caller's array (then no in-place update)."""
    return any(isinstance(x, np.ndarray) and np.may_share_memory(y, x) for x in inputs)


__all__ = ["SCHEMES", "AddParams", "add"]
