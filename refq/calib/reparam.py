"""RepQ-ViT channel→layer scale reparameterization of a post-LayerNorm activation, with the
layer-wise scale chosen by mean (RepQ-ViT), median (DopQ-ViT's MOSF) or a MAD-guided
robust mean (refq's definition of DopQ-ViT's later "MAD-guided" wording).

Given the per-channel uniform quantizer (scale s_c, zero point z_c) of the LayerNorm output
x (channel c on the last axis) and the linear layer that reads it, pick a layer-wise
(s̃, z̃), set r_c = s_c/s̃ and b_c = (-z_c·s_c)/r_c - (-z̃·s̃) = s̃·(z̃ - z_c), and fold:

    LayerNorm:   γ ← γ / r,   β ← β / r - b        (its output becomes x' = x/r - b)
    next linear: W ← W · r (scales input column c by r_c),  bias ← bias + W_new · b

so that W_new x' + bias_new = W x + bias exactly in real arithmetic (lossless in float),
and x'_c / s̃ + z̃ = x_c / s_c + z_c: quantizing x' per tensor with (s̃, z̃) reproduces the
per-channel codes (exactly when z̃ is an integer; RepQ-ViT's code keeps z̃ = mean(z_c)
unrounded, refq's default "none", which shifts codes by the fractional part).
Source: RepQ-ViT (Li et al., ICCV 2023) classification/test_quant.py; DopQ-ViT (MOSF).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float
from refq.errors import SpecError
from refq.intmath.rounding import Rounding
from refq.quant import UniformQuantizer

SCALE_CHOICES = ("mean", "median", "mad")
MAD_K = 3.0
"""Default MAD multiplier: channels farther than MAD_K·MAD from the median are outliers."""


def layer_statistic(v: npt.ArrayLike, choice: str = "mean", mad_k: float = MAD_K) -> float:
    """The layer-wise value chosen from per-channel values ``v``.

    - "mean": arithmetic mean (RepQ-ViT).
    - "median": median, the mean of the two middle values for an even count (MOSF).
    - "mad": MAD-guided robust mean (refq's definition): m = median(v),
      MAD = median(|v - m|); the channels with |v_c - m| <= mad_k·MAD are inliers and the
      result is their mean (MAD = 0 keeps the channels equal to the median, giving m).
    """
    a = as_float(v, "values").reshape(-1)
    if choice == "mean":
        return float(np.mean(a))
    if choice == "median":
        return float(np.median(a))
    if choice == "mad":
        if not mad_k >= 0:
            raise SpecError(f"mad_k must be >= 0, got {mad_k}")
        m = float(np.median(a))
        dev = np.abs(a - m)
        mad = float(np.median(dev))
        keep = dev <= mad_k * mad
        return float(np.mean(a[keep]))
    raise SpecError(f"unknown layer-scale choice {choice!r}; expected one of {SCALE_CHOICES}")


def reparameterize(
    params: Mapping[str, npt.ArrayLike],
    norm: str,
    linear: str,
    scale: npt.ArrayLike,
    zero_point: npt.ArrayLike,
    *,
    choice: str = "mean",
    zero_point_rounding: str = "none",
    mad_k: float = MAD_K,
) -> tuple[dict[str, FloatArray], dict[str, Any]]:
    """Fold a per-channel activation quantizer of LayerNorm ``norm``'s output into a
    per-tensor one (see the module docstring for the formulas).

    ``params``: refq.nn parameters (timm names); ``norm`` / ``linear``: parameter prefixes,
    e.g. "blocks.0.norm1" and "blocks.0.attn.qkv" (or "blocks.0.norm2" / "blocks.0.mlp.fc1").
    ``scale`` (C,) > 0 and ``zero_point`` (C,) of the per-channel quantizer.
    ``choice``: "mean" | "median" | "mad" for s̃ and, with the same statistic, z̃.
    ``zero_point_rounding``: "none" (RepQ-ViT's code: z̃ real) or "half_even" (z̃ rounded
    to the nearest integer, ties to even, BEFORE b is computed, so codes are preserved).

    Returns ``(new_params, record)``: ``new_params`` holds float64 copies of exactly the four
    changed arrays ``{norm}.weight``, ``{norm}.bias``, ``{linear}.weight``, ``{linear}.bias``
    (merge into the model's parameters); ``record`` is JSON-safe: ``scale`` (s̃),
    ``zero_point`` (z̃), ``choice``, ``zero_point_rounding``, ``ratio_min``/``ratio_max``
    of r. The per-tensor quantizer is then built from (s̃, z̃) by the caller
    (:func:`refq.calib.layer_quantizer`). SpecError if a parameter is missing (including a
    linear without bias, which cannot absorb W·b), shapes disagree, or a scale is <= 0.
    """
    keys = [f"{norm}.weight", f"{norm}.bias", f"{linear}.weight", f"{linear}.bias"]
    missing = [k for k in keys if k not in params]
    if missing:
        raise SpecError(f"reparameterize: missing parameters {missing} (a linear without "
                        "bias cannot absorb the shift W·b)")
    gamma, beta = as_float(params[keys[0]], keys[0]), as_float(params[keys[1]], keys[1])
    w, bias = as_float(params[keys[2]], keys[2]), as_float(params[keys[3]], keys[3])
    s = as_float(scale, "scale").reshape(-1)
    z = as_float(zero_point, "zero_point").reshape(-1)
    c = gamma.shape[0]
    if gamma.shape != (c,) or beta.shape != (c,) or s.shape != (c,) or z.shape != (c,):
        raise SpecError(f"reparameterize: {norm} has {gamma.shape}/{beta.shape}, scale "
                        f"{s.shape}, zero_point {z.shape}; expected ({c},) each")
    if w.ndim != 2 or w.shape[1] != c or bias.shape != (w.shape[0],):
        raise SpecError(f"reparameterize: {linear}.weight {w.shape} / bias {bias.shape} do "
                        f"not read {c} channels")
    if np.any(s <= 0):
        raise SpecError("reparameterize: every channel scale must be > 0")
    if zero_point_rounding not in ("none", "half_even"):
        raise SpecError(f"zero_point_rounding must be 'none' or 'half_even', got "
                        f"{zero_point_rounding!r}")
    s_t = layer_statistic(s, choice, mad_k)
    z_t = layer_statistic(z, choice, mad_k)
    if zero_point_rounding == "half_even":
        z_t = float(np.rint(z_t))  # np.rint rounds half to even
    r = s / s_t
    b = (-z * s) / r - (-z_t * s_t)
    w_new = w * r[None, :]
    new = {
        keys[0]: gamma / r,
        keys[1]: beta / r - b,
        keys[2]: w_new,
        keys[3]: bias + w_new @ b,
    }
    record: dict[str, Any] = {
        "norm": norm, "linear": linear, "choice": choice,
        "zero_point_rounding": zero_point_rounding, "scale": s_t, "zero_point": z_t,
        "ratio_min": float(r.min()), "ratio_max": float(r.max()),
    }
    if choice == "mad":
        record["mad_k"] = float(mad_k)
    return new, record


def layer_quantizer(record: dict[str, Any], bits: int, *, signed: bool = False,
                    narrow: bool = False, rounding: Rounding = "half_even") -> UniformQuantizer:
    """The per-tensor UniformQuantizer (s̃, z̃) of a :func:`reparameterize` record, with the
    code range of ``signed`` / ``narrow`` (default unsigned [0, 2^b-1]; it must be the range
    of the per-channel quantizer it replaces, otherwise the clamp differs and the fold is no
    longer lossless) and ``rounding``: with ``zero_point_rounding`` "none" it has a float
    zero point (RepQ-ViT's fake-quant-only form, ``integer_exact`` False); with "half_even"
    an integer one (lowerable)."""
    fz = record["zero_point_rounding"] == "none"
    z = record["zero_point"] if fz else int(record["zero_point"])
    return UniformQuantizer(record["scale"], bits, z, signed=signed, narrow=narrow,
                            rounding=rounding, float_zero_point=fz)


def reparameterize_quantizer(
    params: Mapping[str, npt.ArrayLike],
    norm: str,
    linear: str,
    quantizer: UniformQuantizer,
    *,
    choice: str = "mean",
    zero_point_rounding: str = "none",
    mad_k: float = MAD_K,
) -> tuple[dict[str, FloatArray], UniformQuantizer, dict[str, Any]]:
    """:func:`reparameterize` from a per-channel UniformQuantizer of the LayerNorm output
    (channel axis last: ``axis`` -1 or the last axis index; not per-group), returning
    ``(new_params, per-tensor quantizer, record)``; the new quantizer keeps the bits, sign,
    narrow flag and rounding of ``quantizer`` (same code range, so the clamp is preserved).

    Lossless after quantization: with ``zero_point_rounding="half_even"`` (integer z̃) the
    per-tensor codes of the folded LayerNorm output equal the per-channel codes of the
    original one, and the next linear's output is unchanged up to float64 rounding (a code
    can only flip where x/s_c lies within a few ulps of a rounding tie). With "none"
    (RepQ-ViT) codes shift by the fractional part of z̃ - z_c: not lossless."""
    if not isinstance(quantizer, UniformQuantizer) or quantizer.axis is None or (
        quantizer.group_size is not None
    ):
        raise SpecError("reparameterize_quantizer: expected a per-channel UniformQuantizer")
    new, rec = reparameterize(params, norm, linear, quantizer.scale,
                              quantizer.zero_point.astype(np.float64), choice=choice,
                              zero_point_rounding=zero_point_rounding, mad_k=mad_k)
    return new, layer_quantizer(rec, quantizer.bits, signed=quantizer.signed,
                                narrow=quantizer.narrow, rounding=quantizer.rounding), rec


__all__ = ["MAD_K", "SCALE_CHOICES", "layer_quantizer", "layer_statistic", "reparameterize",
           "reparameterize_quantizer"]
