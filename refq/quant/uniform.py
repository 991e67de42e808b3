"""Uniform (affine) quantizer: code = clamp(R(x / s) + z, qmin, qmax), x̂ = s·(code - z).

Sources: the common affine scheme (TFLite, ONNX QuantizeLinear with zero point added after
rounding, ONNX/PyTorch half-even rounding by default); PTQ4ViT's symmetric base quantizer
(``(x/interval).round().clamp(-qmax, qmax-1)·interval``); I&S-ViT's and RepQ-ViT's
asymmetric uniform (``round(x/Δ) + z``; s = (max-min)/(2^b-1), z = round(-min/s)); RepQ-ViT's
unrounded layer-wise zero point (``float_zero_point``: fake-quant only); FQ-ViT's, which adds
the zero point BEFORE rounding (``(x/scale + zp).round()``: ``zp_in_round=True``).

- ``x / s`` is the quotient in the quantizer's arithmetic (``arith``, refq.quant.arith:
  float64 by default; ``"float32_cuda"`` / ``"float32_cpu"`` the official torch float32
  forwards: input, scale and zero point as float32, every operation in float32); R is the
  named rounding (refq.intmath names) applied to that quotient exactly (floor / fractional
  part comparison, no ``x + 0.5`` shortcut).
- ``zp_in_round``: code = clamp(R(fl(x/s + z))) instead of clamp(R(x/s) + z). The two differ
  where the quotient is a tie (k + ½ with z odd rounds the other way) and where adding z
  rounds the sum onto or off a tie.
- levels: fl((code - z)·s) in the arithmetic.
- code range: signed [-2^(b-1), 2^(b-1)-1] ([-2^(b-1)+1, ...] when ``narrow``); unsigned
  [0, 2^b-1] (``narrow`` has no effect on unsigned, as in IntFormat.narrow_min).
- granularity: per-tensor (scalar scale), per-channel (``axis``, scale shape (C,)),
  per-group (``axis`` + ``group_size`` B: scale has x's shape with the axis length divided
  by B; element i along the axis uses group i // B).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath.arrays import IntArray
from refq.intmath.rounding import Rounding, check_rounding
from refq.quant.arith import Arith, Fp, check_arith, round_real
from refq.quant.base import (
    FloatArray,
    Quantizer,
    check_bits,
    check_dict,
    check_int,
    float_array_from_json,
    register,
)


def code_bounds(bits: int, signed: bool, narrow: bool) -> tuple[int, int]:
    """(qmin, qmax) of a ``bits``-bit code."""
    if signed:
        return (-(1 << (bits - 1)) + (1 if narrow else 0), (1 << (bits - 1)) - 1)
    return (0, (1 << bits) - 1)


@register
class UniformQuantizer(Quantizer):
    """Affine uniform quantizer (module docstring). Parameters are public attributes:
    ``scale`` (float64 array: shape () per-tensor, (C,) per-channel, group shape per-group),
    ``zero_point`` (int64 array of the same shape; float64 when ``float_zero_point``),
    ``bits``, ``signed``, ``narrow``, ``axis``, ``group_size``, ``rounding``,
    ``zp_in_round``, ``arith``."""

    kind = "uniform"

    def __init__(
        self,
        scale: npt.ArrayLike,
        bits: int,
        zero_point: npt.ArrayLike = 0,
        *,
        signed: bool = True,
        narrow: bool = False,
        axis: int | None = None,
        group_size: int | None = None,
        rounding: Rounding = "half_even",
        float_zero_point: bool = False,
        zp_in_round: bool = False,
        arith: Arith = "float64",
    ) -> None:
        self.bits = check_bits(bits)
        if not isinstance(zp_in_round, (bool, np.bool_)):
            raise SpecError("uniform: zp_in_round must be a bool")
        self.zp_in_round = bool(zp_in_round)
        self.arith: Arith = check_arith(arith, "uniform.arith")
        self._fp = Fp(self.arith)
        if not isinstance(signed, (bool, np.bool_)) or not isinstance(narrow, (bool, np.bool_)):
            raise SpecError("uniform: signed and narrow must be bools")
        self.signed = bool(signed)
        self.narrow = bool(narrow)
        self.rounding: Rounding = check_rounding(rounding)
        self.float_zero_point = bool(float_zero_point)
        s = float_array_from_json(scale, "uniform.scale")
        if s.size == 0 or not bool((s > 0).all()):
            raise SpecError(f"uniform.scale: every scale must be > 0, got {s.ravel()[:4]!r}")
        if axis is not None:
            axis = check_int(axis, "uniform.axis", -32, 31)
        if group_size is not None:
            group_size = check_int(group_size, "uniform.group_size", 1, 2**31)
            if axis is None:
                raise SpecError("uniform: group_size needs an axis")
            if s.ndim == 0:
                raise SpecError("uniform: per-group scale must be an array of the group shape")
        elif axis is None and s.ndim != 0:
            if s.size != 1:
                raise SpecError(f"uniform: scale of shape {s.shape} needs an axis")
            s = s.reshape(())
        elif axis is not None and s.ndim != 1:
            raise SpecError(f"uniform: per-channel scale must be 1-D, got shape {s.shape}")
        self.axis = axis
        self.group_size = group_size
        self.scale: FloatArray = np.array(s, dtype=np.float64)
        for v in np.unique(self.scale).tolist():
            self._fp.param32_ok(v, "uniform.scale")
        zr = np.asarray(zero_point)
        if zr.dtype.kind not in "iuf" or zr.dtype.kind == "b":
            raise SpecError(f"uniform.zero_point: expected numbers, got dtype {zr.dtype}")
        if self.float_zero_point:
            z = float_array_from_json(zr, "uniform.zero_point")
        else:
            if zr.dtype.kind == "f" and (
                not bool(np.isfinite(zr).all()) or not bool((zr == np.round(zr)).all())
            ):
                raise SpecError(
                    "uniform.zero_point: non-integer zero point; pass float_zero_point=True "
                    "(fake-quant only)"
                )
            z = zr.astype(np.int64)
            zmax = 2**24 if self._fp.is32 else 2**31
            if bool((np.abs(z) > zmax).any()):
                raise SpecError(f"uniform.zero_point: |zero_point| must be <= {zmax} "
                                f"(arith={self.arith!r})")
        try:
            z = np.broadcast_to(z, self.scale.shape).copy()
        except ValueError as e:
            raise SpecError(
                f"uniform.zero_point: shape {z.shape} does not match scale {self.scale.shape}"
            ) from e
        self.zero_point = z
        qmin, qmax = code_bounds(self.bits, self.signed, self.narrow)
        self._qmin, self._qmax = qmin, qmax

    # ------------------------------------------------------------------ convenience
    @classmethod
    def from_minmax(
        cls,
        lo: npt.ArrayLike,
        hi: npt.ArrayLike,
        bits: int,
        *,
        symmetric: bool = False,
        signed: bool | None = None,
        narrow: bool = False,
        axis: int | None = None,
        group_size: int | None = None,
        rounding: Rounding = "half_even",
        float_zero_point: bool = False,
        min_scale: float = 1e-8,
        zp_in_round: bool = False,
        arith: Arith = "float64",
    ) -> UniformQuantizer:
        """Quantizer covering [lo, hi] (scalars or arrays of the group shape); the
        parameters are computed in float64, ``zp_in_round`` and ``arith`` are passed on.

        asymmetric (default unsigned): s = max((hi - lo)/(qmax - qmin), min_scale),
        z = qmin + round_half_even(-lo / s) clamped to [qmin, qmax] (I&S-ViT, FQ-ViT);
        with ``float_zero_point`` z = qmin - lo/s unrounded (RepQ-ViT, fake-quant only).
        symmetric (default signed): z = 0, s = max(max(|lo|, |hi|)/qmax, min_scale).
        """
        b = check_bits(bits)
        lo_a = float_array_from_json(lo, "from_minmax.lo")
        hi_a = float_array_from_json(hi, "from_minmax.hi")
        if lo_a.shape != hi_a.shape:
            raise SpecError(f"from_minmax: lo shape {lo_a.shape} != hi shape {hi_a.shape}")
        if bool((lo_a > hi_a).any()):
            raise SpecError("from_minmax: lo > hi")
        sgn = bool(symmetric) if signed is None else bool(signed)
        qmin, qmax = code_bounds(b, sgn, narrow)
        if symmetric:
            amax = np.maximum(np.abs(lo_a), np.abs(hi_a))
            s = np.maximum(amax / qmax, min_scale)
            z: npt.NDArray[Any] = np.zeros(s.shape, dtype=np.int64)
        else:
            s = np.maximum((hi_a - lo_a) / (qmax - qmin), min_scale)
            if float_zero_point:
                z = qmin - lo_a / s
            else:
                z = np.clip(qmin + round_real(-lo_a / s, "half_even"), qmin, qmax).astype(np.int64)
        return cls(s, b, z, signed=sgn, narrow=narrow, axis=axis, group_size=group_size,
                   rounding=rounding, float_zero_point=float_zero_point,
                   zp_in_round=zp_in_round, arith=arith)

    @classmethod
    def from_absmax(
        cls,
        amax: npt.ArrayLike,
        bits: int,
        *,
        signed: bool = True,
        narrow: bool = False,
        denom: float | None = None,
        axis: int | None = None,
        group_size: int | None = None,
        rounding: Rounding = "half_even",
        min_scale: float = 1e-8,
        arith: Arith = "float64",
    ) -> UniformQuantizer:
        """Symmetric quantizer s = max(amax / denom, min_scale), z = 0. ``denom`` defaults to
        qmax (2^(b-1)-1 signed, 2^b-1 unsigned); PTQ4ViT's Δ0 uses denom = 2^(b-1) - 0.5.
        s is computed in float64; ``arith`` is passed on."""
        b = check_bits(bits)
        _, qmax = code_bounds(b, bool(signed), narrow)
        d = float(qmax) if denom is None else float(denom)
        if not d > 0:
            raise SpecError(f"from_absmax: denom must be > 0, got {denom!r}")
        a = float_array_from_json(amax, "from_absmax.amax")
        s = np.maximum(np.abs(a) / d, min_scale)
        return cls(s, b, 0, signed=signed, narrow=narrow, axis=axis, group_size=group_size,
                   rounding=rounding, arith=arith)

    # ------------------------------------------------------------------ properties
    @property
    def integer_exact(self) -> bool:
        return not self.float_zero_point

    @property
    def n_groups(self) -> int:
        return int(self.scale.size)

    @property
    def group_shape(self) -> tuple[int, ...] | None:
        return tuple(self.scale.shape) if self.group_size is not None else None

    def code_range(self) -> tuple[int, int]:
        return (self._qmin, self._qmax)

    def _rows_param(self, a: npt.NDArray[Any]) -> npt.NDArray[Any]:
        return a.reshape(-1, 1)

    # ------------------------------------------------------------------ maps
    def _real_codes(self, rows: FloatArray) -> FloatArray:
        fp = self._fp
        s = fp.x(self._rows_param(self.scale))
        z = fp.x(self._rows_param(self.zero_point))
        with np.errstate(over="ignore", invalid="ignore"):
            v = fp.x(rows) / s
            r = round_real(v + z, self.rounding) if self.zp_in_round else (
                round_real(v, self.rounding) + z)
        return np.clip(r.astype(np.float64), self._qmin, self._qmax)

    def _codes_rows(self, rows: FloatArray) -> IntArray:
        return self._real_codes(rows).astype(np.int64)

    def _values_rows(self, q: IntArray) -> FloatArray:
        fp = self._fp
        s = fp.x(self._rows_param(self.scale))
        z = self._rows_param(self.zero_point)
        return np.asarray(fp.x(q - z) * s, dtype=np.float64)

    def fake_quant(self, x: npt.ArrayLike) -> FloatArray:
        """s·(clamp(R(x/s) + z, qmin, qmax) - z); with a float zero point this is RepQ-ViT's
        fake quantization (the only use such a quantizer has)."""
        if self.integer_exact:
            return super().fake_quant(x)
        from refq.quant.base import as_real

        xa = as_real(x)
        rows, back = self._to_rows(xa)
        fp = self._fp
        z = fp.x(self._rows_param(self.zero_point))
        v = fp.x(fp.x(self._real_codes(rows)) - z) * fp.x(self._rows_param(self.scale))
        return np.asarray(back(v), dtype=np.float64)

    def levels(self) -> FloatArray | None:
        self._require_exact("levels")
        c = np.arange(self._qmin, self._qmax + 1, dtype=np.int64)
        lv = self._values_rows(np.broadcast_to(c, (self.n_groups, c.size)))
        return lv[0] if self.axis is None else lv

    # ------------------------------------------------------------------ serialisation
    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "version": 1,
            "bits": self.bits,
            "signed": self.signed,
            "narrow": self.narrow,
            "rounding": self.rounding,
            "axis": self.axis,
            "group_size": self.group_size,
            "float_zero_point": self.float_zero_point,
            "scale": self.scale.tolist(),
            "zero_point": self.zero_point.tolist(),
            **self._options(),
        }

    def _options(self) -> dict[str, Any]:
        """The arithmetic options, written only when not the default (so specs written
        before they existed read back unchanged)."""
        d: dict[str, Any] = {}
        if self.zp_in_round:
            d["zp_in_round"] = True
        if self.arith != "float64":
            d["arith"] = self.arith
        return d

    @classmethod
    def from_dict(cls, d: Any) -> UniformQuantizer:
        keys = {"bits", "signed", "narrow", "rounding", "axis", "group_size",
                "float_zero_point", "scale", "zero_point"}
        check_dict(d, cls.kind, keys, {"zp_in_round", "arith"})
        if not isinstance(d["float_zero_point"], bool):
            raise SpecError("uniform.from_dict: float_zero_point must be a bool")
        zin = d.get("zp_in_round", False)
        if not isinstance(zin, bool):
            raise SpecError("uniform.from_dict: zp_in_round must be a bool")
        return cls(d["scale"], d["bits"], d["zero_point"], signed=d["signed"],
                   narrow=d["narrow"], axis=d["axis"], group_size=d["group_size"],
                   rounding=d["rounding"], float_zero_point=d["float_zero_point"],
                   zp_in_round=zin, arith=d.get("arith", "float64"))


__all__ = ["UniformQuantizer", "code_bounds", "round_real"]  # round_real: refq.quant.arith
