"""Generation is atomic and reproducible; verification catches every tampering."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from refq.errors import GoldenError, OutputError
from refq.files import json_bytes
from refq.files.npy import npy_bytes
from refq.golden import diff, generate, verify
from refq.golden.case import read_case
from refq.golden.manifest import MANIFEST, read_manifest, sha256

ONLY = "requantize.*"


def tree_bytes(root: Path) -> dict[str, bytes]:
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


@pytest.fixture(scope="module")
def golden_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("g") / "set"
    generate(out, ONLY, progress=False)
    return out


def test_generate_is_reproducible(golden_set: Path, tmp_path: Path) -> None:
    generate(tmp_path / "again", ONLY, progress=False)
    assert tree_bytes(tmp_path / "again") == tree_bytes(golden_set)


def test_fresh_set_verifies(golden_set: Path) -> None:
    results = verify(golden_set, progress=False)
    assert results and all(r.ok for r in results), [r.problems for r in results if not r.ok]


def test_flipping_any_byte_fails_naming_the_file(
    golden_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """``refq golden verify`` (the CLI entry point, in-process: one interpreter start per
    flipped file made this test the slowest of the suite) exits non-zero naming the file."""
    from refq.cli import main

    files = sorted(
        p.relative_to(golden_set).as_posix() for p in golden_set.rglob("*") if p.is_file()
    )
    rng = np.random.default_rng(0)
    # every meta.json and MANIFEST.json, and a sample of tensors, at random offsets
    chosen = [f for f in files if not f.endswith(".npy")]
    chosen += list(rng.choice([f for f in files if f.endswith(".npy")], 8, replace=False))
    for rel in chosen:
        work = tmp_path / rel.replace("/", "_")
        shutil.copytree(golden_set, work)
        path = work / rel
        raw = bytearray(path.read_bytes())
        pos = int(rng.integers(0, len(raw)))
        raw[pos] ^= 0x01
        path.write_bytes(bytes(raw))
        capsys.readouterr()
        status = main(["golden", "verify", str(work), "--quiet"])
        assert status != 0, rel
        out = capsys.readouterr()
        text = out.out + out.err
        if rel == MANIFEST:
            assert MANIFEST in text, text
        else:
            assert rel in text, (rel, text)


def test_semantic_tampering_with_rehashed_manifest_is_caught(
    golden_set: Path, tmp_path: Path
) -> None:
    """A forger who also fixes the manifest is still caught by re-computation."""
    work = tmp_path / "w"
    subprocess.run(["cp", "-r", str(golden_set), str(work)], check=True)
    case_dir = next(p for p in sorted(work.iterdir()) if (p / "acc.npy").is_file())
    y = read_case(case_dir).tensors["y"].values.copy()
    y[-1] = y[-1] + 1 if y[-1] < 127 else y[-1] - 1
    (case_dir / "y.npy").write_bytes(npy_bytes(y))
    m = read_manifest(work)
    m["files"][f"{case_dir.name}/y.npy"] = sha256(case_dir / "y.npy")
    (work / MANIFEST).write_bytes(json_bytes(m))
    bad = [r for r in verify(work, progress=False) if not r.ok]
    assert len(bad) == 1 and "re-computed" not in bad[0].problems[0]
    assert "differ" in bad[0].problems[0] and "y.npy" in bad[0].problems[0]


def test_missing_and_extra_files_are_named(golden_set: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    subprocess.run(["cp", "-r", str(golden_set), str(work)], check=True)
    case_dir = next(p for p in sorted(work.iterdir()) if (p / "acc.npy").is_file())
    (case_dir / "acc.npy").unlink()
    (case_dir / "extra.txt").write_text("x")
    problems = [p for r in verify(work, progress=False) for p in r.problems]
    assert any("acc.npy" in p and "missing" in p for p in problems)
    assert any("extra.txt" in p and "not listed" in p for p in problems)


def test_existing_output_needs_force(golden_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    generate(out, "requantize.dyadic.*", progress=False)
    with pytest.raises(OutputError, match="--force"):
        generate(out, ONLY, progress=False)
    generate(out, ONLY, force=True, progress=False)
    assert tree_bytes(out) == tree_bytes(golden_set)


KILLER = """
import os, signal, sys
from pathlib import Path
from refq.golden import registry, generate
registry.cases()

@registry.register("zzz.kill", "kernel", 0)
def build(seed):
    os.kill(os.getpid(), signal.SIGKILL)

generate(Path(sys.argv[1]), "requantize.*,zzz.*", force=True, progress=False)
"""


def test_killed_generate_leaves_previous_folder_intact(golden_set: Path, tmp_path: Path) -> None:
    out = tmp_path / "o"
    generate(out, ONLY, progress=False)
    before = tree_bytes(out)
    proc = subprocess.run([sys.executable, "-c", KILLER, str(out)], capture_output=True)
    assert proc.returncode == -9  # killed mid-way, after the other cases were written
    assert tree_bytes(out) == before
    leftovers = [p.name for p in tmp_path.iterdir() if p.name != "o"]
    assert any(".refq-tmp-" in n for n in leftovers)  # and the killed writer's lock
    assert all(n.startswith(".o.refq-") for n in leftovers)
    generate(out, ONLY, force=True, progress=False)  # a later run cleans the stale temporary
    assert [p.name for p in tmp_path.iterdir()] == ["o"]


def test_diff_reports_first_mismatch_with_bits(golden_set: Path, tmp_path: Path) -> None:
    work = tmp_path / "w"
    subprocess.run(["cp", "-r", str(golden_set), str(work)], check=True)
    case_dir = work / "requantize.tflite_double.int32_int8.m0p5_s0"
    y = read_case(case_dir).tensors["y"].values.copy()
    y[[3, 7]] = np.int8(-128)
    (case_dir / "y.npy").write_bytes(npy_bytes(y))
    report = diff(golden_set, work)
    rows = [r for rows in report.values() for r in rows if not r.equal]
    assert len(rows) == 1 and rows[0].name == "y"
    assert "first at index (3,)" in rows[0].detail and "10000000" in rows[0].detail
    assert rows[0].detail.startswith("2 of")


def test_verify_refuses_a_folder_without_manifest(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match="MANIFEST"):
        verify(tmp_path, progress=False)


@pytest.mark.skipif(os.name != "posix", reason="uses cp")
def test_cli_exit_status(golden_set: Path) -> None:
    ok = subprocess.run(
        [sys.executable, "-m", "refq", "golden", "verify", str(golden_set), "--quiet"],
        capture_output=True,
        text=True,
    )
    assert ok.returncode == 0 and "cases match" in ok.stdout


def test_cli_diff_counts_changed_tensors_and_one_sided_cases(
    golden_set: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    """`refq golden diff`: equal sets exit 0; a changed tensor and a case present in one set
    only are each counted in the summary line and make the exit status 1."""
    from refq.cli import main

    assert main(["golden", "diff", str(golden_set), str(golden_set)]) == 0
    assert capsys.readouterr().out.splitlines()[-1] == "0 tensor(s) differ"

    work = tmp_path / "w"
    shutil.copytree(golden_set, work)
    cases = sorted(p for p in work.iterdir() if p.is_dir())
    assert len(cases) >= 2
    y = read_case(cases[0]).tensors["y"].values.copy()
    y[0] = y[0] + 1 if y[0] < 127 else y[0] - 1
    (cases[0] / "y.npy").write_bytes(npy_bytes(y))
    shutil.rmtree(cases[1])
    assert main(["golden", "diff", str(golden_set), str(work)]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[-1] == "1 tensor(s) differ; 1 case(s) in one set only", lines[-1]
    assert f"DIFF  {cases[1].name}/*: case only in A" in lines


def test_meta_json_arrays_are_one_line_and_the_indented_form_still_verifies(
    golden_set: Path, tmp_path: Path
) -> None:
    """meta.json holds each array of numbers on one line (the same JSON value as the fully
    indented form); a set whose meta.json files are in the older fully indented form (hashes
    fixed) verifies too, and a changed value in either form (hashes fixed) does not."""
    import json

    work = tmp_path / "w"
    shutil.copytree(golden_set, work)
    m = read_manifest(work)
    metas = sorted(work.glob("*/meta.json"))
    assert metas
    raw = metas[0].read_bytes()
    assert b"[\n" not in raw or b'"ops"' in raw  # only arrays of objects/arrays span lines
    assert any(b"[-" in p.read_bytes() or b",1" in p.read_bytes() for p in metas)
    for p in metas:
        p.write_bytes(json_bytes(json.loads(p.read_bytes())))
        m["files"][f"{p.parent.name}/meta.json"] = sha256(p)
    (work / MANIFEST).write_bytes(json_bytes(m))
    assert all(r.ok for r in verify(work, progress=False))
    obj = json.loads(metas[0].read_bytes())
    obj["seed"] = int(obj["seed"]) + 1
    metas[0].write_bytes(json_bytes(obj))
    m["files"][f"{metas[0].parent.name}/meta.json"] = sha256(metas[0])
    (work / MANIFEST).write_bytes(json_bytes(m))
    bad = [r for r in verify(work, progress=False) if not r.ok]
    assert len(bad) == 1 and "meta.json: differs" in " ".join(bad[0].problems)
