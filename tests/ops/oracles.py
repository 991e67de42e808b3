"""Independent scalar oracles of the refq.ops kernels: plain Python ints and loops, written
from METHODS.md §3 and the public sources' definitions; they never import refq."""

from __future__ import annotations

I32_MIN, I32_MAX = -(2**31), 2**31 - 1


def fdiv(a: int, b: int) -> int:
    return a // b


def tdiv(a: int, b: int) -> int:
    q = abs(a) // abs(b)
    return q if (a >= 0) == (b >= 0) else -q


def rshift_round(x: int, s: int, mode: str) -> int:
    if s == 0:
        return x
    fl, rem = x >> s, x & ((1 << s) - 1)
    half = 1 << (s - 1)
    if mode == "floor":
        return fl
    if mode == "half_up":
        return fl + (rem >= half)
    if mode == "half_even":
        return fl + (rem > half or (rem == half and fl % 2 == 1))
    if mode == "half_away":
        return fl + (rem > half or (rem == half and x >= 0))
    raise ValueError(mode)


def div_round(a: int, b: int, mode: str) -> int:
    if b < 0:
        a, b = -a, -b
    fl, rem = divmod(a, b)
    if mode == "floor":
        return fl
    if mode == "half_up":
        return fl + (2 * rem >= b)
    if mode == "half_even":
        return fl + (2 * rem > b or (2 * rem == b and fl % 2 == 1))
    raise ValueError(mode)


# ---- gemmlowp ---------------------------------------------------------------------------
def srdhm(a: int, b: int) -> int:
    if a == b == I32_MIN:
        return I32_MAX
    ab = a * b
    nudge = (1 << 30) if ab >= 0 else 1 - (1 << 30)
    return tdiv(ab + nudge, 1 << 31)


def rdbpot(x: int, e: int) -> int:
    mask = (1 << e) - 1
    rem = x & mask
    thr = (mask >> 1) + (1 if x < 0 else 0)
    return (x >> e) + (1 if rem > thr else 0)


def sat_shl(x: int, e: int) -> int:
    return max(I32_MIN, min(I32_MAX, x * (1 << e)))


def requant(x: int, family: str, m: int, s: int, rounding: str, zi: int, zo: int,
            lo: int, hi: int) -> int:
    x -= zi
    if family == "double":
        y = rdbpot(srdhm(x * (1 << max(s, 0)), m), max(-s, 0))
    elif family == "single":
        y = (x * m + (1 << (30 - s))) >> (31 - s)
    else:
        y = rshift_round(x * m, s, rounding)
    return max(lo, min(hi, y + zo))


# ---- TFLite softmax -----------------------------------------------------------------------
def _exp_quarter(a: int) -> int:
    x = a + (1 << 28)
    x2 = srdhm(x, x)
    x3 = srdhm(x2, x)
    x4 = srdhm(x2, x2)
    p = rdbpot(srdhm(rdbpot(x4, 2) + x3, 715827883) + x2, 1)
    return 1895147668 + srdhm(1895147668, x + p)


def exp_neg(a: int) -> int:
    amod = (a & ((1 << 24) - 1)) - (1 << 24)
    r = _exp_quarter(sat_shl(amod, 5))
    rem = amod - a
    for e, m in ((-2, 1672461947), (-1, 1302514674), (0, 790015084), (1, 290630308),
                 (2, 39332535), (3, 720401), (4, 242)):
        if rem & (1 << (26 + e)):
            r = srdhm(r, m)
    return I32_MAX if a == 0 else r


def recip(a: int) -> int:
    s = a + I32_MAX
    hd = tdiv(s + (1 if s >= 0 else -1), 2)
    x = 1515870810 + srdhm(hd, -1010580540)
    for _ in range(3):
        x = x + sat_shl(srdhm(x, (1 << 29) - srdhm(hd, x)), 2)
    return sat_shl(x, 1)


def softmax_tflite(row: list[int], mult: int, shift: int, diff_min: int, zo: int = -128,
                   lo: int = -128, hi: int = 127) -> list[int]:
    mx = max(row)
    total = 0
    for v in row:
        d = v - mx
        if d >= diff_min:
            total += rdbpot(exp_neg(srdhm(d * (1 << shift), mult)), 12)
    head = 32 - total.bit_length()
    r = recip((total << head) - (1 << 31))
    out = []
    for v in row:
        d = v - mx
        if d >= diff_min:
            o = rdbpot(srdhm(r, exp_neg(srdhm(d * (1 << shift), mult))), 12 - head + 23) + zo
            out.append(max(lo, min(hi, o)))
        else:
            out.append(lo)
    return out


# ---- I-BERT i-exp, softmax, LIS ----------------------------------------------------------
def i_exp(d: int, x0: int, b: int, c: int, n: int) -> int:
    d = max(d, n * x0)
    q = fdiv(d, x0)
    r = d - x0 * q
    return max(((r + b) * r + c) * 2 ** (n - q), 0)


def softmax_ibert(row: list[int], x0: int, b: int, c: int, n: int, em: int, es: int,
                  ob: int) -> list[int]:
    mx = max(row)
    e16 = [max(-(2**15), min(2**15 - 1, rshift_round(i_exp(v - mx, x0, b, c, n) * em, es,
                                                       "half_even"))) for v in row]
    f = 2**32 // sum(e16)
    return [min((e * f) >> (32 - ob), 2**ob - 1) for e in e16]


def softmax_lis(row: list[int], x0: int, b: int, c: int, n: int, bits: int) -> list[int]:
    mx = max(row)
    es = [i_exp(v - mx, x0, b, c, n) for v in row]
    tot = sum(es)
    out = []
    for e in es:
        if e == 0:
            out.append(2**bits)
            continue
        ratio = div_round(tot, e, "half_even")
        k = ratio.bit_length() - 1
        if k > 0 and ratio - 2**k >= 2 ** (k - 1):
            k += 1
        out.append(2**bits if k >= 2**bits else k)
    return out


# ---- I-ViT shift-exp ---------------------------------------------------------------------
def shift_exp(d: int, x0: int, n: int, deploy: bool) -> int:
    d = d + fdiv(d, 2) - fdiv(d, 16)
    d = max(d, n * x0)
    q = fdiv(d, x0)
    r = d - x0 * q
    if deploy:
        return max(((r >> 1) - x0) * 2 ** (n - q), 0)
    # ⌊(r/2 - x0)·2^(n-q)⌋ with r/2 exact
    return max(fdiv((r - 2 * x0) * 2 ** (n - q), 2), 0)


def softmax_shift(row: list[int], x0: int, n: int, ob: int, deploy: bool) -> list[int]:
    mx = max(row)
    es = [shift_exp(v - mx, x0, n, deploy) for v in row]
    tot = min(sum(es), I32_MAX)
    f = I32_MAX // tot
    return [fdiv(e * f, 2 ** (32 - ob)) for e in es]


# ---- refq softmax ------------------------------------------------------------------------
def softmax_refq(row: list[int], m: int, c: int, table: list[int], ob: int) -> list[int]:
    L = len(table).bit_length() - 1
    mx = max(row)
    es = []
    for v in row:
        u = rshift_round((mx - v) * m, c - L, "half_up")
        k, j = u >> L, u & ((1 << L) - 1)
        es.append(rshift_round(table[j], min(k, 20), "half_up"))
    tot = sum(es)
    return [div_round(e * (2**ob - 1), tot, "half_up") for e in es]


# ---- GELU --------------------------------------------------------------------------------
def gelu_ibert(q: int, b: int, c: int, shift: int, n: int = 14) -> int:
    sgn = (q > 0) - (q < 0)
    a = min(abs(q), -b)
    y = sgn * ((a + b) ** 2 + c)
    y = fdiv(y, 2**n)
    return q * (y + shift)


def _shift_exp_any(d: int, x0: int, n: int) -> int:
    d = d + fdiv(d, 2) - fdiv(d, 16)
    d = max(d, n * x0)
    q = fdiv(d, x0)
    r = d - x0 * q
    return min(fdiv((r - 2 * x0) * 2 ** (n - q), 2), I32_MAX)


def gelu_shift(row: list[int], x0: int, n: int, ob: int) -> list[int]:
    mx = max(row)
    e2 = _shift_exp_any(-mx, x0, n)
    out = []
    for v in row:
        e1 = _shift_exp_any(v - mx, x0, n)
        f = I32_MAX // min(e1 + e2, I32_MAX)
        out.append(v * fdiv(e1 * f, 2 ** (32 - ob)))
    return out


# ---- LayerNorm ---------------------------------------------------------------------------
def isqrt_floor(v: int) -> int:
    if v == 0:
        return 0
    x = 1 << ((v.bit_length() + 1) // 2)
    while True:
        y = (x + v // x) // 2
        if y >= x:
            return x
        x = y


def _align(row: list[int], zp: int, shifts: list[int]) -> list[int]:
    return [(v - zp) << shifts[i if len(shifts) > 1 else 0] for i, v in enumerate(row)]


def _bias(bias: list[int], i: int) -> int:
    return bias[i if len(bias) > 1 else 0]


def layernorm(row: list[int], variant: str, zp: int, shifts: list[int], bias: list[int],
              var_shift: int = 0, frac: int = 15) -> list[int]:
    a = _align(row, zp, shifts)
    C = len(a)
    if variant == "refq":
        y = [C * v - sum(a) for v in a]
        var = sum(t * t for t in y)
        k = max(0, (62 - var.bit_length()) // 2) if var else 31
        s = max(isqrt_floor(var * 4**k), 1)
        return [div_round(t * 2 ** (frac + k), s, "half_even") + _bias(bias, i)
                for i, t in enumerate(y)]
    mean = div_round(sum(a), C, "half_even")
    y = [v - mean for v in a]
    if variant == "ibert":
        var = sum((t >> var_shift) ** 2 for t in y)
        std = max(isqrt_floor(var) * 2**var_shift, 1)
        f = 2**31 // std
    else:
        var = sum(t * t for t in y)
        k = 2**16
        for _ in range(10):
            k = (k + var // k) // 2
        f = (2**31 - 1) // k
    return [fdiv(t * f, 2) + _bias(bias, i) for i, t in enumerate(y)]
