"""Lowering plumbing: the program builder, integer weights, GEMMs, requantization and the
realisation of an activation quantizer at a tap (the real → integer step of lowering).

An activation in the program is an :class:`Act`: an integer tensor whose element ``q``
stands for ``scale · (q - zp)`` (one real scale per tensor). A GEMM accumulator is a tensor
with one scale per output channel (last axis). Quantizers of the QuantSpec are realised by
:meth:`Builder.to_tap` along one of three routes (docs/lowering.md):

``requant``    uniform per-tensor quantizer with a full-range code format, source an
               accumulator with per-channel scales: one dyadic ``requantize`` straight to the
               quantizer's codes (rounding = the quantizer's, saturation = its clamp).
``threshold``  every other quantizer (per-head / per-channel, narrow range, log2, log√2,
               twin-uniform, V-2SF, SULQ, TanQ, PTF, …) and every quantizer whose source has
               one scale: codes by the ``threshold`` op with the quantizer's exact
               ``int_thresholds`` on the source grid (so the codes equal ``quantize`` of the
               dequantized source), then ``lookup`` into a table: the codes themselves for a
               uniform per-tensor quantizer, else the reconstruction levels at a fine dyadic
               scale 2^-k (int16), per group through per-group index offsets.
``internal``   the spec does not quantize the tap (residual stream, accumulators, logits):
               a signed format of ``bits`` bits whose scale covers ``margin`` × the largest
               |value| seen on the calibration images.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import INT8, INT16, INT32, IntFormat
from refq.ops.linear import GemmParams
from refq.ops.registry import Ref, Variant, find
from refq.ops.requantize import RequantParams
from refq.program.ir import Op, Program
from refq.program.kernels import choose
from refq.quant import Quantizer, QuantSpec, UniformQuantizer

F64 = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
WIDE = IntFormat(62, True)
"""Format of exact intermediates (affine outputs, offset codes)."""
MARGIN = 1.5
"""Head-room factor of internal scales over the calibration max |x|."""
DEC_BITS = 16
"""Width of decoded (table) levels of non-uniform quantizers."""


@dataclass(frozen=True)
class Act:
    """An integer tensor standing for ``scale · (q - zp)``."""

    name: str
    scale: float
    zp: int
    fmt: IntFormat
    shape: tuple[int, ...]


@dataclass(frozen=True)
class Acc:
    """A GEMM accumulator (or any exact integer) with one real scale per last-axis channel
    (length 1 for a per-tensor scale) and a declared format."""

    name: str
    scales: F64
    fmt: IntFormat
    shape: tuple[int, ...]
    gemm: bool = False
    """A linear/matmul accumulator: requantized by the chosen ``requantize`` variant (every
    other requantization is dyadic)."""
    bound: int | None = None
    """A proven bound of every |value| (a GEMM's k·max|x|·max|w| + max|bias|), if known."""


def fmt_for(lo: int, hi: int) -> IntFormat:
    """The narrowest of int8/int16/int32/int<n> holding [lo, hi]."""
    for f in (INT8, INT16, INT32):
        if f.min <= lo and hi <= f.max:
            return f
    bits = max(abs(lo), abs(hi) + 1).bit_length() + 1
    return IntFormat(min(bits, 64), True)


def uniform_codes(q: Quantizer) -> UniformQuantizer | None:
    """``q`` if it is a uniform per-tensor quantizer with integer zero point whose codes are
    R(x/s) + z of the float64 quotient (what requantization realises); else None (FQ-ViT's
    zero point inside the rounding and the float32 forms take the threshold route)."""
    if (isinstance(q, UniformQuantizer) and q.axis is None and q.integer_exact
            and not q.zp_in_round and q.arith == "float64"):
        return q
    return None


def code_output(q: Quantizer) -> UniformQuantizer | None:
    """``q`` if the tap's tensor can be its codes at scale s and zero point z: a uniform
    per-tensor float64 quantizer with integer zero point, whose levels are exactly
    (code - z)·s — :func:`uniform_codes` or FQ-ViT's zero point inside the rounding (those
    reach their codes by thresholds, not by requantization); else None (the tap holds
    decoded levels)."""
    if (isinstance(q, UniformQuantizer) and q.axis is None and q.integer_exact
            and q.arith == "float64"):
        return q
    return None


def exactify(q: Quantizer) -> tuple[Quantizer, str | None]:
    """An integer-exact stand-in: a uniform quantizer with a float zero point (RepQ-ViT's
    fake-quant-only form) gets its zero point rounded half-even (noted in the program)."""
    if isinstance(q, UniformQuantizer) and not q.integer_exact:
        z = np.rint(np.asarray(q.zero_point, dtype=np.float64)).astype(np.int64)
        lo, hi = q.code_range()
        z = np.clip(z, lo, hi)
        return (
            UniformQuantizer(q.scale, q.bits, z, signed=q.signed, narrow=q.narrow, axis=q.axis,
                             group_size=q.group_size, rounding=q.rounding),
            "float zero point rounded half-even",
        )
    return q, None


class Builder:
    """Appends declarations and ops to a :class:`Program` while lowering one model."""

    def __init__(self, prog: Program, spec: QuantSpec, params: dict[str, F64],
                 stats: dict[str, float], batch: int = -1,
                 kernels: Mapping[str, str] | None = None,
                 fallbacks: Mapping[str, str] | None = None) -> None:
        self.prog = prog
        self.spec = spec
        self.params = params
        self.stats = stats
        self.notes: dict[str, str] = {}
        self.kernels: dict[str, str] = choose(None, spec.kernels) if kernels is None else dict(
            kernels)
        """The variant per kernel family (:func:`refq.program.kernels.choose`)."""
        self.fallbacks: dict[str, str] = dict(fallbacks or {})
        """Per family, the variant used where the chosen one cannot sit (a profile's
        :data:`refq.program.kernels.FALLBACKS`; each use is noted)."""

    def variant(self, family: str) -> Variant:
        """The chosen variant of ``family``."""
        return find(family, self.kernels[family])

    def place(self, v: Variant, *args: Any, **kwargs: Any) -> Any:
        """The variant's lowering (its ``meta["lower"]`` pointer, refq.program.lower_kernels)
        called with ``(v, *args)``."""
        ref = v.meta.get("lower")
        if not isinstance(ref, Ref):
            raise SpecError(f"lower: variant {v.key} is not lowered")
        return ref(v, *args, **kwargs)

    # ------------------------------------------------------------------ basic emission
    def value(self, name: str, shape: tuple[int, ...], fmt: IntFormat,
              scale: float | None = None, zp: int = 0, doc: str = "") -> str:
        return self.prog.declare(name, shape, fmt, "value", scale, zp, doc)

    def const(self, name: str, values: Any, fmt: IntFormat | None = None, doc: str = "") -> str:
        arr = np.asarray(values, dtype=np.int64)
        if fmt is None:
            fmt = fmt_for(int(arr.min()), int(arr.max())) if arr.size else INT32
        return self.prog.const(name, arr, fmt, doc)

    def move(self, key: str, inputs: list[str], outputs: list[str], name: str = "",
             **params: Any) -> None:
        self.prog.add(Op("move", key, tuple(inputs), tuple(outputs), params, name))

    def kernel(self, key: str, params: Any, inputs: list[str], output: str,
               name: str = "") -> None:
        self.prog.add(Op("kernel", key, tuple(inputs), (output,), params.to_dict(), name))

    def relayout(self, src: Act, name: str, shape: tuple[int, ...], perm: list[int] | None,
                 tshape: tuple[int, ...]) -> Act:
        """Reshape ``src`` to ``shape`` then (optionally) transpose by ``perm`` → ``tshape``."""
        mid = name if perm is None else name + ".r"
        self.value(mid, shape if perm is not None else tshape, src.fmt,
                   src.scale if perm is None else None, src.zp)
        self.move("reshape", [src.name], [mid], shape=[-1, *shape[1:]])
        if perm is not None:
            self.value(name, tshape, src.fmt, src.scale, src.zp)
            self.move("transpose", [mid], [name], perm=perm)
        return Act(name, src.scale, src.zp, src.fmt, tshape)

    # ------------------------------------------------------------------ weights and GEMMs
    def weight(self, pname: str) -> tuple[str, F64, I64]:
        """Integer weight (N, K) and its per-output-channel scales.

        Quantized by ``spec.weights[pname]`` (its fake-quant values, exactly: a uniform
        per-tensor or per-output-channel quantizer gives ``code - zp``; any other quantizer
        is decoded at a per-channel fine scale max|ŵ|/(2^15-1)); an unquantized weight is
        stored as int16 per channel (max|w|/(2^15-1), half-even) — close to the float weight
        that the fake-quant simulation keeps.
        """
        w = np.asarray(self.params[pname], dtype=np.float64)
        q = self.spec.weights.get(pname)
        w_fq = w if q is None else np.asarray(q.fake_quant(w), dtype=np.float64)
        wf = w_fq.reshape(w.shape[0], -1)
        n = wf.shape[0]
        s: F64 | None = None
        if isinstance(q, UniformQuantizer) and q.group_size is None and q.integer_exact:
            if q.axis is None:
                s = np.full(n, float(q.scale), dtype=np.float64)
            elif q.axis % w.ndim == 0:
                s = np.asarray(q.scale, dtype=np.float64).reshape(n)
        if s is not None:
            wi = np.rint(wf / s[:, None])
            if float(np.max(np.abs(wf / s[:, None] - wi), initial=0.0)) > 1e-6:
                raise SpecError(f"lower: weight {pname}: fake-quant values not on the grid")
        else:
            s = np.maximum(np.max(np.abs(wf), axis=1), 1e-30) / 32767.0
            wi = np.rint(wf / s[:, None])
            if q is not None:
                self.notes[pname] = "non-uniform/grouped weight quantizer decoded at int16"
        wint = wi.astype(np.int64)
        return pname.replace(".weight", ".w"), s, wint

    def linear(self, x: Act, prefix: str, out: str, w2d: F64 | None = None) -> Acc:
        """acc = (x - zp) @ W^T + bias, exact, one scale per output channel."""
        wname, sw, wint = self.weight(prefix + ".weight")
        if w2d is not None:
            wint = wint.reshape(w2d.shape)
        b = self.params.get(prefix + ".bias")
        scales = x.scale * sw
        bias = np.zeros(wint.shape[0], dtype=np.int64) if b is None else np.rint(
            np.asarray(b, dtype=np.float64) / scales).astype(np.int64)
        k = wint.shape[1]
        xmax = max(x.fmt.max - x.zp, x.zp - x.fmt.min)
        bound = xmax * int(np.max(np.abs(wint), initial=0)) * k
        bias_fits = bool(np.all(np.abs(bias) <= INT32.max))
        total = bound + int(np.max(np.abs(bias), initial=0))
        acc_bits = 32 if total < 2**31 else 48
        if total >= 2**47:
            raise SpecError(f"lower: {prefix}: accumulator bound 2^{total.bit_length()} > 2^47")
        wfmt = fmt_for(int(wint.min()), int(wint.max()))
        if wfmt.bits > 16:
            raise SpecError(f"lower: {prefix}: weight needs {wfmt.bits} bits")
        self.const(wname, wint, wfmt, doc=f"{prefix}.weight integer")
        bname = self.const(prefix + ".b", bias if bias_fits else np.zeros_like(bias), INT32)
        gp = GemmParams(x.fmt, wfmt, x.zp, 0, acc_bits, None)
        shape = (*x.shape[:-1], wint.shape[0])
        acc_fmt = IntFormat(acc_bits, True)
        name = out if bias_fits else out + ".nobias"
        self.value(name, shape, acc_fmt, doc="accumulator, per-channel scales")
        self.kernel("linear.gemm", gp, [x.name, wname, bname], name, prefix)
        if not bias_fits:
            one = self.const(prefix + ".one", np.ones(1, np.int64), INT8)
            wide = self.const(prefix + ".b64", bias, WIDE)
            acc_fmt = IntFormat(49, True)
            self.value(out, shape, acc_fmt)
            self.move("affine", [name, one, wide], [out], prefix + ".bias")
        return Acc(out, scales, acc_fmt, shape, gemm=True, bound=total)

    def matmul(self, a: Act, b: Act, out: str, shape: tuple[int, ...], k: int,
               name: str) -> Acc:
        amax = max(a.fmt.max - a.zp, a.zp - a.fmt.min)
        bmax = max(b.fmt.max - b.zp, b.zp - b.fmt.min)
        total = amax * bmax * k
        acc_bits = 32 if total < 2**31 else 48
        gp = GemmParams(a.fmt, b.fmt, a.zp, b.zp, acc_bits, None)
        fmt = IntFormat(acc_bits, True)
        self.value(out, shape, fmt, a.scale * b.scale)
        self.kernel("matmul.gemm", gp, [a.name, b.name], out, name)
        return Acc(out, np.array([a.scale * b.scale]), fmt, shape, gemm=True, bound=total)

    # ------------------------------------------------------------------ requantization
    def requant(self, src: Acc, out_scale: float, fmt: IntFormat, zp: int, name: str,
                shape: tuple[int, ...] | None = None, rounding: str = "half_even",
                label: str = "") -> Act:
        """Requantize ``src`` to ``fmt`` at ``out_scale`` (per-channel multipliers): a GEMM
        accumulator by the chosen ``requantize`` variant, anything else by ``dyadic`` (b/2^c,
        b rounded half-even, the product rounded by ``rounding``, the quantizer's)."""
        reals = np.asarray(src.scales, dtype=np.float64) / out_scale
        real: Any = float(reals[0]) if bool(np.all(reals == reals[0])) else [
            float(r) for r in reals]
        tap = label or name
        v = self.requant_variant(src, tap)
        placed = self.place(v, tap, real, src.fmt, fmt, zp, rounding, bound=src.bound)
        rp: RequantParams = placed.params
        shp = src.shape if shape is None else shape
        self.value(name, shp, fmt, out_scale, zp)
        self.kernel(v.key, rp, [src.name], name, label or name)
        return Act(name, out_scale, zp, fmt, shp)

    def requant_variant(self, src: Acc, tap: str = "") -> Variant:
        """The requantize variant of ``src``: dyadic unless ``src`` is a GEMM accumulator;
        for one, the chosen variant — or the profile's fallback (noted for ``tap``) where the
        source is wider than the chosen variant takes (``meta["lower.src_bits"]``)."""
        if not src.gemm:
            return find("requantize", "dyadic")
        v = self.variant("requantize")
        limit = v.meta.get("lower.src_bits")
        fb = self.fallbacks.get("requantize")
        if fb is not None and isinstance(limit, int) and src.fmt.bits > limit:
            if tap:
                self.notes[tap] = (f"{v.key} takes int{limit} accumulators, this one is "
                                   f"{src.fmt}: requantize.{fb} (the profile's fallback)")
            return find("requantize", fb)
        return v

    def scale_floor(self, src: Acc, scale: float) -> float:
        """``scale`` for an internal grid of ``src``, raised where the requantize variant that
        will requantize ``src`` declares a smallest output scale (``meta["lower.min_scale"]``:
        the TFLite variants take no left shift, so the grid is at least the accumulator's)."""
        floor = self.requant_variant(src).meta.get("lower.min_scale")
        return max(scale, float(floor(src.scales))) if isinstance(floor, Ref) else scale

    def zero_point_free(self, x: Act, tap: str) -> Act:
        """``x`` itself if its zero point is 0, else x - zp (one exact ``add_exact`` of a
        constant) in a format holding every such value."""
        if x.zp == 0:
            return x
        fmt = fmt_for(x.fmt.min - x.zp, x.fmt.max - x.zp)
        c = self.const(tap + ".neg_zp", np.array([-x.zp], np.int64), doc="minus the zero point")
        name = tap + ".nz"
        self.value(name, x.shape, fmt, x.scale, 0)
        self.move("add_exact", [x.name, c], [name], tap)
        return Act(name, x.scale, 0, fmt, x.shape)

    def negate(self, src: str, fmt: IntFormat, shape: tuple[int, ...], scale: float,
               tap: str) -> tuple[str, IntFormat]:
        """-src exactly (an ``affine`` by the constants -1 and 0), one bit wider: a tensor
        whose real value per LSB is negative, brought to the positive ``scale``."""
        m = self.const(tap + ".minus_one", np.array([-1], np.int64), INT8)
        z = self.const(tap + ".zero", np.array([0], np.int64), INT8)
        out_fmt = IntFormat(min(fmt.bits + 1, 64), True)
        name = src + ".neg"
        self.value(name, shape, out_fmt, scale)
        self.move("affine", [src, m, z], [name], tap)
        return name, out_fmt

    def internal_scale(self, tap: str, bits: int) -> float:
        m = self.stats.get(tap)
        if m is None:
            raise SpecError(f"lower: no calibration statistics for tap {tap!r}")
        return max(m, 1e-6) * MARGIN / ((1 << (bits - 1)) - 1)

    def to_tap(self, src: Acc, tap: str, *, bits: int = 16,
               layout: Callable[[Act, str], Act] | None = None) -> Act:
        """Realise the spec's quantizer of ``tap`` on ``src`` (module docstring); the result
        tensor is named ``tap``. ``layout`` maps an intermediate (B, N, C) tensor to the
        tap's layout (e.g. the per-head split) before the quantizer applies."""
        q0 = self.spec.activations.get(tap)
        per_tensor = src.scales.size == 1
        if q0 is None:
            s = self.scale_floor(src, self.internal_scale(tap, bits))
            fmt = IntFormat(bits, True)
            if layout is None:
                return self.requant(src, s, fmt, 0, tap)
            return layout(self.requant(src, s, fmt, 0, tap + ".bnc", label=tap), tap)
        q, note = exactify(q0)
        if note:
            self.notes[tap] = note
        u = uniform_codes(q)
        if u is not None and not per_tensor:
            lo, hi = u.code_range()
            cf = IntFormat(u.bits, u.signed)
            if (lo, hi) == (cf.min, cf.max):
                s, z = float(u.scale), int(u.zero_point)
                if layout is None:
                    return self.requant(src, s, cf, z, tap, rounding=u.rounding)
                tmp = self.requant(src, s, cf, z, tap + ".bnc", rounding=u.rounding, label=tap)
                return layout(tmp, tap)
        # threshold route: a per-tensor source grid
        if per_tensor:
            pre = Act(src.name, float(src.scales[0]), 0, src.fmt, src.shape)
        else:
            m = max(self.stats.get(tap, 0.0), _level_max(q))
            sp = self.scale_floor(src, max(m, 1e-6) * 2.0 / 2**30)
            pre = self.requant(src, sp, INT32, 0, tap + ".pre", label=tap)
        if layout is not None:
            pre = layout(pre, tap + ".pre_l")
        return self.threshold_decode(pre, q, tap)

    def threshold_decode(self, pre: Act, q: Quantizer, tap: str) -> Act:
        """codes = threshold(pre, int_thresholds(pre grid)); value = lookup(table, codes)."""
        if q.group_size is not None:
            raise SpecError(f"lower: {tap}: per-group activation quantizers are not lowered")
        if pre.zp != 0:
            raise SpecError(f"lower: {tap}: threshold source with a zero point")
        t = np.asarray(q.int_thresholds(pre.scale, 0), dtype=np.int64)
        lv = np.asarray(q.levels(), dtype=np.float64)
        lo, hi = q.code_range()
        n = hi - lo + 1
        g = 1 if t.ndim == 1 else t.shape[0]
        t = t.reshape(g, n - 1)
        lv = lv.reshape(g, n)
        if q.descending:
            lv = lv[:, ::-1]
            codes = np.arange(hi, lo - 1, -1, dtype=np.int64)
        else:
            codes = np.arange(lo, hi + 1, dtype=np.int64)
        u = code_output(q)
        if u is not None:
            table = np.broadcast_to(codes, (g, n))
            scale, zp = float(u.scale), int(u.zero_point)
            tfmt = IntFormat(u.bits, u.signed)
        else:
            amax = float(np.max(np.abs(lv)))
            k = math.floor(math.log2(((1 << (DEC_BITS - 1)) - 1) / amax)) if amax > 0 else 0
            scale, zp = 2.0 ** (-k), 0
            table = np.rint(lv * 2.0**k).astype(np.int64)
            tfmt = IntFormat(DEC_BITS, True)
        nb = max(1, (n - 1).bit_length())
        cname = tap + ".code"
        if g == 1:
            tc = self.const(tap + ".thr", t[0], IntFormat(64, True))
            self.value(cname, pre.shape, IntFormat(nb + 1, False))
            self.move("threshold", [pre.name, tc], [cname], tap)
            tab = self.const(tap + ".table", table[0], tfmt)
            self.value(tap, pre.shape, tfmt, scale, zp)
            self.move("lookup", [cname, tab], [tap], tap, offset=0)
            return Act(tap, scale, zp, tfmt, pre.shape)
        axis = q.axis if q.axis is not None else -1
        nd = len(pre.shape)
        ax = axis % nd
        if pre.shape[ax] != g:
            raise SpecError(f"lower: {tap}: quantizer has {g} groups, axis {ax} has "
                            f"{pre.shape[ax]}")
        big = 1 << 34
        off = (np.arange(g, dtype=np.int64) * big).reshape((g,) + (1,) * (nd - 1 - ax))
        lim_lo, lim_hi = pre.fmt.min - 1, pre.fmt.max + 1
        tt = np.clip(t, lim_lo, lim_hi) + off.reshape(g, 1)
        sent = off.reshape(g, 1) - (big >> 1)
        tall = np.concatenate([sent, tt], axis=1).ravel()
        oc = self.const(tap + ".goff", off, WIDE)
        xo = tap + ".x"
        self.value(xo, pre.shape, WIDE)
        self.move("add_exact", [pre.name, oc], [xo], tap)
        tc = self.const(tap + ".thr", tall, IntFormat(64, True))
        self.value(cname, pre.shape, IntFormat(max(nb + 1, (g * n).bit_length() + 1), False))
        self.move("threshold", [xo, tc], [cname], tap)
        tab = self.const(tap + ".table", np.ascontiguousarray(table).ravel(), tfmt)
        self.value(tap, pre.shape, tfmt, scale, zp)
        self.move("lookup", [cname, tab], [tap], tap, offset=1)
        return Act(tap, scale, zp, tfmt, pre.shape)


def _level_max(q: Quantizer) -> float:
    lv = q.levels()
    return 0.0 if lv is None else float(np.max(np.abs(lv)))


__all__ = ["DEC_BITS", "MARGIN", "WIDE", "Acc", "Act", "Builder", "code_output", "exactify",
           "fmt_for", "uniform_codes"]
