"""Integer GEMM kernels: ``linear`` (x @ W^T + bias) and batched ``matmul`` (attention).

Formats: operands int8 / uint8 / int4 / uint4 (any declared IntFormat of <= 16 bits),
per-tensor zero points; ``bias`` int32. The accumulator has a declared width ``acc_bits``
(default 32): the exact result Σ_k (x - zx)(w - zw) and the result + bias must each fit
int<acc_bits>, else RangeError naming the op, tensor and first bad index. (Partial sums
need no check: in two's complement a sum whose final value fits the register is exact even
if a partial sum wrapped.) The products are computed exactly by
:func:`refq.intmath.exact_matmul`; no rounding happens before the optional requantization.
Source: gemmlowp / TFLite FullyConnected and BatchMatMul (zero points subtracted from the
operands, int32 accumulation).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import INT8, INT32, IntArray, IntFormat, check_bounds, check_range, exact_matmul
from refq.ops._common import Params, int_input, need_format, need_int, signed
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare
from refq.ops.requantize import RequantParams, requantize


@dataclass(frozen=True)
class GemmParams(Params):
    """Parameters of :func:`linear` and :func:`matmul`.

    ``a`` is the activation (x) / left operand, ``b`` the weight / right operand.
    ``requant`` (optional) maps the accumulator to the output format.
    """

    a_format: IntFormat = INT8
    b_format: IntFormat = INT8
    a_zero_point: int = 0
    b_zero_point: int = 0
    acc_bits: int = 32
    requant: RequantParams | None = None

    def __post_init__(self) -> None:
        for name in ("a_format", "b_format"):
            fmt = need_format(getattr(self, name), f"GemmParams.{name}")
            if fmt.bits > 16:
                raise SpecError(f"GemmParams.{name}: operands of {fmt.bits} bits > 16")
        need_int(self.a_zero_point, "GemmParams.a_zero_point", self.a_format.min, self.a_format.max)
        need_int(self.b_zero_point, "GemmParams.b_zero_point", self.b_format.min, self.b_format.max)
        need_int(self.acc_bits, "GemmParams.acc_bits", 8, 64)
        if self.requant is not None and not isinstance(self.requant, RequantParams):
            raise SpecError("GemmParams.requant: expected RequantParams or None")


_BIAS_BLOCK = 1 << 15
"""Elements per block when adding a per-channel bias row by row."""


def _add_bias(acc: IntArray, bias: IntArray) -> IntArray:
    """acc + bias in place: ``acc`` is always exact_matmul's fresh (C-contiguous) result,
    owned here (the same int64 sum as ``acc + bias``). A per-channel bias is added to blocks
    of rows from a block-sized copy of it: NumPy's broadcasting int64 loops ran 3-4x slower
    than same-shape ones (e.g. 5 vs 1.1 ns per element on 1576 x 1536)."""
    c = acc.shape[-1] if acc.ndim else 1
    if bias.ndim != 1 or bias.size < 2 or acc.ndim < 2 or not acc.flags.c_contiguous:
        np.add(acc, bias, out=acc)
        return acc
    a2 = acc.reshape(-1, c)
    rows = max(1, _BIAS_BLOCK // c)
    tile = np.ascontiguousarray(np.broadcast_to(bias, (min(rows, a2.shape[0]), c)))
    for r in range(0, a2.shape[0], rows):
        blk = a2[r : r + rows]
        np.add(blk, tile[: blk.shape[0]], out=blk)
    return acc


LinearParams = GemmParams
MatmulParams = GemmParams


def _narrow(
    x: npt.NDArray[np.signedinteger[Any]], fmt: IntFormat, zero_point: int
) -> npt.NDArray[np.signedinteger[Any]]:
    """x - zero_point exactly, in the narrowest of int8/int16/int32/int64 that holds every
    value of ``fmt`` and of ``fmt`` minus the zero point (``x`` is already checked against
    ``fmt``), so exact_matmul casts 1-2 bytes per element instead of 8. With zero_point 0
    and ``x`` already of that dtype, ``x`` itself is returned (read only by the GEMM)."""
    lo = min(fmt.min, fmt.min - zero_point)
    hi = max(fmt.max, fmt.max - zero_point)
    for dt in (np.int8, np.int16, np.int32):
        info = np.iinfo(dt)
        if info.min <= lo and hi <= info.max:
            if zero_point == 0 and x.dtype == dt:
                return x
            out: npt.NDArray[np.signedinteger[Any]] = np.empty(x.shape, dtype=dt)
            np.subtract(x, np.int64(zero_point), out=out, casting="unsafe")
            return out
    return np.asarray(x - np.int64(zero_point), dtype=np.int64)


_NARROW_DTYPES = (np.dtype(np.int8), np.dtype(np.int16), np.dtype(np.int32))


def _gemm_operand(
    x: Any, fmt: IntFormat, name: str, op: str, min_ndim: int
) -> npt.NDArray[np.signedinteger[Any]]:
    """Validate a GEMM operand like ``int_input`` but keep an int8/int16/int32 array in its
    own dtype (no widening copy): its values are checked against ``fmt`` by
    ``check_bounds`` — skipped only when the dtype itself cannot leave ``fmt``, else one min
    and one max reduction. Other integer dtypes go through ``int_input`` (int64). The run
    interpreter passes weight constants this way (refq.program.run keeps a narrow copy)."""
    if isinstance(x, np.ndarray) and x.dtype in _NARROW_DTYPES:
        if x.ndim < min_ndim:
            raise SpecError(f"{op}: {name} needs at least {min_ndim} dimension(s), got {x.shape}")
        check_bounds(x, fmt, name, op)
        return x
    return int_input(x, fmt, name, op, min_ndim)


def _operand_bound(fmt: IntFormat, zero_point: int) -> int:
    """max |v - zero_point| over the values v of ``fmt``."""
    return max(abs(fmt.min - zero_point), abs(fmt.max - zero_point))


def _finish(
    acc: IntArray, bias: Any, params: GemmParams, op: str, k: int | None = None
) -> IntArray:
    """Range-check the accumulator (and accumulator + bias) in int<acc_bits>.

    With ``k`` (the GEMM depth) the check is first tried as a proof: every |acc| <=
    k·max|x - zx|·max|w - zw| from the declared operand formats (the operands were checked
    against them), and |acc + bias| <= that bound + max|bias| (the bias's own extreme values)
    — when a bound fits the format no element can be outside it and the element-wise scan
    is not needed.
    """
    acc_fmt = signed(params.acc_bits)
    bound = None
    if k is not None:
        bound = (
            k
            * _operand_bound(params.a_format, params.a_zero_point)
            * _operand_bound(params.b_format, params.b_zero_point)
        )
    if bound is None or bound > acc_fmt.max:
        acc = check_range(acc, acc_fmt, "accumulator", op)
    if bias is not None:
        ba = int_input(bias, INT32, "bias", op)
        if ba.shape != acc.shape[-1:] and ba.ndim != 0:
            raise SpecError(f"{op}: bias shape {ba.shape} != ({acc.shape[-1]},)")
        acc = _add_bias(acc, ba)
        bias_max = max(-int(ba.min()), int(ba.max())) if ba.size else 0
        if bound is None or bound + bias_max > acc_fmt.max:
            acc = check_range(acc, acc_fmt, "accumulator + bias", op)
    if params.requant is not None:
        return requantize(acc, params.requant)
    return acc


def linear(x: Any, w: Any, bias: Any = None, params: GemmParams | None = None) -> IntArray:
    """y = (x - zx) @ (w - zw)^T + bias, exact, checked in int<acc_bits>; then requantized.

    Shapes: x (..., K), w (N, K), bias (N,) or None → (..., N). Formats: x in
    ``params.a_format``, w in ``params.b_format`` (an int8/int16/int32 ``w`` is used in its
    own dtype, still range-checked against ``b_format``), bias int32; output int<acc_bits>
    (or ``params.requant.out_format``). Accuracy: exact (no rounding) before requantization.
    """
    op = "linear"
    p = params if params is not None else GemmParams()
    xa = int_input(x, p.a_format, "x", op, 1)
    wa = _gemm_operand(w, p.b_format, "w", op, 2)
    if wa.ndim != 2 or wa.shape[1] != xa.shape[-1]:
        raise SpecError(f"{op}: w must be (N, K={xa.shape[-1]}), got {wa.shape}")
    xz = _narrow(xa, p.a_format, p.a_zero_point)
    wz = _narrow(wa, p.b_format, p.b_zero_point)
    lead = xz.shape[:-1]
    acc = exact_matmul(xz.reshape(-1, xz.shape[-1]), wz.T).reshape((*lead, wa.shape[0]))
    return _finish(acc, bias, p, op, wa.shape[1])


def matmul(a: Any, b: Any, params: GemmParams | None = None) -> IntArray:
    """Batched (a - za) @ (b - zb), e.g. per-head Q·K^T (B, H, T, d) @ (B, H, d, T).

    Shapes as ``np.matmul`` with at least 2 dims each. Formats: a in ``a_format``, b in
    ``b_format``; output int<acc_bits> (checked) or the requantized format.
    """
    op = "matmul"
    p = params if params is not None else GemmParams()
    aa = int_input(a, p.a_format, "a", op, 2)
    ba = int_input(b, p.b_format, "b", op, 2)
    acc = exact_matmul(
        _narrow(aa, p.a_format, p.a_zero_point), _narrow(ba, p.b_format, p.b_zero_point)
    )
    return _finish(acc, None, p, op, aa.shape[-1])


def _gemm_out(p: GemmParams) -> IntFormat:
    return p.requant.out_format if p.requant is not None else signed(p.acc_bits)


_GEMM_WIDTHS = (
    Width("x - zx, w - zw", "int17", "proven"),
    Width("acc = Σ (x - zx)(w - zw)", "int<acc_bits>"),
    Width("acc + bias", "int<acc_bits>"),
    Width("out (with requant)", "requant.out_format", "saturated"),
)
_GEMM_ROUNDING = (RoundingStep("requant (optional): as its requantize variant",
                               "params.requant.rounding"),)
_GEMM_OUT = "int<acc_bits> (default 32), or requant.out_format when requant is set"

declare(Variant(
    "linear", "gemm", linear, GemmParams,
    title="x @ W^T + bias, exact integer GEMM with a declared accumulator",
    accepts="x: a_format, w: b_format (<= 16 bits each), bias: int32",
    produces=_GEMM_OUT,
    inputs=("x", "w", "bias"),
    in_formats=lambda p: (p.a_format, p.b_format, INT32),
    out_format=_gemm_out,
    widths=_GEMM_WIDTHS,
    roundings=_GEMM_ROUNDING,
    output="checked",
    source="gemmlowp / TFLite FullyConnected (zero points subtracted, int32 accumulation)",
    accuracy=None,
    golden=(Ref("refq.golden.cases_kernels:linear_cases", {"seed": 3300}),),
    strategy=Ref("refq.crosscheck.strategies:linear_gemm"),
    meta={"tosa.lowering": Ref("refq.interop.tosa.gemm:linear"),
          "coverage.bins": ("operand:x", "operand:w", "top:acc"),
          "coverage.model": Ref("refq.golden.coverage_models:linear_gemm"),
          "coverage.corners": Ref("refq.golden.cases_corners:gemm")},
))
declare(Variant(
    "matmul", "gemm", matmul, GemmParams,
    title="batched (a - za) @ (b - zb), exact (attention q·k^T and attn·v)",
    accepts="a: a_format, b: b_format (<= 16 bits each), at least 2-D",
    produces=_GEMM_OUT,
    inputs=("a", "b"),
    in_formats=lambda p: (p.a_format, p.b_format),
    out_format=_gemm_out,
    widths=_GEMM_WIDTHS[:2] + _GEMM_WIDTHS[3:],
    roundings=_GEMM_ROUNDING,
    output="checked",
    source="gemmlowp / TFLite BatchMatMul",
    accuracy=None,
    golden=(Ref("refq.golden.cases_kernels:matmul_cases", {"seed": 3302}),),
    strategy=Ref("refq.crosscheck.strategies:matmul_gemm"),
    meta={"tosa.lowering": Ref("refq.interop.tosa.gemm:matmul"),
          "coverage.bins": ("operand:a", "operand:b", "top:acc"),
          "coverage.model": Ref("refq.golden.coverage_models:matmul_gemm"),
          "coverage.corners": Ref("refq.golden.cases_corners:gemm")},
))

__all__ = ["GemmParams", "LinearParams", "MatmulParams", "linear", "matmul"]
