"""Shared switch of the tests that run a re-typed official calibration in torch: skipped
locally without torch, a failure in CI (``CI=true`` installs every extra)."""

from __future__ import annotations

import os

import pytest

try:
    import torch  # noqa: F401

    HAVE_TORCH = True
except ImportError:  # pragma: no cover - torch is in the all extra
    HAVE_TORCH = False

needs_torch = pytest.mark.skipif(not HAVE_TORCH and os.environ.get("CI") != "true",
                                 reason="torch not installed (CI installs it)")
"""Use together with ``pytest.mark.torch``: ``pytestmark = [pytest.mark.torch, needs_torch]``
or both as decorators."""
