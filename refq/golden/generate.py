"""Generate a golden set: every selected case into its folder, then MANIFEST.json — all
inside a temporary folder renamed into place at the end."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from refq.files.atomic import atomic_folder
from refq.golden.case import write_case
from refq.golden.manifest import write_manifest
from refq.golden.registry import select


def generate(
    out: Path, only: str | None = None, force: bool = False, progress: bool = True
) -> dict[str, float]:
    """Write the cases matching ``only`` (all if None) into ``out``.

    Returns seconds spent per case. ``out`` must not exist unless ``force``; an interrupted
    run leaves any previous ``out`` untouched.
    """
    entries = select(only)
    timings: dict[str, float] = {}
    with atomic_folder(Path(out), force=force) as tmp:
        for entry in tqdm(entries, desc="golden", unit="case", disable=not progress):
            t0 = time.perf_counter()
            write_case(entry.make(), tmp / entry.name)
            timings[entry.name] = time.perf_counter() - t0
        write_manifest(tmp, {e.name: e.kind for e in entries})
    return timings


__all__ = ["generate"]
