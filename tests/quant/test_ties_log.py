"""Log quantizers (log2 / log√2) and SULQ against the official forwards on every
constructed tie, and the correctly rounded logarithms they use.

Oracles (tests/quant/official.py, torch re-typings; logarithms correctly rounded with
mpmath, because torch's are within 1 ulp, not exact):
- RepQ-ViT classification/quant/quantizer.py ``LogSqrt2Quantizer.quantize``
  (zkkli/RepQ-ViT @ a160561b9233945e6680132f129d13041b787318),
- FQ-ViT models/ptq/quantizer/log2.py ``Log2Quantizer.quant``/``dequantize``
  (megvii-research/FQ-ViT @ 5daf5915c715dc21d6afcd64e661652030e640ab),
- I&S-ViT quant/quantizer.py ``LogSqrt2Quantizer.forward`` (mode "code") and ``quantize``
  (mode "paper", the init) with ``logk`` = ln(x)/ln(2) (zysxmu/IaS-ViT @
  9300cea8db6292d9d3d6727321c7f1100360e191);
the zero modes "reserve"/"none" and base 2 with Δ ≠ 1 against refq's documented definition.
Default suite: 4 bits; ``-m slow``: 2..8 (and 16 for SULQ) bits.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.quant.tie_env import ARITHS, DEVICE, TORCH_MARKS, mpmath, torch

pytestmark = TORCH_MARKS


@pytest.mark.parametrize("arith", ARITHS)
@pytest.mark.parametrize("family", ["log", "sulq"])
def test_every_tie_at_4_bits(family: str, arith: str) -> None:
    """Default suite: every log case; SULQ for η = 0.01 and 1 (all four η under -m slow)."""
    from tests.quant.tiecases import assert_no_mismatch

    def keep(c: object) -> bool:
        lab = getattr(c, "label", "")
        return family != "sulq" or lab.startswith(("eta=0.01,", "eta=1.0,"))

    assert assert_no_mismatch(family, (4,), arith, keep) > 50


@pytest.mark.slow
@pytest.mark.parametrize("arith", ARITHS)
@pytest.mark.parametrize("family", ["log", "sulq"])
def test_every_tie_2_to_8_bits(family: str, arith: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert_no_mismatch(family, (2, 3, 5, 6, 7, 8, 16), arith)
    if family == "sulq":
        assert_no_mismatch(family, (4,), arith)


def _mp(v: float, base2: bool, bits: int) -> float:
    with mpmath.workprec(200):
        r = mpmath.log(mpmath.mpf(v), 2) if base2 else mpmath.log(mpmath.mpf(v))
    with mpmath.workprec(bits):
        return float(+r)


@settings(max_examples=30)
@given(x=st.lists(st.floats(1e-30, 1e6), min_size=1, max_size=30),
       kind=st.sampled_from(["log2", "ln"]), is32=st.booleans())
@example(x=[2.0**-7.5, math.sqrt(0.5), 1.0, 0.5, 3.0], kind="log2", is32=False)
def test_log_cr_is_correctly_rounded(x: list[float], kind: str, is32: bool) -> None:
    from refq.quant.arith import log_cr

    xa = np.array(x, dtype=np.float32 if is32 else np.float64).astype(np.float64)
    got = log_cr(xa, kind, is32)  # type: ignore[arg-type]
    exp = [_mp(v, kind == "log2", 24 if is32 else 53) for v in xa.tolist()]
    np.testing.assert_array_equal(got, np.array(exp), strict=True)


def test_log_cr_special_values() -> None:
    from refq.quant.arith import log_cr

    r = log_cr([0.0, -1.0, 1.0, 0.25, math.inf], "log2", False)
    assert r[0] == -math.inf and math.isnan(r[1]) and r[2] == 0.0 and r[3] == -2.0
    assert r[4] == math.inf


def test_apply_log_decides_where_numpy_is_not_correctly_rounded() -> None:
    """Inputs where NumPy's log2 is off by one ulp near a decision boundary: the exponent
    rounding must follow the correctly rounded value (control: NumPy's gives another)."""
    from refq.quant.arith import apply_log, log_cr, round_real

    rng = np.random.default_rng(5)
    x = np.exp(rng.uniform(-20, 0, 200000))
    sus = x[np.log2(x) != log_cr(x, "log2", False)]
    assert sus.size > 0  # NumPy's log2 is not correctly rounded everywhere
    cr = np.array([_mp(v, True, 53) for v in sus.tolist()])
    assert bool((np.log2(sus) != cr).all())  # confirmed by mpmath
    np.testing.assert_array_equal(log_cr(sus, "log2", False), cr, strict=True)
    # post = identity: every element decided exactly (the window is always ambiguous)
    np.testing.assert_array_equal(apply_log(sus, "log2", lambda r: r, False), cr, strict=True)
    # a boundary placed at each such value: the decision follows the exact log
    post = lambda r: round_real(r * 0.0 + (r >= cr), "half_even")  # noqa: E731
    np.testing.assert_array_equal(apply_log(sus, "log2", post, False), np.ones(sus.size),
                                  strict=True)


@settings(max_examples=30)
@given(bits=st.integers(2, 8), delta=st.floats(0.0625, 2.0, width=32),
       arith=st.sampled_from(ARITHS),
       x=st.lists(st.floats(0.0, 2.0, width=32), min_size=1, max_size=25))
@example(bits=4, delta=1.0, arith="float32_cpu", x=[0.70710676908493042, 0.7071067690849304])
def test_log_sqrt2_equals_repq(bits: int, delta: float, arith: str, x: list[float]) -> None:
    from refq.quant import Log2Quantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    for ar, dev, _ in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        qc, mask, v = off.repq_log_sqrt2(torch.tensor(x, dtype=dt, device=dev),
                                         torch.tensor(delta, dtype=dt, device=dev), bits,
                                         log2=off.cr_log2)
        q = Log2Quantizer(bits, "sqrt2", delta, "extra", arith=ar)  # type: ignore[arg-type]
        codes = np.where(off.as_np(mask) > 0, 2**bits, off.as_np(qc)).astype(np.int64)
        np.testing.assert_array_equal(q.quantize(x), codes, strict=True)
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(v), strict=True)
        f2, m2, v2 = off.fqvit_log2(torch.tensor(x, dtype=dt, device=dev), bits,
                                    log2=off.cr_log2)
        q2 = Log2Quantizer(bits, "2", 1.0, "extra", arith=ar)  # type: ignore[arg-type]
        c2 = np.where(off.as_np(m2) > 0, 2**bits, off.as_np(f2)).astype(np.int64)
        np.testing.assert_array_equal(q2.quantize(x), c2, strict=True)
        np.testing.assert_array_equal(q2.fake_quant(x), off.as_np(v2), strict=True)


ETAS = [0.001, 0.005, 0.01, 0.02, 0.03, 0.04, 0.05, 0.1, 0.2, 0.5, 1.0]


@settings(max_examples=30)
@given(bits=st.integers(2, 8), eta=st.sampled_from(ETAS), arith=st.sampled_from(ARITHS),
       mode=st.sampled_from(["code", "paper"]),
       x=st.lists(st.floats(0.0, 1.0, width=32), min_size=2, max_size=25))
def test_sulq_from_data_and_forward_equal_ias(bits: int, eta: float, arith: str, mode: str,
                                              x: list[float]) -> None:
    """The calibration extremes (official ``quantize`` init: max/min of logk(x + η)) and
    then the official forward (code) or the init's own quantization (paper)."""
    from refq.quant import ShiftUniformLog2Quantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    for ar, dev, rule in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        xt = torch.tensor(x, dtype=dt, device=dev)
        pc, pv, minv, maxv = off.ias_sulq_init(xt, eta, bits, log=off.cr_log, sdiv=rule)
        if float(maxv) <= float(minv):
            continue
        q = ShiftUniformLog2Quantizer.from_data(x, bits, eta, mode, arith=ar)  # type: ignore[arg-type]
        assert (q.y_min, q.y_max) == (float(minv), float(maxv))
        if mode == "code":
            pc, pv = off.ias_sulq_forward(xt, eta, minv, maxv, bits, log=off.cr_log, sdiv=rule)
        np.testing.assert_array_equal(q.quantize(x), off.as_np(pc).astype(np.int64),
                                      strict=True)
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(pv), strict=True)


def test_sulq_log_domain_is_ias_logk() -> None:
    from refq.quant import ShiftUniformLog2Quantizer
    from tests.quant import official as off

    rng = np.random.default_rng(3)
    x = (rng.random(3000) ** 6).astype(np.float32).astype(np.float64)
    for ar, rule in (("float32_cpu", None), ("float32_cuda", "cuda"), ("float64", None)):
        dt = torch.float64 if ar == "float64" else torch.float32
        t = torch.tensor(x, dtype=dt) + torch.tensor(0.01, dtype=dt)
        srule = off._tensor_rule(off.CUDA_RULE) if rule else None
        y = off.as_np(off.ias_logk(t, off.cr_log, srule))
        got = ShiftUniformLog2Quantizer.log_domain(x, 0.01, ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(got, y, strict=True)
    # the float32 forms differ from float64 (the test can fail)
    assert not np.array_equal(ShiftUniformLog2Quantizer.log_domain(x, 0.01, "float32_cpu"),
                              ShiftUniformLog2Quantizer.log_domain(x, 0.01))
