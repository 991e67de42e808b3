"""Atomic creation and replacement of output folders and files.

Everything is written into a temporary sibling ``.NAME.refq-tmp-PID`` (files fsync'd,
then the folder) and renamed into place in one step, so a reader never sees a half-written
output under its final name and an interrupted run never damages the previous one:

- a new output is renamed with ``RENAME_NOREPLACE`` (Linux; elsewhere a rename after an
  existence check), so of two writers racing for one new name exactly one wins and the
  other gets a clear error unless it was told to replace (``force``);
- a replacement (``force``) swaps the new and the old output with ``RENAME_EXCHANGE`` —
  the final name always holds a complete output — and then deletes the old one. Where the
  exchange is unavailable, the old output is renamed to ``.NAME.refq-old-PID`` first; if
  the run is killed between the two renames, the next writer of ``NAME`` restores it;
- a writer holds the lock file ``.NAME.refq-lock`` (its PID, created atomically) while it
  works: a second writer of the same name is refused while the first is alive;
- litter of killed writers (their PID is gone) — temporaries, displaced old outputs,
  locks — is cleaned up (or restored) by the next writer of the same name, and reported
  on stderr.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import os
import shutil
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from refq.errors import OutputError

TMP = ".refq-tmp-"
OLD = ".refq-old-"
LOCK = ".refq-lock"
_NOREPLACE, _EXCHANGE = 1, 2  # renameat2 flags (linux/fs.h)


def _pid_alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True


def _litter(name: str, out_name: str) -> tuple[str, int] | None:
    """(kind, pid) of a writer's sibling ``.NAME.refq-<kind>-<pid>``, else None."""
    head = f".{out_name}.refq-"
    if not name.startswith(head):
        return None
    kind, _, pid = name[len(head):].partition("-")
    if kind not in ("tmp", "old", "lk") or not pid.isascii() or not pid.isdigit() or len(pid) > 9:
        return None
    return kind, int(pid)


def _remove(p: Path) -> None:
    if p.is_dir() and not p.is_symlink():
        shutil.rmtree(p, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            p.unlink()


def _report(message: str) -> None:
    print(f"refq: {message}", file=sys.stderr)


def clean_litter(out: Path) -> list[str]:
    """Clean what killed writers of ``out`` left beside it (their PID is gone): restore a
    displaced old output when ``out`` is missing, remove temporaries, old outputs and
    locks. Returns one line per action (also reported on stderr)."""
    out = Path(out)
    actions: list[str] = []
    try:
        siblings = sorted(out.parent.iterdir()) if out.parent.is_dir() else []
    except OSError:
        return actions
    for p in siblings:
        found = _litter(p.name, out.name)
        if found is None or _pid_alive(found[1]):
            continue
        kind = found[0]
        if kind == "old" and not os.path.lexists(out):
            os.rename(p, out)
            actions.append(f"restored {out} from {p.name}, left by a killed writer")
            continue
        _remove(p)
        what = {"old": f"an old {out.name}", "tmp": f"a partial {out.name}",
                "lk": "a lock being taken"}[kind]
        actions.append(f"removed {p.name}, {what} left by a killed writer")
    lock = out.parent / f".{out.name}{LOCK}"
    holder = _lock_holder(lock)
    if holder is not None and not _pid_alive(holder):
        _remove(lock)
        actions.append(f"removed {lock.name}, the lock of a killed writer (pid {holder})")
    for line in actions:
        _report(line)
    return actions


def _lock_holder(lock: Path) -> int | None:
    try:
        text = lock.read_text(encoding="ascii", errors="replace").strip()
    except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
        return None
    except OSError:
        return None
    return int(text) if text.isdigit() and len(text) < 10 else 0


@contextmanager
def _locked(out: Path) -> Iterator[None]:
    """Hold ``.NAME.refq-lock`` (holding this PID, created complete by a hard link) while
    writing ``out``; OutputError if a live writer holds it."""
    lock = out.parent / f".{out.name}{LOCK}"
    mine = out.parent / f".{out.name}.refq-lk-{os.getpid()}"
    mine.write_text(f"{os.getpid()}\n", encoding="ascii")
    try:
        for _ in range(2):
            try:
                os.link(mine, lock)
                break
            except FileExistsError:
                holder = _lock_holder(lock)
                if holder is not None and holder and _pid_alive(holder):
                    raise OutputError(f"{out} is being written by another refq process "
                                      f"(pid {holder}); not written") from None
                _remove(lock)  # stale (its writer was killed) or unreadable
            except OSError:  # no hard links on this file system: exclusive create
                try:
                    fd = os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
                except FileExistsError:
                    continue
                os.write(fd, f"{os.getpid()}\n".encode())
                os.close(fd)
                break
        else:
            raise OutputError(f"{out}: cannot take the lock {lock.name}; not written")
    finally:
        _remove(mine)
    try:
        yield
    finally:
        _remove(lock)


def _renameat2(src: Path, dst: Path, flags: int) -> bool:
    """renameat2(2) with ``flags``; True if done, False where unsupported (then the caller
    falls back). OSError for real failures (e.g. EEXIST)."""
    fn = _RENAMEAT2
    if fn is None:
        return False
    at_fdcwd = -100
    rc = fn(at_fdcwd, os.fsencode(src), at_fdcwd, os.fsencode(dst), flags)
    if rc == 0:
        return True
    err = ctypes.get_errno()
    if err in (errno.ENOSYS, errno.EINVAL, errno.ENOTSUP, errno.EOPNOTSUPP):
        return False
    raise OSError(err, os.strerror(err), str(dst))


def _load_renameat2() -> ctypes._CFuncPtr | None:  # type: ignore[name-defined]
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        fn = libc.renameat2
    except (OSError, AttributeError):
        return None
    fn.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_int, ctypes.c_char_p, ctypes.c_uint]
    fn.restype = ctypes.c_int
    return fn


_RENAMEAT2 = _load_renameat2()


def fsync_tree(path: Path) -> None:
    """fsync every file under ``path`` (or the file itself), then the folders."""
    if path.is_dir():
        for dirpath, _, files in os.walk(path):
            for f in files:
                _fsync(Path(dirpath) / f)
            _fsync(Path(dirpath))
    else:
        _fsync(path)


def _fsync(path: Path) -> None:
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass  # e.g. folders on some file systems
    finally:
        os.close(fd)


def _install(tmp: Path, out: Path, force: bool) -> None:
    """Rename the finished ``tmp`` into ``out`` (module docstring)."""
    if not os.path.lexists(out):
        try:
            if _renameat2(tmp, out, _NOREPLACE):
                _fsync(out.parent)
                return
        except OSError as exc:
            if exc.errno not in (errno.EEXIST, errno.ENOTEMPTY):
                raise
            if not force:
                raise OutputError(f"{out} appeared while this run was writing it (another "
                                  "writer?); not replaced — pass --force to replace it") from None
        else:
            if not os.path.lexists(out):
                os.rename(tmp, out)
                _fsync(out.parent)
                return
    if not force:
        raise OutputError(f"{out} exists; pass --force to replace it")
    if _renameat2(tmp, out, _EXCHANGE):  # out holds the new output, tmp the old one
        _fsync(out.parent)
        _remove(tmp)
        return
    old = out.parent / f".{out.name}{OLD}{os.getpid()}"
    os.rename(out, old)
    os.rename(tmp, out)
    _fsync(out.parent)
    _remove(old)


def check_output(out: Path, force: bool = False, folder: bool = True) -> None:
    """OutputError now (before any work) if ``out`` cannot become a new output: it exists
    and ``force`` is not given, it is a file where a folder is written (or the reverse)
    even with ``force``, or its parent is a file."""
    out = Path(out)
    parent = out.parent
    if parent.exists() and not parent.is_dir():
        raise OutputError(f"{out}: {parent} is a file, not a folder")
    if os.path.lexists(out):
        if not force:
            kind = "a folder" if out.is_dir() else "a file"
            raise OutputError(f"{out} exists ({kind}); pass --force to replace it")
        if folder and not out.is_dir():
            raise OutputError(f"{out} is a file; the output is a folder (remove the file)")
        if not folder and out.is_dir():
            raise OutputError(f"{out} is a folder; the output is a file (remove the folder)")


def _prepare(out: Path, force: bool, folder: bool) -> None:
    check_output(out, force, folder)
    try:
        out.parent.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OutputError(f"{out}: cannot create {out.parent} ({exc.strerror})") from None
    clean_litter(out)
    check_output(out, force, folder)  # a restored old output counts as existing


@contextmanager
def atomic_folder(out: Path, force: bool = False, durable: bool = True) -> Iterator[Path]:
    """Yield a temporary folder; on success it becomes ``out`` in one rename.

    Without ``force`` an existing ``out`` is an error (checked before any work, and again
    at the rename). With ``force`` the old output is replaced (exchanged, then deleted).
    On an exception the temporary is deleted and ``out`` is untouched. ``durable``: fsync
    the files and folders before the rename (a power loss cannot leave a renamed but empty
    output).
    """
    out = Path(out)
    _prepare(out, force, folder=True)
    with _locked(out):
        tmp = out.parent / f".{out.name}{TMP}{os.getpid()}"
        _remove(tmp)
        tmp.mkdir()
        try:
            yield tmp
            if durable:
                fsync_tree(tmp)
            _install(tmp, out, force)
        except BaseException:
            _remove(tmp)
            raise


@contextmanager
def atomic_file(out: Path, force: bool = False, durable: bool = True) -> Iterator[Path]:
    """Like :func:`atomic_folder` for one file: yield a temporary path to write; on success
    it becomes ``out`` in one rename."""
    out = Path(out)
    _prepare(out, force, folder=False)
    with _locked(out):
        tmp = out.parent / f".{out.name}{TMP}{os.getpid()}"
        _remove(tmp)
        try:
            yield tmp
            if not tmp.is_file():
                raise OutputError(f"{out}: nothing was written")
            if durable:
                _fsync(tmp)
            _install(tmp, out, force)
        except BaseException:
            _remove(tmp)
            raise


def write_file(out: Path, data: bytes, force: bool = False) -> None:
    """Write ``data`` to ``out`` atomically (:func:`atomic_file`)."""
    with atomic_file(out, force=force) as tmp:
        tmp.write_bytes(data)


__all__ = ["OutputError", "atomic_file", "atomic_folder", "check_output", "clean_litter",
           "fsync_tree",
           "write_file"]
