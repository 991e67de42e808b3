"""Known-disagreement files: CPU conditions as data, strict entries."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from refq.crosscheck.cpu import condition_holds, cpu_flags
from refq.crosscheck.known import for_engine, load_known
from refq.errors import BackendError


def _write(tmp_path: Path, entries: list[dict[str, object]]) -> Path:
    p = tmp_path / "known.json"
    p.write_text(json.dumps({"backend": "x", "disagreements": entries}))
    return p


def test_conditions_select_entries_by_cpu(tmp_path: Path) -> None:
    p = _write(tmp_path, [
        {"match": "a", "reason": "only without vnni", "reproducer": "t",
         "when": {"cpu_lacks": ["avx512_vnni", "avx_vnni"]}},
        {"match": "b", "reason": "only with avx2", "reproducer": "t",
         "when": {"cpu_has": ["avx2"]}},
        {"match": "c", "reason": "always", "reproducer": "t", "engines": ["ref"]},
    ])
    def names(flags: frozenset[str] | None) -> set[str]:
        return {k.match for k in load_known(p, cpu=flags)}

    assert names(frozenset({"avx2"})) == {"a", "b", "c"}
    assert names(frozenset({"avx2", "avx512_vnni"})) == {"b", "c"}
    assert names(frozenset({"avx_vnni"})) == {"c"}
    assert names(None) == {"a", "b", "c"}  # unknown CPU: nothing silently dropped
    assert {k.match for k in for_engine(load_known(p, cpu=None), "opt")} == {"a", "b"}


@pytest.mark.parametrize("entry", [
    {"match": "a", "reason": "r", "reproducer": "t", "when": {"cpu_maybe": ["x"]}},
    {"match": "a", "reason": "r", "reproducer": "t", "when": {"cpu_has": []}},
    {"match": "a", "reason": "r", "reproducer": "t", "when": ["avx2"]},
    {"match": "a", "reason": "r", "reproducer": "t", "typo": 1},
    {"match": "a", "reason": "r", "reproducer": "t", "engines": "ref"},
])
def test_malformed_entries_are_refused(tmp_path: Path, entry: dict[str, object]) -> None:
    with pytest.raises(BackendError):
        load_known(_write(tmp_path, [entry]))


def test_this_machine_has_readable_flags() -> None:
    flags = cpu_flags()
    assert flags is None or len(flags) > 0
    assert condition_holds({"cpu_has": ["no-such-flag"]}, frozenset()) is False
    assert condition_holds({}, frozenset()) is True


@pytest.mark.parametrize("name", ["litert.json", "torch-native.json", "onnxruntime.json"])
def test_committed_known_files_are_well_formed(name: str) -> None:
    path = Path(__file__).resolve().parents[2] / "refq" / "crosscheck" / "known" / name
    entries = load_known(path, cpu=None)
    assert entries and all(k.reproducer for k in entries)
