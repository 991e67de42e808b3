"""Every writer is atomic (finding 9): killed with SIGKILL at a random moment, it leaves
under the final name either nothing (a new output), the previous output intact (a
replacement) or the complete new output — never a partial one; its litter (temporaries,
displaced old outputs, locks) is cleaned up or restored by the next run of the same writer,
which reports it. Plus: an existing output is refused without --force (also a file where a
folder goes), and of two writers racing for one new name exactly one wins.

10 kill trials per writer under ``-m slow``; two per writer in the default suite.
"""

from __future__ import annotations

import os
import random
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refq.cli import main
from refq.errors import OutputError
from refq.files.atomic import atomic_folder, clean_litter, write_file

REPO = Path(__file__).resolve().parents[2]
CASES = "requantize.dyadic.*,softmax.refq.rows16x37,gelu.lut.int8.exhaustive"

CHILD = r"""
import os, sys
from pathlib import Path
import numpy as np
writer, out, force = sys.argv[1], Path(sys.argv[2]), sys.argv[3] == "1"
rng = np.random.default_rng(int(sys.argv[4]))
if writer == "spec":
    from refq.quant import QuantSpec, UniformQuantizer
    spec = QuantSpec("minmax", "deit_digits", 8, 8,
                     weights={"blocks.0.attn.qkv.weight": UniformQuantizer(0.1, 8)},
                     params={"w": rng.standard_normal(3_000_000), "b": np.arange(5.0)})
    go = lambda: spec.save(out, force=force)
elif writer == "program":
    from refq.intmath import IntFormat
    from refq.program import Op, Program, save
    p = Program("big")
    p.declare("x", (3_000_000,), IntFormat(16), "input")
    p.const("w", rng.integers(-100, 100, 3_000_000), IntFormat(16))
    p.declare("y", (3_000_000,), IntFormat(17))
    p.add(Op("move", "add_exact", ("x", "w"), ("y",), {}, "y"))
    p.outputs = ["y"]
    go = lambda: save(p, out, force=force)
elif writer == "generate":
    from refq.golden import generate
    go = lambda: generate(out, sys.argv[5], force=force, progress=False)
elif writer == "export":
    from refq.golden import export
    go = lambda: export(Path(sys.argv[5]), "hex", out, force=force)
else:
    from refq.files.atomic import write_file
    data = rng.integers(0, 256, 30_000_000, dtype=np.uint8).tobytes()
    go = lambda: write_file(out, data, force=force)
print("ready", flush=True)
sys.stdin.read(1)
go()
print("done", flush=True)
"""

WRITERS = ("spec", "program", "generate", "export", "file")


@pytest.fixture(scope="module")
def golden_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from refq.golden import generate

    out = tmp_path_factory.mktemp("g") / "set"
    generate(out, CASES, progress=False)
    return out


def _child(writer: str, out: Path, force: bool, seed: int, extra: str) -> subprocess.Popen[str]:
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    p = subprocess.Popen([sys.executable, "-c", CHILD, writer, str(out), "1" if force else "0",
                          str(seed), extra], stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                         stderr=subprocess.PIPE, text=True, env=env, cwd=str(out.parent))
    assert p.stdout is not None and p.stdout.readline().strip() == "ready"
    return p


def _go(p: subprocess.Popen[str], out: Path) -> float:
    """Start the writer; wait until its state shows on disk (a temporary or its lock beside
    ``out``) or it ends; the moment it showed (``perf_counter``)."""
    assert p.stdin is not None
    p.stdin.write("g")
    p.stdin.flush()
    while p.poll() is None and not _litter(out):
        time.sleep(0.0005)
    return time.perf_counter()


def _run(writer: str, out: Path, force: bool, seed: int, extra: str) -> float:
    """Run the writer to completion; the wall time from its state showing on disk to its
    going (the window in which a kill leaves it mid-write; the process lives on a while)."""
    p = _child(writer, out, force, seed, extra)
    t0 = _go(p, out)
    while p.poll() is None and _litter(out):
        time.sleep(0.0005)
    t = time.perf_counter() - t0
    _, err = p.communicate()
    assert p.returncode == 0, err
    return t


def _content(writer: str, out: Path) -> Any:
    """What the output holds, read back through refq's own readers (raises if partial)."""
    if writer == "spec":
        from refq.quant import QuantSpec

        s = QuantSpec.load(out)
        return (sorted(s.params), float(s.params["w"][:100].sum()))
    if writer == "program":
        from refq.program import load

        p = load(out)
        return int(p.consts["w"][:100].sum())
    if writer == "generate":
        from refq.golden import verify

        results = verify(out, progress=False)
        assert all(r.ok for r in results), [r.problems for r in results if not r.ok]
        return sorted(r.name for r in results)
    if writer == "export":
        return sorted((p.relative_to(out).as_posix(), p.read_bytes()) for p in out.rglob("*")
                      if p.is_file())
    return out.read_bytes()[:1000]


def _litter(out: Path) -> list[str]:
    return sorted(p.name for p in out.parent.iterdir() if p.name.startswith(f".{out.name}.refq-"))


def kill_trials(writer: str, work: Path, golden_set: Path, trials: int) -> int:
    """Kill ``writer`` ``trials`` times at random moments of its write (new outputs and --force
    replacements alternately), check, then rerun; returns how many kills hit it mid-write
    (litter left)."""
    extra = CASES if writer == "generate" else str(golden_set)
    rng = random.Random(f"{writer}-kill")
    ref = work / "ref"
    t_write = _run(writer, work / "ref-new", False, 1, extra)
    _run(writer, ref, False, 0, extra)  # seed 0: the "previous" output
    before, new = _content(writer, ref), _content(writer, work / "ref-new")
    mid = 0
    for trial in range(trials):
        out = work / f"out{trial}"
        replace = trial % 2 == 1
        if replace:
            shutil.copytree(ref, out) if ref.is_dir() else shutil.copy(ref, out)
        p = _child(writer, out, replace, 1, extra)
        _go(p, out)
        time.sleep(rng.uniform(0.0, 1.2 * t_write))  # within (mostly) or just after it
        p.kill()
        p.wait()
        mid += bool(_litter(out))
        if os.path.lexists(out):  # nothing partial under the final name
            assert _content(writer, out) in ((before, new) if replace else (new,))
        else:
            assert not replace or _litter(out), "a replaced output vanished without a trace"
        _run(writer, out, True, 1, extra)  # the next run cleans up (or restores) and writes
        assert _litter(out) == [], _litter(out)
        assert _content(writer, out) == new
    return mid


@pytest.mark.parametrize("writer", ["spec", "file"])
def test_killed_writers_leave_nothing_partial(writer: str, tmp_path: Path,
                                              golden_set: Path) -> None:
    kill_trials(writer, tmp_path, golden_set, trials=2)


@pytest.mark.slow
@pytest.mark.parametrize("writer", WRITERS)
def test_ten_kill_trials_per_writer(writer: str, tmp_path: Path, golden_set: Path) -> None:
    assert kill_trials(writer, tmp_path, golden_set, trials=10) >= 3  # most kills mid-write


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_a_replacement_interrupted_between_its_renames_is_restored(
        tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "o"
    with atomic_folder(out) as t:
        (t / "a").write_text("old")
    pid = _dead_pid()
    out.rename(tmp_path / f".o.refq-old-{pid}")  # killed after moving the old one aside
    (tmp_path / f".o.refq-tmp-{pid}").mkdir()  # ... with its new one not yet renamed
    (tmp_path / f".o.refq-tmp-{pid}" / "a").write_text("half")
    (tmp_path / ".o.refq-lock").write_text(f"{pid}\n")
    actions = clean_litter(out)
    assert (out / "a").read_text() == "old"
    assert len(actions) == 3 and "restored" in actions[0]
    assert "refq: restored" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o"]


def test_a_live_writers_litter_is_left_alone(tmp_path: Path) -> None:
    out = tmp_path / "o"
    (tmp_path / f".o.refq-tmp-{os.getpid()}").mkdir()
    (tmp_path / ".o.refq-lock").write_text(f"{os.getppid()}\n")
    assert clean_litter(out) == []
    with pytest.raises(OutputError, match=r"being written by another refq process"):
        write_file(out, b"x")


def test_existing_outputs_need_force(tmp_path: Path) -> None:
    out = tmp_path / "f.bin"
    write_file(out, b"1")
    with pytest.raises(OutputError, match=r"exists \(a file\); pass --force"):
        write_file(out, b"2")
    write_file(out, b"2", force=True)
    assert out.read_bytes() == b"2"
    with pytest.raises(OutputError, match="is a file; the output is a folder"), \
            atomic_folder(out, force=True):
        pass
    assert out.read_bytes() == b"2"


def test_quantize_refuses_an_existing_output(tmp_path: Path,
                                             capsys: pytest.CaptureFixture[str]) -> None:
    f = tmp_path / "a-file"
    f.write_text("keep me")
    argv = ["quantize", "--calib", "2", "--quiet", "--out"]
    assert main([*argv, str(f)]) == 2
    err = capsys.readouterr().err
    assert "exists (a file); pass --force" in err and "Traceback" not in err
    assert main([*argv, str(f), "--force"]) == 2
    assert "is a file; the output is a folder" in capsys.readouterr().err
    assert f.read_text() == "keep me"
    d = tmp_path / "spec"
    assert main([*argv, str(d)]) == 0
    assert main([*argv, str(d)]) == 2
    assert "exists (a folder); pass --force" in capsys.readouterr().err
    assert main([*argv, str(d), "--force"]) == 0


def test_two_writers_racing_for_a_new_folder(tmp_path: Path) -> None:
    """Two `refq golden generate` runs to one new folder: one wins, the other is refused
    (the lock is taken before any work; the rename refuses to replace)."""
    out = tmp_path / "set"
    env = dict(os.environ, PYTHONPATH=str(REPO), OPENBLAS_NUM_THREADS="1")
    argv = [sys.executable, "-m", "refq", "golden", "generate", "--out", str(out), "--only",
            CASES, "--quiet"]
    procs = [subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True) for _ in range(2)]
    results = [(p.wait(), p.communicate()[1]) for p in procs]
    codes = sorted(c for c, _ in results)
    assert codes == [0, 2], results
    err = next(e for c, e in results if c == 2)
    assert "being written by another refq process" in err or "exists" in err
    assert _content("generate", out)
    assert _litter(out) == []


def test_the_exchange_keeps_the_final_name_present(tmp_path: Path) -> None:
    """A --force replacement never leaves the final name missing: watched from another
    process while 5 replacements run, the folder is always there and complete."""
    out = tmp_path / "o"
    with atomic_folder(out) as t:
        (t / "data").write_bytes(np.zeros(1 << 20, np.uint8).tobytes())
    watcher = subprocess.Popen([sys.executable, "-c", (
        "import os, sys, time\n"
        f"out = {str(out)!r}\n"
        "end = time.time() + 4; seen = 0\n"
        "while time.time() < end:\n"
        "    if not os.path.exists(out + '/data'): print('MISSING'); sys.exit(1)\n"
        "    seen += 1\n"
        "print(seen)")], stdout=subprocess.PIPE, text=True)
    for i in range(5):
        with atomic_folder(out, force=True) as t:
            (t / "data").write_bytes(np.full(1 << 20, i, np.uint8).tobytes())
        time.sleep(0.2)
    text, _ = watcher.communicate()
    assert watcher.returncode == 0, text
