"""An AST scan that finds floating-point code in the integer path.

The numeric contract (DESIGN.md §4) says the integer path never touches a float. This scan
flags, per module: float literals, true division ``/``, any name or attribute mentioning
``float``, and libm-style functions (exp, log, sqrt, round, rint, frexp, erf, tanh, ...)
reached through ``np``/``numpy``/``math``. ``math.isqrt``/``math.gcd`` (integer functions) are
allowed. Exemptions are explicit ``(module, function)`` pairs, each with its reason.
"""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1] / "refq"

_LIBM = {
    "exp", "exp2", "expm1", "log", "log2", "log10", "log1p", "sqrt", "cbrt", "pow", "power",
    "round", "around", "rint", "fix", "frexp", "ldexp", "erf", "erfc", "tanh", "tan", "sin",
    "cos", "floor_divide_float", "true_divide", "divide", "reciprocal", "mean", "std", "var",
    "hypot", "modf", "fmod", "nextafter", "spacing", "float_power", "isnan", "isinf",
    "isfinite", "nan", "inf", "pi", "e", "trunc", "ceil", "floor",
}
_INT_MATH = {"isqrt", "gcd", "lcm", "comb", "perm", "factorial", "prod"}
_MODULES = {"np", "numpy", "math"}


def _findings(tree: ast.AST) -> list[tuple[int, str, str]]:
    """(line, enclosing function, what) for every float use in ``tree``."""
    out: list[tuple[int, str, str]] = []

    def visit(node: ast.AST, func: str) -> None:
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            func = node.name
        if isinstance(node, ast.Constant) and isinstance(node.value, (float, complex)):
            out.append((node.lineno, func, f"float literal {node.value!r}"))
        elif isinstance(node, ast.BinOp) and isinstance(node.op, ast.Div):
            out.append((node.lineno, func, "true division '/'"))
        elif isinstance(node, ast.AugAssign) and isinstance(node.op, ast.Div):
            out.append((node.lineno, func, "true division '/='"))
        elif isinstance(node, ast.Name) and "float" in node.id.lower():
            out.append((node.lineno, func, f"name {node.id!r}"))
        elif isinstance(node, ast.Attribute):
            if "float" in node.attr.lower():
                out.append((node.lineno, func, f"attribute {node.attr!r}"))
            elif (
                isinstance(node.value, ast.Name)
                and node.value.id in _MODULES
                and node.attr in _LIBM
                and node.attr not in _INT_MATH
            ):
                out.append((node.lineno, func, f"{node.value.id}.{node.attr}"))
        elif isinstance(node, ast.ImportFrom) and node.module in ("math", "fractions", "decimal"):
            names = {a.name for a in node.names} - _INT_MATH
            if names:
                out.append((node.lineno, func, f"from {node.module} import {sorted(names)}"))
        elif isinstance(node, ast.Import):
            for alias in node.names:
                if alias.name in ("fractions", "decimal"):
                    out.append((node.lineno, func, f"import {alias.name}"))
        for child in ast.iter_child_nodes(node):
            visit(child, func)

    visit(tree, "<module>")
    return out


def scan(
    package: str, exempt: dict[tuple[str, str], str] | None = None
) -> list[str]:
    """Float uses in every module of ``refq/<package>``, minus exempt (file, function) pairs.

    ``exempt`` maps ``("file.py", "function")`` — or ``("file.py", "*")`` for a whole file —
    to the reason it may use floats. Returns ``"path:line (function): what"`` strings.
    """
    exempt = exempt or {}
    found: list[str] = []
    base = ROOT / package
    files = sorted(base.rglob("*.py")) if base.is_dir() else [base.with_suffix(".py")]
    for path in files:
        rel = path.relative_to(base).as_posix() if base.is_dir() else path.name
        tree = ast.parse(path.read_text(), filename=str(path))
        for line, func, what in _findings(tree):
            if (rel, "*") in exempt or (rel, func) in exempt:
                continue
            found.append(f"{path.relative_to(ROOT.parent)}:{line} ({func}): {what}")
    return found
