"""refq/ops is float-free: an AST scan of every module."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

OPS = Path(__file__).resolve().parents[2] / "refq" / "ops"
BANNED = ("float", "frexp", "exp", "log", "sqrt")
BANNED_CALLS = {"round", "rint", "around"}
# Integer kernels named after what they compute, defined in refq/ops itself.
ALLOWED_LOCAL = {
    "exp_on_negative_values", "i_exp", "shift_exp", "_shift_exp_sat", "_exp_quarter",
    "ilog2", "isqrt", "ivit_sqrt", "exp2_table",
}


def _violations(src: str) -> list[str]:
    bad = []
    for node in ast.walk(ast.parse(src)):
        if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
            bad.append(f"float constant {node.value!r} line {node.lineno}")
        if isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            bad.append(f"true division line {node.lineno}")
        if isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div):
            bad.append(f"true division line {node.lineno}")
        if isinstance(node, ast.Attribute):
            base = node.value.id if isinstance(node.value, ast.Name) else ""
            low = node.attr.lower()
            if base in ("np", "math", "numpy") and (
                any(b in low for b in BANNED) or low in BANNED_CALLS
            ):
                bad.append(f"{base}.{node.attr} line {node.lineno}")
            if "float" in low:
                bad.append(f"attribute {node.attr} line {node.lineno}")
        if isinstance(node, ast.Name) and "float" in node.id.lower():
            bad.append(f"name {node.id} line {node.lineno}")
        if isinstance(node, ast.Name) and node.id == "round":
            bad.append(f"builtin round line {node.lineno}")
        if isinstance(node, (ast.Import, ast.ImportFrom)):
            mod = getattr(node, "module", None) or ""
            names = [a.name for a in node.names]
            if mod in ("math", "fractions", "decimal") or any(
                n in ("math", "fractions", "decimal") for n in names
            ):
                bad.append(f"import of {mod or names} line {node.lineno}")
    return bad


@pytest.mark.parametrize("path", sorted(OPS.glob("*.py")), ids=lambda p: p.name)
def test_ops_module_is_float_free(path: Path) -> None:
    assert _violations(path.read_text()) == []


def test_scanner_can_fail() -> None:
    assert _violations("import numpy as np\nx = np.exp(1.5) / 2\ny = np.round(x)\n")
