"""``refq.calib.minmax`` is the min-max observer even after the submodule of the same name
(``refq.calib.minmax.minmax_spec``) is imported — import order must not change the name."""

from __future__ import annotations

import importlib
import subprocess
import sys


def test_importing_the_submodule_keeps_the_observer() -> None:
    code = ("import refq.calib, refq.calib.minmax\n"
            "from refq.calib import minmax\n"
            "from refq.calib.minmax import minmax_spec\n"
            "assert callable(minmax) and minmax.__module__ == 'refq.calib.observers', minmax\n"
            "assert minmax_spec.__module__ == 'refq.calib.minmax'\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert importlib.import_module("refq.calib").minmax.__name__ == "minmax"
