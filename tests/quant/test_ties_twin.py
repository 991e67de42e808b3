"""PTQ4ViT twin uniform quantizers against the official forwards on every constructed tie.

Oracles: the official forwards re-typed in torch (tests/quant/official.py) from
github.com/hahnyuan/PTQ4ViT @ b42c790c2811e7835d435a9f9a6c64a079a7483a —
quant_layers/matmul.py ``SoSPTQSLBatchingQuantMatMul.quant_input_A`` (post-softmax) and
quant_layers/linear.py ``PostGeluPTQSLBatchingQuantLinear.quant_input`` (post-GELU) — and,
for the paper's piecewise softmax form, refq's documented definition (tests/quant/tiecases.py).
Default suite: every tie at 4 bits in float64 and both float32 forms; ``-m slow``: 2..8 and
16 bits. Hypothesis: refq's float32 forms equal the torch float32 re-typing bit for bit.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.quant.tie_env import ARITHS, DEVICE, TORCH_MARKS, torch

pytestmark = TORCH_MARKS


def test_reported_tie_rounds_half_even() -> None:
    """fl(A·7) = 4.5 exactly at A = 0.6428571428571429: torch.round gives 4, so the official
    value is 4/7 + 7·(0.5/7) = 1.0714285714285714 (refq gave 1.2142857142857142)."""
    from refq.quant import TwinUniformQuantizer

    a = 0.6428571428571429
    assert a * 7 == 4.5
    q = TwinUniformQuantizer(4, "softmax", m=1, mode="code")
    assert q.fake_quant([a]).tolist() == [4 / 7 + 7 * (0.5 / 7)] == [1.0714285714285714]
    assert int(q.quantize([a])[0]) == 7 + 4 - q.q2s


@pytest.mark.parametrize("arith", ARITHS)
@pytest.mark.parametrize("family", ["twin-softmax", "twin-gelu"])
def test_every_tie_at_4_bits(family: str, arith: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert assert_no_mismatch(family, (4,), arith) > 50


@pytest.mark.slow
@pytest.mark.parametrize("arith", ARITHS)
@pytest.mark.parametrize("family", ["twin-softmax", "twin-gelu"])
def test_every_tie_2_to_8_and_16_bits(family: str, arith: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert_no_mismatch(family, (2, 3, 5, 6, 7, 8, 16), arith)


def test_cuda_and_cpu_rules_differ_on_ties() -> None:
    """Negative control: the float32 CPU form checked against the CUDA-rule oracle (and the
    float64 form against float32) mismatches, so the tie tests can see a wrong rule."""
    from tests.quant.tiecases import cases, run_case

    c = cases("twin-gelu", 4, "float32_cuda")[0]
    from refq.quant import TwinUniformQuantizer

    c.make = lambda: TwinUniformQuantizer(4, "gelu", delta_pos=0.0371, arith="float32_cpu")
    assert run_case(c)["codes"] > 0
    c = cases("twin-softmax", 7, "float32_cuda")[2]
    c.make = lambda: TwinUniformQuantizer(7, "softmax", m=2, arith="float32_cpu")
    assert run_case(c)["values"] > 0
    c = cases("twin-softmax", 4, "float64")[1]
    c.make = lambda: TwinUniformQuantizer(4, "softmax", m=1, arith="float32_cpu")
    assert run_case(c)["values"] > 0


f32 = st.floats(0.0, 1.0, width=32)


@settings(max_examples=30)
@given(bits=st.integers(2, 8), m=st.integers(0, 19), arith=st.sampled_from(ARITHS),
       x=st.lists(f32, min_size=1, max_size=40))
@example(bits=4, m=1, arith="float32_cpu", x=[0.6428571343421936, 0.7857142686843872, 0.5])
@example(bits=4, m=1, arith="float32_cuda", x=[0.9285714030265808, 0.9285714626312256])
@example(bits=4, m=1, arith="float32_cpu", x=[0.1071428582072258, 0.1071428656578064])
@example(bits=4, m=1, arith="float64", x=[0.6428571428571429, 0.6428571428571428])
def test_softmax_equals_torch_retyping(bits: int, m: int, arith: str, x: list[float]) -> None:
    from refq.quant import TwinUniformQuantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    for ar, dev, rule in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        xt = torch.tensor(x, dtype=dt, device=dev)
        qh, ql, v = off.ptq4vit_twin_softmax(xt, 2.0**-m, bits, rule)
        qhs, _, _ = off.ptq4vit_twin_softmax(torch.tensor([2.0**-m], dtype=dt, device=dev),
                                             2.0**-m, bits, rule)
        q = TwinUniformQuantizer(bits, "softmax", m=m, mode="code",
                                 arith=ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(v), strict=True)
        codes = (off.as_np(ql) + off.as_np(qh) - off.as_np(qhs)[0]).astype(np.int64)
        np.testing.assert_array_equal(q.quantize(x), codes, strict=True)


@settings(max_examples=30)
@given(bits=st.integers(2, 8), dp=st.floats(0.0009765625, 0.5, width=32),
       arith=st.sampled_from(ARITHS),
       x=st.lists(st.floats(-0.5, 12.0, width=32), min_size=1, max_size=40))
@example(bits=4, dp=0.0371, arith="float32_cuda",
         x=[-0.18059445917606354, -0.18059444427490234, -0.1593480408191681])
@example(bits=4, dp=0.0371, arith="float32_cpu",
         x=[-0.11685523390769958, -0.11685522645711899, 0.0])
def test_gelu_equals_torch_retyping(bits: int, dp: float, arith: str, x: list[float]) -> None:
    from refq.quant import TwinUniformQuantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    for ar, dev, rule in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        qp, qn, v = off.ptq4vit_twin_gelu(torch.tensor(x, dtype=dt, device=dev), dp, bits, rule)
        q = TwinUniformQuantizer(bits, "gelu", delta_pos=dp, arith=ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(v), strict=True)
        codes = np.where(off.as_np(qn) < 0, off.as_np(qn), off.as_np(qp)).astype(np.int64)
        np.testing.assert_array_equal(q.quantize(x), codes, strict=True)
