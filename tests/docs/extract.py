"""Shell commands documented in README.md and docs/**/*.md, as the tests run them.

A command is one complete shell command of a fenced block tagged ``bash``, ``sh``,
``shell`` or ``console`` (``console``: the lines after a ``$ `` prompt; other lines are
output). Backslash continuations are joined and lines are grouped until ``bash -n`` accepts
them, so a ``for … done`` loop over several lines is one command; comment-only lines are
dropped. Blocks tagged otherwise (``text``, ``python``, ``json`` …) are not commands.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHELL = ("bash", "sh", "shell", "console")
_FENCE = re.compile(r"^( {0,3})(`{3,}|~{3,})\s*([^`\s]*)")
COMMAND_WORDS = ("refq", "python", "python3", "pip", "bash", "export", "nice", "cd", "git",
                 "for", "HYPOTHESIS_PROFILE=")


@dataclass(frozen=True)
class Block:
    page: str  # relative to the repository root
    line: int  # 1-based line of the opening fence
    lang: str
    lines: tuple[tuple[int, str], ...]  # (1-based line number, text) of the body

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


@dataclass(frozen=True)
class Command:
    page: str
    line: int  # 1-based line of the command's first line in the page
    text: str
    block: str  # the Block id

    @property
    def id(self) -> str:
        return f"{self.page}:{self.line}"


def pages(root: Path = ROOT) -> list[Path]:
    """README.md and every page under docs/ (new pages are picked up automatically)."""
    return [root / "README.md", *sorted((root / "docs").rglob("*.md"))]


def blocks(path: Path, root: Path = ROOT) -> list[Block]:
    """Every fenced code block of a Markdown page."""
    rel = path.relative_to(root).as_posix()
    lines = path.read_text().splitlines()
    out: list[Block] = []
    i = 0
    while i < len(lines):
        m = _FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        fence, lang, start = m.group(2), m.group(3).lower(), i
        body: list[tuple[int, str]] = []
        i += 1
        while i < len(lines) and not (
            lines[i].lstrip().startswith(fence[0] * len(fence))
            and lines[i].strip() == lines[i].strip()[0] * len(lines[i].strip())
        ):
            body.append((i + 1, lines[i]))
            i += 1
        out.append(Block(rel, start + 1, lang, tuple(body)))
        i += 1
    return out


def _complete(text: str) -> bool:
    return subprocess.run(["bash", "-n", "-c", text], capture_output=True).returncode == 0


def commands(block: Block) -> list[Command]:
    """The shell commands of a ``bash``/``sh``/``shell``/``console`` block, in order."""
    if block.lang not in SHELL:
        return []
    logical: list[tuple[int, str]] = []
    pending: tuple[int, str] | None = None
    for number, raw in block.lines:
        text = raw
        if block.lang == "console":
            if pending is None and not raw.lstrip().startswith("$ "):
                continue  # output
            text = raw.lstrip()[2:] if pending is None else raw
        if pending is not None:
            pending = (pending[0], pending[1][:-1] + text.strip())
        else:
            pending = (number, text.strip())
        if not pending[1].endswith("\\"):
            logical.append(pending)
            pending = None
    if pending is not None:
        logical.append(pending)
    out: list[Command] = []
    group: list[tuple[int, str]] = []
    for number, text in logical:
        if not group and (not text or text.startswith("#")):
            continue
        group.append((number, text))
        joined = "\n".join(t for _, t in group)
        if _complete(joined):
            out.append(Command(block.page, group[0][0], joined, block.id))
            group = []
    if group:
        raise ValueError(f"{block.id}: incomplete shell command: {group[0][1]!r}")
    return out


def documented_commands(root: Path = ROOT) -> list[Command]:
    return [c for p in pages(root) for b in blocks(p, root) for c in commands(b)]


def untagged_commands(path: Path, root: Path = ROOT) -> list[tuple[int, str]]:
    """(line, text) of lines that look like shell commands but are not in a shell block:
    in a fence without a language, or in an indented code block."""
    found: list[tuple[int, str]] = []
    fenced: set[int] = set()
    for b in blocks(path, root):
        fenced.update(range(b.line, b.line + len(b.lines) + 2))
        if b.lang == "":
            found += [(n, t) for n, t in b.lines if _looks_like_command(t.strip())]
    lines = path.read_text().splitlines()
    for i, text in enumerate(lines):
        n = i + 1
        if n in fenced or not text.startswith("    ") or text.lstrip().startswith(("-", "*")):
            continue
        previous = lines[i - 1] if i else ""
        if previous.strip() and not previous.startswith("    "):
            continue  # a continuation line of a paragraph or list item, not code
        if _looks_like_command(text.strip()):
            found.append((n, text.strip()))
    return found


def _looks_like_command(text: str) -> bool:
    return any(text == w or text.startswith(w if w.endswith("=") else f"{w} ")
               for w in COMMAND_WORDS)


__all__ = ["ROOT", "SHELL", "Block", "Command", "blocks", "commands", "documented_commands",
           "pages", "untagged_commands"]
