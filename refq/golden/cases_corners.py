"""Directed corner cases: per kernel variant, a few tiny cases whose inputs are constructed to
hit every reachable coverage bin the variant declares (``meta["coverage.bins"]``).

Each variant points to its generator here with ``meta["coverage.corners"]``; a generator
``gen(v)`` returns ``(tag, params, inputs)`` triples — the *pools*. Element-wise kernels
get pools of constructed values (exact ties and their neighbours, format ends, saturating
values, shifts at their range ends); row kernels get pools of constructed rows (all equal,
one dominant, two tied maxima, every max-distance d up to a bound, so each rounding
remainder and table index occurs). :func:`corner_cases` then keeps, greedily and in pool
order, only the candidates (elements or rows) that hit a bin no earlier one hit, and packs
each pool's survivors into one committed kernel case ``<key>.corners.<tag>`` — a few dozen
elements each. Deterministic: no randomness, so the same refq gives the same bytes.

``refq golden generate --corners`` writes these cases and reports per variant the bins they
hit, the unreachable ones with their reasons, and any reachable bin they miss.
"""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import numpy as np
import numpy.typing as npt

from refq import params as P
from refq.errors import GoldenError, RefqError
from refq.golden.case import Case
from refq.golden.coverage import sample, spec_of
from refq.golden.kernels import kernel_case
from refq.golden.registry import CaseEntry, register_source
from refq.intmath import INT8, INT16, INT32
from refq.ops import AddParams, GemmParams, LayerNormParams, RequantParams, variants
from refq.ops.registry import Variant

I64 = npt.NDArray[np.int64]
Pool = tuple[str, Any, dict[str, Any], str]
"""(tag, params, inputs, unit): unit ``element`` (candidates along axis 0 of every input),
``row`` (rows of the first input) or ``whole`` (the inputs are one candidate)."""
SEED = 4000
I32_MIN, I32_MAX = INT32.min, INT32.max


def _arr(values: Any) -> I64:
    return np.array(values, dtype=np.int64)


# ------------------------------------------------------------------ pools
def requantize_tflite(v: Variant) -> list[Pool]:
    """TFLite requantization: M = 2^30 at shift -2 (SRDHM ties at odd x, RDBPOT ties at
    x = ±4), M = 2^31 - 1 at shift 0 (ties and near-ties at x = ±2^30, ±(2^30 ± 1)), and
    both shift ends (30 with x in -2..1, -31 with the int32 ends)."""
    fam = v.name

    def rp(m: int, s: int) -> RequantParams:
        return RequantParams(family=fam, multiplier=(m,), shift=(s,), out_format=INT8)

    ties = [1, -1, 2, -2, 3, -3, 4, -4, 5, -5, 6, -6, 12, -12, 0, I32_MIN, I32_MAX]
    near = [1 << 30, -(1 << 30), (1 << 30) + 1, -(1 << 30) - 1, (1 << 30) - 1, 1 - (1 << 30)]
    return [("ties", rp(1 << 30, -2), {"x": _arr(ties)}, "element"),
            ("near", rp(2**31 - 1, 0), {"x": _arr(near)}, "element"),
            ("shift_max", rp(1 << 30, 30), {"x": _arr([-2, -1, 0, 1])}, "element"),
            ("shift_min", rp(1 << 30, -31), {"x": _arr([I32_MIN, I32_MAX, 0])}, "element")]


def requantize_ieee(v: Variant) -> list[Pool]:
    """binary32 / binary64 multipliers m·2^-c: m = 2^(b-1) at c = b (x/2: final ties at odd
    x; x to binary32 ties at 2^24 + 1, near-ties at 2^25 + 1, 2^25 + 3), m = 3·2^(b-2) at c =
    b (rn24(x)·m ties at x = 2^24 - 2, near-ties at 2^24 - 1), and both ends of c."""
    bits = 24 if v.name.startswith("fp32") else 53
    top = 63 if bits == 24 else 126

    def rp(m: int, c: int) -> RequantParams:
        return RequantParams(family=v.name, multiplier=(m,), shift=(c,), out_format=INT32)

    big = [(1 << 24) + 1, (1 << 25) + 1, (1 << 25) + 3, (1 << 24) - 2, (1 << 24) - 1]
    xs = [1, 3, 5, 0, *big, *(-b for b in big), I32_MIN, I32_MAX, -1, -3, -5]
    sat = RequantParams(family=v.name, multiplier=(1 << (bits - 1),), shift=(bits - 1,),
                        out_format=INT8)
    return [("half", rp(1 << (bits - 1), bits), {"x": _arr(xs)}, "element"),
            ("three_quarters", rp(3 << (bits - 2), bits), {"x": _arr(xs)}, "element"),
            ("saturate", sat, {"x": _arr([I32_MIN, I32_MAX, 0])}, "element"),
            ("c0", rp(1, 0), {"x": _arr([1, -1, 7])}, "element"),
            # m = 2^(b-1) + 1: x·m = x·2^(b-1) + x drops the low bits of x, so x = 3·2^9 ± 1
            # is one unit from a tie of the product's rounding; m = 3, c = 2: 3x / 4 near-ties
            ("odd_m", rp((1 << (bits - 1)) + 1, bits),
             {"x": _arr([1537, -1537, 1535, -1535])}, "element"),
            ("small", rp(3, 2), {"x": _arr([1, -1, 3, -3])}, "element"),
            ("cmax", rp((1 << bits) - 1, top), {"x": _arr([I32_MAX, I32_MIN])}, "element")]


def requantize_dyadic(v: Variant) -> list[Pool]:
    """b = 1, c = 3 (ties at ±4, ±12; near-ties at ±3, ±5; saturation at the int32 ends);
    c = 0; c = 63 with b = 2^32 (x·b = ±(2^63 - 2^32) uses the top bit of int64)."""
    def rp(b: int, c: int, rounding: str) -> RequantParams:
        return RequantParams(family="dyadic", multiplier=(b,), shift=(c,), rounding=rounding,
                             out_format=INT8)

    ties = [4, -4, 12, -12, 3, -3, 5, -5, 0, I32_MIN, I32_MAX]
    return [("ties", rp(1, 3, "half_even"), {"x": _arr(ties)}, "element"),
            ("c0", rp(3, 0, "half_away"), {"x": _arr([1, -1, 50, -50])}, "element"),
            ("c63", rp(1 << 32, 63, "floor"), {"x": _arr([I32_MAX, -I32_MAX, 0])}, "element")]


def add_scheme(v: Variant) -> list[Pool]:
    """Branch ties: ivit a·1/2^2 (a = ±2; near ±1), b·3/2^3 (b = ±4; near ±1); shared_shift
    acc = 256a + 3b over 2^2 (b = ±2; near ±1), acc_bits 40 reached by a at the int32 ends;
    every operand end, saturating outputs."""
    ends_a = [I32_MIN, I32_MAX, 0, 0, 0]
    ends_b = [0, 0, I32_MIN, I32_MAX, 0]
    if v.name == "ivit":
        p = AddParams(scheme="ivit", a_multiplier=1, a_shift=2, b_multiplier=3, b_shift=3)
        a = [2, -2, 1, -1, 0, 0, 0, 0, *ends_a]
        b = [0, 0, 0, 0, 4, -4, 1, -1, *ends_b]
    else:
        p = AddParams(scheme="shared_shift", a_multiplier=256, a_shift=2, b_multiplier=3,
                      b_shift=2, acc_bits=40)
        a = [0, 0, 0, 0, *ends_a]
        b = [2, -2, 1, -1, *ends_b]
    return [("ends", p, {"a": _arr(a), "b": _arr(b)}, "element")]


def gemm(v: Variant) -> list[Pool]:
    """Operands at min, zero point and max; an accumulator that needs its top bit (linear:
    a bias of 2^30 in int32; matmul: one product -128·-128 = 2^14 in int16)."""
    if v.family == "linear":
        x = _arr([-128, 0, 127, 5, 127, 127, 127, 127]).reshape(2, 4)
        w = _arr([-128, -128, -128, -128, 127, 0, 1, 2]).reshape(2, 4)
        bias = _arr([(1 << 30) + (1 << 20), 0])
        return [("ends", GemmParams(), {"x": x, "w": w, "bias": bias}, "whole")]
    a = _arr([-128, 0, 0, 0, 127, 3, -7, 0]).reshape(2, 4)
    b = _arr([-128, 127, 0, 5, 1, -128, 2, 0]).reshape(4, 2)
    return [("ends", GemmParams(acc_bits=16), {"a": a, "b": b}, "whole")]


def _golden_scale(v: Variant, default: str) -> float:
    for ref in v.golden:
        if "scale" in ref.args:
            return float(ref.args["scale"])
    return float(default)


def softmax(v: Variant) -> list[Pool]:
    """Rows of 6 at the variant's golden scale: all at the format minimum / maximum, one
    dominant logit, two tied maxima, and [0, -d, -D, -D, -D, -D] for every d in 0..4095
    (each remainder of the exponent's range reduction and table index in turn), and
    [0, -d, -2, -D, -D, -D] for d < 600 (where refq's final division meets a near-tie)."""
    p = v.derive(_golden_scale(v, "0.01")) if v.derive is not None else None
    if p is None:
        raise GoldenError(f"variant {v.key}: no parameter derivation for its corner cases")
    fmt = p.in_format
    lo, hi = fmt.min, fmt.max
    big = min(hi, 1 << 14)
    rows = [[lo] * 6, [hi] * 6, [0, -big, -big, -big, -big, -big],
            [0, 0, -big, -big, -big, -big]]
    rows += [[0, -d, -big, -big, -big, -big] for d in range(min(4096, big))]
    rows += [[0, -d, -2, -big, -big, -big] for d in range(min(600, big))]
    x = _arr(rows).reshape(-1, 6)
    pools: list[Pool] = [("rows", p, {"x": x}, "row")]
    if v.name == "refq":  # m/2^c = 3/2^10: ties of t / 2^(c - L) at every d = 2 mod 4
        pools.append(("coarse", replace(p, log2e_multiplier=3, log2e_shift=p.table_bits + 2),
                      {"x": x}, "row"))
    return pools


def gelu(v: Variant) -> list[Pool]:
    """Every code of a narrow input (lut: int8, every table index; ibert: int16 at its golden
    scale; shiftgelu: rows of 4 in int16, with all-equal and unique-maximum rows)."""
    if v.name == "lut":
        lut = P.gelu_lut_params(0.05, 0, 0.001, 0)
        return [("int8", lut, {"x": np.arange(-128, 128, dtype=np.int64)}, "element")]
    p = v.derive(_golden_scale(v, "0.001")) if v.derive is not None else None
    if p is None:
        raise GoldenError(f"variant {v.key}: no parameter derivation for its corner cases")
    p16, p32 = replace(p, in_format=INT16), replace(p, in_format=INT32)
    wide = [("int32", p32, {"x": _fits(v, p32, [1 << k for k in range(14, 31)])}, "element")]
    if v.name == "ibert":
        x = np.concatenate([np.arange(-(1 << 15), 1 << 15, 61), [-(1 << 15), (1 << 15) - 1, 0]])
        return [("int16", p16, {"x": x.astype(np.int64)}, "element"), *wide]
    p = p16
    rows = [[0, 0, 0, 0], [INT16.min] * 4, [INT16.max] * 4, [INT16.max, INT16.min, 0, 1],
            [0, -1, -2, -3]]
    rows += [[d, 0, -d, 5] for d in range(0, 1 << 15, 97)]
    big = _fits(v, p32, [1 << k for k in range(14, 31)])
    return [("int16", p, {"x": _arr(rows).reshape(-1, 4)}, "row"),
            ("int32", p32, {"x": big.reshape(-1, 1)}, "row")]


def _fits(v: Variant, p: Any, values: list[int]) -> I64:
    """The values (and their negatives) on which the variant does not raise (RangeError:
    an output or intermediate outside its declared width)."""
    out = []
    for x in values:
        for s in (x, -x):
            try:
                v.fn(_arr([s]), p)
            except RefqError:
                continue
            out.append(s)
    return _arr(out)


def layernorm(v: Variant) -> list[Pool]:
    """24 channels: plain int8 rows (all equal, at the ends, one outlier, and rows whose sum
    leaves every remainder mod 24), and the same with every channel shifted by 16 (the
    largest shift; with [-128, 127] alternating, v = Σy² needs its top bit)."""
    c = 24
    rows = [[7] * c, [-128] * c, [127] * c, [0] * c, [-128, 127] * (c // 2),
            [127] + [0] * (c - 1)]
    rows += [[r] + [0] * (c - 1) for r in range(-36, 37)]
    rows += [[1] * r + [0] * (c - r) for r in range(1, c)]
    x = _arr([v_ for row in rows for v_ in row]).reshape(-1, c)
    plain = LayerNormParams(in_format=INT8)
    shifted = LayerNormParams(in_format=INT8, channel_shift=(16,),
                              var_shift=16 if v.name == "ibert" else 0)
    wide = _arr([[-128, 127] * 17, [127, -128] * 17])  # 34 channels: v >= 2^61
    pools: list[Pool] = [("plain", plain, {"x": x}, "row"),
                         ("shift16", shifted, {"x": wide}, "row")]
    if v.name == "refq":  # Σy² = 40² exactly and y = ∓5: y·2^(2+k)/s = ∓1/2, exact ties
        tie = _arr([[-4, -4, 4, -5, -6], [4, 4, -4, 5, 6]])
        pools.append(("tie", LayerNormParams(in_format=INT8, frac_bits=2), {"x": tie}, "row"))
    return pools


def layernorm_hls4ml(v: Variant) -> list[Pool]:
    """The hls4ml LayerNorm's boundary points: rows of the committed case's params (16
    channels of ap_fixed<16,6>) at the input's ends, all equal, one outlier; and the same rows
    through γ = 4 into a saturating ap_fixed<8,3,AP_RND_CONV,AP_SAT>, where an outlier's
    normalized value (±√15·4) saturates at both output ends."""
    from refq.golden.cases_hls4ml import LAYERNORM_C, layernorm_catalogue
    from refq.params.hls4ml import hls4ml_layernorm_params

    c = LAYERNORM_C
    lo, hi = -(1 << 15), (1 << 15) - 1
    rows = [[lo] * c, [hi] * c, [7] * c, [hi] + [0] * (c - 1), [lo] + [0] * (c - 1),
            [lo, hi] * (c // 2)]
    x = _arr([v_ for row in rows for v_ in row]).reshape(-1, c)
    sat = hls4ml_layernorm_params("ap_fixed<16,6>", "ap_fixed<8,3,AP_RND_CONV,AP_SAT>",
                                  np.full(c, 4.0), np.zeros(c))
    return [("rows", layernorm_catalogue(), {"x": x}, "row"),
            ("saturate", sat, {"x": x}, "row")]


# ------------------------------------------------------------------ selection
def _candidate_hits(v: Variant, p: Any, inputs: dict[str, I64], unit: str) -> dict[str, I64]:
    """bin → bool per candidate (axis 0 of the inputs)."""
    args = [inputs[n] for n in v.inputs]
    y = v.fn(*args, p)
    n = 1 if unit == "whole" else int(args[0].shape[0])
    out: dict[str, I64] = {}
    for name, bins in sample(v, (*args, p), {}, y).items():
        for b, m in bins.items():
            m = np.asarray(m)
            if unit == "whole" or m.ndim == 0 or m.shape[0] != n:
                hit = np.full(n, bool(m.any()))
            else:
                hit = m.reshape(n, -1).any(axis=1)
            out[f"{name}: {b}"] = hit
    return out


def select(v: Variant, pools: list[Pool]) -> list[tuple[str, Any, dict[str, I64]]]:
    """Per pool, the candidates that add a bin, in pool order (module docstring)."""
    spec = spec_of(v)
    if spec is None:
        raise GoldenError(f"variant {v.key} declares no coverage bins")
    wanted = set(spec.reachable)
    chosen = []
    for tag, p, inputs, unit in pools:
        hits = _candidate_hits(v, p, inputs, unit)
        n = len(next(iter(hits.values()))) if hits else 0
        keep = []
        for i in range(n):
            new = {b for b, h in hits.items() if h[i] and b in wanted}
            if new:
                keep.append(i)
                wanted -= new
        if not keep:
            continue
        if unit == "whole":
            chosen.append((tag, p, inputs))
        else:
            idx = np.array(keep)
            chosen.append((tag, p, {k: np.asarray(a)[idx] for k, a in inputs.items()
                                    if k in v.inputs}))
    return chosen


def _build(v: Variant, name: str, tag: str, seed: int) -> Case:
    for t, p, inputs in select(v, _pools(v)):
        if t == tag:
            return kernel_case(name, seed, v.key, p, inputs, extra={"corners": tag})
    raise GoldenError(f"{name}: pool {tag!r} contributes no bin")


def _pools(v: Variant) -> list[Pool]:
    ref = v.meta.get("coverage.corners")
    if ref is None:
        return []
    try:
        pools: list[Pool] = ref(v)
    except RefqError as exc:
        raise GoldenError(f"variant {v.key}: corner pools: {exc}") from None
    return pools


_TAGS: dict[str, tuple[Variant, tuple[str, ...]]] = {}
"""variant key → (the variant, its contributing pool tags): selection runs once per
variant object (a re-declared variant is selected afresh)."""


def _tags(v: Variant) -> tuple[str, ...]:
    hit = _TAGS.get(v.key)
    if hit is None or hit[0] is not v:
        hit = (v, tuple(tag for tag, _, _ in select(v, _pools(v))))
        _TAGS[v.key] = hit
    return hit[1]


def corner_cases() -> list[CaseEntry]:
    """A committed case per contributing pool of every refq variant that declares corners
    (no randomness: every corner case has seed SEED)."""
    out: list[CaseEntry] = []
    for v in variants():
        if "coverage.corners" not in v.meta or not v.builtin:
            continue
        for tag in _tags(v):
            name = f"{v.key}.corners.{tag}"

            def build(seed: int, v: Variant = v, name: str = name, tag: str = tag) -> Case:
                return _build(v, name, tag, seed)

            out.append(CaseEntry(name, "kernel", SEED, build,
                                 f"{v.key}: directed corner cases ({tag})"))
    return out


register_source(corner_cases)

__all__ = [
    "add_scheme",
    "corner_cases",
    "gelu",
    "gemm",
    "layernorm",
    "requantize_dyadic",
    "requantize_ieee",
    "requantize_tflite",
    "select",
    "softmax",
]
