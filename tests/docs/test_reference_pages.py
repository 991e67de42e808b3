"""The generated reference pages (docs/reference/kernels, movement, cli.md) are current, and
every kernel variant and every movement op has one."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

import refq.ops  # noqa: F401  (registers every built-in variant)
from refq.ops import registry
from refq.program import movement

ROOT = Path(__file__).resolve().parents[2]


def _tool() -> ModuleType:
    spec = importlib.util.spec_from_file_location("docs_reference",
                                                  ROOT / "tools" / "docs_reference.py")
    assert spec is not None and spec.loader is not None
    mod = importlib.util.module_from_spec(spec)
    sys.modules["docs_reference"] = mod
    spec.loader.exec_module(mod)
    return mod


def test_committed_reference_pages_are_current() -> None:
    tool = _tool()
    bad = tool.stale(tool.pages())
    assert not bad, f"stale reference pages (run: python tools/docs_reference.py): {bad}"


def test_every_variant_and_movement_op_has_a_page() -> None:
    for v in registry.variants():
        if v.builtin:
            assert (ROOT / "docs/reference/kernels" / f"{v.key}.md").is_file(), v.key
    for name, fn in movement.MOVEMENT.items():
        assert (ROOT / "docs/reference/movement" / f"{name}.md").is_file(), name
        assert (fn.__doc__ or "").strip(), f"movement op {name!r} has no docstring"


def test_the_check_catches_a_stale_page(tmp_path: Path) -> None:
    """Negative control: an edited page is reported."""
    tool = _tool()
    want = tool.pages()
    page = next(p for p in want if p.name == "softmax.refq.md")
    edited = {**want, page: want[page] + "an edit\n"}
    assert tool.stale(edited) == [str(page.relative_to(ROOT))]
