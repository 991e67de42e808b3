"""The committed golden/ set is exactly what this refq generates, byte for byte."""

from __future__ import annotations

from pathlib import Path

from refq.golden import generate, verify
from refq.golden.manifest import read_manifest

COMMITTED = Path(__file__).resolve().parents[2] / "golden"


def files(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def test_committed_set_regenerates_byte_identically(tmp_path: Path) -> None:
    out = tmp_path / "golden"
    generate(out, progress=False)
    want, got = files(COMMITTED), files(out)
    assert sorted(got) == sorted(want), (
        "case list changed: run `refq golden generate --out golden --force`"
    )
    changed = [name for name in want if want[name] != got[name]]
    assert not changed, f"regenerated files differ: {changed[:10]}"


def test_committed_set_verifies() -> None:
    assert all(r.ok for r in verify(COMMITTED, progress=False))


def test_committed_set_is_small() -> None:
    total = sum(len(b) for b in files(COMMITTED).values())
    assert total <= 22 * 2**20
    assert read_manifest(COMMITTED)["cases"]
