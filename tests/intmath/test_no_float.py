"""refq.intmath uses no floats outside its two documented exceptions."""

from __future__ import annotations

import ast
import textwrap

from tests.float_scan import _findings, scan

INTMATH_EXEMPT = {
    ("from_real.py", "*"): "the real → integer parameter boundary; exact via Fraction",
    ("gemm.py", "_blas_exact"): "chooses the proven-exact BLAS path (module docstring)",
    ("gemm.py", "_chunked"): "the proven-exact float BLAS fast path (module docstring)",
    ("gemm_blocks.py", "blas_dtype"): "picks the proven-exact float dtype (proof inside)",
}


def test_intmath_is_float_free() -> None:
    assert scan("intmath", INTMATH_EXEMPT) == []


def test_scan_catches_float_code() -> None:
    """Negative control: each kind of float use is reported."""
    src = textwrap.dedent(
        """
        import numpy as np
        from math import sqrt
        def f(x):
            y = x / 2
            z = np.round(x) + 0.5
            w = x.astype(np.float32)
            return float(y) + np.exp(z) + sqrt(w)
        """
    )
    whats = [w for _, _, w in _findings(ast.parse(src))]
    assert any("true division" in w for w in whats)
    assert any("np.round" in w for w in whats)
    assert any("float literal" in w for w in whats)
    assert any("float32" in w for w in whats)
    assert any("'float'" in w for w in whats)
    assert any("np.exp" in w for w in whats)
    assert any("from math import" in w for w in whats)


def test_exemptions_are_needed() -> None:
    """Each exemption covers real float code (so a stale one is noticed)."""
    assert scan("intmath") != []
    for key in INTMATH_EXEMPT:
        others = {k: v for k, v in INTMATH_EXEMPT.items() if k != key}
        assert scan("intmath", others) != [], f"exemption {key} is unused"
