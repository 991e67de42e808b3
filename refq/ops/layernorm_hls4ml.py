"""hls4ml's LayerNormalization (``nnet_layernorm.h``, ``layernorm_1d``, hls4ml 1.3) as an
integer rule on ap_fixed raw codes, with its 1/√x table, 1/C and γ, β pinned in the params.

Every value is the raw code of its C++ type; ``cast(v → T)`` is refq.intmath.apfixed.ap_cast
with T's modes (what the C++ assignment does); products and sums are exact before a cast.
For each row of C = ``len(scale)`` values (the last axis)::

    a_i   = cast(x_i → accum_t)
    s     = 0;  s = cast(s + a_i → accum_t)   for i = 0..C-1      (a sequential loop)
    mean  = cast(s · k_inv → accum_t)        k_inv = cast(1.0 / C → accum_t)   (pinned)
    d_i   = cast(a_i - mean → accum_t)
    s2    = 0;  s2 = cast(s2 + cast(d_i² → accum_t) → accum_t)   for i = 0..C-1
    var   = cast(s2 · k_inv → accum_t)
    k     = clamp(trunc(var · table_size · 2^p), 0, table_size - 1)   (C++ ``int`` of an
            ap_fixed: truncation toward zero; p = ``table_range_power2``)
    y_i   = cast(d_i · table[k] · scale_i + bias_i → res_T)

``table[k]`` = cast(1.0 / sqrt(10^-e + k·2^-p / table_size) → table_t) (float32 as hls4ml
writes it; pinned, refq.params.hls4ml_layernorm_params). Formats: x raw codes of
``in_type`` (checked); output raw codes of ``out_type``; the products d·table·scale are int64
(widths checked in the params). Source: hls4ml ``templates/vivado/nnet_utils/
nnet_layernorm.h``.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath import IntArray
from refq.intmath.apfixed import ApType, ap_cast
from refq.ops._common import Params, int_input, need_int, need_ints
from refq.ops.hls4ml_io import ap_types_io
from refq.ops.registry import Ref, RoundingStep, Variant, Width, declare


@dataclass(frozen=True)
class Hls4mlLayerNormParams(Params):
    """Types, pinned table, k_inv and per-channel γ (``scale``), β (``bias``) raw codes."""

    in_type: str
    out_type: str
    accum_type: str
    table_type: str
    scale_type: str
    bias_type: str
    table: tuple[int, ...]
    table_range_power2: int
    k_inv: int
    scale: tuple[int, ...]
    bias: tuple[int, ...]

    def __post_init__(self) -> None:
        for name in ("in_type", "out_type", "accum_type", "table_type", "scale_type",
                     "bias_type"):
            object.__setattr__(self, name, ApType.parse(getattr(self, name)).name)
        t = self.types
        for name, typ in (("table", t["table_type"]), ("scale", t["scale_type"]),
                          ("bias", t["bias_type"])):
            vals = need_ints(getattr(self, name), f"Hls4mlLayerNormParams.{name}", typ.fmt.min,
                             typ.fmt.max)
            object.__setattr__(self, name, vals)
        if len(self.scale) != len(self.bias):
            raise SpecError("Hls4mlLayerNormParams: scale and bias need one value per channel")
        need_int(self.table_range_power2, "Hls4mlLayerNormParams.table_range_power2", 0, 30)
        acc = t["accum_type"]
        need_int(self.k_inv, "Hls4mlLayerNormParams.k_inv", acc.fmt.min, acc.fmt.max)
        if 2 * acc.width > 62 or acc.width + t["table_type"].width + t["scale_type"].width > 62:
            raise SpecError("Hls4mlLayerNormParams: accum² and accum·table·scale must fit 62 "
                            "bits (exact int64 products)")
        if abs(self.product_frac - t["bias_type"].frac_bits) > 30:
            raise SpecError("Hls4mlLayerNormParams: bias and product binary points too far apart")

    @cached_property
    def types(self) -> dict[str, ApType]:
        return {n: ApType.parse(getattr(self, n)) for n in (
            "in_type", "out_type", "accum_type", "table_type", "scale_type", "bias_type")}

    @property
    def product_frac(self) -> int:
        t = self.types
        return t["accum_type"].frac_bits + t["table_type"].frac_bits + t["scale_type"].frac_bits


def layernorm_hls4ml(x: Any, params: Hls4mlLayerNormParams) -> IntArray:
    """hls4ml's LayerNormalization along the last axis (module docstring)."""
    p = params
    t = p.types
    acc, fa = t["accum_type"], t["accum_type"].frac_bits
    xa = int_input(x, t["in_type"].fmt, "x", "layernorm.hls4ml", 1)
    c = len(p.scale)
    if xa.shape[-1] != c:
        raise SpecError(f"layernorm.hls4ml: {xa.shape[-1]} channels, params have {c}")
    a = ap_cast(xa, t["in_type"].frac_bits, acc)
    s = np.zeros(a.shape[:-1], dtype=np.int64)
    for i in range(c):
        s = ap_cast(s + a[..., i], fa, acc)
    k_inv = np.int64(p.k_inv)
    mean = ap_cast(s * k_inv, 2 * fa, acc)[..., None]
    d = ap_cast(a - mean, fa, acc)
    d2 = ap_cast(d * d, 2 * fa, acc)
    s2 = np.zeros(a.shape[:-1], dtype=np.int64)
    for i in range(c):
        s2 = ap_cast(s2 + d2[..., i], fa, acc)
    var = ap_cast(s2 * k_inv, 2 * fa, acc)
    n = len(p.table)
    scaled = var * np.int64(n << p.table_range_power2)  # exact: var·table_size·2^p
    k = ap_cast(scaled, fa, ApType(32, 32, True, "AP_TRN_ZERO", "AP_WRAP"))  # C++ int
    k = np.clip(k, 0, n - 1)[..., None]
    deno = np.asarray(p.table, dtype=np.int64)[k]
    prod = d * deno * np.asarray(p.scale, dtype=np.int64)
    fp, fb = p.product_frac, t["bias_type"].frac_bits
    f = max(fp, fb)
    total = (prod << np.int64(f - fp)) + (np.asarray(p.bias, dtype=np.int64) << np.int64(f - fb))
    return ap_cast(total, f, t["out_type"])


declare(Variant(
    "layernorm", "hls4ml", layernorm_hls4ml, Hls4mlLayerNormParams,
    title="hls4ml LayerNormalization: accum_t statistics, 1/√var table on ap_fixed",
    **ap_types_io("x: in_type raw codes (C = len(scale) channels)"),
    widths=(Width("a, s, mean, d, d², s2, var", "accum_type", "proven"),
            Width("d·table·scale", "int<W_acc + W_table + W_scale>", "proven"),
            Width("out", "out_type", "proven")),
    roundings=(RoundingStep("casts to accum_type", "params.accum_type"),
               RoundingStep("table index var·N·2^p", "trunc"),
               RoundingStep("→ out_type", "params.out_type")),
    output="proven",
    source="hls4ml 1.3 templates/vivado/nnet_utils/nnet_layernorm.h (layernorm_1d); ap_types "
           "ap_fixed_base.h",
    accuracy="the table's: 1/√var sampled on N points of [10^-e, 10^-e + 2^-p)",
    golden=(Ref("refq.golden.cases_hls4ml:layernorm_cases"),),
    strategy=Ref("refq.crosscheck.strategies:hls4ml_rows"),
    meta={"coverage.bins": ("ends:x", "rows:rows", "ends:out"),  # boundary points only
          "coverage.model": Ref("refq.golden.coverage_models:hls4ml_rows",
                                {"op": "layernorm"}),
          "coverage.corners": Ref("refq.golden.cases_corners:layernorm_hls4ml")},
))

__all__ = ["Hls4mlLayerNormParams", "layernorm_hls4ml"]
