"""Tests of an optional extra: skipped locally when it is missing, a failure in CI (``CI``
set to 1/true/yes: CI installs every extra, so a missing backend must not pass silently)."""

from __future__ import annotations

import importlib.util
import os
import shutil
from collections.abc import Sequence

import pytest

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require_extra(extra: str, modules: Sequence[str], programs: Sequence[str] = ()) -> None:
    """Call at the top of a test module (before importing the extra): skips the module
    unless every Python module in ``modules`` is importable and every program in
    ``programs`` is on PATH; with CI set, raises RuntimeError naming what is missing."""
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    missing += [p for p in programs if shutil.which(p) is None]
    if not missing:
        return
    if CI:
        raise RuntimeError(f"CI=true: the {extra} extra must be installed (missing: "
                           f"{', '.join(missing)})")
    pytest.skip(f"{extra} extra not installed (missing: {', '.join(missing)})",
                allow_module_level=True)
