"""Atomic creation of an output folder: everything is written into a temporary sibling and
renamed into place at the end, so an interrupted run never leaves a half-written folder and
never damages the previous one."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from refq.errors import GoldenError

_TMP = ".refq-tmp-"
_OLD = ".refq-old-"


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _clean_stale(out: Path) -> None:
    """Remove temporaries left by killed runs (their process is gone)."""
    for p in out.parent.glob(f".{out.name}{_TMP}*"):
        pid = p.name.rsplit("-", 1)[-1]
        if pid.isdigit() and not _pid_alive(int(pid)):
            shutil.rmtree(p, ignore_errors=True)


@contextmanager
def atomic_folder(out: Path, force: bool = False) -> Iterator[Path]:
    """Yield a temporary folder; on success it replaces ``out`` in one rename.

    Without ``force`` an existing ``out`` is an error (checked before any work). With
    ``force`` the old folder is moved aside, the new one renamed in, and the old removed.
    On an exception the temporary is deleted and ``out`` is untouched.
    """
    out = Path(out)
    if out.exists() and not force:
        raise GoldenError(f"{out} exists; pass --force to replace it")
    out.parent.mkdir(parents=True, exist_ok=True)
    _clean_stale(out)
    tmp = out.parent / f".{out.name}{_TMP}{os.getpid()}"
    if tmp.exists():
        shutil.rmtree(tmp)
    tmp.mkdir()
    try:
        yield tmp
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    old = out.parent / f".{out.name}{_OLD}{os.getpid()}"
    if out.exists():
        out.rename(old)
    tmp.rename(out)
    if old.exists():
        shutil.rmtree(old, ignore_errors=True)


__all__ = ["atomic_folder"]
