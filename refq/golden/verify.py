"""Verify a golden set: hashes first (naming any modified, missing or extra file), then each
case is re-computed from the registry and compared exactly, tensor by tensor."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from refq.errors import GoldenError
from refq.files import json_bytes, json_bytes_flat_arrays, read_bytes
from refq.golden.case import META_LIMIT, read_case
from refq.golden.compare import compare_tensor
from refq.golden.manifest import check_files, read_manifest
from refq.golden.registry import lookup


@dataclass
class CaseResult:
    name: str
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def verify(
    root: Path, progress: bool = True, cpu: dict[str, float] | None = None
) -> list[CaseResult]:
    """One result per case of the set (plus one named ``MANIFEST`` for stray files);
    CPU seconds of re-reading and re-computing each case into ``cpu`` if given."""
    root = Path(root)
    manifest = read_manifest(root)
    file_problems = check_files(root, manifest)
    results: list[CaseResult] = []
    stray = [p for p in file_problems if p.split("/", 1)[0] not in manifest["cases"]]
    if stray:
        results.append(CaseResult("MANIFEST", stray))
    for name in tqdm(sorted(manifest["cases"]), desc="verify", unit="case", disable=not progress):
        res = CaseResult(name, [p for p in file_problems if p.startswith(f"{name}/")])
        results.append(res)
        if res.problems:
            continue  # never trust a file whose hash does not match
        c0 = time.process_time()
        _compare_case(root, name, res)
        if cpu is not None:
            cpu[name] = time.process_time() - c0
    return results


def _compare_case(root: Path, name: str, res: CaseResult) -> None:
    """Re-compute case ``name`` and compare it with its stored files (problems into res)."""
    try:
        stored = read_case(root / name, root)
        fresh = lookup(name).make()
    except GoldenError as exc:
        res.problems.append(str(exc))
        return
    stored_meta = read_bytes(root / name / "meta.json", META_LIMIT, root, GoldenError)
    meta = fresh.full_meta()
    # canonical JSON with one-line number arrays; the fully indented form that refq wrote
    # before (the same JSON value) is accepted too
    if stored_meta not in (json_bytes_flat_arrays(meta), json_bytes(meta)):
        res.problems.append(f"{name}/meta.json: differs from the re-computed case")
    for tname in sorted(set(stored.tensors) | set(fresh.tensors)):
        if tname not in fresh.tensors or tname not in stored.tensors:
            res.problems.append(f"{name}/{tname}.npy: tensor present on one side only")
            continue
        d = compare_tensor(
            tname,
            stored.tensors[tname].values,
            fresh.tensors[tname].values,
            fresh.tensors[tname].fmt,
            ("stored", "recomputed"),
        )
        if not d.equal:
            res.problems.append(f"{name}/{tname}.npy: {d.detail}")


__all__ = ["CaseResult", "verify"]
