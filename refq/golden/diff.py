"""Diff two golden sets (or two case folders) tensor by tensor."""

from __future__ import annotations

import os
from dataclasses import replace
from pathlib import Path

from refq.errors import GoldenError
from refq.files import require_folder
from refq.golden.case import read_case
from refq.golden.compare import TensorDiff, compare_tensor
from refq.golden.coverage import element_bins
from refq.golden.manifest import MANIFEST


def _case_folders(root: Path) -> dict[str, tuple[Path, Path]]:
    """The case folders of a golden set (its sub-folders holding a meta.json) or the case folder
    ``root`` itself (name → (folder, the folder its files must lie in)); GoldenError for
    anything else."""
    root = require_folder(root, GoldenError, "golden set or case folder")
    if os.path.lexists(root / "meta.json"):
        return {root.name: (root, root)}
    if not os.path.lexists(root / MANIFEST):
        raise GoldenError(f"{root}: neither a golden set (no {MANIFEST}) nor a case folder "
                          "(no meta.json)")
    return {p.name: (p, root) for p in sorted(root.iterdir())
            if p.is_dir() and not p.is_symlink() and os.path.lexists(p / "meta.json")}


def diff(a: Path, b: Path) -> dict[str, list[TensorDiff]]:
    """Per case, per tensor: equal or the first differing element and the mismatch count,
    with the coverage bins of that element in ``A`` (:func:`refq.golden.coverage.element_bins`:
    the bins of the kernel call that produced it, e.g. ``requantize.dyadic x·b / 2^c: tie-``).

    ``a`` and ``b`` are golden sets (folders with MANIFEST.json) or single case folders.
    """
    fa, fb = _case_folders(Path(a)), _case_folders(Path(b))
    if not fa or not fb:
        raise GoldenError(f"{a if not fa else b}: a golden set without cases")
    if len(fa) == 1 and len(fb) == 1 and not (Path(a) / MANIFEST).exists():
        fb = {next(iter(fa)): next(iter(fb.values()))}
    out: dict[str, list[TensorDiff]] = {}
    for name in sorted(set(fa) | set(fb)):
        if name not in fa or name not in fb:
            side = "A" if name in fa else "B"
            out[name] = [TensorDiff("*", False, f"case only in {side}")]
            continue
        ca, cb = read_case(*fa[name]), read_case(*fb[name])
        rows = []
        for t in sorted(set(ca.tensors) | set(cb.tensors)):
            if t not in ca.tensors or t not in cb.tensors:
                side = "A" if t in ca.tensors else "B"
                rows.append(TensorDiff(t, False, f"tensor only in {side}"))
                continue
            ta, tb = ca.tensors[t], cb.tensors[t]
            if ta.fmt != tb.fmt:
                rows.append(TensorDiff(t, False, f"format A {ta.fmt} != B {tb.fmt}"))
                continue
            row = compare_tensor(t, ta.values, tb.values, ta.fmt)
            if not row.equal and row.index is not None:
                row = replace(row, bins=tuple(element_bins(ca, t, row.index)))
            rows.append(row)
        out[name] = rows
    return out


__all__ = ["diff"]
