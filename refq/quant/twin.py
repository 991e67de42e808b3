"""PTQ4ViT twin uniform quantizers (Yuan et al., ECCV 2022; github.com/hahnyuan/PTQ4ViT).

M = 2^(b-1) - 1; round = half to even (torch.round); all arithmetic float64.

Softmax form (A operand of attn·V, values in [0, 1]); split s = 2^-m, m ∈ 0..19;
Δ_R1 = s / M, Δ_R2 = 1 / M (so Δ_R2 = 2^m Δ_R1).

- ``mode="paper"`` (piecewise, MSB = range flag, b-1 bits of unsigned value):
  A < s: code = clamp(round(A/Δ_R1), 0, M)            level = code·Δ_R1
  A ≥ s: code = 2^(b-1) + clamp(round(A/Δ_R2), 0, M)  level = (code - 2^(b-1))·Δ_R2
  (codes 2^(b-1) .. 2^(b-1)+round(s·M)-1 are unreachable; the R1 top level s re-quantizes
  into R2 — a property of the paper's form.)
- ``mode="code"`` (the official ``SoSPTQSLBatchingQuantMatMul`` forward, the SUM of both
  branches): x̂ = clamp(round(clip(A,s,1)/Δ_R2),0,M)·Δ_R2 + clamp(round(clip(A,0,s)/Δ_R1),0,M)·Δ_R1.
  The pair (q2, q1) it produces runs through (q2s, 0..q1s) below s then (q2s+1..M, q1s)
  above, with q2s = clamp(round(s/Δ_R2),0,M), q1s = clamp(round(s/Δ_R1),0,M); refq's code
  is the index q1 + (q2 - q2s) into that sequence, 0 .. q1s + M - q2s, and the level is the
  official sum in the official order. It differs from the paper form (adds q2s·Δ_R2 ≈ s
  below the split, adds s above it).

GELU form (input of fc2): x̂ = clamp(round(x/Δ+),0,M)·Δ+ + clamp(round(x/Δ-),-2^(b-1),0)·Δ-,
Δ- = 0.16997124254703522 / 2^(b-1) (fixed, covers GELU's minimum), Δ+ searched; one branch
is always 0, so code = q+ for x ≥ 0 side, q- < 0 otherwise: a signed b-bit code whose sign
selects the scale (MSB flags sign). ``mode="paper"`` additionally requires the paper's
constraint Δ+ = 2^m·Δ- (the code does not enforce it, their issue #8).

Tables (thresholds, levels) are derived from these formulas by float bisection and stored
in ``to_dict``; they reproduce the formulas on every float64 input.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.base import (
    FloatArray,
    check_bits,
    check_dict,
    check_int,
    check_positive,
    register,
)
from refq.quant.table import TableQuantizer
from refq.quant.uniform import round_real

GELU_MIN = 0.16997124254703522
"""PTQ4ViT's constant for the negative GELU range (|min GELU(x)|)."""

Form = Literal["softmax", "gelu"]
Mode = Literal["paper", "code"]


def _rclamp(v: FloatArray, lo: float, hi: float) -> FloatArray:
    return np.clip(round_real(v, "half_even"), lo, hi)


@register
class TwinUniformQuantizer(TableQuantizer):
    """Twin uniform quantizer (module docstring).

    Softmax: ``TwinUniformQuantizer(bits, form="softmax", m=..., mode=...)``.
    GELU: ``TwinUniformQuantizer(bits, form="gelu", delta_pos=..., mode=...)``.
    Public: ``bits``, ``form``, ``mode``, ``m``, ``split`` (s), ``delta_r1``, ``delta_r2``
    (softmax); ``delta_pos``, ``delta_neg`` (GELU); ``thresholds``, ``level_table``.
    """

    kind = "twin"

    def __init__(
        self,
        bits: int,
        form: Form = "softmax",
        *,
        m: int | None = None,
        delta_pos: float | None = None,
        delta_neg: float | None = None,
        mode: Mode = "code",
    ) -> None:
        self.bits = check_bits(bits)
        if form not in ("softmax", "gelu"):
            raise SpecError(f"twin.form: expected 'softmax' or 'gelu', got {form!r}")
        if mode not in ("paper", "code"):
            raise SpecError(f"twin.mode: expected 'paper' or 'code', got {mode!r}")
        self.form: Form = form
        self.mode: Mode = mode
        self.M = (1 << (self.bits - 1)) - 1
        half = 1 << (self.bits - 1)
        self.m: int | None = None
        self.delta_pos: float | None = None
        self.delta_neg: float | None = None
        if form == "softmax":
            if delta_pos is not None or delta_neg is not None:
                raise SpecError("twin: delta_pos/delta_neg belong to form='gelu'")
            self.m = check_int(m, "twin.m", 0, 19)
            self.split = 2.0**-self.m
            self.delta_r1 = self.split / self.M
            self.delta_r2 = 1.0 / self.M
            if mode == "paper":
                self._tables_from_formula(0, 2 * half - 1)
            else:
                self.q2s = int(_rclamp(np.array(self.split / self.delta_r2), 0, self.M))
                self.q1s = int(_rclamp(np.array(self.split / self.delta_r1), 0, self.M))
                self._tables_from_formula(0, self.q1s + self.M - self.q2s)
        else:
            if m is not None:
                raise SpecError("twin: m belongs to form='softmax'")
            self.delta_pos = check_positive(delta_pos, "twin.delta_pos")
            self.delta_neg = (
                GELU_MIN / half
                if delta_neg is None
                else check_positive(delta_neg, "twin.delta_neg")
            )
            if mode == "paper":
                ratio = self.delta_pos / self.delta_neg
                e = math.frexp(ratio)
                if e[0] != 0.5 or self.delta_neg * ratio != self.delta_pos:
                    raise SpecError(
                        "twin: mode='paper' needs delta_pos = 2^m · delta_neg "
                        f"(got ratio {ratio!r}); use mode='code' or TwinUniformQuantizer.gelu_paper"
                    )
            self._tables_from_formula(-half, self.M)

    @classmethod
    def gelu_paper(cls, bits: int, m: int, delta_neg: float | None = None) -> TwinUniformQuantizer:
        """GELU twin quantizer under the paper's constraint Δ+ = 2^m·Δ-."""
        b = check_bits(bits)
        dn = GELU_MIN / (1 << (b - 1)) if delta_neg is None else float(delta_neg)
        mm = check_int(m, "twin.m", 0, 30)
        return cls(b, "gelu", delta_pos=dn * 2.0**mm, delta_neg=delta_neg, mode="paper")

    # ------------------------------------------------------------------ formulas
    def _formula(self, x: FloatArray) -> IntArray:
        M = float(self.M)
        if self.form == "gelu":
            assert self.delta_pos is not None and self.delta_neg is not None
            qp = _rclamp(x / self.delta_pos, 0.0, M)
            qn = _rclamp(x / self.delta_neg, -float(self.M + 1), 0.0)
            return np.where(qn < 0, qn, qp).astype(np.int64)
        s = self.split
        if self.mode == "paper":
            q1 = _rclamp(x / self.delta_r1, 0.0, M)
            q2 = _rclamp(x / self.delta_r2, 0.0, M) + float(self.M + 1)
            return np.where(x < s, q1, q2).astype(np.int64)
        q2 = _rclamp(np.clip(x, s, 1.0) / self.delta_r2, 0.0, M)
        q1 = _rclamp(np.clip(x, 0.0, s) / self.delta_r1, 0.0, M)
        return (q1 + (q2 - self.q2s)).astype(np.int64)

    def _level_formula(self, codes: IntArray) -> FloatArray:
        c = codes.astype(np.float64)
        if self.form == "gelu":
            assert self.delta_pos is not None and self.delta_neg is not None
            qp = np.maximum(c, 0.0)
            qn = np.minimum(c, 0.0)
            return np.asarray(qp * self.delta_pos + qn * self.delta_neg, dtype=np.float64)
        half = float(self.M + 1)
        if self.mode == "paper":
            return np.where(c < half, c * self.delta_r1, (c - half) * self.delta_r2)
        q1 = np.minimum(c, float(self.q1s))
        q2 = self.q2s + np.maximum(c - self.q1s, 0.0)
        return np.asarray(q2 * self.delta_r2 + q1 * self.delta_r1, dtype=np.float64)

    # ------------------------------------------------------------------ serialisation
    def _params(self) -> dict[str, Any]:
        return {"bits": self.bits, "form": self.form, "mode": self.mode, "m": self.m,
                "delta_pos": self.delta_pos, "delta_neg": self.delta_neg}

    @classmethod
    def from_dict(cls, d: Any) -> TwinUniformQuantizer:
        check_dict(d, cls.kind, {"bits", "form", "mode", "m", "delta_pos", "delta_neg"},
                   {"thresholds", "levels"})
        q = cls(d["bits"], d["form"], m=d["m"], delta_pos=d["delta_pos"],
                delta_neg=d["delta_neg"], mode=d["mode"])
        q._load_tables(d)
        return q


__all__ = ["GELU_MIN", "TwinUniformQuantizer"]
