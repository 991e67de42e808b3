"""Mutations of files refq wrote: bytes, JSON trees, text lines and the file system.

Every mutation takes a :class:`Chooser` — the source of its decisions — so the same code is
driven by hypothesis in the tests (:class:`DataChooser`, shrinkable) and by a seeded
``random.Random`` in ``tools/fuzz_readers.py`` (:class:`RandomChooser`). A mutation
returns a short label (``"json:drop $.ops[3].params.out_format"``) for reports.
"""

from __future__ import annotations

import json
import os
import random
import shutil
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any, Protocol, TypeVar

T = TypeVar("T")

DEEP = 100_000
SPECIAL_NUMBERS: tuple[Any, ...] = (
    0, -1, 1, 2**31, -(2**31) - 1, 2**63, -(2**63) - 1, 10**30, 2**40, 0.5, -0.0, 1e308,
    4.5, 1e-300, 4294967300,
)
SPECIAL_TEXT: tuple[str, ...] = (
    "NaN", "Infinity", "-Infinity", "1e999", "-1e999", "9" * 5000,
)


class Chooser(Protocol):
    def integer(self, lo: int, hi: int) -> int: ...

    def choice(self, options: Sequence[T]) -> T: ...


class RandomChooser:
    def __init__(self, seed: int) -> None:
        self.rng = random.Random(seed)

    def integer(self, lo: int, hi: int) -> int:
        return self.rng.randint(lo, hi)

    def choice(self, options: Sequence[T]) -> T:
        return options[self.rng.randrange(len(options))]


class DataChooser:
    """Decisions drawn from hypothesis's ``data`` (so failures shrink)."""

    def __init__(self, data: Any) -> None:
        from hypothesis import strategies as st

        self.data, self.st = data, st

    def integer(self, lo: int, hi: int) -> int:
        return int(self.data.draw(self.st.integers(lo, hi)))

    def choice(self, options: Sequence[T]) -> T:
        return options[self.integer(0, len(options) - 1)]


# ----------------------------------------------------------------------------- bytes


def mutate_bytes(raw: bytes, c: Chooser) -> tuple[bytes, str]:
    n = len(raw)
    op = c.choice(("truncate", "flip", "delete", "insert", "replace", "duplicate", "empty",
                   "non-utf8", "append", "digit"))
    pos = c.integer(0, max(n - 1, 0))
    if op == "truncate":
        return raw[:pos], f"bytes:truncate@{pos}"
    if op == "flip" and n:
        bit = c.integer(0, 7)
        return raw[:pos] + bytes([raw[pos] ^ (1 << bit)]) + raw[pos + 1:], f"bytes:flip@{pos}.{bit}"
    if op == "delete" and n:
        return raw[:pos] + raw[pos + 1:], f"bytes:delete@{pos}"
    if op == "insert":
        b = c.integer(0, 255)
        return raw[:pos] + bytes([b]) + raw[pos:], f"bytes:insert@{pos}={b}"
    if op == "replace" and n:
        b = c.integer(0, 255)
        return raw[:pos] + bytes([b]) + raw[pos + 1:], f"bytes:replace@{pos}={b}"
    if op == "duplicate" and n:
        end = min(n, pos + c.integer(1, 64))
        return raw[:end] + raw[pos:end] + raw[end:], f"bytes:duplicate@{pos}:{end}"
    if op == "empty":
        return b"", "bytes:empty"
    if op == "non-utf8":
        junk = c.choice((b"\xff", b"\xc3", b"\xed\xa0\x80", b"\x00", b"\xef\xbb\xbf"))
        return raw[:pos] + junk + raw[pos:], f"bytes:non-utf8@{pos}"
    if op == "append":
        return raw + c.choice((b"x", b"\n0", b"}", b"\x00" * 8, b" 1")), "bytes:append"
    # a digit replaced by an Arabic-Indic digit (same value for int(), not for refq)
    digits = [i for i, b in enumerate(raw) if 48 <= b <= 57]
    if digits:
        i = digits[c.integer(0, len(digits) - 1)]
        arabic = chr(0x0660 + raw[i] - 48).encode()
        return raw[:i] + arabic + raw[i + 1:], f"bytes:arabic-digit@{i}"
    return raw + b"\n", "bytes:newline"


# ----------------------------------------------------------------------------- JSON


def _nodes(v: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Paths of every node of a JSON tree (lists sampled: at most 8 elements each)."""
    out = [where]
    if isinstance(v, dict):
        for k in v:
            out += _nodes(v[k], (*where, k))
    elif isinstance(v, list):
        idx = range(len(v)) if len(v) <= 8 else sorted({0, 1, len(v) // 2, len(v) - 1})
        for i in idx:
            out += _nodes(v[i], (*where, i))
    return out


def _get(v: Any, where: tuple[Any, ...]) -> Any:
    for p in where:
        v = v[p]
    return v


def _label(where: tuple[Any, ...]) -> str:
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in where)


def _typo(key: str, c: Chooser) -> str:
    if not key:
        return "x"
    i = c.integer(0, len(key) - 1)
    op = c.choice(("dup", "drop", "swap", "case"))
    if op == "dup":
        return key[: i + 1] + key[i] + key[i + 1:]
    if op == "drop" and len(key) > 1:
        return key[:i] + key[i + 1:]
    if op == "swap" and i + 1 < len(key):
        return key[:i] + key[i + 1] + key[i] + key[i + 2:]
    return key[:i] + key[i].swapcase() + key[i + 1:] if key[i].isalpha() else key + "_"


def _retype(v: Any, c: Chooser) -> Any:
    if isinstance(v, bool):
        return c.choice((int(v), str(v).lower(), None))
    if isinstance(v, int):
        return c.choice((float(v), str(v), [v], None, True))
    if isinstance(v, float):
        return c.choice((str(v), [v], None, int(v) if abs(v) < 1e18 else 0))
    if isinstance(v, str):
        return c.choice((1, [v], {v: v} if v else {}, None, v + " ", v.upper(), ""))
    if isinstance(v, list):
        return c.choice(({}, "x", None, v[:1] * 0, [v]))
    if isinstance(v, dict):
        return c.choice(([], "x", None, list(v.values())[:1]))
    return 0


def mutate_json(text: str, c: Chooser, dumps: Callable[[Any], str]) -> tuple[str, str]:
    """A mutation of the parsed tree, written back with ``dumps`` (the writer's own
    spelling), or a textual one (duplicate key, NaN, deep nesting)."""
    tree = json.loads(text)
    paths = _nodes(tree)
    where = c.choice(paths)
    node = _get(tree, where)
    parent = _get(tree, where[:-1]) if where else None
    key = where[-1] if where else None
    op = c.choice(("drop", "rename", "retype", "number", "text-number", "grow", "shrink",
                   "deep", "dup-key", "huge-shape", "swap", "long-string", "add-key"))
    lab = _label(where)
    if op == "drop" and isinstance(parent, dict):
        del parent[key]
        return dumps(tree), f"json:drop {lab}"
    if op == "rename" and isinstance(parent, dict):
        parent[_typo(str(key), c)] = parent.pop(key)
        return dumps(tree), f"json:rename {lab}"
    if op == "add-key" and isinstance(node, dict):
        node[c.choice(("extra", "x", next(iter(node), "k") + "_"))] = c.choice((1, "a", None))
        return dumps(tree), f"json:add-key {lab}"
    if op == "retype" and parent is not None:
        parent[key] = _retype(node, c)
        return dumps(tree), f"json:retype {lab}"
    if op == "number" and parent is not None:
        parent[key] = c.choice(SPECIAL_NUMBERS)
        return dumps(tree), f"json:number {lab}={parent[key]!r}"
    if op == "text-number" and parent is not None:
        marker = "\"__REFQ_FUZZ__\""
        parent[key] = "__REFQ_FUZZ__"
        token = c.choice(SPECIAL_TEXT)
        return dumps(tree).replace(marker, token, 1), f"json:text {lab}={token[:12]}"
    if op == "grow" and isinstance(node, list):
        node.append(node[-1] if node else 0)
        return dumps(tree), f"json:grow {lab}"
    if op == "shrink" and isinstance(node, list) and node:
        node.pop(c.integer(0, len(node) - 1))
        return dumps(tree), f"json:shrink {lab}"
    if op == "deep" and parent is not None:
        marker = "\"__REFQ_FUZZ__\""
        parent[key] = "__REFQ_FUZZ__"
        return (dumps(tree).replace(marker, "[" * DEEP + "]" * DEEP, 1),
                f"json:deep {lab}")
    if op == "dup-key" and isinstance(parent, dict):
        out = dumps(tree)
        k = json.dumps(str(key))
        i = out.find(k + ":")
        if i >= 0:
            return out[:i] + f"{k}: 0, " + out[i:], f"json:dup-key {lab}"
    if op == "huge-shape" and isinstance(node, list) and node and all(
            isinstance(e, int) and not isinstance(e, bool) for e in node):
        node[c.integer(0, len(node) - 1)] = c.choice((2**40, 2**31, -5, 10**12))
        return dumps(tree), f"json:huge-shape {lab}"
    if op == "swap" and isinstance(parent, dict) and len(parent) > 1:
        other = c.choice([k for k in parent if k != key])
        parent[key], parent[other] = parent[other], parent[key]
        return dumps(tree), f"json:swap {lab}<->{other}"
    if op == "long-string" and parent is not None and isinstance(node, str):
        parent[key] = node * 1000 + "x"
        return dumps(tree), f"json:long-string {lab}"
    if parent is not None:  # fallback: retype
        parent[key] = _retype(node, c)
        return dumps(tree), f"json:retype {lab}"
    return dumps([tree]), "json:wrap-root"


# ----------------------------------------------------------------------------- text lines


def mutate_text(text: str, c: Chooser) -> tuple[str, str]:
    """Line-oriented edits of refq's text exports (hex, C headers)."""
    lines = text.split("\n")
    i = c.integer(0, max(len(lines) - 2, 0))
    line = lines[i]
    op = c.choice(("sign", "prefix", "upper", "space", "octal", "comment", "expr", "digit",
                   "dup-line", "drop-line", "blank", "long-number", "crlf", "tab"))
    if op == "sign":
        j = _digit_pos(line, c)
        line = line[:j] + c.choice(("+", "-", "- ")) + line[j:]
    elif op == "prefix":
        j = _digit_pos(line, c)
        line = line[:j] + c.choice(("0x", "0", "0b", "'h")) + line[j:]
    elif op == "upper":
        line = line.upper()
    elif op == "space":
        j = c.integer(0, len(line))
        line = line[:j] + " " + line[j:]
    elif op == "octal":
        j = _digit_pos(line, c)
        line = line[:j] + "0" + line[j:]
    elif op == "comment":
        j = c.integer(0, len(line))
        line = line[:j] + c.choice(("/* x */", "// x", "#")) + line[j:]
    elif op == "expr":
        j = _digit_pos(line, c)
        line = line[:j] + c.choice(("1+", "2*", "(", "~")) + line[j:]
    elif op == "digit":
        j = _digit_pos(line, c)
        if j < len(line) and line[j].isdigit():
            line = line[:j] + str((int(line[j]) + c.integer(1, 9)) % 10) + line[j + 1:]
    elif op == "dup-line":
        lines.insert(i, line)
    elif op == "drop-line":
        lines.pop(i)
        return "\n".join(lines), f"text:drop-line@{i + 1}"
    elif op == "blank":
        lines.insert(i, "")
    elif op == "long-number":
        j = _digit_pos(line, c)
        line = line[:j] + "9" * c.choice((19, 20, 40)) + line[j:]
    elif op == "crlf":
        line = line + "\r"
    elif op == "tab":
        line = "\t" + line
    lines[i] = line
    return "\n".join(lines), f"text:{op}@{i + 1}"


def _digit_pos(line: str, c: Chooser) -> int:
    pos = [j for j, ch in enumerate(line) if ch.isdigit() or ch in "abcdef"]
    return c.choice(pos) if pos else 0


# ----------------------------------------------------------------------------- file system


def mutate_fs(path: Path, root: Path, c: Chooser) -> str:
    """Replace the file ``path`` by something that is not a regular file of its own."""
    op = c.choice(("fifo", "dev-zero", "link-outside", "missing", "folder", "link-inside"))
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif os.path.lexists(path):
        path.unlink()
    if op == "fifo":
        os.mkfifo(path)
    elif op == "dev-zero":
        path.symlink_to("/dev/zero")
    elif op == "link-outside":
        outside = root.parent / f"outside-{path.name}"
        outside.write_bytes(b"{}\n")
        path.symlink_to(outside)
    elif op == "folder":
        path.mkdir()
    elif op == "link-inside":
        others = [p for p in sorted(root.rglob("*")) if p.is_file() and p != path]
        if others:
            path.symlink_to(os.path.relpath(c.choice(others), path.parent))
        else:
            os.mkfifo(path)
    return f"fs:{op}"


__all__ = ["DEEP", "Chooser", "DataChooser", "RandomChooser", "mutate_bytes", "mutate_fs",
           "mutate_json", "mutate_text"]
