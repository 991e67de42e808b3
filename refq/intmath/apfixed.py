"""HLS arbitrary-precision fixed point: the ``ap_fixed<W,I,Q,O>`` type and its cast.

Source: the Xilinx ``ap_types`` headers (``ap_fixed_base.h``, Apache-2.0, shipped with
hls4ml as ``templates/vivado/ap_types``; ``ap_fixed_base::operator=``,
``quantization_adjust`` and ``overflow_adjust``) and the Vitis HLS user guide (UG1399,
"Arbitrary Precision Fixed-Point Data Types"). Checked bit for bit against those headers
compiled with g++ (tests/intmath/test_apfixed_gpp.py).

A value of ``ap_fixed<W,I>`` is a W-bit two's-complement raw code r (``ap_ufixed``: unsigned)
standing for r·2^-(W-I): W - I fractional bits (negative or beyond W both allowed). The cast
of a signed value x·2^-f (``x`` a wide integer with ``f`` fractional bits, e.g. a GEMM
accumulator) to ``ap_fixed<W,I,Q,O>`` happens in two steps on the exact value; with
s = f - (W - I) the number of fractional bits dropped:

1. quantization (only when s > 0; s <= 0 is an exact left shift) to q, an integer count of
   target LSBs, from the floor t = ⌊x / 2^s⌋ and the dropped bits — the named rounding of
   the exact quotient x / 2^s:

   ===================  =============================  =====================
   mode                 rounding of x / 2^s            refq name
   ===================  =============================  =====================
   ``AP_TRN``           toward -∞ (default)            ``floor``
   ``AP_TRN_ZERO``      toward zero                    ``trunc``
   ``AP_RND``           nearest, ties toward +∞        ``half_up``
   ``AP_RND_ZERO``      nearest, ties toward zero      (ties to zero)
   ``AP_RND_MIN_INF``   nearest, ties toward -∞        (ties down)
   ``AP_RND_INF``       nearest, ties away from zero   ``half_away``
   ``AP_RND_CONV``      nearest, ties to even          ``half_even``
   ===================  =============================  =====================

2. overflow, when q lies outside [min, max] of the W-bit raw format (signed
   [-2^(W-1), 2^(W-1) - 1], unsigned [0, 2^W - 1]):

   ===============  ==============================================================
   mode             raw result r
   ===============  ==============================================================
   ``AP_WRAP``      q mod 2^W (two's complement; default) — no check at all
   ``AP_SAT``       max if q > max, min if q < min
   ``AP_SAT_ZERO``  0 if q is outside [min, max]
   ``AP_SAT_SYM``   signed: max if q > max, -max if q <= min (so -2^(W-1) never
                    occurs, even when q equals it exactly); unsigned: as AP_SAT
   ``AP_WRAP_SM``   signed only (sign-magnitude wrap): w = q mod 2^W; if q is
                    outside [min, max] and bit W of t differs from the sign bit of
                    w, r is w with its low W - 1 bits inverted and its sign bit set
                    to bit W of t (``overflow_adjust``, N = 0); else r = w
   ===============  ==============================================================

``ap_int<W>`` / ``ap_uint<W>`` from a fixed-point value (``to_ap_int_base``: C-style
truncation toward zero, then the W-bit register) is ``ap_fixed<W,W,AP_TRN_ZERO,AP_WRAP>``
(``ApType.ap_int``). The saturation-bit count N is 0 throughout (hls4ml never sets it).

Supported here: signed widths 2..64, unsigned widths 1..63 (raw codes are carried in int64:
an ``ap_ufixed<64,...>`` code may exceed int64 — refused); |s| <= 128. Refused as the header
does: ``ap_ufixed`` with ``AP_WRAP_SM`` (its constructor prints "cannot support AP_WRAP_SM"
and exits). Every step is integer arithmetic on int64 arrays (the floor, the dropped bits and
the bound comparisons never form a value outside int64).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal, get_args

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray, as_int64
from refq.intmath.formats import IntFormat, wrap

QuantMode = Literal[
    "AP_RND", "AP_RND_ZERO", "AP_RND_MIN_INF", "AP_RND_INF", "AP_RND_CONV", "AP_TRN",
    "AP_TRN_ZERO",
]
OverflowMode = Literal["AP_SAT", "AP_SAT_ZERO", "AP_SAT_SYM", "AP_WRAP", "AP_WRAP_SM"]
QUANT_MODES: tuple[QuantMode, ...] = get_args(QuantMode)
OVERFLOW_MODES: tuple[OverflowMode, ...] = get_args(OverflowMode)
MAX_SHIFT = 128
"""Largest |s| (fractional bits dropped or added) :func:`ap_cast` accepts."""

_I64_MAX = 2**63 - 1
_TYPE = re.compile(
    r"^\s*ap_(u?)(fixed|int)\s*<\s*(-?\d+)\s*(?:,\s*(-?\d+)\s*)?"
    r"(?:,\s*(AP_[A-Z_]+)\s*)?(?:,\s*(AP_[A-Z_]+)\s*)?(?:,\s*(\d+)\s*)?>\s*$"
)


@dataclass(frozen=True)
class ApType:
    """``ap_fixed<width, int_bits, quantization, overflow>`` (``signed=False``:
    ``ap_ufixed``). Raw codes are ``fmt`` integers; one LSB is 2^-frac_bits."""

    width: int
    int_bits: int
    signed: bool = True
    quantization: QuantMode = "AP_TRN"
    overflow: OverflowMode = "AP_WRAP"

    def __post_init__(self) -> None:
        for name in ("width", "int_bits"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
                raise SpecError(f"ApType.{name}: expected an int, got {v!r}")
            object.__setattr__(self, name, int(v))
        if not isinstance(self.signed, (bool, np.bool_)):
            raise SpecError(f"ApType.signed: expected a bool, got {self.signed!r}")
        object.__setattr__(self, "signed", bool(self.signed))
        lo, hi = (2, 64) if self.signed else (1, 63)
        if not lo <= self.width <= hi:
            raise SpecError(
                f"ApType: width {self.width} outside {lo}..{hi} for "
                f"{'ap_fixed' if self.signed else 'ap_ufixed'} (raw codes are carried in "
                "int64)"
            )
        if abs(self.frac_bits) > MAX_SHIFT:
            raise SpecError(f"ApType: {self.width - self.int_bits} fractional bits, "
                            f"|.| must be <= {MAX_SHIFT}")
        if self.quantization not in QUANT_MODES:
            raise SpecError(f"ApType.quantization: {self.quantization!r} not in {QUANT_MODES}")
        if self.overflow not in OVERFLOW_MODES:
            raise SpecError(f"ApType.overflow: {self.overflow!r} not in {OVERFLOW_MODES}")
        if not self.signed and self.overflow == "AP_WRAP_SM":
            raise SpecError(
                "ApType: ap_ufixed cannot use AP_WRAP_SM (ap_fixed_base.h refuses it: "
                "'ap_ufxied<...> cannot support AP_WRAP_SM', exit(1))"
            )

    @classmethod
    def ap_int(cls, width: int, signed: bool = True) -> ApType:
        """``ap_int<width>`` (``ap_uint``) as the target of a fixed-point value: C-style
        truncation toward zero, then the width-bit register (``to_ap_int_base``)."""
        return cls(width, width, signed, "AP_TRN_ZERO", "AP_WRAP")

    @property
    def frac_bits(self) -> int:
        """F = W - I: fractional bits of the raw code."""
        return self.width - self.int_bits

    @property
    def fmt(self) -> IntFormat:
        """The IntFormat of the raw codes (W bits, signed or not)."""
        return IntFormat(self.width, self.signed)

    @property
    def name(self) -> str:
        """The C++ spelling, e.g. ``ap_fixed<8,3,AP_RND_CONV,AP_SAT>``."""
        base = "ap_fixed" if self.signed else "ap_ufixed"
        return f"{base}<{self.width},{self.int_bits},{self.quantization},{self.overflow}>"

    def __str__(self) -> str:
        return self.name

    @classmethod
    def parse(cls, text: str) -> ApType:
        """Read a C++ type: ``ap_fixed<8,3>``, ``ap_ufixed<8,0,AP_RND,AP_SAT>``,
        ``ap_int<16>``, ``ap_uint<4>`` (defaults AP_TRN, AP_WRAP; a saturation-bit count
        other than 0 is refused)."""
        m = _TYPE.match(text) if isinstance(text, str) else None
        if m is None:
            raise SpecError(f"ApType.parse: {text!r} is not ap_[u]fixed<W,I[,Q[,O[,N]]]> or "
                            "ap_[u]int<W>")
        unsigned, kind, w, i, q, o, n = m.groups()
        if n is not None and int(n) != 0:
            raise SpecError(f"ApType.parse: {text!r}: saturation bits N = {n}; only N = 0")
        if kind == "int":
            if i is not None or q is not None:
                raise SpecError(f"ApType.parse: {text!r}: ap_int takes one parameter")
            return cls.ap_int(int(w), not unsigned)
        if i is None:
            raise SpecError(f"ApType.parse: {text!r}: ap_fixed needs <W, I>")
        return cls(int(w), int(i), not unsigned, q or "AP_TRN", o or "AP_WRAP")  # type: ignore[arg-type]

    def to_dict(self) -> dict[str, Any]:
        return {"width": self.width, "int_bits": self.int_bits, "signed": self.signed,
                "quantization": self.quantization, "overflow": self.overflow}

    @classmethod
    def from_dict(cls, d: Any) -> ApType:
        keys = {"width", "int_bits", "signed", "quantization", "overflow"}
        if not isinstance(d, dict) or set(d) != keys:
            raise SpecError(f"ApType.from_dict: expected keys {sorted(keys)}, got {d!r}")
        return cls(d["width"], d["int_bits"], d["signed"], d["quantization"], d["overflow"])


def _bit(x: IntArray, pos: int) -> IntArray:
    """Bit ``pos`` >= 0 of each int64 (two's complement, sign-extended beyond bit 63)."""
    return (x >> np.int64(min(pos, 63))) & np.int64(1)


def _quantize(x: IntArray, s: int, mode: QuantMode) -> tuple[IntArray, IntArray]:
    """(q, t): t = ⌊x / 2^s⌋ and q = t plus the mode's increment (``quantization_adjust``),
    for s >= 1. |q| <= 2^62 + 1, so both fit int64."""
    t = x >> np.int64(min(s, 63))
    if mode == "AP_TRN":
        return t, t
    neg = x < 0
    qb = _bit(x, s - 1).astype(bool)  # the first dropped bit (weight 1/2)
    if s - 1 >= 64:
        rest = x != 0  # every bit below qb: x's bits and its sign extension
    else:
        below = np.int64(_I64_MAX) >> np.int64(63 - min(s - 1, 63))  # 2^(s-1) - 1
        rest = (x & below) != 0
    if mode == "AP_RND":
        inc = qb
    elif mode == "AP_RND_ZERO":
        inc = qb & (neg | rest)
    elif mode == "AP_RND_MIN_INF":
        inc = qb & rest
    elif mode == "AP_RND_INF":
        inc = qb & (~neg | rest)
    elif mode == "AP_RND_CONV":
        inc = qb & (((t & np.int64(1)) == 1) | rest)
    else:  # AP_TRN_ZERO: negative with any dropped bit steps toward zero
        inc = neg & (qb | rest)
    return t + inc.astype(np.int64), t


def ap_cast(x: Any, frac_bits: int, to: ApType) -> IntArray:
    """The raw codes of ``to`` holding the signed fixed-point values x·2^-frac_bits cast to
    ``to`` — what ``to_type y = x_fixed;`` stores (module docstring, both steps).

    Formats: ``x`` int64 (any integer array whose values fit int64), the raw code of a
    signed fixed-point value with ``frac_bits`` fractional bits (any int; the shift
    s = frac_bits - to.frac_bits must satisfy |s| <= 128); output int64 raw codes in
    ``to.fmt`` (W bits, signed or not). Intermediates: the floor t = x >> s (s > 0), the
    dropped bits' first bit and "any other bit set" flag, q = t + increment (|q| <= 2^62 + 1);
    for s <= 0 the exact q = x·2^-s is never formed: its wrap is (x << -s) mod 2^W and its
    range test compares x with ⌊max / 2^-s⌋ and ⌈min / 2^-s⌉. Rounding and saturation:
    ``to.quantization`` and ``to.overflow``.
    """
    if not isinstance(to, ApType):
        raise SpecError(f"ap_cast: expected an ApType, got {to!r}")
    if isinstance(frac_bits, bool) or not isinstance(frac_bits, (int, np.integer)):
        raise SpecError(f"ap_cast: frac_bits must be an int, got {frac_bits!r}")
    xa = as_int64(x, "x")
    s = int(frac_bits) - to.frac_bits
    if abs(s) > MAX_SHIFT:
        raise SpecError(f"ap_cast: shift {s} (frac_bits {frac_bits} - {to.frac_bits}) "
                        f"outside ±{MAX_SHIFT}")
    fmt = to.fmt
    lo, hi, w = fmt.min, fmt.max, to.width
    if s > 0:
        q, t = _quantize(xa, s, to.quantization)
        wrapped = wrap(q, fmt)
        over, under, at_min = q > hi, q < lo, q == lo
        lead = _bit(t, w)  # bit W of the floor, before the rounding increment
    else:  # q = x·2^k exactly (no quantization), never formed
        k = -s
        wrapped = wrap(xa << np.int64(k), fmt) if k < w else np.zeros_like(xa)
        over = xa > np.int64(min(hi >> k, _I64_MAX))  # x·2^k > hi ⇔ x > ⌊hi / 2^k⌋
        under = xa < np.int64(-((-lo) >> k))  # x·2^k < lo ⇔ x < ⌈lo / 2^k⌉
        if to.signed and k <= w - 1:
            at_min = xa == np.int64(lo >> k)  # x·2^k = -2^(W-1)
        else:
            at_min = np.zeros(xa.shape, dtype=bool)
        lead = _bit(xa, w - k) if w - k >= 0 else np.zeros_like(xa)
    mode = to.overflow
    if mode == "AP_WRAP":
        return wrapped
    if mode == "AP_WRAP_SM":
        return _wrap_sm(wrapped, lead, over | under, w)
    out = np.array(wrapped)
    if mode == "AP_SAT_ZERO":
        out[over | under] = 0
        return out
    out[over] = hi
    if mode == "AP_SAT_SYM" and to.signed:
        out[under | at_min] = lo + 1
    else:
        out[under] = lo
    return out


def _wrap_sm(wrapped: IntArray, lead: IntArray, out_of_range: Any, width: int) -> IntArray:
    """AP_WRAP_SM (N = 0): where out of range and ``lead`` (bit W of the floor, before
    rounding) differs from the sign bit of the wrapped code w, invert w's low W - 1 bits and
    set its sign bit to ``lead`` (``overflow_adjust``); elsewhere w."""
    sign = (wrapped < 0).astype(np.int64)
    flip = np.asarray(out_of_range) & (lead != sign)
    low = ~wrapped & np.int64((1 << (width - 1)) - 1)
    flipped = np.where(lead == 1, low | np.int64(-(1 << (width - 1))), low)  # sign bit set
    return np.asarray(np.where(flip, flipped, wrapped), dtype=np.int64)


__all__ = ["MAX_SHIFT", "OVERFLOW_MODES", "QUANT_MODES", "ApType", "OverflowMode", "QuantMode",
           "ap_cast"]
