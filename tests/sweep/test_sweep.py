"""refq sweep in this process (--workers 0, no Dask): the table is refq eval's, a re-run
computes nothing, a changed configuration is a new cell, an interrupt leaves a resumable
database, the report renders from the rows alone, and without Dask the cluster path asks
for the extra while everything else works."""

from __future__ import annotations

import csv
import json
import os
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from PIL import Image

from refq.cli import main

SMALL = ["--methods", "minmax", "--bits", "W8A8,W4A4", "--integer", "--calib", "8",
         "--limit", "40", "--quiet"]


def table(out: str) -> dict[str, list[str]]:
    """method+bits → cells of the printed table (FP, fake-quant, integer, Δ)."""
    rows = {}
    for line in out.splitlines():
        cells = [c.strip() for c in line.split("|")]
        if len(cells) >= 6 and cells[1].startswith("W"):
            rows[f"{cells[0]} {cells[1]}"] = cells[2:6]
    return rows


def rows_of(db: Path) -> list[tuple[object, ...]]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute("SELECT cell, shard, first, count, correct, status "
                                  "FROM rows").fetchall())


def test_sweep_matches_eval_and_resumes(tmp_path: Path,
                                        capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", *SMALL]) == 0
    want = table(capsys.readouterr().out)
    db = tmp_path / "r.sqlite"
    argv = ["sweep", *SMALL, "--workers", "0", "--results", str(db), "--shard-size", "100"]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "to compute: 2 preps, 5 shards (200 images)" in out
    got = table(out)
    assert got == want and len(got) == 2
    first = rows_of(db)
    assert len(first) == 5  # FP + 2 × (fake-quant, integer), one shard of 40 images each
    assert all(r[3] == 40 and r[5] == "ok" for r in first)
    # the same command again: nothing computed, same table, same rows
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "to compute: 0 preps, 0 shards" in out and "nothing to compute" in out
    assert table(out) == want and rows_of(db) == first
    # smaller shards are another configuration: new cells, old rows untouched
    assert main([*argv[:-2], "--shard-size", "15", "--bits", "W8A8"]) == 0
    out = capsys.readouterr().out
    assert table(out)["minmax W8A8"][2] == want["minmax W8A8"][2]  # integer: exact
    rows = rows_of(db)
    assert set(first) < set(rows) and len(rows) == 5 + 3 * 3  # 40 = 15 + 15 + 10
    with sqlite3.connect(db) as con:
        assert con.execute("SELECT COUNT(*) FROM cells").fetchone()[0] == 8
        assert con.execute("PRAGMA journal_mode").fetchone()[0] == "wal"


def test_interrupt_leaves_resumable_database(tmp_path: Path,
                                             monkeypatch: pytest.MonkeyPatch,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    import refq.sweep.driver as driver

    def argv(db: Path) -> list[str]:
        return ["sweep", *SMALL, "--bits", "W8A8", "--workers", "0", "--results", str(db),
                "--shard-size", "10"]

    db = tmp_path / "r.sqlite"
    real, calls = driver.evaluate_shard, []

    def interrupted(job, prepared):  # type: ignore[no-untyped-def]
        calls.append(job)
        if len(calls) == 6:
            raise KeyboardInterrupt  # Ctrl-C inside the sixth shard
        return real(job, prepared)

    monkeypatch.setattr(driver, "evaluate_shard", interrupted)
    assert main(argv(db)) == 130
    assert "the same command resumes" in capsys.readouterr().err
    partial = rows_of(db)
    assert len(partial) == 5
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
    monkeypatch.setattr(driver, "evaluate_shard", real)
    assert main(argv(db)) == 0
    out = capsys.readouterr().out
    assert "to compute: 1 preps, 7 shards" in out  # 12 shards, 5 kept
    done = rows_of(db)
    assert set(partial) < set(done) and len(done) == 12
    fresh = tmp_path / "fresh.sqlite"
    assert main(argv(fresh)) == 0
    capsys.readouterr()
    assert rows_of(fresh) == done  # same cells (same configuration), same counts


def test_report_from_rows(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    assert main(["sweep", *SMALL, "--workers", "0", "--results", str(db)]) == 0
    want = table(capsys.readouterr().out)
    with sqlite3.connect(db) as con:  # the report must come from the rows: change one
        con.execute("UPDATE rows SET correct = correct - 4 WHERE cell IN "
                    "(SELECT cell FROM cells WHERE mode = 'integer' AND w_bits = 8)")
    out = tmp_path / "rep"
    try:
        import matplotlib  # noqa: F401
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("matplotlib not installed (CI installs it)")
    assert main(["sweep", "--report", "--results", str(db), "--out", str(out)]) == 0
    got = table(capsys.readouterr().out)
    assert got["minmax W8A8"][2] == f"{float(want['minmax W8A8'][2]) - 10:.2f}"  # 4 of 40
    assert got["minmax W4A4"] == want["minmax W4A4"]
    md = (out / "report.md").read_text()
    assert "| minmax | W4A4 |" in md
    lines = list(csv.DictReader((out / "report.csv").open()))
    assert [(r["method"], r["bits"]) for r in lines] == [("minmax", "W8A8"),
                                                         ("minmax", "W4A4")]
    assert float(lines[1]["integer"]) * 100 == pytest.approx(float(want["minmax W4A4"][2]))
    assert (out / "accuracy.png").stat().st_size > 1000
    assert (out / "gap.png").read_bytes()[:4] == b"\x89PNG"


def test_recipe_refusal_is_refused_before_any_work(tmp_path: Path,
                                                 capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    argv = ["sweep", "--methods", "repq", "--bits", "W8A8", "--opt", "repq.calib_sub=0",
            "--calib", "4", "--limit", "10", "--quiet", "--workers", "0",
            "--results", str(db)]
    # a value the recipe refuses is refused before any work (nothing computed, nothing stored)
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "repq.calib_sub must be > 0, got 0" in err
    assert not db.exists()


def test_data_that_does_not_fit_is_refused(tmp_path: Path,
                                           capsys: pytest.CaptureFixture[str]) -> None:
    """An RGB folder for the 1-channel digits model: refused, naming data and model, in
    eval and sweep (it used to run and print 0.00)."""
    for name in ("3", "7"):
        (tmp_path / "rgb" / name).mkdir(parents=True)
        Image.new("RGB", (32, 32), (200, 30, 10 * int(name))).save(
            tmp_path / "rgb" / name / "a.png")
    (tmp_path / "cats" / "cat").mkdir(parents=True)
    Image.new("L", (32, 32), 9).save(tmp_path / "cats" / "cat" / "a.png")
    for cmd in (["eval"], ["sweep", "--workers", "0", "--results", str(tmp_path / "r")]):
        assert main([*cmd, "--data", str(tmp_path / "rgb"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "does not fit model bundled (1 input channel)" in err and "colour" in err
        assert str(tmp_path / "rgb") in err
        assert main([*cmd, "--data", str(tmp_path / "cats"), "--quiet"]) == 2
        err = capsys.readouterr().err
        assert "class folders cat are not classes of model bundled (0, 1, 2" in err


def test_bad_sweep_input(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    junk = tmp_path / "junk.sqlite"
    junk.write_bytes(b"not a database" * 100)
    cases = [
        (["--results", str(junk)], "not a refq sweep database"),
        (["--seed", "1,x"], "bad --seed"),
        (["--shard-size", "0"], "--shard-size must be >= 1"),
        (["--workers", "-1"], "--workers must be >= 0"),
        (["--workers", "2", "--scheduler", "tcp://x:1"], "not both"),
        (["--model", "bundled", "--model", "bundled"], "named twice"),
        (["--report", "--results", str(tmp_path / "none.sqlite")], "no such file"),
    ]
    for extra, needle in cases:
        argv = ["sweep", "--methods", "minmax", "--limit", "4", "--quiet", "--workers", "0",
                "--results", str(tmp_path / "ok.sqlite"), *extra]
        if "--scheduler" in extra or extra[0] == "--workers":
            argv.remove("--workers")
            argv.remove("0")
        assert main(argv) == 2, extra
        err = capsys.readouterr().err
        assert needle in err, (extra, err)


NO_DASK = """
import builtins, sys
real = builtins.__import__
def no_dask(name, *a, **k):
    if name.split('.')[0] in ('dask', 'distributed'):
        raise ImportError(f'No module named {name!r} (simulated)')
    return real(name, *a, **k)
builtins.__import__ = no_dask
from refq.cli import main
rc = main(sys.argv[1:])
assert not any(m.split('.')[0] in ('dask', 'distributed') for m in sys.modules), 'dask loaded'
sys.exit(rc)
"""


def test_without_dask(tmp_path: Path) -> None:
    """Dask's import fails (simulated): the cluster path asks for the extra, --workers 0
    and refq eval work, and nothing imports Dask on the way."""
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}

    def refq(*argv: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-c", NO_DASK, *argv], capture_output=True,
                              text=True, env=env, timeout=300)

    common = ["--methods", "minmax", "--bits", "W8A8", "--calib", "4", "--limit", "10",
              "--quiet", "--results", str(tmp_path / "r.sqlite")]
    p = refq("sweep", *common)
    assert p.returncode == 2, p.stderr
    assert "Dask is not installed" in p.stderr and "pip install 'refq[dist]'" in p.stderr
    assert "--workers 0" in p.stderr
    p = refq("check", "--backend", "reference", "--workers", "2", "--examples", "2")
    assert p.returncode == 2 and "pip install 'refq[dist]'" in p.stderr
    p = refq("sweep", *common, "--workers", "0")
    assert p.returncode == 0, p.stderr
    assert "minmax | W8A8" in p.stdout
    p = refq("eval", "--methods", "minmax", "--calib", "4", "--limit", "10", "--quiet")
    assert p.returncode == 0, p.stderr
    p = refq("sweep", "--report", "--results", str(tmp_path / "r.sqlite"), "--out",
             str(tmp_path / "rep"))
    assert (tmp_path / "rep" / "report.csv").is_file(), p.stderr


def test_import_refq_loads_no_dask() -> None:
    code = ("import sys, refq, refq.cli, refq.dist, refq.sweep, refq.commands.sweep, "
            "refq.commands.check; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] in "
            "('dask', 'distributed', 'matplotlib', 'torch')))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, env={**os.environ, "PYTHONPATH": str(
                             Path(__file__).resolve().parents[2])}).stdout
    assert json.loads(out.replace("'", '"')) == []
