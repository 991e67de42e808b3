"""Making a mutant of a subject, running its reader, and judging the outcome.

The oracle: a mutant must give a RefqError naming the file, or an output byte-identical to
the original's. An accepted mutant with a different output is *legitimate* only where the
format carries no checksum of that file and the change is a value edit no schema can catch
(a JSON leaf replaced by another of the same type, a digit of a text export replaced by
another digit, a data byte of a .npy/.bin); anything else is a finding.

Statuses: ``refq`` (RefqError), ``refq-unnamed`` (RefqError whose message does not name
the file), ``raw`` (any other exception, or the child killed), ``hang`` (time limit),
``same`` (accepted, identical output), ``legit`` and ``finding`` (accepted, output changed).
"""

from __future__ import annotations

import json
import os
import re
import resource
import shutil
import signal
import time
import traceback
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tests.fuzz.mutate import Chooser, mutate_bytes, mutate_fs, mutate_json, mutate_text
from tests.fuzz.subjects import Subject, Target

_NUMBER = re.compile(r"-?[0-9]+")
STATUSES = ("refq", "refq-unnamed", "raw", "hang", "same", "legit", "finding")


@dataclass
class Prepared:
    subject: Subject
    folder: Path
    original: bytes


def prepare(subject: Subject, base: Path) -> Prepared:
    """Build the subject's original files under ``base`` and run its reader once."""
    folder = base / "original"
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    subject.ctx = subject.build(folder)
    return Prepared(subject, folder, subject.read(folder, subject.ctx))


@dataclass
class Mutant:
    folder: Path
    target: Target
    label: str
    before: bytes
    after: bytes | None  # None: the file was replaced by something else (fs mutation)


def make_mutant(p: Prepared, work: Path, c: Chooser) -> Mutant:
    if work.exists():
        shutil.rmtree(work)
    shutil.copytree(p.folder, work, symlinks=True)
    t = c.choice(p.subject.targets)
    path = work / t.path
    before = path.read_bytes()
    if c.integer(0, 11) == 0:
        return Mutant(work, t, mutate_fs(path, path.parent if t.kind in ("hex", "c", "bin")
                                         else work / t.path.split("/")[0], c), before, None)
    if t.kind == "json" and c.integer(0, 2):
        text, label = mutate_json(before.decode(), c, t.dumps or json.dumps)
        after = text.encode()
    elif t.kind in ("hex", "c") and c.integer(0, 2):
        text, label = mutate_text(before.decode(), c)
        after = text.encode()
    else:
        after, label = mutate_bytes(before, c)
    path.write_bytes(after)
    return Mutant(work, t, f"{t.path} {label}", before, after)


def _same_shape(a: Any, b: Any, t: Target, where: tuple[Any, ...] = ()) -> bool:
    """Same keys, lengths and leaf types, except under ``t.free`` (anything goes), at
    ``t.maps`` (entries may come and go) and for ``t.optional`` keys (may come and go)."""
    if t.free(where):
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, dict):
        if not t.maps(where) and not all(t.optional((*where, k)) for k in a.keys() ^ b.keys()):
            return False
        return all(_same_shape(a[k], b[k], t, (*where, k)) for k in a.keys() & b.keys())
    if isinstance(a, list):
        return len(a) == len(b) and all(_same_shape(x, y, t, (*where, i))
                                        for i, (x, y) in enumerate(zip(a, b, strict=True)))
    return True


def _same_text_shape(a: str, b: str, digits: str) -> bool:
    la, lb = a.split("\n"), b.split("\n")
    return len(la) == len(lb) and all(
        len(x) == len(y) and all(p == q or (p in digits and q in digits)
                                 for p, q in zip(x, y, strict=True))
        for x, y in zip(la, lb, strict=True))


def legitimate(m: Mutant) -> bool:
    """Whether an accepted, output-changing mutant is a value edit no schema can catch in
    a file without a checksum (module docstring)."""
    t = m.target
    if t.checksummed or m.after is None:
        return False
    if t.kind == "json":
        try:
            a, b = json.loads(m.before), json.loads(m.after)
        except ValueError:
            return False
        return _same_shape(a, b, t)
    if t.kind == "npy":
        hlen = 10 + int.from_bytes(m.before[8:10], "little")
        return len(m.before) == len(m.after) and m.before[:hlen] == m.after[:hlen]
    if t.kind == "bin":
        return len(m.before) == len(m.after)
    if t.kind in ("hex", "c"):
        try:
            a, b = m.before.decode("ascii"), m.after.decode("ascii")
        except UnicodeDecodeError:
            return False
        if t.kind == "c":  # decimal literals of any width: one number for another
            return _NUMBER.sub("N", a) == _NUMBER.sub("N", b)
        return _same_text_shape(a, b, "0123456789abcdef")
    return False


def judge(p: Prepared, m: Mutant, result: tuple[str, Any]) -> tuple[str, str]:
    """(status, detail) of a reader's ``result``: ("ok", digest) or ("refq"/"raw", text)."""
    kind, value = result
    if kind == "ok":
        if value == p.original:
            return "same", ""
        return ("legit" if legitimate(m) else "finding"), "output changed"
    if kind == "refq":
        names = {Path(m.target.path).name, Path(m.target.path).parent.name}
        if m.target.kind == "c":
            names.add(Path(m.target.path).stem)
        return ("refq" if any(n and n in value for n in names) else "refq-unnamed"), value
    return kind, value


def run_reader(p: Prepared, folder: Path, timeout: float = 60.0) -> tuple[str, Any]:
    """Run the reader in this process (SIGALRM as a guard): ("ok", digest),
    ("refq", message), ("raw", traceback) or ("hang", "")."""
    from refq.errors import RefqError

    def alarm(signum: int, frame: Any) -> None:
        raise TimeoutError

    old = signal.signal(signal.SIGALRM, alarm)
    signal.setitimer(signal.ITIMER_REAL, timeout)
    try:
        return "ok", p.subject.read(folder, p.subject.ctx)
    except RefqError as exc:
        return "refq", f"{type(exc).__name__}: {exc}"
    except TimeoutError:
        return "hang", ""
    except (Exception, RecursionError, MemoryError):
        return "raw", traceback.format_exc(limit=-4)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, old)


@dataclass
class Child:
    pid: int
    fd: int
    deadline: float
    chunks: list[bytes]


def spawn(p: Prepared, folder: Path, timeout: float = 60.0, memory: int = 3 << 30) -> Child:
    """Fork a child that reads ``folder`` with an address-space limit and a time limit and
    writes its result to a pipe (collected by :func:`collect`)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child
        os.close(r)
        try:
            resource.setrlimit(resource.RLIMIT_AS, (memory, memory))
            kind, value = run_reader(p, folder, timeout)
            text = value.hex() if isinstance(value, bytes) else value[-20000:]
            payload = json.dumps([kind, text])
        except BaseException:
            payload = json.dumps(["raw", traceback.format_exc(limit=-4)[-20000:]])
        os.write(w, payload.encode())
        os._exit(0)
    os.close(w)
    os.set_blocking(r, False)
    return Child(pid, r, time.monotonic() + timeout + 10, [])


def collect(child: Child) -> tuple[str, Any] | None:
    """The child's result once it has ended (None while it runs); a child past its
    deadline is killed: ("hang", "")."""
    try:
        while block := os.read(child.fd, 1 << 16):
            child.chunks.append(block)
    except BlockingIOError:
        pass
    done, status = os.waitpid(child.pid, os.WNOHANG)
    if not done:
        if time.monotonic() <= child.deadline:
            return None
        os.kill(child.pid, signal.SIGKILL)
        os.waitpid(child.pid, 0)
        os.close(child.fd)
        return "hang", ""
    os.set_blocking(child.fd, True)
    while block := os.read(child.fd, 1 << 16):
        child.chunks.append(block)
    os.close(child.fd)
    if os.WIFSIGNALED(status):
        return "raw", f"child killed by signal {os.WTERMSIG(status)}"
    try:
        kind, value = json.loads(b"".join(child.chunks))
    except ValueError:
        return "raw", "child wrote no result"
    return kind, bytes.fromhex(value) if kind == "ok" else value


def run_forked(p: Prepared, folder: Path, timeout: float = 60.0,
               memory: int = 3 << 30) -> tuple[str, Any]:
    """The reader's result in a forked child (:func:`spawn`), waited for."""
    child = spawn(p, folder, timeout, memory)
    while (result := collect(child)) is None:
        time.sleep(0.005)
    return result


__all__ = ["STATUSES", "Child", "Mutant", "Prepared", "collect", "judge", "legitimate",
           "make_mutant", "prepare", "run_forked", "run_reader", "spawn"]
