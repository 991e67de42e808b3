"""Generate a golden set: every selected case into its folder, then MANIFEST.json — all
inside a temporary folder renamed into place at the end."""

from __future__ import annotations

import time
from pathlib import Path

from tqdm import tqdm

from refq.files.atomic import atomic_folder
from refq.golden.case import write_case_files
from refq.golden.manifest import MANIFEST, UNLISTED, write_manifest
from refq.golden.registry import select


def generate(
    out: Path,
    only: str | None = None,
    force: bool = False,
    progress: bool = True,
    cpu: dict[str, float] | None = None,
    include_extended: bool = False,
) -> dict[str, float]:
    """Write the cases matching ``only`` into ``out``: the comma-separated globs match over
    every registered case (committed or extended); without ``only``, the committed set —
    what ``golden/`` holds — plus the extended cases if ``include_extended``.

    Returns wall seconds spent per case (CPU seconds of this process into ``cpu`` if
    given). ``out`` must not exist unless ``force``; an interrupted
    run leaves any previous ``out`` untouched. A replaced set's README.md is carried over.
    """
    entries = select(only, include_extended)
    timings: dict[str, float] = {}
    with atomic_folder(Path(out), force=force) as tmp:
        for entry in tqdm(entries, desc="golden", unit="case", disable=not progress):
            t0, c0 = time.perf_counter(), time.process_time()
            (tmp / entry.name).mkdir()
            write_case_files(entry.make(), tmp / entry.name)
            timings[entry.name] = time.perf_counter() - t0
            if cpu is not None:
                cpu[entry.name] = time.process_time() - c0
        write_manifest(tmp, {e.name: e.kind for e in entries})
        keep_human_files(Path(out), tmp)
    return timings


def keep_human_files(old: Path, new: Path) -> list[str]:
    """Copy the files of ``old`` that are written by people, not by generate (the
    top-level README.md: outside the manifest), into the new set ``new``."""
    kept = []
    for name in sorted(UNLISTED - {MANIFEST}):
        src = old / name
        if src.is_file() and not (new / name).exists():
            (new / name).write_bytes(src.read_bytes())
            kept.append(name)
    return kept


__all__ = ["generate"]
