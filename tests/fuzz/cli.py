"""Mutated command lines of refq's commands, each run in a forked child (time and memory
limited) through ``refq.cli.main``. The oracle: exit 0 or 1 (a result), or exit 2 with a
one-line ``error:`` (RefqError) or argparse's usage message — never a traceback, never a
hang. Exit 0/1 are "accepted" (a command's output is not compared: timings and paths
differ legitimately).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import resource
import shutil
import signal
import sys
import time
import traceback
from collections import Counter
from pathlib import Path
from typing import TextIO

from tests.fuzz.mutate import Chooser, RandomChooser

CASE = "requantize.dyadic.int32_int8.b3_c1_floor"


def commands(base: Path) -> list[list[str]]:
    """The command lines mutated (each quick on the bundled model / a 2-case golden set)."""
    s, o = str(base / "set"), str(base / "out")
    return [
        ["golden", "verify", s, "--quiet"],
        ["golden", "diff", s, str(base / "set2")],
        ["golden", "export", s, "--format", "hex", "--out", o],
        ["golden", "generate", "--out", o, "--only", CASE, "--quiet"],
        ["golden", "list", "--only", "softmax.*"],
        ["kernels", "requantize.dyadic"],
        ["check", "--backend", "reference", "--golden", s, "--no-generated",
         "--known", str(base / "known.json"), "--examples", "3"],
        ["check", "--backend", "reference", "--ops", "requantize.dyadic", "--examples", "3",
         "--artifacts", o],
        ["quantize", "--model", "bundled", "--calib", "4", "--bits", "W8A8", "--out", o,
         "--quiet"],
        ["eval", "--model", "bundled", "--methods", "minmax", "--bits", "W8A8", "--calib", "4",
         "--limit", "8", "--quiet"],
    ]


def setup(base: Path) -> None:
    from refq.golden import generate

    base.mkdir(parents=True, exist_ok=True)
    generate(base / "set", f"{CASE},softmax.refq.rows16x37", progress=False)
    generate(base / "set2", CASE, progress=False)
    shutil.copy(Path(__file__).resolve().parents[2] / "refq/crosscheck/known/onnxruntime.json",
                base / "known.json")
    (base / "a-file").write_text("x\n")
    if not (base / "fifo").exists():
        os.mkfifo(base / "fifo")


def mutate_argv(argv: list[str], base: Path, c: Chooser) -> tuple[list[str], str]:
    argv = list(argv)
    i = c.integer(0, len(argv) - 1)
    op = c.choice(("drop", "dup", "typo", "path", "number", "empty", "pattern", "swap",
                   "append", "unicode"))
    if op == "drop" and len(argv) > 1:
        argv.pop(i)
    elif op == "dup":
        argv.insert(i, argv[i])
    elif op == "typo" and argv[i]:
        j = c.integer(0, len(argv[i]) - 1)
        argv[i] = argv[i][:j] + argv[i][j + 1:] if c.integer(0, 1) else argv[i] + "x"
    elif op == "path":
        argv[i] = c.choice((str(base / "missing"), str(base / "a-file"), str(base / "fifo"),
                            str(base), "/dev/zero", "/", str(base / "set" / CASE),
                            str(base / "set" / "MANIFEST.json")))
    elif op == "number":
        argv[i] = c.choice(("0", "-1", "2147483648", "99999999999999999999", "1.5", "nan",
                            "1e9"))
    elif op == "empty":
        argv[i] = ""
    elif op == "pattern":
        argv[i] = c.choice(("softmx.refq", "*", "", ",", "[", "nomatch*", "**/..", "a,b,,c"))
    elif op == "swap" and len(argv) > 2:
        j = c.integer(0, len(argv) - 1)
        argv[i], argv[j] = argv[j], argv[i]
    elif op == "append":
        argv.append(c.choice(("--force", "--quiet", "--json", "--bits", "W1A1", "--help=x",
                              "-x", "--workers", "0")))
    else:
        argv[i] = argv[i] + c.choice(("\u0661", "\udcff", "\x00")) if argv[i] else "\u0661"
    return argv, f"{op}@{i}"


class _TimeLimit(BaseException):
    """The child's time limit (SIGALRM): reported as a hang with where it was."""


def _alarm(signum: int, frame: object) -> None:
    raise _TimeLimit


def _child(argv: list[str], base: Path, timeout: float) -> tuple[str, str]:
    from refq.cli import main

    out, err = io.StringIO(), io.StringIO()
    os.chdir(base)
    signal.signal(signal.SIGALRM, _alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
            code = main(argv)
    except _TimeLimit:
        return "hang", f"time limit {timeout} s at\n" + traceback.format_exc(limit=-4)
    except SystemExit as exc:  # argparse
        code = exc.code if isinstance(exc.code, int) else 2
        if code == 2 and "usage:" in err.getvalue():
            return "refq", err.getvalue()[-300:]
        return ("ok" if code in (0, 1) else "raw"), err.getvalue()[-300:]
    except BaseException:
        return "raw", traceback.format_exc(limit=-4)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
    text = err.getvalue()
    if code == 2 and "error:" in text:
        return "refq", text[-300:]
    if code in (0, 1):
        return "ok", ""
    return "raw", f"exit {code}: {text[-300:]}"


def run_cli_mutants(count: int, seed: int, workers: int, timeout: float, tmp: Path,
                    log: TextIO) -> tuple[Counter[str], list[str]]:
    base = tmp / "cli"
    setup(base)
    cmds = commands(base)
    counts: Counter[str] = Counter()
    findings: list[str] = []
    running: dict[int, tuple[int, int, float, str]] = {}
    k = 0
    while k < count or running:
        while k < count and len(running) < workers:
            c = RandomChooser(seed * 1_000_003 + k)
            argv, label = mutate_argv(c.choice(cmds), base, c)
            work = base / f"w{k}"
            work.mkdir()
            r, w = os.pipe()
            pid = os.fork()
            if pid == 0:
                os.close(r)
                try:
                    resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))
                    with open(os.devnull, "w") as null, contextlib.redirect_stderr(null):
                        kind, detail = _child(argv, work, timeout)
                except BaseException:
                    kind, detail = "raw", traceback.format_exc(limit=-3)
                os.write(w, json.dumps([kind, detail[-4000:]]).encode())
                os._exit(0)
            os.close(w)
            running[pid] = (r, k, time.monotonic() + timeout + 10,
                            f"#{k} refq {' '.join(argv)!r} ({label})")
            k += 1
        for pid, (r, idx, deadline, label) in list(running.items()):
            done, status = os.waitpid(pid, os.WNOHANG)
            if not done and time.monotonic() < deadline:
                continue
            if not done:
                os.kill(pid, signal.SIGKILL)
                os.waitpid(pid, 0)
                kind, detail = "hang", ""
            else:
                raw = b""
                while block := os.read(r, 1 << 16):
                    raw += block
                try:
                    kind, detail = json.loads(raw)
                except ValueError:
                    kind, detail = "raw", f"child died (status {status})"
            os.close(r)
            del running[pid]
            shutil.rmtree(base / f"w{idx}", ignore_errors=True)
            status_name = {"ok": "same", "refq": "refq"}.get(kind, kind)
            counts[status_name] += 1
            print(f"CLI {status_name:12} {label}" + ("" if status_name in ("same", "refq")
                                                     else f"\n    {detail[-600:]}"),
                  file=log, flush=True)
            if status_name not in ("same", "refq"):
                findings.append(f"CLI {label} {status_name}: {detail.strip()[-200:]}")
        time.sleep(0.002)
    sys.stdout.flush()
    return counts, findings


__all__ = ["commands", "mutate_argv", "run_cli_mutants", "setup"]
