"""What the tie tests share: torch and mpmath (their oracles), the skip rule, the device and
the arithmetics compared. Without torch or mpmath the tests skip locally and fail in CI
(``CI=true``), which installs both."""

from __future__ import annotations

import os
from typing import Any

import pytest

torch: Any
mpmath: Any
try:
    import mpmath
    import torch

    HAVE_TORCH = True
except ImportError:
    torch = mpmath = None
    HAVE_TORCH = False

TORCH_MARKS = [
    pytest.mark.torch,
    pytest.mark.skipif(not HAVE_TORCH and os.environ.get("CI") != "true",
                       reason="torch/mpmath not installed (CI installs them)"),
]
DEVICE = os.environ.get("REFQ_TORCH_DEVICE", "cpu")  # tools/gpu_check.sh sets "cuda"
ARITHS = ["float64", "float32_cpu", "float32_cuda"]
