"""FQ-ViT's log-int softmax codes (refq.ops.softmax_lis) on their exact ties.

The official ``QIntSoftmax.forward`` with ``log_i_softmax`` (models/ptq/layers.py,
megvii-research/FQ-ViT @ 5daf5915c715dc21d6afcd64e661652030e640ab) rounds twice:
``softmax_out = round(Σexp / exp)`` (torch.round: half to even) and ``log_round``:
k = ⌊log2 v⌋, plus 1 where v - 2^k ≥ 2^(k-1); then clamp to 2^b - 1, k ≥ 2^b → 0.
The ties are rows whose ratio Σexp/exp is exactly j + ½, and rounded ratios exactly on
log_round's edge 3·2^(k-1) (and one below). The oracle below is written from that
description with exact ``Fraction`` arithmetic on the i-exp values of each row (i-exp is
the kernel's first stage, checked elsewhere; these rows test the two roundings).
"""

from __future__ import annotations

from fractions import Fraction

import numpy as np
import pytest

from refq.intmath import IntFormat
from refq.ops import softmax_lis
from refq.ops.softmax_ibert import i_exp
from refq.params.softmax import lis_params


def _oracle(e: list[int], bits: int) -> list[int]:
    total = sum(e)
    out = []
    for ei in e:
        if ei == 0:
            out.append(2**bits)
            continue
        fr = Fraction(total, ei)
        f = fr.numerator // fr.denominator
        d = fr - f
        v = f + (1 if d > Fraction(1, 2) or (d == Fraction(1, 2) and f % 2) else 0)
        k = v.bit_length() - 1  # floor(log2 v), v >= 1
        if v - 2**k >= Fraction(2**k, 2):
            k += 1
        out.append(2**bits if k >= 2**bits else min(k, 2**bits - 1))
    return out


def _tie_rows(p: object, mmax: int = 1500) -> tuple[list[list[int]], int, int]:
    """Rows [0, d, ..., d] (m copies of d): element 0's ratio is 1 + m·a/b with
    a/b = exp(d)/exp(0) reduced, so m = b/2 (b even) makes it an exact tie j + ½, and m near
    (v - 1)·b/a puts its rounded ratio on log_round's edge v = 3·2^(k-1) or one below."""
    ds = np.arange(-300, 0, dtype=np.int64)
    e = i_exp(np.stack([np.zeros_like(ds), ds], axis=1), p, "test")  # type: ignore[arg-type]
    rows, ties, edges = [], 0, 0
    for d, e0, ed in zip(ds.tolist(), e[:, 0].tolist(), e[:, 1].tolist(), strict=True):
        if ed == 0:
            continue
        g = Fraction(ed, e0)
        if g.denominator % 2 == 0 and g.denominator // 2 <= mmax:
            rows.append([0] + [d] * (g.denominator // 2))
            ties += 1
        for k in range(1, 7):
            for v in (3 * 2 ** (k - 1), 3 * 2 ** (k - 1) - 1):
                m = round((v - 1) / g)
                if 1 <= m <= mmax and round(1 + m * g) == v:
                    rows.append([0] + [d] * m)
                    edges += 1
    return rows, ties, edges


def _rows_at_five_halves(p: object) -> list[list[int]]:
    """Rows [0, d1 ×m1, d2 ×m2] whose element 0 has ratio exactly 5/2: the tie whose
    rounding direction changes the code (2 -> k = 1, 3 -> k = 2 on log_round's edge)."""
    ds = np.arange(-300, 0, dtype=np.int64)
    e = i_exp(np.stack([np.zeros_like(ds), ds], axis=1), p, "test")  # type: ignore[arg-type]
    e0 = int(e[0, 0])
    first: dict[int, int] = {}
    for d, v in zip(ds.tolist(), e[:, 1].tolist(), strict=True):
        if v > 0:
            first.setdefault(v, d)
    need = Fraction(3, 2) * e0  # Σ_i m_i·e_i over the other elements
    rows = []
    for v1, d1 in first.items():
        for m1 in range(1, 6):
            for m2 in range(1, 6):
                v2 = (need - m1 * v1) / m2
                if v2 > 0 and v2.denominator == 1 and int(v2) in first:
                    rows.append([0] + [d1] * m1 + [first[int(v2)]] * m2)
    return rows


def check_lis(bits: int, scale: float = 0.05, every: bool = False) -> tuple[int, int, int]:
    """All (``every``) or ~150 of the tie and edge rows, and every 5/2 row; returns the
    numbers of tie rows, edge rows and 5/2 rows."""
    p = lis_params(scale, in_format=IntFormat(16, True), bits=bits)
    rows, ties, edges = _tie_rows(p)
    assert ties > 20 and edges > 20
    for row in rows[:: 1 if every else max(1, len(rows) // 150)]:
        x = np.array([row], dtype=np.int64)
        got = softmax_lis(x, p)[0].tolist()
        e = i_exp(x, p, "test")[0].tolist()
        assert got == _oracle(e, bits), (row, got, e)
    five = _rows_at_five_halves(p)
    assert len(five) > 5
    for row in five:
        x = np.array([row], dtype=np.int64)
        e = i_exp(x, p, "test")[0].tolist()
        assert Fraction(sum(e), e[0]) == Fraction(5, 2)
        got = softmax_lis(x, p)[0].tolist()
        assert got[0] == 1 == _oracle(e, bits)[0]  # half to even: 5/2 -> 2 -> k = 1
        assert got == _oracle(e, bits)
    return ties, edges, len(five)


def test_lis_codes_on_ties_and_log_round_edges() -> None:
    check_lis(4)


@pytest.mark.slow
@pytest.mark.parametrize("bits", [2, 3, 4, 5, 6, 7, 8])
def test_lis_every_tie_row(bits: int) -> None:
    for scale in (0.05, 0.1):
        check_lis(bits, scale, every=True)
