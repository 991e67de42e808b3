"""I-ViT Shiftmax (Li & Gu, ICCV 2023; zkkli/I-ViT): ``shiftmax`` (training code) and
``shiftmax_deploy`` (the TVM deployment code, as described in METHODS.md §3).

Shift-exp of d = x - max(x) <= 0 at scale S, x0_int = ⌊-1/S⌋ < 0:

    d' = d + ⌊d/2⌋ - ⌊d/16⌋              ≈ d·log2(e) (1.4375), int32 (checked)
    d' = max(d', n·x0_int)
    q = ⌊d' / x0_int⌋                    0..n
    r = d' - x0_int·q                    (x0_int, 0]
    training: exp = ⌊(r/2 - x0_int)·2^(n-q)⌋ = ((r - 2·x0_int)·2^(n-q)) >> 1   (exact)
    deploy:   exp = ((r >> 1) - x0_int) << (n-q)                                (r>>1 floors)
    exp: int32 (checked), scale S/2^n

Normalisation: Σ = min(Σexp, 2^31-1) (the code's clamp_max: saturation), f = ⌊(2^31-1)/Σ⌋
(int32), out = ⌊exp·f / 2^(32-b)⌋ (product < 2^62), output scale 2^-(b-1).
Training code: n = 15, b = 16 (attention). Deploy: n = 16, b = 8.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.intmath import INT32, IntArray, IntFormat, check_range, round_div
from refq.ops._common import Params, int_input, need_shift_exp, unsigned
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare

_I32_MAX = 2**31 - 1


@dataclass(frozen=True)
class ShiftmaxParams(Params):
    """x0_int = ⌊-1/S⌋ (< 0), n, output bits b (output scale 2^-(b-1))."""

    x0_int: int
    n: int = 15
    out_bits: int = 16
    in_format: IntFormat = INT32

    def __post_init__(self) -> None:
        need_shift_exp(self)


def shift_exp(d: IntArray, x0_int: int, n: int, deploy: bool, op: str) -> IntArray:
    """I-ViT shift-exp of d <= 0 (module docstring); exp checked against int32."""
    d = check_range(d + (d >> 1) - (d >> 4), INT32, "x * log2e", op)
    d = np.maximum(d, np.int64(n * x0_int))
    q = round_div(d, x0_int, "floor")
    r = d - np.int64(x0_int) * q
    sh = np.int64(n) - q
    e = ((r >> 1) - np.int64(x0_int)) << sh if deploy else ((r - np.int64(2 * x0_int)) << sh) >> 1
    return check_range(np.maximum(e, 0), INT32, "exp", op)


def _normalise(e: IntArray, out_bits: int) -> IntArray:
    total = np.minimum(e.sum(axis=-1, keepdims=True), np.int64(_I32_MAX))
    factor = np.int64(_I32_MAX) // np.maximum(total, 1)
    res: IntArray = np.asarray((e * factor) >> np.int64(32 - out_bits), dtype=np.int64)
    return res


def softmax_shiftmax(x: Any, params: ShiftmaxParams) -> IntArray:
    """I-ViT Shiftmax, training code (n = 15, b = 16) along the last axis.

    Formats: x in ``in_format`` (scale S); output uint<b-1> (< 2^(b-1)), scale 2^-(b-1).
    Rounding: floor everywhere (torch.floor). Accuracy vs float softmax: the shift-exp has
    ~6% relative error (log2(e) ≈ 1.4375, linear 2^-frac), so <= 0.08 absolute (bound
    tested at ViT scales); documented, not improved: this is the faithful variant.
    """
    op = "softmax_shiftmax"
    p = params
    xa = int_input(x, p.in_format, "x", op, 1)
    d = check_range(xa - xa.max(axis=-1, keepdims=True), INT32, "x - max", op)
    e = shift_exp(d, p.x0_int, p.n, False, op)
    return check_range(_normalise(e, p.out_bits), unsigned(p.out_bits - 1), "out", op)


def softmax_shiftmax_deploy(x: Any, params: ShiftmaxParams) -> IntArray:
    """I-ViT Shiftmax, deployment (TVM) form: n = 16, b = 8, (r >> 1), integer division.

    Differs from :func:`softmax_shiftmax` by the floor of r/2 and n: 2-4% of outputs move
    by up to a few LSB (METHODS.md §3). Output uint<b-1>, scale 2^-(b-1).
    """
    op = "softmax_shiftmax_deploy"
    p = params
    xa = int_input(x, p.in_format, "x", op, 1)
    d = check_range(xa - xa.max(axis=-1, keepdims=True), INT32, "x - max", op)
    e = shift_exp(d, p.x0_int, p.n, True, op)
    return check_range(_normalise(e, p.out_bits), unsigned(p.out_bits - 1), "out", op)


def _widths(exp: str) -> tuple[Width, ...]:
    return (
        Width("d = x - max(x)", "int32"),
        Width("d' = d + ⌊d/2⌋ - ⌊d/16⌋", "int32"),
        Width("q = ⌊d' / x0_int⌋", "0..n", "proven"),
        Width(exp, "int32"),
        Width("sum(exp)", "int32 (clamped at 2^31 - 1)", "saturated"),
        Width("f = ⌊(2^31 - 1) / sum⌋", "int32", "proven"),
        Width("exp·f", "int62", "proven"),
        Width("out", "uint<out_bits-1>"),
    )


_ROUNDINGS = (RoundingStep("⌊d/2⌋, ⌊d/16⌋", "floor"), RoundingStep("q = d' / x0_int", "floor"),
              RoundingStep("f = (2^31 - 1) / sum", "floor"),
              RoundingStep("out = exp·f / 2^(32-b)", "floor"))
_SHIFTMAX_IO: dict[str, Any] = {  # what both Shiftmax variants take and give
    "accepts": "x: in_format (default int32), scale S",
    "produces": "uint<out_bits-1>, scale 2^-(out_bits-1)",
    "out_format": lambda p: unsigned(p.out_bits - 1),
}

declare(Variant(
    "softmax", "shiftmax", softmax_shiftmax, ShiftmaxParams,
    title="I-ViT Shiftmax, training code (shift-exp, n = 15, b = 16)",
    **_SHIFTMAX_IO,
    widths=_widths("exp = ((r - 2·x0_int)·2^(n-q)) >> 1"),
    roundings=(*_ROUNDINGS, RoundingStep("exp = (r/2 - x0_int)·2^(n-q)", "floor")),
    output="checked",
    source="I-ViT Shiftmax (zkkli/I-ViT, training code)",
    accuracy="<= 0.08 absolute against the float softmax (shift-exp ~6% relative)",
    derive=Ref("refq.params.softmax:shiftmax_params"),
    golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 3002, "scale": "0.01"}),),
    strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("2e-3", "0.1")}),
    meta={"lower": Ref("refq.program.lower_kernels:softmax_shiftmax"), "lower.in_bits": 16,
          "tosa.lowering": Ref("refq.interop.tosa.softmax:shiftmax"),
          "coverage.bins": ("ends:x", "rows:rows", "ends:out"),
          "coverage.model": Ref("refq.golden.coverage_models:softmax_rows",
                             {"variant": "shiftmax"}),
          "coverage.unreachable": {
              "out: max": "not reached at the derived parameters: a dominant row gives "
                          "⌊e·⌊(2^31 - 1)/e⌋ / 2^(32-b)⌋ = 32750 < 32767 (S = 0.01); "
                          "measured, not proven for every parameter set"},
          "coverage.corners": Ref("refq.golden.cases_corners:softmax")},
))
declare(Variant(
    "softmax", "shiftmax_deploy", softmax_shiftmax_deploy, ShiftmaxParams,
    title="I-ViT Shiftmax, deployment (TVM) code (n = 16, b = 8, r >> 1)",
    **_SHIFTMAX_IO,
    widths=_widths("exp = ((r >> 1) - x0_int) << (n-q)"),
    roundings=(*_ROUNDINGS, RoundingStep("r >> 1", "floor")),
    output="checked",
    source="I-ViT Shiftmax, TVM deployment code as described in METHODS.md §3",
    accuracy="<= 0.08 absolute against the float softmax",
    derive=Ref("refq.params.softmax:shiftmax_params", {"deploy": True}),
    golden=(Ref("refq.golden.cases_kernels:softmax_rows", {"seed": 3003, "scale": "0.01"}),),
    strategy=Ref("refq.crosscheck.strategies:softmax_rows", {"scales": ("2e-3", "0.1")}),
    meta={"lower": Ref("refq.program.lower_kernels:softmax_shiftmax", {"deploy": True}),
          "lower.in_bits": 16,
          "tosa.lowering": Ref("refq.interop.tosa.softmax:shiftmax_deploy"),
          "coverage.bins": ("ends:x", "rows:rows", "ends:out"),
          "coverage.model": Ref("refq.golden.coverage_models:softmax_rows",
                             {"variant": "shiftmax_deploy"}),
          "coverage.corners": Ref("refq.golden.cases_corners:softmax")},
))

__all__ = ["ShiftmaxParams", "shift_exp", "softmax_shiftmax", "softmax_shiftmax_deploy"]
