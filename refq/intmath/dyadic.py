"""Dyadic requantization (I-ViT / HAWQ): x · b / 2^c with a named rounding."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import RangeError, SpecError
from refq.intmath.arrays import IntArray, as_int64, first_index
from refq.intmath.formats import IntFormat, noted_range, saturate_offset
from refq.intmath.rounding import Rounding, check_rounding, round_shift


def dyadic_requantize(x: Any, b: Any, c: Any, rounding: Rounding = "half_even") -> IntArray:
    """round(x · b / 2^c) exactly, for int64 ``x``, ``b`` >= 0 and ``c`` in 0..63.

    Intermediate: the product x · b, which must fit int64 (|x · b| < 2^63) — checked, and a
    RangeError names the first element where it does not. Rounding: the named rounding of the
    exact quotient (I-ViT's torch.round: ``half_even``; TVM's requantize: ``half_up``;
    HAWQ's floor: ``floor``). No saturation: callers clamp to the output format.
    """
    xa = as_int64(x, "x")
    ba = as_int64(b, "b")
    ca = as_int64(c, "c")
    _check_multiplier_shift(ba, ca)
    fast = _dyadic_fast(xa, ba, ca, rounding)
    if fast is not None:
        return fast
    xa, ba, ca = np.broadcast_arrays(xa, ba, ca)
    # |x·b| < 2^63  ⇔  |x| <= (2^63 - 1) // b  for b > 0.
    limit = np.iinfo(np.int64).max // np.maximum(ba, 1)
    i64 = np.iinfo(np.int64)
    over = (np.abs(np.maximum(xa, -i64.max)) > limit) | ((xa == i64.min) & (ba > 1))
    if bool(over.any()):
        idx = first_index(np.asarray(over))
        raise RangeError(
            f"dyadic_requantize: x·b overflows int64 at index {idx} "
            f"(x={int(xa[idx])}, b={int(ba[idx])})"
        )
    return round_shift(xa * ba, ca, rounding)


def _check_multiplier_shift(ba: IntArray, ca: IntArray) -> None:
    """SpecError unless every multiplier b >= 0 and every shift c lies in 0..63."""
    if ba.size and int(ba.min()) < 0:
        raise SpecError(f"dyadic_requantize: multiplier b must be >= 0, got {int(ba.min())}")
    if ca.size and (int(ca.min()) < 0 or int(ca.max()) > 63):
        raise SpecError("dyadic_requantize: shift c must lie in 0..63")


def _common_shift(ba: IntArray, ca: IntArray) -> tuple[IntArray, int] | None:
    """(b', cmax) with b' = b·2^(cmax - c): per-channel shifts brought to the largest one
    (x·b'/2^cmax is the same rational number as x·b/2^c, so every rounding gives the same
    integer), or None unless every b' provably fits (max b < 2^31, cmax - cmin <= 31)."""
    cmin, cmax = int(ca.min()), int(ca.max())
    if int(ba.max()) >= 1 << 31 or cmax - cmin > 31:
        return None
    return (ba if cmin == cmax else ba << (np.int64(cmax) - ca)), cmax


def _dyadic_fast(xa: IntArray, ba: IntArray, ca: IntArray, rounding: Rounding) -> IntArray | None:
    """round(x·b/2^c) with one shared shift and one bound check, or None (general path).

    Per-channel shifts are first brought to the largest one (:func:`_common_shift`). Taken
    when every b' fits int64 and max|x|·max b' < 2^63, which proves that no product x·b'
    overflows — one min and one max reduction instead of an element-wise check. The product
    is one int64 buffer, rounded by :func:`refq.intmath.rounding.round_shift` with a scalar
    shift.
    """
    if xa.size == 0 or ba.size == 0 or ca.size == 0 or ba.size > xa.size or ca.size > xa.size:
        return None
    common = _common_shift(ba, ca)
    if common is None:
        return None
    bb, cmax = common
    xmax = max(-int(xa.min()), int(xa.max()))
    if xmax * int(bb.max()) >= 1 << 63:
        return None
    y = np.multiply(xa, bb)
    return round_shift(y, cmax, rounding)


def dyadic_requantize_saturate(
    x: Any, b: Any, c: Any, rounding: Rounding, zero_point: int, fmt: IntFormat
) -> IntArray:
    """saturate(round(x · b / 2^c) + zero_point, fmt): dyadic requantization with its output
    zero point and saturation, the same integers as
    ``saturate(dyadic_requantize(x, b, c, rounding) + zero_point, fmt)``.

    Formats and checks as :func:`dyadic_requantize` (``x`` int64 or narrower, ``b`` >= 0,
    ``c`` in 0..63, x·b must fit int64 — RangeError otherwise); ``zero_point`` any int.
    Intermediates (fast path): the normalised product y = x·b' in one int64 buffer (per-
    channel shifts brought to the largest one, b' = b·2^(cmax - c), the same rational
    quotient), then ``⌊(y + nudge(y) + zero_point·2^cmax) / 2^cmax⌋`` in place, where the
    nudge realises the named rounding (half_even: 2^(cmax-1) - 1 + bit cmax of y; half_up:
    2^(cmax-1); half_away: 2^(cmax-1) - [y < 0]; ceil: 2^cmax - 1; trunc: (2^cmax - 1)·[y < 0];
    floor: 0) and adding zero_point·2^cmax before the floor division adds exactly
    zero_point after it. Taken only when max|x|·max b' + (|zero_point| + 1)·2^cmax + 1 <
    2^63 proves that no intermediate leaves int64 (max|x| from the dtype when ``x`` is
    int32 or narrower, or from the range ``x`` was noted within by the caller —
    :func:`refq.intmath.formats.noted_range` — else a min and a max of each cache-sized
    block before it is multiplied); otherwise the unfused composition (which raises
    RangeError where a product x·b leaves int64). Saturation: clamp to ``fmt``, in place.
    """
    rounding = check_rounding(rounding)
    xa = np.asarray(x)
    if xa.dtype.kind not in "iu" or xa.dtype.itemsize > 4:
        xa = as_int64(xa, "x")
    ba = as_int64(b, "b")
    ca = as_int64(c, "c")
    zp = int(zero_point)
    _check_multiplier_shift(ba, ca)
    lo, hi = max(fmt.min, -(2**63)), min(fmt.max, 2**63 - 1)
    y = _fused_floor(xa, ba, ca, rounding, zp, lo, hi)
    if y is not None:
        return y
    q = dyadic_requantize(as_int64(xa, "x"), ba, ca, rounding)
    return saturate_offset(q, zp, fmt, in_place=False)


_BLOCK = 1 << 15
"""Elements per block of the fused requantization: the product, the rounding temporary and
the input block stay in the L2 cache while the in-place passes run over them."""


class _Scratch(threading.local):
    """A per-thread int64 work buffer of ``_BLOCK`` elements (reused, never returned)."""

    def __init__(self) -> None:
        self.buf = np.empty(_BLOCK, dtype=np.int64)


_SCRATCH = _Scratch()


def _fused_floor(
    xa: npt.NDArray[np.integer[Any]], ba: IntArray, ca: IntArray, rounding: Rounding, zp: int,
    lo: int, hi: int,
) -> IntArray | None:
    """clamp(round(x·b/2^c) + zp, lo, hi) (see dyadic_requantize_saturate) in one fresh int64
    array of ``x``'s shape, or None where the bound proof fails or ``b``/``c`` do not
    broadcast along the last axis of ``x`` only.

    Strip-mined: the rows of ``x`` (its last axis kept whole) are taken in blocks of about
    ``_BLOCK`` elements; each block is requantized by :meth:`DyadicRows.apply` into its
    slice of the result while it is in cache (the same integers as whole-array passes —
    every step is element-wise)."""
    if xa.size == 0 or xa.ndim == 0 or max(ba.ndim, ca.ndim) > xa.ndim:
        return None
    kern = dyadic_rows(ba, ca, rounding, zp, lo, hi, xa.shape[-1])
    if kern is None:
        return None
    bounded = kern.covers(xa)
    out = np.empty(xa.shape, dtype=np.int64)
    x2 = xa.reshape(-1, xa.shape[-1])
    o2 = out.reshape(x2.shape)
    rows = max(1, _BLOCK // max(1, x2.shape[1]))
    tile = kern.tile(min(rows, x2.shape[0]))
    scratch = _SCRATCH.buf
    for r in range(0, x2.shape[0], rows):
        xb = x2[r : r + rows]
        if not bounded and not kern.covers_values(xb):
            return None
        y = o2[r : r + rows]
        t = scratch[: y.size].reshape(y.shape) if y.size <= _BLOCK else np.empty_like(y)
        kern.apply(xb, y, t, tile)
    return out


@dataclass(frozen=True)
class DyadicRows:
    """Dyadic requantization with output zero point and saturation, prepared for row blocks
    whose last axis is the channel axis: ``clamp(round(x·b/2^c) + zp, lo, hi)``.

    ``mult`` holds b' = b·2^(shift - c) (per channel, shape (C,), or one value, shape ()):
    per-channel shifts brought to the largest, ``shift`` (the same rational quotient, so
    every rounding gives the same integer). ``const`` is the rounding's constant nudge plus
    zp·2^shift; ``xlim`` the bound on |x| that proves every intermediate of :meth:`apply`
    within int64: max|x|·max b' + (|zp| + 1)·2^shift + 1 < 2^63.
    """

    mult: IntArray
    shift: int
    rounding: Rounding
    const: int
    lo: int
    hi: int
    xlim: int
    tie_limit: int = 1
    """No tie x·b' ≡ 2^(c-1) (mod 2^c) for |x| below it (:meth:`tie_free`); 1: unknown."""

    def covers(self, x: npt.NDArray[np.integer[Any]]) -> bool:
        """Whether |x| <= xlim is known without reading ``x``: from its dtype (int32 or
        narrower) or from the range it was noted within (:func:`noted_range`)."""
        if x.dtype.itemsize <= 4:
            info = np.iinfo(x.dtype)
            return max(-int(info.min), int(info.max)) <= self.xlim
        noted = noted_range(x)
        return noted is not None and max(-noted[0], noted[1]) <= self.xlim

    def covers_values(self, x: npt.NDArray[np.integer[Any]]) -> bool:
        """Whether every |x| <= xlim (one min and one max reduction)."""
        return x.size == 0 or (-int(x.min()) <= self.xlim and int(x.max()) <= self.xlim)

    def tile(self, rows: int) -> IntArray:
        """The multipliers as ``apply`` wants them for blocks of at most ``rows`` rows: a
        (rows, C) copy for per-channel ones (same-shape int64 loops ran 3-4x faster than
        broadcasting ones here), else the scalar array."""
        if self.mult.ndim and self.mult.size > 1 and rows > 1:
            return np.ascontiguousarray(np.broadcast_to(self.mult, (rows, self.mult.size)))
        return self.mult

    def apply(
        self, xb: npt.NDArray[np.integer[Any]], y: IntArray, t: IntArray, tile: IntArray,
        out: npt.NDArray[np.int32] | None = None, xmax: int | None = None,
    ) -> npt.NDArray[np.signedinteger[Any]]:
        """clamp(round(xb·b/2^c) + zp, lo, hi) for a block ``xb`` (rows, C) whose values the
        caller proved within ``xlim`` (:meth:`covers`, :meth:`covers_values`), in ``y`` —
        or in ``out``, an int32 buffer, when the caller proved (:meth:`int32_for`) that
        every quotient fits int32. ``y`` and ``t`` are int64 buffers of xb's shape (``t`` is
        scratch; ``y`` may not alias ``xb`` unless ``xb`` is int64), ``tile`` from
        :meth:`tile`; ``xmax``, when given, a bound on |xb| the caller proved (else the
        block's own is taken where it may spare the tie nudge). Returns the array written.

        y = xb·b' exactly (|y| <= xlim·max b'), then the nudge of the named rounding
        (half_even: 2^(c-1) - 1 + bit c of y — taken as min(y & 2^c, 1); half_up:
        2^(c-1); half_away: 2^(c-1) - [y < 0]; ceil: 2^c - 1; trunc: (2^c - 1)·[y < 0];
        floor: 0) and zp·2^c, then one floor shift by c and the clamp. Every intermediate
        is within int64 by the xlim bound.

        Without ties (|xb| < ``tie_limit``, :meth:`tie_free`), half_even and half_away are
        half_up: their value-dependent part of the nudge is dropped (exact: it changes the
        quotient only at a tie). The floor shift is a logical shift of y + nudge + 2^63 as
        uint64: that sum lies in [0, 2^64) because |y + nudge| < 2^63 (xlim), so the logical
        shift is its floor, ⌊(y + nudge)/2^c⌋ + 2^(63-c); the offset is taken off in the
        type written, modulo its width (the quotient fits it: exact)."""
        m = tile[: y.shape[0]] if tile.ndim == 2 else tile
        np.multiply(xb, m, out=y, casting="unsafe")
        c = self.shift
        const = self.const
        nudge = c > 0 and self.rounding in ("half_even", "half_away", "trunc")
        if nudge and self.rounding != "trunc" and (
                xmax is not None or self.tie_limit > _TIE_SCAN_MIN) and self.tie_free(
                _abs_max(xb) if xmax is None else xmax):
            nudge = False
            const += self.rounding == "half_even"  # 2^(c-1) - 1 + 1: half_up's nudge
        if nudge:
            if self.rounding == "half_even":  # + bit c of y: (y & 2^c) is 0 or 2^c
                np.bitwise_and(y, np.int64(1 << c), out=t)
                np.minimum(t, np.int64(1), out=t)
            else:  # -1 where y < 0 (half_away), 2^c - 1 there (trunc)
                np.right_shift(y, np.int64(63), out=t)
                if self.rounding == "trunc":
                    np.bitwise_and(t, np.int64((1 << c) - 1), out=t)
            y += t
        if not c:
            if const:
                y += np.int64(const)
            return self._clamp(y if out is None else _narrowed(y, out))
        u = y.view(np.uint64)  # y + const + 2^63 in [0, 2^64): the uint64 sum is exact
        np.add(u, np.uint64((const + (1 << 63)) % (1 << 64)), out=u)
        np.right_shift(u, np.uint64(c), out=u)  # ⌊(y + const)/2^c⌋ + 2^(63-c)
        offset = 1 << (63 - c)
        if out is None:  # the quotient fits int64: subtract modulo 2^64
            np.subtract(u, np.uint64(offset), out=u)
            return self._clamp(y)
        o32 = out.view(np.uint32)  # the quotient fits int32 (int32_for): modulo 2^32
        np.copyto(o32, u, casting="unsafe")
        if offset % (1 << 32):
            np.subtract(o32, np.uint32(offset % (1 << 32)), out=o32)
        return self._clamp(out)

    def _clamp(
        self, res: npt.NDArray[np.signedinteger[Any]]
    ) -> npt.NDArray[np.signedinteger[Any]]:
        """The clamp to [lo, hi], in place (skipped where the dtype's range is inside)."""
        info = np.iinfo(res.dtype)
        if self.lo > int(info.min) or self.hi < int(info.max):
            lo, hi = max(self.lo, int(info.min)), min(self.hi, int(info.max))
            np.clip(res, res.dtype.type(lo), res.dtype.type(hi), out=res)
        return res

    def tie_free(self, xmax: int) -> bool:
        """Whether no |x| <= ``xmax`` makes x·b' a tie (x·b' ≡ 2^(c-1) mod 2^c). Proof: for
        x ≠ 0 and b' = b_odd·2^e > 0, x·b' has 2-adic valuation v2(x) + e, and a tie needs
        it to be exactly c - 1, so |x| >= 2^(c-1-e); x = 0 and b' = 0 give 0, no tie.
        ``tie_limit`` is the least such 2^(c-1-e) over the channels."""
        return xmax < self.tie_limit

    def int32_for(self, xbound: int) -> bool:
        """Whether every quotient ⌊(x·b' + nudge + zp·2^c) / 2^c⌋ with |x| <= ``xbound``
        fits int32 (then :meth:`apply` may shift into an int32 buffer)."""
        top = xbound * int(self.mult.max()) + abs(self.const) + (1 << self.shift)
        return (top >> self.shift) < 2**31 - 1


def dyadic_rows(
    b: Any, c: Any, rounding: Rounding, zero_point: int, lo: int, hi: int, channels: int
) -> DyadicRows | None:
    """:class:`DyadicRows` for multipliers ``b`` and shifts ``c`` (one value or one per
    channel of a last axis of ``channels``), or None where the fused form does not apply:
    b/c broadcasting other than along the last axis, per-channel shifts more than 31
    apart or multipliers >= 2^31 (b' might not fit), a shift above 62, or no |x| bound
    that keeps every intermediate in int64."""
    ba = as_int64(b, "b")
    ca = as_int64(c, "c")
    _check_multiplier_shift(ba, ca)
    rounding = check_rounding(rounding)
    if ba.size == 0 or ca.size == 0:
        return None
    if any(d != 1 for v in (ba, ca) for d in v.shape[:-1]):
        return None
    common = _common_shift(ba, ca)
    if common is None or common[1] > 62:
        return None
    bb, cmax = common
    bb = bb.reshape(bb.shape[-1:]) if bb.ndim else bb
    if bb.ndim and bb.shape[0] not in (1, channels):
        return None
    if bb.ndim and bb.shape[0] == 1:
        bb = bb.reshape(())
    zp = int(zero_point)
    xlim = ((1 << 63) - 2 - (abs(zp) + 1) * (1 << cmax)) // max(int(bb.max()), 1)
    if xlim < 0:
        return None
    full, half = (1 << cmax) - 1, (1 << (cmax - 1)) if cmax else 0
    const = {"floor": 0, "ceil": full, "half_up": half, "half_away": half, "trunc": 0,
             "half_even": half - 1 if cmax else 0}[rounding] + (zp << cmax)
    bb = np.array(bb, dtype=np.int64)
    bb.setflags(write=False)
    return DyadicRows(bb, cmax, rounding, const, max(lo, -(2**63)), min(hi, 2**63 - 1), xlim,
                      _tie_limit(bb, cmax))


def _tie_limit(bb: IntArray, c: int) -> int:
    """min over the channels of 2^(c-1-e), e = v2(b') (:meth:`DyadicRows.tie_free`);
    channels with b' = 0 or e >= c never tie (2^63: no |x| in int64 reaches it)."""
    limit = 1 << 63
    if c == 0:
        return 1  # no rounding at all: the question does not arise
    for b in {int(v) for v in bb.ravel()}:
        if b:
            e = (b & -b).bit_length() - 1
            if e < c:
                limit = min(limit, 1 << (c - 1 - e))
    return limit


_TIE_SCAN_MIN = 1 << 16
"""Below this tie limit a block's own bound is not worth taking (typical blocks exceed it)."""


def _abs_max(x: npt.NDArray[np.integer[Any]]) -> int:
    return max(-int(x.min()), int(x.max())) if x.size else 0


def _narrowed(y: IntArray, out: npt.NDArray[np.int32]) -> npt.NDArray[np.int32]:
    """y copied into the int32 ``out`` (every value fits: the caller's proof)."""
    np.copyto(out, y, casting="unsafe")
    return out


__all__ = ["DyadicRows", "dyadic_requantize", "dyadic_requantize_saturate", "dyadic_rows"]
