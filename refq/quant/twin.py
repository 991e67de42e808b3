"""PTQ4ViT twin uniform quantizers (Yuan et al., ECCV 2022; github.com/hahnyuan/PTQ4ViT).

M = 2^(b-1) - 1; round = half to even (torch.round).

Softmax form (A operand of attn·V, values in [0, 1]); split s = 2^-m, m ∈ 0..19;
Δ_R1 = s / M, Δ_R2 = 1 / M (so Δ_R2 = 2^m Δ_R1).

- ``mode="paper"`` (piecewise, MSB = range flag, b-1 bits of unsigned value; float64):
  A < s: code = clamp(round(A/Δ_R1), 0, M)            level = code·Δ_R1
  A ≥ s: code = 2^(b-1) + clamp(round(A/Δ_R2), 0, M)  level = (code - 2^(b-1))·Δ_R2
  (codes 2^(b-1) .. 2^(b-1)+round(s·M)-1 are unreachable; the R1 top level s re-quantizes
  into R2 — a property of the paper's form.)
- ``mode="code"``: the official forward (quant_layers/matmul.py,
  ``SoSPTQSLBatchingQuantMatMul.quant_input_A``), the SUM of both branches, evaluated in the
  official order of operations:
      Δ1 = s / M                                       (A_interval: split/(A_qmax-1))
      q2 = clamp(round(clamp(A, s, 1) · M), 0, M)      x_high = q2 / M
      q1 = clamp(round(clamp(A, 0, s) / Δ1), 0, M)     x_low  = q1 · Δ1
      x̂ = x_high + x_low
  The high branch MULTIPLIES by M (it does not divide by Δ_R2 = 1/M: fl(A·7) = 4.5 exactly
  at A = 0.6428571428571429, where fl(A/fl(1/7)) = 4.500000000000001) and its level is the
  quotient q2/M. The pair (q2, q1) runs through (q2s, 0..q1s) below s then (q2s+1..M, q1s)
  above, with q2s = q2(s), q1s = q1(s); refq's code is the index q1 + (q2 - q2s) into that
  sequence, 0 .. q1s + M - q2s. It differs from the paper form (adds q2s/M ≈ s below the
  split, adds s above it).

GELU form (input of fc2; quant_layers/linear.py, ``PostGeluPTQSLBatchingQuantLinear.quant_input``):
x̂ = clamp(round(x/Δ+),0,M)·Δ+ + clamp(round(x/Δ-),-2^(b-1),0)·Δ-, Δ- = 0.16997124254703522 /
2^(b-1) (fixed, a Python float in the source: covers GELU's minimum), Δ+ searched (a tensor);
one branch is always 0, so code = q+ for x ≥ 0 side, q- < 0 otherwise: a signed b-bit code
whose sign selects the scale (MSB flags sign). ``mode="paper"`` additionally requires the
paper's constraint Δ+ = 2^m·Δ- (the code does not enforce it, their issue #8).

``arith`` (refq.quant.arith; the code mode and both GELU modes): ``"float64"`` (default) or
the official torch float32 forward, ``"float32_cuda"`` (as published: the divisions by the
Python numbers M and Δ- are products with fl32(1/M), fl32(1/fl32(Δ-)) on a CUDA GPU) or
``"float32_cpu"`` (correctly rounded float32 quotients).

Tables (thresholds, levels) are derived from these formulas by float bisection and stored
in ``to_dict``; they reproduce the formulas on every float64 input.
"""

from __future__ import annotations

import math
from typing import Any, Literal

import numpy as np

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.quant.arith import Arith, Fp, check_arith, round_real
from refq.quant.base import (
    FloatArray,
    check_bits,
    check_dict,
    check_int,
    check_positive,
    register,
)
from refq.quant.table import TableQuantizer

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
    Public: ``bits``, ``form``, ``mode``, ``arith``, ``m``, ``split`` (s), ``delta_r1``,
    ``delta_r2`` (softmax); ``q2s``, ``q1s`` (softmax code); ``delta_pos``, ``delta_neg``
    (GELU); ``thresholds``, ``level_table``.
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
        arith: Arith = "float64",
    ) -> None:
        self.bits = check_bits(bits)
        if form not in ("softmax", "gelu"):
            raise SpecError(f"twin.form: expected 'softmax' or 'gelu', got {form!r}")
        if mode not in ("paper", "code"):
            raise SpecError(f"twin.mode: expected 'paper' or 'code', got {mode!r}")
        self.form: Form = form
        self.mode: Mode = mode
        self.arith: Arith = check_arith(arith, "twin.arith")
        if arith != "float64" and form == "softmax" and mode == "paper":
            raise SpecError("twin: the softmax paper form has no official code: arith='float64'")
        self._fp = Fp(self.arith)
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
                q2, q1 = self._branches(np.array([self.split]))
                self.q2s, self.q1s = int(q2[0]), int(q1[0])
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
            self._fp.param32_ok(self.delta_pos, "twin.delta_pos")
            self._fp.param32_ok(self.delta_neg, "twin.delta_neg")
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
    def gelu_paper(cls, bits: int, m: int, delta_neg: float | None = None,
                   arith: Arith = "float64") -> TwinUniformQuantizer:
        """GELU twin quantizer under the paper's constraint Δ+ = 2^m·Δ-."""
        b = check_bits(bits)
        dn = GELU_MIN / (1 << (b - 1)) if delta_neg is None else float(delta_neg)
        mm = check_int(m, "twin.m", 0, 30)
        return cls(b, "gelu", delta_pos=dn * 2.0**mm, delta_neg=delta_neg, mode="paper",
                   arith=arith)

    # ------------------------------------------------------------------ formulas
    def _branches(self, x: FloatArray) -> tuple[FloatArray, FloatArray]:
        """(q2, q1) of the official softmax forward (module docstring), as floats."""
        fp, M = self._fp, self.M
        xa = fp.x(x)
        s = fp.x(self.split)
        d1 = fp.div_py(s, M)
        q2 = _rclamp(np.clip(xa, s, fp.dtype(1)) * fp.dtype(M), 0.0, M)
        q1 = _rclamp(np.clip(xa, fp.dtype(0), s) / d1, 0.0, M)
        return q2, q1

    def _formula(self, x: FloatArray) -> IntArray:
        M = float(self.M)
        fp = self._fp
        if self.form == "gelu":
            assert self.delta_pos is not None and self.delta_neg is not None
            xa = fp.x(x)
            qp = _rclamp(xa / fp.x(self.delta_pos), 0.0, M)
            qn = _rclamp(fp.div_py(xa, self.delta_neg), -float(self.M + 1), 0.0)
            return np.where(qn < 0, qn, qp).astype(np.int64)
        s = self.split
        if self.mode == "paper":
            q1 = _rclamp(x / self.delta_r1, 0.0, M)
            q2 = _rclamp(x / self.delta_r2, 0.0, M) + float(self.M + 1)
            return np.where(x < s, q1, q2).astype(np.int64)
        q2, q1 = self._branches(x)
        return (q1 + (q2 - self.q2s)).astype(np.int64)

    def _level_formula(self, codes: IntArray) -> FloatArray:
        c = codes.astype(np.float64)
        fp = self._fp
        if self.form == "gelu":
            assert self.delta_pos is not None and self.delta_neg is not None
            qp = fp.x(np.maximum(c, 0.0))
            qn = fp.x(np.minimum(c, 0.0))
            return np.asarray(qp * fp.x(self.delta_pos) + qn * fp.x(self.delta_neg),
                              dtype=np.float64)
        half = float(self.M + 1)
        if self.mode == "paper":
            return np.where(c < half, c * self.delta_r1, (c - half) * self.delta_r2)
        q1 = fp.x(np.minimum(c, float(self.q1s)))
        q2 = fp.x(self.q2s + np.maximum(c - self.q1s, 0.0))
        d1 = fp.div_py(fp.x(self.split), self.M)
        return np.asarray(fp.div_py(q2, self.M) + q1 * d1, dtype=np.float64)

    # ------------------------------------------------------------------ serialisation
    def _params(self) -> dict[str, Any]:
        d: dict[str, Any] = {"bits": self.bits, "form": self.form, "mode": self.mode,
                             "m": self.m, "delta_pos": self.delta_pos,
                             "delta_neg": self.delta_neg}
        if self.arith != "float64":
            d["arith"] = self.arith
        return d

    @classmethod
    def from_dict(cls, d: Any) -> TwinUniformQuantizer:
        check_dict(d, cls.kind, {"bits", "form", "mode", "m", "delta_pos", "delta_neg"},
                   {"thresholds", "levels", "arith"})
        q = cls(d["bits"], d["form"], m=d["m"], delta_pos=d["delta_pos"],
                delta_neg=d["delta_neg"], mode=d["mode"], arith=d.get("arith", "float64"))
        q._load_tables(d)
        return q


__all__ = ["GELU_MIN", "TwinUniformQuantizer"]
