"""refq sweep and refq check on Dask LocalClusters: a worker killed mid-sweep loses and
duplicates nothing; a transformers checkpoint folder sweeps on a cluster; a hypothesis hunt
split by seed collects every part's failures with replay commands that reproduce them.

Needs the ``dist`` extra (dask, distributed): skipped without it locally, a failure in CI.
"""

from __future__ import annotations

import logging
import os
import signal
import sqlite3
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from refq.cli import main
from tests.sweep.test_sweep import rows_of, table

try:
    import distributed
except ImportError:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError("CI=true: the dist extra (dask, distributed) must be "
                           "installed") from None
    pytest.skip("dask.distributed not installed (CI installs it)", allow_module_level=True)


@pytest.fixture
def cluster() -> Iterator[tuple[Any, Any]]:
    """A fresh 2-worker LocalCluster (one thread each) and a client of the test's own."""
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0", silence_logs=logging.ERROR)
    client = distributed.Client(c)
    yield c, client
    client.close()
    c.close()


def count_rows(db: Path) -> int:
    if not db.exists():
        return 0
    try:
        with sqlite3.connect(db, timeout=30) as con:
            return int(con.execute("SELECT COUNT(*) FROM rows").fetchone()[0])
    except sqlite3.OperationalError:  # tables not created yet
        return 0


SWEEP = ["--methods", "minmax", "--bits", "W8A8", "--integer", "--calib", "8", "--limit",
         "60", "--shard-size", "10", "--quiet"]


def test_killed_worker_loses_nothing(tmp_path: Path, cluster: tuple[Any, Any],
                                     capsys: pytest.CaptureFixture[str]) -> None:
    c, client = cluster
    db = tmp_path / "r.sqlite"
    result: dict[str, int] = {}
    sweep = threading.Thread(target=lambda: result.setdefault("rc", main(
        ["sweep", *SWEEP, "--scheduler", c.scheduler_address, "--results", str(db)])))
    sweep.start()
    deadline = time.monotonic() + 300
    while count_rows(db) == 0:
        assert sweep.is_alive() and time.monotonic() < deadline
        time.sleep(0.05)
    pids = client.run(os.getpid)
    busy = [w for w, tasks in client.processing().items() if tasks and w in pids]
    assert busy, "no worker is running a task"
    victim = pids[busy[0]]
    os.kill(victim, signal.SIGKILL)  # the worker process dies mid-task
    rows_at_kill = count_rows(db)
    sweep.join(600)
    assert not sweep.is_alive() and result["rc"] == 0, capsys.readouterr()
    assert rows_at_kill < 18  # the sweep was still running when the worker died
    assert victim not in client.run(os.getpid).values()  # the nanny started a new one
    got = rows_of(db)
    assert len(got) == 18 == len({(r[0], r[1]) for r in got})  # 3 cells × 6 shards, once
    with sqlite3.connect(db) as con:
        assert con.execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        assert con.execute("SELECT COUNT(*) FROM rows WHERE worker LIKE ?",
                           (f"%:{victim}",)).fetchone()[0] <= rows_at_kill
    ref = tmp_path / "ref.sqlite"  # the same sweep undisturbed, in this process
    assert main(["sweep", *SWEEP, "--workers", "0", "--results", str(ref)]) == 0
    assert got == rows_of(ref)


@pytest.fixture(scope="module")
def shared_cluster() -> Iterator[str]:
    c = distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                 dashboard_address=":0", silence_logs=logging.ERROR)
    yield c.scheduler_address
    c.close()


def test_transformers_folder_on_a_cluster(tmp_path: Path, shared_cluster: str,
                                          capsys: pytest.CaptureFixture[str]) -> None:
    try:
        import transformers  # noqa: F401

        from tests.nn.hf_util import make_hf_case
    except ImportError:
        if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
            raise
        pytest.skip("transformers not installed (CI installs it)")

    model, data = make_hf_case(tmp_path / "hf")
    common = ["--model", str(model), "--data", str(data), "--methods", "minmax", "--bits",
              "W4A4", "--integer", "--calib", "40", "--quiet"]
    assert main(["eval", *common]) == 0
    want = table(capsys.readouterr().out)
    assert main(["sweep", *common, "--scheduler", shared_cluster, "--shard-size", "15",
                 "--results", str(tmp_path / "r.sqlite")]) == 0
    got = table(capsys.readouterr().out)
    assert got["minmax W4A4"][0] == "100.00"  # FP: every image in its predicted class
    # the integer column is exact whatever the shards (15 here, one batch of 40 in eval)
    assert {k: v[2] for k, v in got.items()} == {k: v[2] for k, v in want.items()}


def test_split_hunt(tmp_path: Path, shared_cluster: str,
                    capsys: pytest.CaptureFixture[str]) -> None:
    art = tmp_path / "art"
    argv = ["check", "--scheduler", shared_cluster, "--examples", "16", "--ops",
            "requantize.dyadic", "--artifacts", str(art), "--seeds", "2", "--seed", "5"]
    assert main([*argv[:1], "--backend", "reference", *argv[1:]]) == 0
    out = capsys.readouterr().out
    assert "2 parts × 8 examples per op, seeds 5..6" in out
    line = next(ln for ln in out.splitlines() if "requantize.dyadic" in ln)
    assert line.split()[0] == "pass" and int(line.split("(")[1].split()[0]) > 8
    assert main([*argv[:1], "--backend", "wrong-rounding", *argv[1:]]) == 1
    out = capsys.readouterr().out
    assert "failed in 2 of 2 seeds: 5, 6" in out
    replays = [ln.split("replay: ", 1)[1] for ln in out.splitlines() if "replay: " in ln]
    assert len(replays) == 2
    for seed, cmd in zip((5, 6), replays, strict=True):
        assert f"[seed {seed}]" in out and f"seed-{seed}" in cmd
        folder = cmd.split("--replay ", 1)[1]
        assert main(["check", "--backend", "wrong-rounding", "--replay", folder]) == 1
        assert main(["check", "--backend", "reference", "--replay", folder]) == 0
    capsys.readouterr()


@pytest.mark.slow
def test_acceptance_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """The issue's command on the bundled data, twice: the second computes nothing."""
    argv = ["sweep", "--methods", "minmax,repq", "--bits", "W8A8,W4A4", "--integer",
            "--workers", "2", "--results", str(tmp_path / "r.sqlite"), "--quiet"]
    assert main(argv) == 0
    first = table(capsys.readouterr().out)
    assert len(first) == 4
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "nothing to compute" in out and table(out) == first


@pytest.mark.slow
def test_ctrl_c_on_a_local_cluster(tmp_path: Path) -> None:
    """Ctrl-C at a terminal (SIGINT to the whole process group, workers included) while a
    2-worker sweep runs: exit 130, finished rows kept, no worker traceback, and the same
    command completes the sweep."""
    import subprocess
    import sys

    db = tmp_path / "r.sqlite"
    cmd = [sys.executable, "-m", "refq", "sweep", *SWEEP, "--workers", "2", "--results",
           str(db)]
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[2])}
    p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                         start_new_session=True, env=env)
    deadline = time.monotonic() + 300
    while count_rows(db) < 2:
        assert p.poll() is None and time.monotonic() < deadline
        time.sleep(0.1)
    os.killpg(p.pid, signal.SIGINT)
    _, err = p.communicate(timeout=300)
    assert p.returncode == 130, err
    assert "the same command resumes" in err and "Traceback" not in err
    kept = rows_of(db)
    assert 2 <= len(kept) < 18
    q = subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=600)
    assert q.returncode == 0, q.stderr
    assert set(kept) < set(rows_of(db)) and len(rows_of(db)) == 18
