"""Parameters of the hls4ml kernel variants, derived the way hls4ml 1.3 builds them.

hls4ml computes its tables at run time in float (``std::exp`` of a float, ``1 / x``,
``1.0 / sqrt(x)``) and casts each value to the table's ap_fixed type; refq pins the cast raw
codes in the params, so refq's kernels (and golden vectors) depend on no libm. Here the
float steps are reproduced in NumPy float32/float64 as the C++ writes them (exp: the float64
exponential of the float32 argument rounded to float32 — the correctly rounded ``expf``);
the float → ap_fixed cast is exact (:func:`ap_from_float`: the float's exact binary value
through refq.intmath.apfixed.ap_cast, ±inf as a power of two beyond every range, as
``ap_fixed_base(double)`` treats them). Every table is checked against the one hls4ml's own
compiled code computes (tests/crosscheck/test_hls4ml.py).
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from refq.errors import SpecError
from refq.intmath.apfixed import MAX_SHIFT, ApType, ap_cast
from refq.ops.layernorm_hls4ml import Hls4mlLayerNormParams
from refq.ops.softmax_hls4ml import Hls4mlSoftmaxParams


def ap_from_float(value: Any, t: ApType) -> int:
    """The raw code of ``t`` that ``t x = value;`` stores for a float or double ``value``
    (finite: its exact binary value, cast by ``t``'s modes; ±inf: ±2^(F+128) — saturates
    or wraps to 0 exactly as ``ap_fixed_base(double)`` does with the infinite exponent; NaN
    is refused)."""
    v = float(value)
    if math.isnan(v):
        raise SpecError("ap_from_float: NaN has no ap_fixed value")
    if math.isinf(v):
        x, f = (1 if v > 0 else -1), t.frac_bits - MAX_SHIFT
    elif v == 0:
        return 0
    else:
        mant, exp = math.frexp(v)  # v = mant·2^exp, 0.5 <= |mant| < 1
        x, f = int(mant * (1 << 53)), 53 - exp
        while x % 2 == 0 and f > t.frac_bits - MAX_SHIFT:
            x, f = x // 2, f - 1
        if f - t.frac_bits > MAX_SHIFT:  # far below one LSB: the sign decides (floor/trunc)
            x, f = (1 if x > 0 else -1), t.frac_bits + MAX_SHIFT
    return int(ap_cast(np.array([x], dtype=np.int64), f, t)[0])


def real_val_from_idx(i: int, t: ApType, n: int) -> np.float32:
    """hls4ml ``softmax_real_val_from_idx<T, 2^n>(i)``: the value of type T whose n most
    significant raw bits are i (the rest 0), as a float."""
    raw = i << (t.width - n)
    if t.signed and raw >> (t.width - 1):
        raw -= 1 << t.width
    return np.float32(raw * 2.0 ** -t.frac_bits)


def _f32_exp(x: np.float32) -> np.float32:
    return np.float32(np.exp(np.float64(x)))


def hls4ml_softmax_params(
    implementation: str,
    in_type: str,
    out_type: str,
    *,
    n: int,
    table_size: int = 1024,
    exp_table_type: str = "ap_fixed<18,8,AP_RND,AP_SAT>",
    inv_table_type: str = "ap_fixed<18,8,AP_RND,AP_SAT>",
    accum_type: str | None = None,
    inv_inp_type: str | None = None,
    exp_scale: float = 1.0,
) -> Hls4mlSoftmaxParams:
    """Params of ``softmax.hls4ml_<implementation>`` for rows of ``n`` values, with hls4ml's
    defaults (Vivado/Vitis backend, ``SoftmaxConfigTemplate``): accum_t =
    ap_[u]fixed<W_exp + ⌈log2 n⌉, I_exp + ⌈log2 n⌉>, inv_inp_t = exp_table_t, inp_norm_t =
    ap_ufixed<W - 1, I - 1> of a signed input, and the exp table of the stable softmax cut to
    2^(W - 1) entries when the input has fewer bits."""
    dt = ApType.parse(in_type)
    if implementation == "legacy":
        return _legacy_params(dt, ApType.parse(out_type), table_size)
    et = ApType.parse(exp_table_type)
    if accum_type is None:
        scale = math.ceil(math.log2(n)) if n > 1 else 0
        accum_type = (f"ap_{'' if et.signed else 'u'}fixed<{et.width + scale},"
                      f"{et.int_bits + scale}>")
    inv_inp = ApType.parse(inv_inp_type or exp_table_type)
    if dt.signed:
        norm = ApType(dt.width - 1, dt.int_bits - 1, False)
    else:
        norm = ApType(dt.width, dt.int_bits, False)
    exp_size = table_size
    if implementation == "stable" and dt.signed:
        exp_size = min(table_size, 2 ** (dt.width - 1))
    n_exp = (exp_size - 1).bit_length()
    n_inv = (table_size - 1).bit_length()
    index_of = norm if implementation == "stable" else dt
    exp_table = []
    for i in range(exp_size):
        x = np.float32(real_val_from_idx(i, index_of, n_exp) * np.float32(exp_scale))
        if implementation == "stable":
            x = -x
        exp_table.append(ap_from_float(_f32_exp(x), et))
    it = ApType.parse(inv_table_type)
    inv_table = []
    for i in range(table_size):
        x = real_val_from_idx(i, inv_inp, n_inv)
        with np.errstate(divide="ignore"):
            inv = np.float32(1) / x
        inv_table.append(ap_from_float(inv, it))
    return Hls4mlSoftmaxParams(
        implementation, dt.name, ApType.parse(out_type).name, et.name, it.name,
        ApType.parse(accum_type).name, inv_inp.name, norm.name, tuple(exp_table),
        tuple(inv_table),
    )




LEGACY_TABLE_TYPE = "ap_fixed<18,8>"
"""hls4ml 1.3's softmax config sets no ``table_t``: legacy uses ``nnet::activ_config``'s."""


def _legacy_params(dt: ApType, out: ApType, table_size: int) -> Hls4mlSoftmaxParams:
    """``softmax_legacy``'s tables (``init_exp_table_legacy``: x = float(2·8.0·(i - N/2)/N)
    in double, exp in float; ``init_invert_table_legacy``: x = float(64.0·i/N), 1.0/x in
    double, 0 at i = 0), both of ``LEGACY_TABLE_TYPE``."""
    tt = ApType.parse(LEGACY_TABLE_TYPE)
    n = float(table_size)
    exp_table = [ap_from_float(_f32_exp(np.float32(2 * 8.0 * (i - n / 2.0) / n)), tt)
                 for i in range(table_size)]
    inv_table = []
    for i in range(table_size):
        x = float(np.float32(64.0 * i / n))
        inv_table.append(ap_from_float(1.0 / x, tt) if x > 0.0 else 0)
    return Hls4mlSoftmaxParams("legacy", dt.name, out.name, tt.name, tt.name, tt.name, tt.name,
                               tt.name, tuple(exp_table), tuple(inv_table))


def hls4ml_layernorm_params(
    in_type: str,
    out_type: str,
    gamma: Any,
    beta: Any,
    *,
    accum_type: str = "ap_fixed<24,8>",
    table_type: str = "ap_ufixed<8,5,AP_RND_CONV,AP_SAT>",
    scale_type: str = "ap_fixed<16,6>",
    bias_type: str = "ap_fixed<16,6>",
    table_size: int = 4096,
    table_range_power2: int = 0,
    epsilon_power_of_10: int = 3,
) -> Hls4mlLayerNormParams:
    """Params of ``layernorm.hls4ml`` (hls4ml defaults: table of 4096 entries of
    ap_ufixed<8,5,AP_RND_CONV,AP_SAT>, range 2^-0, ε = 10^-3). ``gamma``/``beta`` (floats,
    one per channel) are cast to ``scale_type``/``bias_type`` exactly as C++ does with a
    double (give them on the types' grids: hls4ml writes weights as decimals with the type's
    fractional digits, so off-grid values are rounded once more in decimal)."""
    tt = ApType.parse(table_type)
    min_val = np.float32(10.0 ** -epsilon_power_of_10)  # pow(10.0f, -e): double, then float
    max_val = np.float32(2.0 ** -table_range_power2)
    step = np.float32(max_val / np.float32(table_size))
    table = []
    for ii in range(table_size):
        in_val = np.float32(min_val + np.float32(step * np.float32(ii)))
        table.append(ap_from_float(1.0 / float(np.sqrt(in_val)), tt))
    g = np.asarray(gamma, dtype=np.float64).ravel()
    b = np.asarray(beta, dtype=np.float64).ravel()
    st, bt, at = ApType.parse(scale_type), ApType.parse(bias_type), ApType.parse(accum_type)
    return Hls4mlLayerNormParams(
        ApType.parse(in_type).name, ApType.parse(out_type).name, at.name, tt.name, st.name,
        bt.name, tuple(table), table_range_power2, ap_from_float(1.0 / len(g), at),
        tuple(ap_from_float(v, st) for v in g), tuple(ap_from_float(v, bt) for v in b),
    )


__all__ = ["ap_from_float", "hls4ml_layernorm_params", "hls4ml_softmax_params",
           "real_val_from_idx"]
