"""TSPTQ-ViT two-scale quantizers (Tai, Lin, Wu, ICASSP 2023) — refq's reading of the paper.

The paper has no public code and no formulas precise enough to reproduce bit for bit; every
choice below is refq's and is documented in docs/quantizers.md.

V-2SF (:class:`ValueTwoScaleQuantizer`, post-softmax / post-GELU values; unsigned):
  b-bit code = 1 flag bit (MSB) + (b-1)-bit value, M = 2^(b-1) - 1, scales s and s·2^k.
  X = round_half_even(x / s)
  small region (flag 0), X ≤ M:   code = max(X, 0),                     level = code·s
  large region (flag 1), X > M:   code = 2^(b-1) + clamp(round_half_even(x / (s·2^k)), L, M),
                                  level = (code - 2^(b-1))·s·2^k,  L = max(1, 2^(b-1-k))
  The region threshold is therefore implied by s: (M + 1/2)·s, where the small region's
  b-1 bits run out ("small values keep the LSBs"); the large region holds the MSBs of the
  same integer X shifted right by k ("large values keep the MSBs"), so hardware realises the
  ratio with a shift. Large codes below 2^(b-1) + L are unreachable. Negative inputs clamp to
  0 (refq's V-2SF is unsigned; GELU's small negative tail is lost).

O-2SF (:class:`OutlierTwoScaleQuantizer`, LayerNorm inputs): a per-channel affine
  quantizer with ONE shared zero point z and two scales: channel c uses s·2^(k·f_c),
  f_c ∈ {0, 1} the per-channel outlier flag. :meth:`OutlierTwoScaleQuantizer.from_calibration`
  flags channels whose range max_c - min_c exceeds τ·median over channels (τ = 4 default;
  the seed's example ratio is 40), fits s, z on the non-outlier channels' [min, max] and
  takes k as the smallest integer ≥ 1 so that every outlier channel's range fits
  [(qmin - z)·s·2^k, (qmax - z)·s·2^k] (capped at 16).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.intmath.rounding import Rounding
from refq.quant.arith import round_real
from refq.quant.base import (
    FloatArray,
    as_real,
    check_bits,
    check_dict,
    check_int,
    check_positive,
    register,
)
from refq.quant.table import TableQuantizer
from refq.quant.uniform import UniformQuantizer, code_bounds


@register
class ValueTwoScaleQuantizer(TableQuantizer):
    """V-2SF (module docstring). Public: ``bits``, ``scale`` (s), ``k``, ``ratio`` (2^k),
    ``flag_code`` (2^(b-1): codes ≥ it are the large region), ``thresholds``,
    ``level_table``."""

    kind = "v2sf"

    def __init__(self, scale: float, bits: int, k: int) -> None:
        self.bits = check_bits(bits)
        self.scale = check_positive(scale, "v2sf.scale")
        self.k = check_int(k, "v2sf.k", 1, 16)
        self.ratio = 2.0**self.k
        self.flag_code = 1 << (self.bits - 1)
        self.M = self.flag_code - 1
        self.large_min = max(1, self.flag_code >> self.k)
        self._tables_from_formula(0, 2 * self.flag_code - 1)

    @classmethod
    def from_max(cls, xmax: float, bits: int, k: int) -> ValueTwoScaleQuantizer:
        """s chosen so that the large region's top level M·s·2^k equals ``xmax``."""
        b = check_bits(bits)
        kk = check_int(k, "v2sf.k", 1, 16)
        xm = check_positive(xmax, "v2sf.xmax")
        return cls(xm / (((1 << (b - 1)) - 1) * 2.0**kk), b, kk)

    def _formula(self, x: FloatArray) -> IntArray:
        X = round_real(x / self.scale, "half_even")
        small = np.maximum(X, 0.0)
        big = np.clip(round_real(x / (self.scale * self.ratio), "half_even"),
                      float(self.large_min), float(self.M)) + self.flag_code
        return np.where(X <= self.M, small, big).astype(np.int64)

    def _level_formula(self, codes: IntArray) -> FloatArray:
        c = codes.astype(np.float64)
        return np.where(codes < self.flag_code, c * self.scale,
                        (c - self.flag_code) * (self.scale * self.ratio))

    def _params(self) -> dict[str, Any]:
        return {"bits": self.bits, "scale": self.scale, "k": self.k}

    @classmethod
    def from_dict(cls, d: Any) -> ValueTwoScaleQuantizer:
        check_dict(d, cls.kind, {"bits", "scale", "k"}, {"thresholds", "levels"})
        q = cls(d["scale"], d["bits"], d["k"])
        q._load_tables(d)
        return q


@register
class OutlierTwoScaleQuantizer(UniformQuantizer):
    """O-2SF (module docstring): per-channel scale ``base_scale·2^(k·flags[c])``, shared
    zero point. Public: ``base_scale``, ``k``, ``flags`` (int64 0/1 per channel), plus the
    UniformQuantizer attributes (``scale`` per channel, ``zero_point``, ``axis``...)."""

    kind = "o2sf"

    def __init__(
        self,
        base_scale: float,
        bits: int,
        k: int,
        flags: npt.ArrayLike,
        zero_point: int = 0,
        *,
        axis: int = -1,
        signed: bool = False,
        rounding: Rounding = "half_even",
    ) -> None:
        self.base_scale = check_positive(base_scale, "o2sf.base_scale")
        self.k = check_int(k, "o2sf.k", 0, 16)
        f = np.asarray(flags)
        if f.ndim != 1 or f.size == 0 or f.dtype.kind not in "iub" or not bool(
            np.isin(f.astype(np.int64), (0, 1)).all()
        ):
            raise SpecError("o2sf.flags: expected a non-empty 1-D array of 0/1")
        self.flags = f.astype(np.int64)
        zp = check_int(zero_point, "o2sf.zero_point", -(2**31), 2**31)
        scale = self.base_scale * np.exp2((self.k * self.flags).astype(np.float64))
        super().__init__(scale, bits, np.full(self.flags.shape, zp, dtype=np.int64),
                         signed=signed, axis=check_int(axis, "o2sf.axis", -32, 31),
                         rounding=rounding)

    @classmethod
    def from_calibration(
        cls,
        x: npt.ArrayLike,
        bits: int,
        *,
        axis: int = -1,
        tau: float = 4.0,
        k: int | None = None,
        min_scale: float = 1e-8,
    ) -> OutlierTwoScaleQuantizer:
        """Fit flags, s, z, k on calibration data ``x`` (module docstring; unsigned)."""
        b = check_bits(bits)
        t = check_positive(tau, "o2sf.tau")
        xa = as_real(x)
        ax = check_int(axis, "o2sf.axis", -xa.ndim, xa.ndim - 1)
        rows = np.moveaxis(xa, ax, 0).reshape(xa.shape[ax], -1)
        lo, hi = rows.min(axis=1), rows.max(axis=1)
        rng = hi - lo
        flags = (rng > t * float(np.median(rng))).astype(np.int64)
        normal = flags == 0
        nlo, nhi = min(float(lo[normal].min()), 0.0), max(float(hi[normal].max()), 0.0)
        qmin, qmax = code_bounds(b, False, False)
        s = max((nhi - nlo) / (qmax - qmin), min_scale)
        z = int(np.clip(qmin + round_real(np.array(-nlo / s), "half_even"), qmin, qmax))
        if k is None:
            need = 1.0
            for c in np.flatnonzero(flags):
                if lo[c] < 0 and z > qmin:
                    need = max(need, float(lo[c]) / ((qmin - z) * s))
                if hi[c] > 0 and qmax > z:
                    need = max(need, float(hi[c]) / ((qmax - z) * s))
            k = min(16, max(1, math.ceil(math.log2(need)))) if need > 1 else 1
        return cls(s, b, k, flags, z, axis=ax)

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "version": 1, "bits": self.bits, "base_scale": self.base_scale,
            "k": self.k, "flags": self.flags.tolist(), "zero_point": int(self.zero_point[0]),
            "axis": self.axis, "signed": self.signed, "rounding": self.rounding,
        }

    @classmethod
    def from_dict(cls, d: Any) -> OutlierTwoScaleQuantizer:
        check_dict(d, cls.kind, {"bits", "base_scale", "k", "flags", "zero_point", "axis",
                                 "signed", "rounding"})
        return cls(d["base_scale"], d["bits"], d["k"], d["flags"], d["zero_point"],
                   axis=d["axis"], signed=d["signed"], rounding=d["rounding"])


__all__ = ["OutlierTwoScaleQuantizer", "ValueTwoScaleQuantizer"]
