"""Bounded reads: regular files only, sizes capped, links kept inside their folder.

Every refq reader opens its files through :func:`read_bytes`: a FIFO, a device
(``/dev/zero``), a socket or a folder in place of a file is refused before a byte is read
(the file is opened non-blocking and checked with ``fstat``, so a FIFO cannot hang the
reader); a file larger than the format's cap is refused before it is read; a symbolic link
inside a folder being read (a program, spec or golden folder) must resolve to a file inside
that folder. Errors are the caller's RefqError subclass and name the file.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Callable
from pathlib import Path

from refq.errors import RefqError, SpecError

MiB = 1 << 20
_KINDS = (
    (stat.S_ISDIR, "a folder"),
    (stat.S_ISFIFO, "a FIFO"),
    (stat.S_ISCHR, "a character device"),
    (stat.S_ISBLK, "a block device"),
    (stat.S_ISSOCK, "a socket"),
)


def _kind(mode: int) -> str:
    return next((name for test, name in _KINDS if test(mode)), "not a regular file")


def inside(path: Path, root: Path) -> bool:
    """Whether ``path`` (links resolved) lies inside ``root`` (links resolved). A path
    written below ``root`` none of whose parts below it is a link is inside without
    resolving anything (one ``lstat`` per part)."""
    try:
        rel = Path(path).relative_to(root)
    except ValueError:
        rel = None
    if rel is not None and ".." not in rel.parts:
        try:
            p = Path(root)
            for part in rel.parts:
                p = p / part
                if stat.S_ISLNK(os.lstat(p).st_mode):
                    break
            else:
                return True
        except OSError:
            pass
    try:
        real, base = os.path.realpath(path), os.path.realpath(root)
    except (OSError, ValueError):
        return False
    return real == base or real.startswith(base.rstrip(os.sep) + os.sep)


def _stat(path: Path, how: Callable[[Path], os.stat_result], error: type[RefqError],
          missing: str, parent_is_file: str) -> os.stat_result:
    """``how(path)`` (os.stat or os.lstat), or ``error``: "path: ``missing``" when there is
    nothing there, "path: ``parent_is_file``" when a parent is not a folder, "cannot read"
    otherwise."""
    try:
        return how(path)
    except FileNotFoundError:
        raise error(f"{path}: {missing}") from None
    except NotADirectoryError:
        raise error(f"{path}: {parent_is_file}") from None
    except (OSError, ValueError) as exc:
        raise error(f"{path}: cannot read ({exc})") from None


def read_bytes(path: Path | str, limit: int, root: Path | None = None,
               error: type[RefqError] = SpecError, what: str = "file") -> bytes:
    """The bytes of the regular file ``path`` (at most ``limit`` bytes), or ``error``.

    ``root``: the folder being read; ``path`` (after following links) must lie inside it.
    """
    path = Path(path)
    st = _stat(path, os.lstat, error, f"missing ({what})",
               f"missing ({what}; a parent is a file)")
    if root is not None and not inside(path, root):
        raise error(f"{path}: a link leading outside {root}; refused")
    if not stat.S_ISLNK(st.st_mode) and not stat.S_ISREG(st.st_mode):
        raise error(f"{path}: {_kind(st.st_mode)}, not a regular file ({what})")
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_CLOEXEC", 0)
    flags |= getattr(os, "O_BINARY", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise error(f"{path}: missing ({what}; a broken link?)") from None
    except OSError as exc:
        raise error(f"{path}: cannot open ({exc.strerror})") from None
    try:
        fst = os.fstat(fd)
        if not stat.S_ISREG(fst.st_mode):
            raise error(f"{path}: {_kind(fst.st_mode)}, not a regular file ({what})")
        if fst.st_size > limit:
            raise error(f"{path}: {fst.st_size} bytes, more than the {limit} a {what} may "
                        "have")
        chunks = []
        total = 0
        while True:
            block = os.read(fd, min(limit + 1 - total, 1 << 24) or 1)
            if not block:
                break
            chunks.append(block)
            total += len(block)
            if total > limit:
                raise error(f"{path}: more than the {limit} bytes a {what} may have")
        return b"".join(chunks)
    except OSError as exc:
        raise error(f"{path}: cannot read ({exc.strerror})") from None
    finally:
        os.close(fd)


def require_folder(path: Path | str, error: type[RefqError] = SpecError,
                   what: str = "folder") -> Path:
    """``path`` as a Path if it is a folder (links followed), else ``error`` saying what it
    is instead."""
    path = Path(path)
    st = _stat(path, os.stat, error, f"no such {what}", f"no such {what} (a parent is a file)")
    if not stat.S_ISDIR(st.st_mode):
        kind = "a file" if stat.S_ISREG(st.st_mode) else _kind(st.st_mode)
        raise error(f"{path}: {kind}, not a {what}")
    return path


def member(root: Path, rel: str, error: type[RefqError] = SpecError) -> Path:
    """``root / rel`` for a relative POSIX path that stays inside ``root`` (no absolute path,
    no ``..``, no empty or hidden part), else ``error``."""
    parts = rel.split("/")
    if (not rel or rel.startswith("/") or "\\" in rel or "\x00" in rel
            or any(p in ("", ".", "..") for p in parts)):
        raise error(f"{root}: file name {rel!r} leaves its folder or is malformed")
    return root.joinpath(*parts)


__all__ = ["MiB", "inside", "member", "read_bytes", "require_folder"]
