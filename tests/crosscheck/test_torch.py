"""The torch backend (independent torch int64 kernels) conforms to refq bit-exactly on
generated (hypothesis) and golden cases for every kernel it claims."""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from ..torch_oracle import needs_torch
from .torch_programs import DEVICE

pytestmark = [pytest.mark.torch, needs_torch]

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def test_torch_kernels_conform_on_generated_and_golden_cases() -> None:
    from refq.crosscheck.adapters.torch_backend import SUPPORTED, TorchBackend
    from refq.crosscheck.testing import assert_conforms

    report = assert_conforms(TorchBackend(DEVICE), ops=list(SUPPORTED), golden=GOLDEN,
                             examples=25)
    counts = report.counts()
    assert counts["fail"] == counts["error"] == 0
    by_source = [e.source for e in report.entries if e.status == "pass"]
    assert by_source.count("hypothesis") == len(SUPPORTED)  # one entry per kernel (25 examples)
    assert by_source.count("golden") >= 28
    ran = {e.key for e in report.entries if e.status == "pass"}
    assert {"layernorm.refq", "gelu.lut"} <= ran
    # the variants of the ibert, ivit and tflite kernel profiles, each by hypothesis and golden
    profiles = {"softmax.ibert", "gelu.ibert", "layernorm.ibert", "softmax.shiftmax",
                "gelu.shiftgelu", "layernorm.ivit", "softmax.tflite", "requantize.double"}
    assert profiles <= ran and profiles <= set(SUPPORTED)
    per = report.by_variant()
    assert all(per[k].get("pass", 0) >= 2 for k in profiles), per


def test_torch_runs_every_committed_program_and_block_case() -> None:
    """Program and block golden cases run in torch op by op (run_program_torch on the stored
    program) and agree on every output; a flipped output element is reported."""
    import json

    from refq.crosscheck.adapters.torch_backend import TorchBackend
    from refq.crosscheck.suite import run_case, run_suite
    from refq.golden.case import read_case

    names = sorted(n for n in json.loads((GOLDEN / "MANIFEST.json").read_text())["cases"]
                   if n.startswith(("program.", "block.")))
    assert len(names) >= 20
    backend = TorchBackend(DEVICE)
    report = run_suite(backend, ops=["program.*", "block.*"], golden=GOLDEN, generated=False)
    passed = sorted(e.key for e in report.entries if e.status == "pass")
    skipped = sorted(e.key for e in report.entries if e.status == "skip")
    assert skipped == ["program.hls4ml.dense.k16n8"]  # requantize.ap_fixed: no torch kernel
    assert passed == [n for n in names if n not in skipped]

    case = read_case(GOLDEN / "block.deit_digits.ias.w4a4.encoder")
    out = next(t for t in case.tensors.values() if t.role == "output")
    out.values.flat[0] += 1
    mismatches, error = run_case(backend, case)
    assert not error and mismatches and mismatches[0].count == 1


def test_broadcast_matmul_path_conforms() -> None:
    """The CUDA-safe exact matmul (broadcast multiply-and-sum), forced on CPU."""
    from refq.crosscheck.adapters.torch_backend import TorchBackend
    from refq.crosscheck.testing import assert_conforms

    ops = ["linear.gemm", "matmul.gemm"]
    report = assert_conforms(TorchBackend(DEVICE, matmul="broadcast"), ops=ops, golden=GOLDEN,
                             examples=25)
    assert report.counts()["pass"] >= 4 and report.counts()["fail"] == 0


def test_isqrt_is_exact_floor_sqrt() -> None:
    """The torch digit-by-digit isqrt against Python's math.isqrt (independent oracle) on
    edges (perfect squares ±1, 2^62, 2^63 - 1, the largest square below 2^63) and random
    values over the whole int64 range."""
    import math

    import numpy as np
    import torch

    from refq.crosscheck.adapters.torch_backend import TorchBackend

    edges = [0, 1, 2, 3, 4, 15, 16, 17, 2**62 - 1, 2**62, 2**63 - 1]
    for r in (2**31 - 1, 2**31, 3037000499):
        edges += [r * r - 1, r * r, r * r + 1]
    rng = np.random.default_rng(7)
    vals = edges + [int(v) for v in rng.integers(0, 2**63 - 1, 3000, dtype=np.int64)]
    vals += [int(v) for v in rng.integers(0, 2**24, 3000)]
    b = TorchBackend(DEVICE)
    got = b.isqrt(torch.tensor(vals, dtype=torch.int64, device=b.device)).tolist()
    assert got == [math.isqrt(v) for v in vals]


def test_unsupported_kernel_is_not_claimed() -> None:
    from refq.crosscheck.adapters.torch_backend import TorchBackend
    from refq.golden.case import read_case

    b = TorchBackend()
    assert not b.supports(read_case(GOLDEN / "requantize.fp32.int32_uint8.acc-above-2p24"))
    assert b.supports(read_case(GOLDEN / "softmax.lis.rows16x37"))
    assert b.supports(read_case(GOLDEN / "softmax.shiftmax.rows16x37"))
    assert b.supports(read_case(GOLDEN / "layernorm.ibert.int8.c48"))
    assert b.supports(read_case(GOLDEN / "layernorm.refq.ptf.c48"))
    assert b.supports(read_case(GOLDEN / "gelu.lut.int8.exhaustive"))
    assert b.supports(read_case(GOLDEN / "requantize.tflite_double.int32_int8.m0p5_s0"))


def test_cuda_backend_errors_without_cuda() -> None:
    import torch

    from refq.crosscheck.adapters.torch_backend import cuda_backend
    from refq.errors import BackendError

    if torch.cuda.is_available():
        assert cuda_backend().device == "cuda"
    else:
        with pytest.raises(BackendError):
            cuda_backend()


ROUNDINGS = ["half_even", "half_away", "half_up", "floor", "ceil", "trunc"]


@given(x=st.integers(-(2**63), 2**63 - 1), s=st.integers(0, 63),
       rounding=st.sampled_from(ROUNDINGS))
@example(x=2**30, s=31, rounding="half_away")  # found by a hunt: the tie went toward zero
@example(x=0, s=63, rounding="half_even")  # found by a hunt: 2^63 overflowed int64
@example(x=-(2**62), s=63, rounding="half_away")  # -1/2: away from zero → -1
@example(x=2**62, s=63, rounding="half_even")  # +1/2 → 0
@example(x=-(2**63), s=63, rounding="ceil")  # -1 exactly
@example(x=2**63 - 1, s=63, rounding="half_up")
@example(x=-5, s=1, rounding="half_away")
@example(x=5, s=0, rounding="half_up")
def test_round_shift_matches_the_fraction_oracle(x: int, s: int, rounding: str) -> None:
    """The torch adapter's x / 2^s with each named rounding, against exact Fractions, over
    the whole int64 range and every shift 0..63."""
    import torch

    from refq.crosscheck.adapters.torch_backend import TorchBackend
    from tests.intmath.oracle import round_rational

    backend = TorchBackend(DEVICE)
    got = backend._round_shift(torch.tensor([x], dtype=torch.int64, device=backend.device), s,
                               rounding)
    assert int(got[0]) == round_rational(x, 2**s, rounding)
