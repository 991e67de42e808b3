"""The constructed ties of every quantizer, with their oracles (test helper; needs torch
and mpmath).

For each quantizer, mode, arithmetic and bit-width, :func:`cases` builds the inputs at which
the float expression its official forward rounds (x·M, x/Δ, -2·log2(x/Δ), (y - y_min)/Δ, …)
is exactly k + ½ or crosses a clamp or region edge — found with :mod:`tests.quant.tiefind`
on the official expression evaluated op by op in the official order — plus the float
neighbours of each, and the oracle that gives the official codes and values there:

- official forwards (PTQ4ViT twin and base uniform, I&S-ViT uniform and SULQ, RepQ-ViT
  log√2, FQ-ViT uniform / PTF / log2): the torch re-typings of :mod:`tests.quant.official`
  in float64, or float32 with the CPU (``float32_cpu``) or CUDA (``float32_cuda``) rule for
  divisions by a Python number; logarithms correctly rounded (mpmath);
- refq's readings (twin paper form, V-2SF, O-2SF, TanQ, the other roundings and zero modes):
  the documented definition, written here with exact ``Fraction`` rounding of the float
  quotient.

:func:`run_case` compares refq's codes and values, and ``quantize_int`` on a sample of the
tie points, with the oracle and counts mismatches.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

import numpy as np
import numpy.typing as npt
import torch

from tests.quant import official as off
from tests.quant.tiefind import crossings, with_edges

F = npt.NDArray[np.float64]
I64 = npt.NDArray[np.int64]
Oracle = Callable[[F], tuple[I64, F]]

BITS = (2, 3, 4, 5, 6, 7, 8)
ARITH32 = ("float32_cpu", "float32_cuda")
ORACLE_LOG: dict[str, off.LogFn] = {"log2": off.cr_log2, "ln": off.cr_log}
"""The logarithms of the official-forward oracles: correctly rounded (mpmath); the census
can swap in torch's own (``tools/tie_census.py --torch-log``) to measure how often torch's
log/log2 (within 1 ulp, not correctly rounded) change a code on the ties."""


@dataclass
class Case:
    family: str
    mode: str
    arith: str
    bits: int
    label: str
    make: Callable[[], Any]
    x: F
    n_ties: int
    oracle: Oracle
    axis: int | None = None
    grouped: bool = False


# ------------------------------------------------------------------------ arithmetic


def _dt(arith: str) -> Any:
    return np.float64 if arith == "float64" else np.float32


def _tdt(arith: str) -> torch.dtype:
    return torch.float64 if arith == "float64" else torch.float32


def _sdiv(arith: str) -> off.SDiv:
    return off.CUDA_RULE if arith == "float32_cuda" else off.NATIVE


def _npdiv_py(a: F, b: float, arith: str) -> F:
    """a / (Python number b) in the arithmetic (numpy), as the torch rules do."""
    dt = _dt(arith)
    if arith == "float32_cuda":
        return np.asarray(a, dtype=dt) * (np.float32(1.0) / np.float32(b))
    return np.asarray(a, dtype=dt) / dt(b)


_LEGACY = [False]
"""Set by :func:`run_case` to rebuild a case's quantizer without the options a refq before
them lacked (``arith``, ``zp_in_round``, PTF ``mode``): its nearest float64 equivalent."""


def _kw(arith: str) -> dict[str, Any]:
    return {} if arith == "float64" or _LEGACY[0] else {"arith": arith}


def _t(x: F, arith: str) -> torch.Tensor:
    return torch.tensor(np.asarray(x, dtype=np.float64), dtype=_tdt(arith))


def _round_frac(v: float, mode: str) -> float:
    if not math.isfinite(v):
        return v
    fr = Fraction(v)
    f = math.floor(fr)
    d = fr - f
    if mode == "floor":
        return float(f)
    if mode == "ceil":
        return float(f + (d != 0))
    if mode == "trunc":
        return float(f + (d != 0 and fr < 0))
    half = Fraction(1, 2)
    if d != half:
        return float(f + (d > half))
    return float({"half_up": f + 1, "half_away": f + (fr > 0), "half_even": f + (f % 2)}[mode])


def _rnd(v: F, mode: str = "half_even") -> F:
    return np.array([_round_frac(float(e), mode) for e in np.ravel(v)]).reshape(np.shape(v))


def _targets(lo: int, hi: int, cap: int = 1200) -> F:
    """k + ½ for k in lo..hi (a deterministic sample of ``cap`` of them, ends kept)."""
    k = np.arange(lo, hi + 1)
    if k.size > cap:
        idx = np.unique(np.concatenate([np.arange(8), k.size - 1 - np.arange(8),
                                        np.linspace(0, k.size - 1, cap - 16).astype(int)]))
        k = k[idx]
    return k.astype(np.float64) + 0.5


def _ties(expr: Callable[[F], F], targets: F, lo: float, hi: float, arith: str,
          exact: Callable[[F], F] | None = None) -> tuple[F, int]:
    t, nb = crossings(expr, targets, lo, hi, dtype=_dt(arith), exact=exact)
    return np.concatenate([t, nb]), t.size


def _rows(pts: list[F], c: int) -> F:
    """Per-channel points -> an (N, c) array, channel j holding pts[j] (cycled)."""
    n = max(1, max(p.size for p in pts))
    return np.stack([np.resize(p if p.size else np.zeros(1), n) for p in pts], axis=1)


# ------------------------------------------------------------------------ uniform family


def _uniform_oracle(s: F, z: F, lo: int, hi: int, rounding: str, zp_in: bool, arith: str,
                    axis: int | None) -> Oracle:
    dt = _dt(arith)

    def orc(x: F) -> tuple[I64, F]:
        xa = np.asarray(x, dtype=np.float64)
        sc, zc = (s, z) if axis is None else (s[None, :], z[None, :])
        q = xa.astype(dt) / np.asarray(sc, dtype=dt)
        if zp_in:
            c = _rnd(q.astype(dt) + np.asarray(zc, dtype=dt), rounding)
        else:
            c = _rnd(q, rounding) + zc
        c = np.clip(c, lo, hi)
        v = (c - zc).astype(dt) * np.asarray(sc, dtype=dt)
        return c.astype(np.int64), v.astype(np.float64)

    return orc


def _uniform_cases(bits: int, arith: str) -> list[Case]:
    from refq.quant import UniformQuantizer

    out: list[Case] = []
    dt = _dt(arith)
    configs: list[tuple[str, bool, bool, str, float, int, bool]] = [
        # label, signed, narrow, rounding, scale, zp, zp_in_round
        ("sym-s0.1", True, False, "half_even", 0.1, 0, False),
        ("sym-s1/3", True, False, "half_even", 1 / 3, 0, False),
        ("asym-s0.0123-z3", False, False, "half_even", 0.0123, 3, False),
        ("fqvit-s0.0123-z3", False, False, "half_even", 0.0123, 3, True),
        ("fqvit-s0.37-z2", False, False, "half_even", 0.37, 2, True),
    ]
    if arith == "float64":
        for r in ("half_away", "half_up", "floor", "ceil", "trunc"):
            configs.append((f"narrow-{r}-s0.07-z1", True, True, r, 0.07, 1, False))
    for label, signed, narrow, rounding, s, z, zp_in in configs:
        if not signed and z > 2**bits - 1:
            continue
        qmin = (-(1 << (bits - 1)) + int(narrow)) if signed else 0
        qmax = (1 << (bits - 1)) - 1 if signed else (1 << bits) - 1
        s32 = float(np.asarray(s, dtype=dt))
        if zp_in:
            def expr(x: F, s32: float = s32, z: int = z) -> F:
                return x.astype(dt) / dt(s32) + dt(z)
            tg = _targets(qmin - 1, qmax)
        else:
            def expr(x: F, s32: float = s32) -> F:
                return x.astype(dt) / dt(s32)
            tg = _targets(qmin - z - 1, qmax - z)
        if rounding in ("floor", "ceil", "trunc"):
            tg = np.concatenate([tg - 0.5, tg])  # integers are the directed roundings' edges
        span = (qmax - qmin + 4) * s
        x, n = _ties(expr, tg, -span, span, arith)
        x = with_edges(x, [0.0], dt)
        sa, za = np.float64(s), np.float64(z)

        def make(s: float = s, z: int = z, signed: bool = signed, narrow: bool = narrow,
                 rounding: str = rounding, zp_in: bool = zp_in) -> Any:
            kw = _kw(arith)
            if zp_in and not _LEGACY[0]:
                kw["zp_in_round"] = True
            return UniformQuantizer(s, bits, z, signed=signed, narrow=narrow,
                                    rounding=rounding, **kw)  # type: ignore[arg-type]

        orc = _uniform_oracle(sa, za, qmin, qmax, rounding, zp_in, arith, None)
        out.append(Case("uniform", rounding + ("/zp-in" if zp_in else ""), arith, bits, label,
                        make, x, n, orc))
    # per-channel (axis -1, 3 channels) and per-group (axis 0, groups of 2)
    sc = np.array([0.1, 1 / 3, 0.0123])
    zc = np.array([0, 1, 2]) if bits > 1 else np.zeros(3)
    qmin, qmax = 0, (1 << bits) - 1
    pts = []
    total = 0
    for s, z in zip(sc.tolist(), zc.tolist(), strict=True):
        s32 = float(np.asarray(s, dtype=dt))
        x, n = _ties(lambda v, s32=s32: v.astype(dt) / dt(s32), _targets(qmin - z - 1, qmax - z),
                     -4 * s, (qmax + 4) * s, arith)
        pts.append(x)
        total += n

    def make_pc() -> Any:
        return UniformQuantizer(sc, bits, zc, signed=False, axis=-1, **_kw(arith))

    out.append(Case("uniform", "per-channel", arith, bits, "pc3", make_pc, _rows(pts, 3),
                    total, _uniform_oracle(sc, zc.astype(np.float64), qmin, qmax, "half_even",
                                           False, arith, -1), axis=-1))
    sg = np.array([0.05, 0.3])
    zg = np.array([1, 0])
    pts = []
    total = 0
    for s, z in zip(sg.tolist(), zg.tolist(), strict=True):
        s32 = float(np.asarray(s, dtype=dt))
        x, n = _ties(lambda v, s32=s32: v.astype(dt) / dt(s32), _targets(qmin - z - 1, qmax - z),
                     -4 * s, (qmax + 4) * s, arith)
        pts.append(x)
        total += n
    m = max(p.size for p in pts)
    grid = np.stack([np.resize(p, m) for p in pts], axis=0)  # (2 groups, m) -> x (2*m,)

    def make_g() -> Any:
        return UniformQuantizer(sg, bits, zg, signed=False, axis=0, group_size=m, **_kw(arith))

    def orc_g(x: F) -> tuple[I64, F]:
        return _uniform_oracle(np.repeat(sg, m), np.repeat(zg, m).astype(np.float64), qmin,
                               qmax, "half_even", False, arith, None)(x)

    out.append(Case("uniform", "per-group", arith, bits, "g2", make_g, grid.reshape(-1), total,
                    orc_g, grouped=True))
    return out


def _ptf_cases(bits: int, arith: str) -> list[Case]:
    from refq.quant import PowerOfTwoFactorQuantizer

    out = []
    dt = _dt(arith)
    alpha = np.array([0, 1, 2, 3])
    for s8, z in ((0.05, 3), (0.0117, 2)):
        z = min(z, 2**bits - 1)
        base = s8 / 8
        sc = base * 2.0**alpha
        for mode in ("paper", "code"):
            qmax = 2**bits - 1
            pts, total = [], 0
            for s in sc.tolist():
                s32 = float(np.asarray(s, dtype=dt))
                if mode == "code":
                    def expr(v: F, s32: float = s32, z: int = z) -> F:
                        return v.astype(dt) / dt(s32) + dt(z)
                    tg = _targets(-1, qmax)
                else:
                    def expr(v: F, s32: float = s32) -> F:
                        return v.astype(dt) / dt(s32)
                    tg = _targets(-z - 1, qmax - z)
                x, n = _ties(expr, tg, -(z + 4) * s, (qmax + 4) * s, arith)
                pts.append(x)
                total += n

            def make(base: float = base, z: int = z, mode: str = mode) -> Any:
                kw = _kw(arith)
                if mode == "code" and not _LEGACY[0]:
                    kw["mode"] = "code"
                return PowerOfTwoFactorQuantizer(base, bits, alpha, z, **kw)

            if mode == "code":
                def orc(x: F, sc: F = sc, z: int = z) -> tuple[I64, F]:
                    st = torch.tensor(sc, dtype=_tdt(arith)).reshape(1, -1)
                    zt = torch.tensor(float(z), dtype=_tdt(arith))
                    q, v = off.fqvit_uniform(_t(x, arith), st, zt, 0, 2**bits - 1)
                    return off.as_np(q).astype(np.int64), off.as_np(v)
            else:
                orc = _uniform_oracle(sc, np.full(4, float(z)), 0, qmax, "half_even", False,
                                      arith, -1)
            out.append(Case("ptf", mode, arith, bits, f"s8={s8},z={z}", make,
                            _rows(pts, 4), total, orc, axis=-1))
    return out


# --------------------------------------------------------------------------- twin


def _twin_softmax_cases(bits: int, arith: str) -> list[Case]:
    from refq.quant import TwinUniformQuantizer

    out = []
    dt = _dt(arith)
    M = 2 ** (bits - 1) - 1
    for m in (0, 1, 2, 3, 5, 9, 19):
        s = 2.0**-m
        d1 = float(_npdiv_py(np.array(s), M, arith))

        def e2(x: F, s: float = s) -> F:
            return np.clip(x.astype(dt), dt(s), dt(1)) * dt(M)

        def e1(x: F, d1: float = d1, s: float = s) -> F:
            return np.clip(x.astype(dt), dt(0), dt(s)) / dt(d1)

        x2, n2 = _ties(e2, _targets(-1, M), s, 1.0, arith)
        x1, n1 = _ties(e1, _targets(-1, M), 0.0, s, arith)
        x = with_edges(np.concatenate([x1, x2]), [0.0, s, 1.0, 2.0, -0.25], dt)

        def orc(x: F, s: float = s) -> tuple[I64, F]:
            qh, ql, v = off.ptq4vit_twin_softmax(_t(x, arith), s, bits, _sdiv(arith))
            qhs, _, _ = off.ptq4vit_twin_softmax(_t(np.array([s]), arith), s, bits,
                                                 _sdiv(arith))
            code = off.as_np(ql) + off.as_np(qh) - off.as_np(qhs)[0]
            return code.astype(np.int64), off.as_np(v)

        def make(m: int = m) -> Any:
            return TwinUniformQuantizer(bits, "softmax", m=m, mode="code", **_kw(arith))

        out.append(Case("twin-softmax", "code", arith, bits, f"m={m}", make, x, n1 + n2, orc))
        if arith != "float64":
            continue
        # the paper's piecewise form (refq's documented definition)
        r1, r2 = s / M, 1.0 / M
        y1, k1 = _ties(lambda v, r1=r1: v / r1, _targets(-1, M), 0.0, s, arith)
        y2, k2 = _ties(lambda v, r2=r2: v / r2, _targets(-1, M), s, 1.0, arith)
        xp = with_edges(np.concatenate([y1, y2]), [0.0, s, 1.0, 2.0], dt)

        def orc_p(x: F, s: float = s, r1: float = r1, r2: float = r2) -> tuple[I64, F]:
            c1 = np.clip(_rnd(x / r1), 0, M)
            c2 = np.clip(_rnd(x / r2), 0, M)
            code = np.where(x < s, c1, c2 + M + 1)
            val = np.where(x < s, c1 * r1, c2 * r2)
            return code.astype(np.int64), val

        def make_p(m: int = m) -> Any:
            return TwinUniformQuantizer(bits, "softmax", m=m, mode="paper")

        out.append(Case("twin-softmax", "paper", arith, bits, f"m={m}", make_p, xp, k1 + k2,
                        orc_p))
    return out


def _twin_gelu_cases(bits: int, arith: str) -> list[Case]:
    from refq.quant import TwinUniformQuantizer

    out = []
    dt = _dt(arith)
    M = 2 ** (bits - 1) - 1
    dn = off.GELU_NEG / 2 ** (bits - 1)
    for mode, dp in (("code", 0.0371), ("code", 0.013), ("paper", dn * 8), ("paper", dn * 2)):
        dp32 = float(np.asarray(dp, dtype=dt))
        xp, kp = _ties(lambda v, dp32=dp32: v.astype(dt) / dt(dp32), _targets(-1, M + 1),
                       -2 * dp, (M + 3) * dp, arith)
        xn, kn = _ties(lambda v: _npdiv_py(v, dn, arith), _targets(-(M + 3), 0),
                       -(M + 4) * dn, 2 * dn, arith)
        x = with_edges(np.concatenate([xp, xn]), [0.0, -0.17, 10.0], dt)

        def orc(x: F, dp: float = dp) -> tuple[I64, F]:
            qp, qn, v = off.ptq4vit_twin_gelu(_t(x, arith), dp, bits, _sdiv(arith))
            code = np.where(off.as_np(qn) < 0, off.as_np(qn), off.as_np(qp))
            return code.astype(np.int64), off.as_np(v)

        def make(dp: float = dp, mode: str = mode) -> Any:
            return TwinUniformQuantizer(bits, "gelu", delta_pos=dp, mode=mode, **_kw(arith))

        out.append(Case("twin-gelu", mode, arith, bits, f"dp={dp:.4g}", make, x, kp + kn, orc))
    return out


# ------------------------------------------------------------------------------ log


def _cr_log2_np(v: F, arith: str) -> F:
    return off.as_np(off.cr_log2(_t(v, arith)))


def _oracle_log2_np(v: F, arith: str) -> F:
    return off.as_np(ORACLE_LOG["log2"](_t(v, arith)))


def _log_cases(bits: int, arith: str) -> list[Case]:
    from refq.quant import Log2Quantizer

    out = []
    dt = _dt(arith)
    n = 2**bits
    configs = [("2", "extra", 1.0), ("sqrt2", "extra", 1.0), ("sqrt2", "extra", 0.37)]
    if arith == "float64":
        configs += [("2", "extra", 0.37), ("2", "reserve", 1.0), ("sqrt2", "none", 0.37),
                    ("2", "none", 1.0), ("sqrt2", "reserve", 1.0)]
    for base, zero, delta in configs:
        k = 1.0 if base == "2" else 2.0
        d32 = float(np.asarray(delta, dtype=dt))

        def fast(x: F, d32: float = d32, k: float = k) -> F:
            with np.errstate(divide="ignore"):
                return k * np.log2((x.astype(dt) / dt(d32)).astype(np.float64)).astype(dt)

        def exact(x: F, d32: float = d32, k: float = k) -> F:
            y = (x.astype(dt) / dt(d32)).astype(np.float64)
            return k * _cr_log2_np(y, arith)

        top = min(n + 1, int(1000 * k))
        tg = -_targets(-1, top, cap=600)[::-1]
        lo = max(delta * 2.0 ** (-(top + 2) / k), 1e-300 if dt is np.float64 else 1e-37)
        x, cnt = _ties(fast, tg, lo, 4 * delta, arith, exact=exact)
        x = with_edges(x, [0.0, delta, 2 * delta], dt)
        x = x[x >= 0]
        emax = n - 1 if zero != "reserve" else n - 2
        zcode = {"extra": n, "reserve": n - 1, "none": None}[zero]

        def documented(x: F, d32: float = d32, k: float = k, emax: int = emax,
                       zcode: int | None = zcode, delta: float = delta, base: str = base
                       ) -> tuple[I64, F]:
            y = (x.astype(dt) / dt(d32)).astype(np.float64)
            with np.errstate(invalid="ignore"):
                e = _rnd(-k * _oracle_log2_np(y, arith))
            e = np.where(x > 0, e, np.inf)
            c = np.clip(e, 0, emax)
            if zcode is not None:
                c = np.where(e > emax, zcode, c)
            c = c.astype(np.int64)
            q = np.minimum(c, emax).astype(dt)
            if base == "2":
                v = np.exp2(-q).astype(dt) * dt(d32)
            else:
                odd = ((c % 2).astype(dt) * dt(math.sqrt(2) - 1) + dt(1)).astype(dt)
                v = (np.exp2(-np.ceil(q / dt(2))).astype(dt) * odd).astype(dt) * dt(d32)
            if zcode is not None:
                v = np.where(c == zcode, 0.0, v)
            return c, np.asarray(v, dtype=np.float64)

        orc: Oracle = documented
        if zero == "extra" and base == "sqrt2":
            def orc(x: F, d32: float = d32) -> tuple[I64, F]:  # type: ignore[misc]
                q, mask, v = off.repq_log_sqrt2(_t(x, arith), torch.tensor(d32, dtype=_tdt(
                    arith)), bits, log2=ORACLE_LOG["log2"])
                code = np.where(off.as_np(mask) > 0, n, off.as_np(q))
                return code.astype(np.int64), off.as_np(v)
        elif zero == "extra" and base == "2" and delta == 1.0:
            def orc(x: F) -> tuple[I64, F]:  # type: ignore[misc]
                q, mask, v = off.fqvit_log2(_t(x, arith), bits, log2=ORACLE_LOG["log2"])
                code = np.where(off.as_np(mask) > 0, n, off.as_np(q))
                return code.astype(np.int64), off.as_np(v)

        def make(base: str = base, delta: float = delta, zero: str = zero) -> Any:
            return Log2Quantizer(bits, base, delta, zero, **_kw(arith))  # type: ignore[arg-type]

        fam = "log2" if base == "2" else "log-sqrt2"
        out.append(Case(fam, zero, arith, bits, f"delta={delta}", make, x, cnt, orc))
    return out


def _logk(t: F, arith: str, exact: bool) -> F:
    """I&S-ViT's logk in the arithmetic: ln(t)/ln(2) (CUDA: · fl32(1/fl32(ln 2)))."""
    dt = _dt(arith)
    if exact:
        ln = off.as_np(off.cr_log(_t(t, arith))).astype(dt)
    else:
        with np.errstate(divide="ignore", invalid="ignore"):
            ln = np.log(t.astype(np.float64)).astype(dt)
    l2 = dt(math.log(2))
    if arith == "float32_cuda":
        return ln * (np.float32(1) / l2)
    return ln / l2


def _sulq_cases(bits: int, arith: str) -> list[Case]:
    from refq.quant import ShiftUniformLog2Quantizer

    out = []
    dt = _dt(arith)
    for eta in (0.001, 0.01, 0.1, 1.0):
        e32 = float(np.asarray(eta, dtype=dt))
        y0 = float(_logk(np.array([e32]), arith, True)[0])
        y1 = float(_logk(np.array([float(np.asarray(1 + e32, dtype=dt))]), arith, True)[0])
        for mode in ("code", "paper"):
            for ymin, ymax in ((y0, y1), (y0 + 0.3, y1 - 0.1)):
                nlev = 2**bits if mode == "code" else 2**bits - 1
                dy = float(np.asarray(dt(ymax) - dt(ymin), dtype=dt))
                dlt = float(_npdiv_py(np.array(dy), nlev, arith))

                def pre(y: F, ymin: float = ymin, dlt: float = dlt) -> F:
                    return (y.astype(dt) - dt(ymin)) / dt(dlt)

                def fast(x: F, pre: Any = pre, e32: float = e32) -> F:
                    return pre(_logk((x.astype(dt) + dt(e32)).astype(dt), arith, False))

                def exact(x: F, pre: Any = pre, e32: float = e32) -> F:
                    return pre(_logk((x.astype(dt) + dt(e32)).astype(dt), arith, True))

                x, cnt = _ties(fast, _targets(-1, nlev), 0.0, 1.25, arith, exact=exact)
                x = with_edges(x, [0.0, 1.0], dt)

                def orc(x: F, ymin: float = ymin, ymax: float = ymax, mode: str = mode,
                        eta: float = eta) -> tuple[I64, F]:
                    tdt = _tdt(arith)
                    mn, mx = torch.tensor(ymin, dtype=tdt), torch.tensor(ymax, dtype=tdt)
                    if mode == "code":
                        q, v = off.ias_sulq_forward(_t(x, arith), eta, mn, mx, bits,
                                                    log=ORACLE_LOG["ln"], sdiv=_sdiv(arith))
                    else:
                        q, v, _, _ = off.ias_sulq_init(_t(x, arith), eta, bits,
                                                       log=ORACLE_LOG["ln"], sdiv=_sdiv(arith),
                                                       minv=mn, maxv=mx)
                    return off.as_np(q).astype(np.int64), off.as_np(v)

                def make(eta: float = eta, ymin: float = ymin, ymax: float = ymax,
                         mode: str = mode) -> Any:
                    return ShiftUniformLog2Quantizer(bits, eta, ymin, ymax, mode,  # type: ignore[arg-type]
                                                     **_kw(arith))

                out.append(Case("sulq", mode, arith, bits, f"eta={eta},y=[{ymin:.3f},{ymax:.3f}]",
                                make, x, cnt, orc))
    return out


# ------------------------------------------------------------------------- readings


def _v2sf_cases(bits: int) -> list[Case]:
    from refq.quant import ValueTwoScaleQuantizer

    out = []
    half = 2 ** (bits - 1)
    M = half - 1
    for s in (0.013, 0.1):
        for k in sorted({1, max(1, bits // 2), bits}):
            big = s * 2.0**k
            xa, na = _ties(lambda v, s=s: v / s, _targets(-1, M + 1), -2 * s, (M + 2) * s,
                           "float64")
            xb, nb = _ties(lambda v, big=big: v / big, _targets(-1, M + 1), 0.0, (M + 2) * big,
                           "float64")
            x = with_edges(np.concatenate([xa, xb]), [0.0, -1.0, (M + 0.5) * s], np.float64)
            lmin = max(1, half >> k)

            def orc(x: F, s: float = s, big: float = big, lmin: int = lmin) -> tuple[I64, F]:
                X = _rnd(x / s)
                small = np.maximum(X, 0)
                large = half + np.clip(_rnd(x / big), lmin, M)
                c = np.where(X <= M, small, large).astype(np.int64)
                v = np.where(c < half, c * s, (c - half) * big)
                return c, v

            def make(s: float = s, k: int = k) -> Any:
                return ValueTwoScaleQuantizer(s, bits, k)

            out.append(Case("v2sf", "reading", "float64", bits, f"s={s},k={k}", make, x,
                            na + nb, orc))
    return out


def _o2sf_cases(bits: int) -> list[Case]:
    from refq.quant import OutlierTwoScaleQuantizer

    base, k, flags, z = 0.021, 3, np.array([0, 1, 0]), min(2, 2**bits - 1)
    sc = base * np.exp2(k * flags.astype(np.float64))
    qmax = 2**bits - 1
    pts, total = [], 0
    for s in sc.tolist():
        x, n = _ties(lambda v, s=s: v / s, _targets(-z - 1, qmax - z), -(z + 4) * s,
                     (qmax + 4) * s, "float64")
        pts.append(x)
        total += n

    def make() -> Any:
        return OutlierTwoScaleQuantizer(base, bits, k, flags, z)

    return [Case("o2sf", "reading", "float64", bits, "k=3", make, _rows(pts, 3), total,
                 _uniform_oracle(sc, np.full(3, float(z)), 0, qmax, "half_even", False,
                                 "float64", -1), axis=-1)]


def _tan_cases(bits: int) -> list[Case]:
    from refq.quant import TanQuantizer

    out = []
    n = 2**bits
    for a, delta in ((0.8, 1.0), (1.4, 0.5)):
        q = np.arange(n, dtype=np.float64)
        yt = -1.0 + (2.0 * q[:-1] + 1.0) / (n - 1)
        thr = delta * ((np.arctan(yt * math.tan(a)) / a + 1.0) / 2.0)
        yl = -1.0 + 2.0 * q / (n - 1)
        lv = delta * ((np.arctan(yl * math.tan(a)) / a + 1.0) / 2.0)
        lv[0], lv[-1] = 0.0, delta
        x = with_edges(np.zeros(0), [*thr.tolist(), 0.0, delta], np.float64)

        def orc(x: F, thr: F = thr, lv: F = lv) -> tuple[I64, F]:
            c = np.searchsorted(thr, x, side="right").astype(np.int64)
            return c, lv[c]

        def make(a: float = a, delta: float = delta) -> Any:
            return TanQuantizer(bits, a, delta)

        out.append(Case("tan", "reading", "float64", bits, f"a={a}", make, x, thr.size, orc))
    return out


# ------------------------------------------------------------------------------ all

FAMILIES: dict[str, Callable[[int, str], list[Case]]] = {
    "uniform": _uniform_cases,
    "ptf": _ptf_cases,
    "twin-softmax": _twin_softmax_cases,
    "twin-gelu": _twin_gelu_cases,
    "log": _log_cases,
    "sulq": _sulq_cases,
    "v2sf": lambda b, a: _v2sf_cases(b) if a == "float64" else [],
    "o2sf": lambda b, a: _o2sf_cases(b) if a == "float64" else [],
    "tan": lambda b, a: _tan_cases(b) if a == "float64" else [],
}


def cases(family: str, bits: int, arith: str = "float64") -> list[Case]:
    return FAMILIES[family](bits, arith)


def run_case(case: Case, int_sample: int = 12) -> dict[str, Any]:
    """Counts of mismatching codes, values and integer-form codes (on up to ``int_sample``
    tie points) between refq and the oracle; ``error`` if refq refuses the case."""
    res: dict[str, Any] = {"ties": case.n_ties, "points": int(case.x.size), "codes": 0,
                           "values": 0, "int": 0, "error": None, "first": None}
    try:
        q = case.make()
    except TypeError:  # an option this refq does not have: its nearest float64 equivalent
        _LEGACY[0] = True
        try:
            q = case.make()
        except TypeError as e:
            res["error"] = f"n/a ({e})"
            return res
        finally:
            _LEGACY[0] = False
        res["legacy"] = True
    oc, ov = case.oracle(case.x)
    gc = q.quantize(case.x)
    gv = q.fake_quant(case.x)
    bad_c = gc != oc
    bad_v = ~((gv == ov) | (np.isnan(gv) & np.isnan(ov)))
    res["codes"] = int(bad_c.sum())
    res["values"] = int(bad_v.sum())
    if bad_c.any() or bad_v.any():
        i = int(np.flatnonzero((bad_c | bad_v).ravel())[0])
        res["first"] = (float(case.x.ravel()[i]), int(gc.ravel()[i]), int(oc.ravel()[i]),
                        float(gv.ravel()[i]), float(ov.ravel()[i]))
    flat = case.x.ravel()
    pts = flat[flat != 0]
    if pts.size and int_sample:
        pick = pts[np.linspace(0, pts.size - 1, min(int_sample, pts.size)).astype(int)]
        for p in pick.tolist():
            if case.x.ndim > 1:
                row = np.full((1, case.x.shape[1]), p)
            else:
                row = np.full(case.x.shape if case.grouped else (1,), p)
            exp = case.oracle(row)[0]
            xi = np.full(row.shape, 1 if p > 0 else -1, dtype=np.int64)
            got = q.quantize_int(xi, abs(p))
            res["int"] += int((got != exp).sum())
    return res


def assert_no_mismatch(family: str, bits_list: tuple[int, ...], arith: str,
                       keep: Callable[[Case], bool] | None = None) -> int:
    """Run every case of ``family`` at ``bits_list`` in ``arith`` and require 0 mismatches
    (codes, values, integer form); returns the number of ties tried (> 0)."""
    tried = 0
    for b in bits_list:
        for c in cases(family, b, arith):
            if keep is not None and not keep(c):
                continue
            r = run_case(c)
            assert r["error"] is None, (c.label, r["error"])
            assert (r["codes"], r["values"], r["int"]) == (0, 0, 0), (
                f"{c.family} {c.mode} {arith} {b} bits {c.label}: {r}")
            tried += r["ties"]
    assert tried > 0
    return tried


def torch_rules(device: str) -> list[tuple[str, str, off.SDiv]]:
    """(refq arith, torch device, division rule) pairs that must agree bit for bit: on a CPU
    the CPU semantics natively and the CUDA rule emulated; on a CUDA device the real thing."""
    rules: list[tuple[str, str, off.SDiv]] = [
        ("float64", "cpu", off.NATIVE),
        ("float32_cpu", "cpu", off.NATIVE),
        ("float32_cuda", "cpu", off.CUDA_RULE),
    ]
    if device.startswith("cuda"):
        rules.append(("float32_cuda", device, off.NATIVE))
    return rules
