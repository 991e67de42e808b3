"""Integer LayerNorm statistics over the last axis (C channels): ``refq``, ``ibert``, ``ivit``.

Input forms (all variants). The input is aligned to one integer scale S before any
statistic: a = (x - zero_point) << channel_shift[c], int32 (checked). channel_shift is
per-channel (length C) or one value:
- plain: channel_shift = (0,);
- PTF (FQ-ViT): x_c has scale S·2^α_c, α_c in 0..3, one shared zero point → shift α_c;
- O-2SF (TSPTQ): outlier channels carry a second scale S·2^k → shift k there, 0 elsewhere.

``refq`` (default): exact statistics without rounding the mean:
    y = C·a - Σa                        int<stat_bits=40> (checked)
    v = Σ y²                            int63 (checked)
    k = max(0, ⌊(62 - bitlen(v)) / 2⌋); s = isqrt(v·4^k)   (≈ √v·2^k, exact floor)
    out = round_half_even(y·2^(F+k) / max(s, 1)) + bias_c   int<out_bits>, scale √C/2^F
  out·√C/2^F approximates (x - μ)/σ (population σ, eps ignored) to <= 1/2 LSB + 2^(F-30).

``ibert`` (kssteven418/I-BERT IntLayerNorm): mean = round_half_even(Σa / C); y = a - mean;
  v = Σ (y >> var_shift)² (uint32, checked: I-BERT raises var_shift on overflow);
  std = isqrt(v)·2^var_shift (the code: floor(torch.sqrt)); factor = ⌊2^31 / max(std, 1)⌋;
  out = ⌊y·factor / 2⌋ + bias_c, scale √C/2^30 (std = 0 → 1 is a refq deviation: the code
  divides by zero).
``ivit`` (zkkli/I-ViT IntLayerNorm): same mean; v = Σ y² (int64); 10 Newton steps
  k ← ⌊(k + ⌊v/k⌋)/2⌋ from k = 2^16 (faithful: does not converge for small v, e.g. 99 → 64);
  factor = ⌊(2^31 - 1)/k⌋; out = ⌊y·factor / 2⌋ + bias_c, scale √C/2^30.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from refq.errors import RangeError, SpecError
from refq.intmath import INT8, INT32, IntArray, IntFormat, check_range, isqrt, round_div
from refq.intmath.formats import check_bounds
from refq.ops._common import (
    Params,
    int_input,
    need_format,
    need_int,
    need_ints,
    per_channel,
    signed,
)
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare, find, names

UINT32 = IntFormat(32, False)


@dataclass(frozen=True)
class LayerNormParams(Params):
    """Integer LayerNorm parameters (module docstring). ``bias`` is β/γ at the output
    scale (per channel or one value); ``frac_bits`` F is the refq output precision."""

    in_format: IntFormat = INT8
    zero_point: int = 0
    channel_shift: tuple[int, ...] = (0,)
    bias: tuple[int, ...] = (0,)
    var_shift: int = 0
    frac_bits: int = 15
    out_bits: int = 48

    def __post_init__(self) -> None:
        fmt = need_format(self.in_format, "in_format")
        need_int(self.zero_point, "zero_point", fmt.min, fmt.max)
        shifts = need_ints(self.channel_shift, "channel_shift", 0, 16)
        object.__setattr__(self, "channel_shift", shifts)
        object.__setattr__(self, "bias", need_ints(self.bias, "bias", -(2**47), 2**47))
        need_int(self.var_shift, "var_shift", 0, 16)
        need_int(self.frac_bits, "frac_bits", 1, 30)
        need_int(self.out_bits, "out_bits", 8, 64)


def _align(x: Any, p: LayerNormParams, op: str) -> tuple[IntArray, int, int]:
    """:func:`align` and a proven interval [lo, hi] holding every aligned value."""
    fmt = p.in_format
    xa = int_input(x, fmt, "x", op, 1)
    c = xa.shape[-1]
    if c == 0:
        raise SpecError(f"{op}: empty channel axis")
    sh = per_channel(p.channel_shift, c, "channel_shift", op)
    zp = p.zero_point
    smax = max(p.channel_shift)
    # zero_point lies in fmt, so fmt.min - zp <= 0 <= fmt.max - zp: shifting widens both ends
    lo, hi = (fmt.min - zp) << smax, (fmt.max - zp) << smax
    if zp == 0 and smax == 0:
        a = xa
    else:
        a = xa - np.int64(zp)
        if smax:
            a <<= sh
    if lo < INT32.min or hi > INT32.max:
        check_bounds(a, INT32, "aligned x", op)
        lo, hi = (int(a.min()), int(a.max())) if a.size else (0, 0)
    return a, lo, hi


def align(x: Any, p: LayerNormParams, op: str) -> IntArray:
    """(x - zero_point) << channel_shift, int32 (checked): the PTF / O-2SF input form.

    The int32 check is proven from ``in_format``, ``zero_point`` and the largest shift where
    that interval fits int32 (e.g. int8 inputs), else done on the values. The result may
    share memory with ``x`` (plain form): callers never write into it.
    """
    return _align(x, p, op)[0]


def _bias(p: LayerNormParams, c: int, op: str) -> IntArray:
    return per_channel(p.bias, c, "bias", op)


def _finish(y: IntArray, p: LayerNormParams, op: str, bound: int | None = None) -> IntArray:
    """y + bias (in place: ``y`` is a fresh array), checked against int<out_bits> — unless
    ``bound`` >= max |y| is given and bound + max|bias| fits, which proves the range."""
    bias = _bias(p, y.shape[-1], op)
    if any(p.bias):
        y += bias
    fmt = signed(p.out_bits)
    if bound is None or bound + max(abs(b) for b in p.bias) > fmt.max:
        check_bounds(y, fmt, "out", op)
    return y


_POW2 = np.left_shift(np.int64(1), np.arange(63, dtype=np.int64))


def _bit_length(n: IntArray) -> IntArray:
    """bit_length of each element of a non-negative int64 array (0 for 0): the number of
    powers of two 2^0..2^62 that are <= n, by one exact integer search."""
    return np.asarray(np.searchsorted(_POW2, n, side="right"), dtype=np.int64)


def _sum_of_squares(y: IntArray, bound: int, op: str) -> IntArray:
    """Σ y² over the last axis in int63 (checked). ``bound`` >= max |y| (a static bound; the
    values' own max |y| is taken when it is not enough): when C·bound² fits int63 the int64
    sum is exact and in range; otherwise each row is summed on Python ints first, and a row
    beyond int63 raises RangeError (int64 would wrap silently)."""
    c = y.shape[-1]
    fmt = signed(63)
    if c * bound * bound > fmt.max and y.size:
        bound = max(-int(y.min()), int(y.max()))  # the values' own bound
    if c * bound * bound > fmt.max and not _row_sums_fit(y, bound, fmt.max):
        for i, total in enumerate(_row_sums_of_squares(y, bound)):
            if total > fmt.max:
                idx = (*(int(j) for j in np.unravel_index(i, y.shape[:-1])), 0)
                raise RangeError(
                    f"{op}: tensor 'sum(y^2)' value {total} at index "
                    f"{idx} outside {fmt.name} range "
                    f"[{fmt.min}, {fmt.max}]"
                )
    # every row's true sum is in [0, 2^63): int64 arithmetic, exact modulo 2^64, gives it
    v: IntArray = np.einsum("...c,...c->...", y, y)[..., None]
    return v


def _row_sums_fit(y: IntArray, bound: int, limit: int) -> bool:
    """Whether every row's Σ y² is provably <= ``limit`` (< 2^63), from the high halves only.

    With y = h·2^16 + l (h = y >> 16, 0 <= l < 2^16): y² = h²·2^32 + h·l·2^17 + l², so
    Σy² <= 2^32·(Σh² + 2·Σ|h| + C), and Σ|h| <= √(C·Σh²) (Cauchy-Schwarz) <= isqrt(C·Σh²) + 1.
    Σh² is exact in int64 when |y| < 2^39 and C <= 2^16 (< 2^62); the bound is checked per
    row in int64 (every term < 2^47 when Σh² < 2^30, else the row fails). False sends the
    caller to the exact per-row sums (rows near the limit, or outside these widths)."""
    c = y.shape[-1]
    if bound >= 1 << 39 or c > 1 << 16 or y.size == 0:
        return y.size == 0
    h = y >> np.int64(16)
    hh = np.einsum("...c,...c->...", h, h)
    cap = limit >> 32
    if int(hh.max()) > cap:
        return False
    lhs = hh + 2 * (isqrt(hh * np.int64(c)) + 1) + np.int64(c)
    return int(lhs.max()) <= cap


def _row_sums_of_squares(y: IntArray, bound: int) -> list[int]:
    """The exact Σ y² of each row (last axis) as Python ints, without squaring each element
    in Python: with y = h·2^16 + l (h = y >> 16 floor, 0 <= l < 2^16),
    y² = h²·2^32 + h·l·2^17 + l², and the three row sums Σh², Σh·l, Σl² are exact in int64
    when |y| < 2^39 and C <= 2^16 (|Σh²| < 2^62, |Σh·l| < 2^55, Σl² < 2^48); they are
    combined per row on Python ints. Outside those limits each row is summed on Python ints.
    """
    c = y.shape[-1]
    flat = y.reshape(-1, c)
    if bound >= 1 << 39 or c > 1 << 16:
        return [sum(t * t for t in row) for row in flat.tolist()]
    h = flat >> np.int64(16)
    lo = flat & np.int64(0xFFFF)
    hh = np.einsum("rc,rc->r", h, h).tolist()
    hl = np.einsum("rc,rc->r", h, lo).tolist()
    ll = np.einsum("rc,rc->r", lo, lo).tolist()
    return [(a << 32) + (b << 17) + d for a, b, d in zip(hh, hl, ll, strict=True)]


# Upper bounds ⌊√((i + 1)·2^52 - 1)⌋ + 1 >= √m for every m with m >> 52 == i, i < 2^10.
_SQRT_TOP = isqrt((np.arange(1, 1025, dtype=np.int64) << np.int64(52)) - np.int64(1)) + 1
_NORM_LO, _NORM_HI = 1 << 60, 1 << 62


def _isqrt_normalized(m: IntArray) -> IntArray:
    """⌊√m⌋ for int64 m in {0} ∪ [2^60, 2^62) (what layernorm_refq's k makes of v), with 0
    mapped to 1 (s = max(isqrt(m), 1)).

    Three integer Newton steps x ← ⌊(x + ⌊m/x⌋)/2⌋ from the table bound above (relative
    error < 2^-9, so the error after the steps is < 1), keeping the running minimum (the
    iteration decreases to ⌊√m⌋ and may then step up by one); the result is verified by
    x² <= m < (x + 1)², and any element outside the normalized range or failing the
    verification sends the whole array to :func:`refq.intmath.isqrt`.
    """
    if m.size == 0:
        return np.ones(m.shape, dtype=np.int64)
    zero = m == 0
    mm = np.where(zero, np.int64(_NORM_LO), m)
    if int(mm.min()) < _NORM_LO or int(mm.max()) >= _NORM_HI:
        return np.maximum(isqrt(m), 1)
    x = _SQRT_TOP[mm >> np.int64(52)]
    for _ in range(3):
        x = np.minimum(x, (x + mm // x) >> np.int64(1))
    x1 = x + np.int64(1)
    if not (bool((x * x <= mm).all()) and bool((x1 * x1 > mm).all())):
        return np.maximum(isqrt(m), 1)
    return np.asarray(np.where(zero, np.int64(1), x), dtype=np.int64)


def layernorm_refq(x: Any, params: LayerNormParams) -> IntArray:
    """refq exact-statistics LayerNorm (module docstring).

    Range checks: aligned x (int32), ``C*x - sum`` (int40), ``sum(y^2)`` (int63) are proven
    from the input interval where it fits and checked on the values otherwise; ``out`` is
    checked. |y|·2^k <= √(v·4^k) < 2^31, so y << k fits and round_div_shifted is exact.
    """
    op = "layernorm_refq"
    p = params
    a, lo, hi = _align(x, p, op)
    c = a.shape[-1]
    y = a * np.int64(c)
    y -= a.sum(axis=-1, keepdims=True)
    ybound = c * (hi - lo)  # |C·a_i - Σa| <= C·(hi - lo)
    if ybound > signed(40).max:
        check_bounds(y, signed(40), "C*x - sum", op)
        ybound = max(-int(y.min()), int(y.max())) if y.size else 0
    v = _sum_of_squares(y, ybound, op)
    k = np.maximum(np.int64(0), (np.int64(62) - _bit_length(np.maximum(v, 1))) >> 1)
    s = _isqrt_normalized(v << (2 * k))  # = max(isqrt(v·4^k), 1)
    out = normalized_quotient(y, k, s, v, p.frac_bits)
    # |y|·2^k <= √(v·4^k) < s + 1, so |y|·2^k <= s and |out| <= 2^F: out + bias is proven
    # in int<out_bits> when 2^F + max|bias| fits, else checked on the values.
    return _finish(out, p, op, bound=1 << p.frac_bits)


def normalized_quotient(y: IntArray, k: IntArray, s: IntArray, v: IntArray, f: int) -> IntArray:
    """round_half_even(y·2^(k+F) / s) per row — ``round_div_shifted(y << k, F, s,
    "half_even")`` — for the rows of layernorm_refq: k, s, v of shape (..., 1), v = Σy²,
    k >= 0, s = max(isqrt(v·4^k), 1) < 2^32, so |y|·2^k <= s; F = ``f`` in 1..30.

    By one exact reciprocal per row, M = ⌊2^62/s⌋·2^k (0 where v = 0, i.e. y = 0; else
    s >= 2^k, so M <= 2^62): w = y·M, |w| <= 2^62, and w/2^Q (Q = 62 - F) is the true
    quotient x = y·2^(k+F)/s minus y·2^k·ε/2^Q (0 <= ε < 1), an error below 2^(F-30)
    <= 2^-15 with the sign of y. ⌊w/2^Q + 1/2⌋ is then the rounded quotient unless x + 1/2
    lies within that error of an integer (ties included): those elements — the low Q bits
    of w + 2^(Q-1) within ``band`` of a multiple of 2^Q — are recomputed exactly, with
    N = y·2^(k+F) (|N| <= 2^(32+F) < 2^63), q = ⌊N/s⌋ and the remainder.
    """
    q_bits = 62 - f
    rec = np.where(v > 0, (np.int64(1) << np.int64(62)) // s, np.int64(0)) << k
    w = y * rec
    w += np.int64(1 << (q_bits - 1))
    band = (1 << (q_bits + f - 30)) + 1  # 2^32 + 1 > s·ε, the error of w (units of 1)
    out = w >> np.int64(q_bits)
    w += np.int64(band)
    w &= np.int64((1 << q_bits) - 1)
    amb = w < np.int64(2 * band)
    if bool(amb.any()):  # about 2^-14 of the elements
        idx = np.flatnonzero(amb)
        row = idx // np.int64(y.shape[-1]) if y.ndim else idx
        sb = s.ravel()[row]
        n = y.ravel()[idx] << (k.ravel()[row] + np.int64(f))
        q = n // sb
        r2 = 2 * (n - q * sb)  # 0 <= r < s < 2^32
        q += (r2 > sb) | ((r2 == sb) & ((q & 1) == 1))
        out.ravel()[idx] = q
    return out


def _mean_center(a: IntArray) -> IntArray:
    c = a.shape[-1]
    mean = round_div(a.sum(axis=-1, keepdims=True), c, "half_even")
    return a - mean


def layernorm_ibert(x: Any, params: LayerNormParams) -> IntArray:
    """I-BERT integer LayerNorm (module docstring). Rounding: mean half_even, then floor."""
    op = "layernorm_ibert"
    p = params
    y = _mean_center(align(x, p, op))
    ys = y >> np.int64(p.var_shift)
    v = check_range((ys * ys).sum(axis=-1, keepdims=True), UINT32, "var (raise var_shift)", op)
    std = np.maximum(isqrt(v) << np.int64(p.var_shift), 1)
    factor = np.int64(2**31) // std
    return _finish((y * factor) >> 1, p, op)


def ivit_sqrt(v: IntArray, steps: int = 10) -> IntArray:
    """I-ViT's integer square root: ``steps`` Newton iterations from 2^16, floor divisions."""
    k = np.full(v.shape, 1 << 16, dtype=np.int64)
    for _ in range(steps):
        k = (k + v // k) >> 1
    return k


def layernorm_ivit(x: Any, params: LayerNormParams) -> IntArray:
    """I-ViT integer LayerNorm with its faithful 10-step Newton sqrt (module docstring)."""
    op = "layernorm_ivit"
    p = params
    y = _mean_center(align(x, p, op))
    v = check_range((y * y).sum(axis=-1, keepdims=True), signed(63), "var", op)
    factor = np.int64(2**31 - 1) // ivit_sqrt(v)
    return _finish((y * factor) >> 1, p, op)


LayerNormVariant = Literal["refq", "ibert", "ivit", "hls4ml"]
"""The built-in LayerNorm variant names, for type checkers (:data:`LAYERNORM_VARIANTS` is
the live list, derived from the registry)."""


def layernorm(x: Any, params: LayerNormParams, variant: str = "refq") -> IntArray:
    """Integer LayerNorm along the last axis by ``variant`` (module docstring)."""
    return find("layernorm", variant)(x, params)


_ALIGN = Width("a = (x - zero_point) << channel_shift[c]", "int32")
_OUT = Width("out = ... + bias_c", "int<out_bits>")
_LN_ACCEPTS = "x: in_format (default int8), zero_point, per-channel shifts (plain, PTF, O-2SF)"


def _ln(name: str, fn: Any, title: str, produces: str, widths: tuple[Width, ...],
        roundings: tuple[RoundingStep, ...], source: str, accuracy: str, seed: int,
        extra: tuple[Ref, ...] = ()) -> None:
    declare(Variant(
        "layernorm", name, fn, LayerNormParams, title=title, accepts=_LN_ACCEPTS,
        produces=produces, out_format=lambda p: signed(p.out_bits), widths=widths,
        roundings=roundings, output="checked", source=source, accuracy=accuracy,
        derive=Ref("refq.params.layernorm:layernorm_params"),
        golden=(Ref("refq.golden.cases_kernels:layernorm_rows", {"seed": seed}), *extra),
        strategy=Ref("refq.crosscheck.strategies:layernorm_rows"),
        meta={"lower": Ref(f"refq.program.lower_kernels:layernorm_{name}"),
              "tosa.lowering": Ref(f"refq.interop.tosa.layernorm:{name}"),
              **_ln_coverage(name)},
    ))


def _ln_coverage(name: str) -> dict[str, Any]:
    """Coverage points (refq.golden.coverage): input ends, special rows, shift ends, and the
    variant's rounding: refq's one division, or the rounded mean of ibert and ivit."""
    common = ("operand:x", "rows:rows", "ends:channel_shift")
    if name == "refq":
        near = "not constructed: s = ⌊√(v·4^k)⌋ is about 2^31 and exact for a square v " \
               "only, where remainders are multiples of 2^k; no row is known"
        return {"coverage.bins": (*common, "tie:y·2^(F+k) / s", "top:v = Σy²"),
                "coverage.model": Ref("refq.golden.coverage_models:layernorm_refq"),
                "coverage.unreachable": {"y·2^(F+k) / s: near_tie+": near,
                                         "y·2^(F+k) / s: near_tie-": near},
                "coverage.corners": Ref("refq.golden.cases_corners:layernorm")}
    return {"coverage.bins": (*common, "tie:mean = Σa / C"),
            "coverage.model": Ref("refq.golden.coverage_models:layernorm_mean"),
            "coverage.corners": Ref("refq.golden.cases_corners:layernorm")}


_ln("refq", layernorm_refq,
    "exact statistics, no rounded mean, isqrt of the normalized variance",
    "int<out_bits> (default 48), scale √C/2^frac_bits (F = 15)",
    (_ALIGN, Width("y = C·a - Σa", "int40"), Width("v = Σy²", "int63"),
     Width("s = isqrt(v·4^k)", "int31", "proven"), Width("y·2^(F+k)", "int62", "proven"),
     _OUT),
    (RoundingStep("s = √(v·4^k)", "floor"),
     RoundingStep("out = y·2^(F+k) / s", "half_even")),
    "refq",
    "<= 1/2 LSB + 2^(F-30) against (x - μ)/σ (population σ, eps ignored); measured 0.4999",
    3200,
    (Ref("refq.golden.cases_kernels:layernorm_ptf", {"seed": 3210}),
     Ref("refq.golden.cases_kernels:layernorm_o2sf", {"seed": 3211})))
_ln("ibert", layernorm_ibert,
    "I-BERT integer LayerNorm: rounded mean, uint32 variance, isqrt, 2^31/std factor",
    "int<out_bits> (default 48), scale √C/2^30 (frac_bits 30)",
    (_ALIGN, Width("y = a - mean", "int32", "proven"),
     Width("v = Σ (y >> var_shift)²", "uint32"), Width("factor = ⌊2^31 / std⌋", "int32",
                                                       "proven"),
     Width("y·factor", "int63", "proven"), _OUT),
    (RoundingStep("mean = Σa / C", "half_even"), RoundingStep("y >> var_shift", "floor"),
     RoundingStep("std = √v", "floor"), RoundingStep("factor = 2^31 / std", "floor"),
     RoundingStep("out = y·factor / 2", "floor")),
    "I-BERT IntLayerNorm (kssteven418/I-BERT)",
    "the rounded mean costs ~0.5/σ: measured 0.26 at σ = 1 LSB, 0.016 at σ = 40",
    3201)
_ln("ivit", layernorm_ivit,
    "I-ViT integer LayerNorm: rounded mean, 10-step Newton sqrt from 2^16 (faithful)",
    "int<out_bits> (default 48), scale √C/2^30 (frac_bits 30)",
    (_ALIGN, Width("y = a - mean", "int32", "proven"), Width("v = Σy²", "int63"),
     Width("k (Newton)", "int64", "proven"), Width("factor = ⌊(2^31 - 1) / k⌋", "int32",
                                                   "proven"),
     Width("y·factor", "int63", "proven"), _OUT),
    (RoundingStep("mean = Σa / C", "half_even"), RoundingStep("Newton k = (k + v/k) / 2",
                                                            "floor"),
     RoundingStep("factor = (2^31 - 1) / k", "floor"), RoundingStep("out = y·factor / 2",
                                                                   "floor")),
    "I-ViT IntLayerNorm (zkkli/I-ViT)",
    "the Newton sqrt does not converge for small variance: error 2.8 at σ = 1 LSB; 0.016 at "
    "σ = 40",
    3202)


def __getattr__(name: str) -> tuple[str, ...]:
    if name == "LAYERNORM_VARIANTS":  # derived from the registry on every access
        return names("layernorm")
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


__all__ = [
    "LAYERNORM_VARIANTS",  # noqa: F822 (module __getattr__: derived from the registry)
    "LayerNormParams",
    "LayerNormVariant",
    "align",
    "ivit_sqrt",
    "layernorm",
    "layernorm_ibert",
    "layernorm_ivit",
    "layernorm_refq",
    "normalized_quotient",
]
