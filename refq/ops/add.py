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
from refq.ops.registry import Ref, RoundingStep, Variant, Width, bound, declare, dispatch, names


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
        need_choice(self.scheme, "AddParams.scheme", _schemes())
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


def _schemes() -> tuple[str, ...]:
    return bound("add", AddParams, "scheme")


def _operands(a: Any, b: Any, p: AddParams) -> tuple[IntArray, IntArray]:
    op = "add"
    aa = _minus_int32(int_input(a, p.a_format, "a", op), p.a_format, p.a_zero_point, "a")
    ba = _minus_int32(int_input(b, p.b_format, "b", op), p.b_format, p.b_zero_point, "b")
    return aa, ba


def add_ivit(a: Any, b: Any, params: AddParams) -> IntArray:
    """I-ViT residual add: each branch requantized on its own (two roundings), summed,
    + out_zero_point, saturated (module docstring)."""
    p = params
    r = check_rounding(p.rounding)
    aa, ba = _operands(a, b, p)
    # |a|, |b| < 2^31 (checked or proven) and multipliers <= 2^31: the products fit int64.
    y = dyadic_requantize_saturate(aa, p.a_multiplier, p.a_shift, r, 0, INT64)
    yb = dyadic_requantize_saturate(ba, p.b_multiplier, p.b_shift, r, 0, INT64)
    bound_ = (_branch_bound(p.a_format, p.a_zero_point, p.a_multiplier, p.a_shift)
              + _branch_bound(p.b_format, p.b_zero_point, p.b_multiplier, p.b_shift)
              + abs(p.out_zero_point))
    if bound_ >= 2**63:  # y + yb + zo might leave int64: the exact sum, then saturate
        exact = y.astype(object) + yb.astype(object) + p.out_zero_point
        fmt = p.out_format
        return np.asarray(np.clip(exact, fmt.min, fmt.max), dtype=np.int64)
    if y.shape == np.broadcast_shapes(y.shape, yb.shape):
        np.add(y, yb, out=y)  # y is the fresh result of the requantization above
    else:
        y = y + yb
    del yb
    return saturate_offset(y, p.out_zero_point, p.out_format, in_place=not _shares(y, a, b))


def add_shared_shift(a: Any, b: Any, params: AddParams) -> IntArray:
    """One-rounding residual add: (a - za)·ma + (b - zb)·mb in int<acc_bits> (checked),
    rounded by 2^c, + out_zero_point, saturated (module docstring)."""
    op = "add"
    p = params
    r = check_rounding(p.rounding)
    aa, ba = _operands(a, b, p)
    acc = aa * np.int64(p.a_multiplier) + ba * np.int64(p.b_multiplier)
    acc = check_range(acc, signed(p.acc_bits), "accumulator", op)
    y = round_shift(acc, p.a_shift, r)
    return saturate_offset(y, p.out_zero_point, p.out_format, in_place=not _shares(y, a, b))


def add(a: Any, b: Any, params: AddParams) -> IntArray:
    """Residual add (module docstring): the variant ``add.<params.scheme>`` of the registry.
    a, b broadcastable integer arrays."""
    return dispatch("add", params)(a, b, params)


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


def _out(p: AddParams) -> IntFormat:
    return p.out_format


def _ab(p: AddParams) -> tuple[IntFormat, IntFormat]:
    return (p.a_format, p.b_format)


_SCHEME_IO: dict[str, Any] = {  # what both add schemes take and give
    "accepts": "a: a_format, b: b_format (x - zero point must fit int32)",
    "produces": "out_format (saturated), scale S_out",
    "inputs": ("a", "b"), "in_formats": _ab, "out_format": _out,
}
declare(Variant(
    "add", "ivit", add_ivit, AddParams,
    title="residual add, each branch requantized on its own (I-ViT QuantAct with identity)",
    **_SCHEME_IO,
    widths=(Width("a - a_zero_point, b - b_zero_point", "int32"),
            Width("(a - za)·ba, (b - zb)·bb", "int64", "proven"),
            Width("y_a + y_b + out_zero_point", "int64", "proven"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("(a - za)·ba / 2^ca", "params.rounding"),
               RoundingStep("(b - zb)·bb / 2^cb", "params.rounding")),
    output="saturated",
    source="I-ViT (zkkli/I-ViT) QuantAct with identity",
    accuracy="<= 1 LSB (two half-LSB roundings) plus the multipliers' error against "
             "a·S_a + b·S_b",
    binds="scheme",
    derive=Ref("refq.params.requantize:add_params", {"scheme": "ivit"}),
    golden=(Ref("refq.golden.cases_kernels:add_case",
                {"seed": 3400, "scales": ("0.02", "0.03")}),),
    strategy=Ref("refq.crosscheck.strategies:add_scheme"),
    meta={"lower": Ref("refq.program.lower_kernels:add_scheme"),
          "tosa.lowering": Ref("refq.interop.tosa.requant:add"),
          "coverage.bins": ("operand:a", "operand:b", "tie:(a - za)·ba / 2^ca",
                            "tie:(b - zb)·bb / 2^cb", "clamp:out"),
          "coverage.model": Ref("refq.golden.coverage_models:add_ivit"),
          "coverage.corners": Ref("refq.golden.cases_corners:add_scheme")},
))
declare(Variant(
    "add", "shared_shift", add_shared_shift, AddParams,
    title="residual add with one rounding: both branches on one accumulator, one shift",
    **_SCHEME_IO,
    widths=(Width("a - a_zero_point, b - b_zero_point", "int32"),
            Width("(a - za)·ma + (b - zb)·mb", "int<acc_bits>"),
            Width("out", "out_format", "saturated")),
    roundings=(RoundingStep("acc / 2^c", "params.rounding"),),
    output="saturated",
    source="refq (the single-multiplier scheme of integer residual adds)",
    accuracy="<= 1/2 LSB plus the multipliers' error against a·S_a + b·S_b",
    binds="scheme",
    derive=Ref("refq.params.requantize:add_params", {"scheme": "shared_shift"}),
    golden=(Ref("refq.golden.cases_kernels:add_case",
                {"seed": 3401, "scales": ("0.02", "0.005")}),),
    strategy=Ref("refq.crosscheck.strategies:add_scheme"),
    meta={"lower": Ref("refq.program.lower_kernels:add_scheme"),
          "tosa.lowering": Ref("refq.interop.tosa.requant:add"),
          "coverage.bins": ("operand:a", "operand:b", "top:acc", "tie:acc / 2^c", "clamp:out"),
          "coverage.model": Ref("refq.golden.coverage_models:add_shared_shift"),
          "coverage.corners": Ref("refq.golden.cases_corners:add_scheme")},
))


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "SCHEMES":  # derived: the add variants that take AddParams
        return _schemes()
    if name == "ADD_VARIANTS":
        return names("add")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "ADD_VARIANTS",  # noqa: F822 (module __getattr__: derived from the registry)
    "SCHEMES",  # noqa: F822
    "AddParams",
    "add",
    "add_ivit",
    "add_shared_shift",
]
