"""The worked ties of docs/reference/rounding.md are what refq computes.

The expected values are the page's hand-written table cells, not refq's output: a wrong
rounding in refq or a wrong cell on the page fails here.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.intmath import multiply_by_quantized_multiplier, round_shift
from refq.intmath.rounding import ROUNDINGS

PAGE = Path(__file__).resolve().parents[2] / "docs" / "reference" / "rounding.md"


def _tables() -> list[list[list[str]]]:
    """Every Markdown table of the page: rows of cells (header and rule rows included)."""
    tables: list[list[list[str]]] = []
    current: list[list[str]] = []
    for line in PAGE.read_text(encoding="utf-8").splitlines():
        if line.startswith("|"):
            current.append([c.strip().strip("`") for c in line.strip("|").split("|")])
        elif current:
            tables.append(current)
            current = []
    if current:
        tables.append(current)
    return tables


def _int(cell: str) -> int:
    return int(cell.replace("−", "-"))


def _table(first_headers: list[str]) -> tuple[list[str], list[list[str]]]:
    for t in _tables():
        if t[0][: len(first_headers)] == first_headers:
            return t[0], t[2:]
    raise AssertionError(f"{PAGE.name}: no table starting {first_headers}")


def test_worked_ties_of_the_six_roundings() -> None:
    header, rows = _table(["x", "s", "exact"])
    assert header[3:] == list(ROUNDINGS) or sorted(header[3:]) == sorted(ROUNDINGS)
    assert len(rows) >= 6
    for row in rows:
        x, s = _int(row[0]), _int(row[1])
        for name, cell in zip(header[3:], row[3:], strict=True):
            got = int(round_shift(np.array([x]), s, name)[0])  # type: ignore[arg-type]
            assert got == _int(cell), f"round_shift({x}, {s}, {name}) = {got}, page says {cell}"


@pytest.mark.parametrize("scheme", ["double", "single"])
def test_worked_ties_of_the_tflite_schemes(scheme: str) -> None:
    header, rows = _table(["x", "exact x·m"])
    col = header.index(scheme)
    for row in rows:
        x = _int(row[0])
        got = int(multiply_by_quantized_multiplier(np.array([x]), 1 << 30, -1, scheme)[0])
        assert got == _int(row[col]), f"{scheme}: x={x} gives {got}, page says {row[col]}"
