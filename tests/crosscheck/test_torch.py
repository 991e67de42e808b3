"""The torch backend (independent torch int64 kernels) conforms to refq bit-exactly on
generated (hypothesis) and golden cases for every kernel it claims."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:
    HAVE_TORCH = False

pytestmark = [
    pytest.mark.torch,
    pytest.mark.skipif(
        not HAVE_TORCH and os.environ.get("CI") != "true",
        reason="torch not installed (CI installs it)",
    ),
]

GOLDEN = Path(__file__).resolve().parents[2] / "golden"


def test_torch_kernels_conform_on_generated_and_golden_cases() -> None:
    from refq.crosscheck.adapters.torch_backend import SUPPORTED, TorchBackend
    from refq.crosscheck.testing import assert_conforms

    report = assert_conforms(TorchBackend(), ops=list(SUPPORTED), golden=GOLDEN, examples=25)
    counts = report.counts()
    assert counts["fail"] == counts["error"] == 0
    by_source = [e.source for e in report.entries if e.status == "pass"]
    assert by_source.count("hypothesis") == len(SUPPORTED)  # one entry per kernel (25 examples)
    assert by_source.count("golden") >= 22


def test_unsupported_kernel_is_not_claimed() -> None:
    from refq.crosscheck.adapters.torch_backend import TorchBackend
    from refq.golden.case import read_case

    b = TorchBackend()
    assert not b.supports(read_case(GOLDEN / "softmax.shiftmax.rows16x37"))
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
