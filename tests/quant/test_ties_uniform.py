"""Uniform quantizers (UniformQuantizer, FQ-ViT's PTF, TSPTQ-ViT's O-2SF reading) against
the official forwards on every constructed tie.

Oracles (tests/quant/tiecases.py, tests/quant/official.py): the exact ``Fraction`` rounding
of the float quotient for every named rounding (round(x/s) + z, the order of ONNX, I&S-ViT
and RepQ-ViT), and the torch re-typings of
- PTQ4ViT quant_layers/linear.py ``PTQSLQuantLinear.quant_weight_bias`` (hahnyuan/PTQ4ViT @
  b42c790c2811e7835d435a9f9a6c64a079a7483a),
- I&S-ViT quant/quantizer.py ``UniformQuantizer.forward`` (zysxmu/IaS-ViT @
  9300cea8db6292d9d3d6727321c7f1100360e191; RepQ-ViT's is the same),
- FQ-ViT models/ptq/quantizer/uniform.py ``UniformQuantizer.quant``/``dequantize``
  (megvii-research/FQ-ViT @ 5daf5915c715dc21d6afcd64e661652030e640ab): the zero point added
  BEFORE rounding (refq: ``zp_in_round=True``, PTF ``mode="code"``).
Default suite: 4 bits in float64 and both float32 forms; ``-m slow``: 2..8 and 16 bits.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from tests.quant.tie_env import ARITHS, DEVICE, TORCH_MARKS, torch

pytestmark = TORCH_MARKS


@pytest.mark.parametrize("arith", ARITHS)
@pytest.mark.parametrize("family", ["uniform", "ptf"])
def test_every_tie_at_4_bits(family: str, arith: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert assert_no_mismatch(family, (4,), arith) > 50


def test_o2sf_ties_at_4_bits() -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert assert_no_mismatch("o2sf", (4,), "float64") > 20


@pytest.mark.slow
@pytest.mark.parametrize("arith", ARITHS)
@pytest.mark.parametrize("family", ["uniform", "ptf", "o2sf"])
def test_every_tie_2_to_8_and_16_bits(family: str, arith: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    if family == "o2sf" and arith != "float64":
        pytest.skip("O-2SF has no official code (refq's reading, float64)")
    assert_no_mismatch(family, (2, 3, 5, 6, 7, 8, 16), arith)


def test_zero_point_order_matters_on_ties() -> None:
    """x/s = 0.5 with z = 1: round(0.5) + 1 = 1, round(1.5) = 2 (FQ-ViT). And the PTF paper
    mode checked against the FQ-ViT oracle mismatches (negative control)."""
    from refq.quant import PowerOfTwoFactorQuantizer, UniformQuantizer
    from tests.quant.tiecases import cases, run_case

    assert UniformQuantizer(0.25, 4, 1, signed=False).quantize([0.125]).tolist() == [1]
    assert UniformQuantizer(0.25, 4, 1, signed=False, zp_in_round=True).quantize(
        [0.125]).tolist() == [2]
    c = next(c for c in cases("ptf", 4, "float64") if c.mode == "code")
    c.make = lambda: PowerOfTwoFactorQuantizer(0.05 / 8, 4, np.array([0, 1, 2, 3]), 3)
    assert run_case(c)["codes"] > 0


f32 = st.floats(-8.0, 8.0, width=32)


@settings(max_examples=30)
@given(bits=st.integers(2, 8), s=st.floats(0.0009765625, 1.0, width=32),
       z=st.integers(0, 255), arith=st.sampled_from(ARITHS),
       x=st.lists(f32, min_size=1, max_size=40))
@example(bits=4, s=0.25, z=1, arith="float32_cpu", x=[0.125, 0.375, -0.125])
def test_ias_and_fqvit_forwards_equal_torch(bits: int, s: float, z: int, arith: str,
                                            x: list[float]) -> None:
    from refq.quant import UniformQuantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    z = min(z, 2**bits - 1)
    for ar, dev, _ in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        xt = torch.tensor(x, dtype=dt, device=dev)
        st_, zt = torch.tensor(s, dtype=dt, device=dev), torch.tensor(float(z), dtype=dt,
                                                                       device=dev)
        qc, qv = off.ias_uniform(xt, st_, zt, bits)
        q = UniformQuantizer(s, bits, z, signed=False, arith=ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(q.quantize(x), off.as_np(qc).astype(np.int64), strict=True)
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(qv), strict=True)
        fc, fv = off.fqvit_uniform(xt, st_, zt, 0, 2**bits - 1)
        qf = UniformQuantizer(s, bits, z, signed=False, zp_in_round=True, arith=ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(qf.quantize(x), off.as_np(fc).astype(np.int64),
                                      strict=True)
        np.testing.assert_array_equal(qf.fake_quant(x), off.as_np(fv), strict=True)


@settings(max_examples=30)
@given(bits=st.integers(2, 8), s=st.floats(0.0009765625, 1.0, width=32),
       arith=st.sampled_from(ARITHS), x=st.lists(f32, min_size=1, max_size=40))
def test_ptq4vit_base_quantizer_equals_torch(bits: int, s: float, arith: str,
                                             x: list[float]) -> None:
    from refq.quant import UniformQuantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    for ar, dev, _ in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        qc, qv = off.ptq4vit_uniform(torch.tensor(x, dtype=dt, device=dev),
                                     torch.tensor(s, dtype=dt, device=dev), bits)
        q = UniformQuantizer(s, bits, 0, signed=True, arith=ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(q.quantize(x), off.as_np(qc).astype(np.int64), strict=True)
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(qv), strict=True)


@settings(max_examples=30)
@given(bits=st.integers(2, 8), s8=st.floats(0.0078125, 0.5, width=32),
       z=st.integers(0, 255), arith=st.sampled_from(ARITHS),
       alpha=st.lists(st.integers(0, 3), min_size=4, max_size=4),
       x=st.lists(st.lists(f32, min_size=4, max_size=4), min_size=1, max_size=10))
def test_ptf_code_mode_equals_fqvit(bits: int, s8: float, z: int, arith: str,
                                    alpha: list[int], x: list[list[float]]) -> None:
    """FQ-ViT's PTF scale is scale1·2^α with scale1 = scale8/8 (all float32 tensors)."""
    from refq.quant import PowerOfTwoFactorQuantizer
    from tests.quant import official as off
    from tests.quant.tiecases import torch_rules

    z = min(z, 2**bits - 1)
    for ar, dev, _ in torch_rules(DEVICE):
        if ar != arith:
            continue
        dt = torch.float64 if ar == "float64" else torch.float32
        scale1 = torch.tensor(s8, dtype=dt, device=dev) / 2 / 2 / 2
        scale = scale1 * torch.tensor([2.0**a for a in alpha], dtype=dt, device=dev)
        qc, qv = off.fqvit_uniform(torch.tensor(x, dtype=dt, device=dev), scale.reshape(1, -1),
                                   torch.tensor(float(z), dtype=dt, device=dev), 0, 2**bits - 1)
        q = PowerOfTwoFactorQuantizer(s8 / 8, bits, np.array(alpha), z, mode="code",
                                      arith=ar)  # type: ignore[arg-type]
        np.testing.assert_array_equal(q.quantize(x), off.as_np(qc).astype(np.int64), strict=True)
        np.testing.assert_array_equal(q.fake_quant(x), off.as_np(qv), strict=True)
