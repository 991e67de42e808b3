"""The tosa extra (tosa-tools, iree-base-compiler, iree-base-runtime) for tests: locally a
missing package skips the module; under CI=true (which installs every extra) it fails."""

from __future__ import annotations

import importlib.util
import os

import pytest

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")


def require(*modules: str) -> None:
    missing = [m for m in modules if importlib.util.find_spec(m) is None]
    if not missing:
        return
    if CI:
        raise RuntimeError(f"CI=true: the tosa extra must be installed (missing {missing})")
    pytest.skip(f"tosa extra not installed (missing {missing})", allow_module_level=True)
