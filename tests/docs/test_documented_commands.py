"""Every shell command of README.md and docs/**/*.md runs, so a documented command cannot
break silently. How commands are found: tests/docs/extract.py; how slow or unrunnable ones
are marked: tests/docs/marks.py; the convention for writers: tests/docs/README.md.

Each page's commands run in page order in a fresh scratch copy of the repository (its
committed and untracked files, golden/ included), from the copy's root, with ``python`` and
``refq`` resolving to this interpreter and the copy's refq (PYTHONPATH), one BLAS thread,
each required to exit 0. A quick command over FAST_CPU_SECONDS of CPU time is reported
with a warning (a budget, not a verdict: CPU time grows on a loaded machine).
"""

from __future__ import annotations

import fnmatch
import importlib.util
import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import warnings
from collections import defaultdict
from pathlib import Path

import pytest

from .extract import ROOT, Command, documented_commands, pages, untagged_commands
from .marks import FAST_CPU_SECONDS, MARKS, NEEDS, Mark

COMMANDS = documented_commands()
CI = os.environ.get("CI") == "true"
_SKIP_COPY = {".git", "__pycache__", ".mypy_cache", ".ruff_cache", ".pytest_cache",
              ".hypothesis", "build", "dist", "refq-check-failures"}


def _uncommented(text: str) -> str:
    """``text`` without trailing ``  # comments`` (outside quotes), line by line."""
    lines = []
    for line in text.splitlines():
        quote = ""
        for i, ch in enumerate(line):
            if quote:
                quote = "" if ch == quote else quote
            elif ch in "'\"":
                quote = ch
            elif ch == "#" and (i == 0 or line[i - 1].isspace()):
                line = line[:i]
                break
        lines.append(line.rstrip())
    return "\n".join(lines)


def _applies(m: Mark, command: Command, text: str) -> bool:
    return fnmatch.fnmatchcase(command.page, m.page) and re.search(m.pattern, text) is not None


def stripped(command: Command) -> str:
    """The command after its ``strip`` marks, comments removed: what marks are matched on."""
    text = _uncommented(command.text)
    for m in MARKS:
        if m.kind == "strip" and _applies(m, command, text):
            text = re.sub(m.pattern, "", text)
    return text


def marks_of(command: Command) -> list[Mark]:
    text = stripped(command)
    return [m for m in MARKS if m.kind != "strip" and _applies(m, command, text)]


def kind_of(command: Command) -> str:
    """"fast", "slow", "skip" or "collect"."""
    kinds = {m.kind for m in marks_of(command)}
    if len(kinds) > 1:
        raise AssertionError(f"{command.id}: marked {sorted(kinds)} by tests/docs/marks.py")
    return kinds.pop() if kinds else "fast"


def runnable_text(command: Command, full: bool) -> str:
    text = stripped(command)
    if kind_of(command) == "collect" and not full:
        text += " --collect-only -q"
    return text


def missing_needs(command: Command) -> list[str]:
    missing = []
    for need in NEEDS:
        if not re.search(need.pattern, command.text):
            continue
        for what in need.needs:
            if what.startswith("exe:"):
                if shutil.which(what[4:]) is None:
                    missing.append(what[4:])
            elif importlib.util.find_spec(what) is None:
                missing.append(what)
    return missing


PAGES: dict[str, list[Command]] = defaultdict(list)  # a page's commands, in page order
for _c in COMMANDS:
    PAGES[_c.page].append(_c)
FAST = [p for p, cs in PAGES.items() if any(kind_of(c) in ("fast", "collect") for c in cs)]
SLOW = [p for p, cs in PAGES.items() if any(kind_of(c) in ("slow", "collect") for c in cs)]
SKIPPED = [c for c in COMMANDS if kind_of(c) == "skip"]


def _source_files() -> list[Path]:
    """Committed and untracked (not ignored) files of the checkout, else every file."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True,
        ).stdout.decode()
        return [Path(p) for p in out.split("\0") if p and (ROOT / p).is_file()]
    except (OSError, subprocess.CalledProcessError):
        return [p.relative_to(ROOT) for p in ROOT.rglob("*") if p.is_file()
                and not _SKIP_COPY & set(p.relative_to(ROOT).parts)]


@pytest.fixture(scope="module")
def source_files() -> list[Path]:
    files = _source_files()
    assert Path("README.md") in files and Path("golden/MANIFEST.json") in files
    return files


def _scratch(tmp: Path, files: list[Path]) -> tuple[Path, dict[str, str]]:
    repo = tmp / "repo"
    for rel in files:
        (repo / rel).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(ROOT / rel, repo / rel)
    shims = tmp / "bin"
    shims.mkdir()
    for name, line in (("python", f'exec "{sys.executable}" "$@"'),
                       ("python3", f'exec "{sys.executable}" "$@"'),
                       ("refq", f'exec "{sys.executable}" -m refq "$@"')):
        (shims / name).write_text(f"#!/usr/bin/env bash\n{line}\n")
        (shims / name).chmod((shims / name).stat().st_mode | stat.S_IXUSR)
    env = dict(os.environ)
    env.update(PATH=f"{shims}{os.pathsep}{env.get('PATH', '')}", PYTHONPATH=str(repo),
               OPENBLAS_NUM_THREADS="1", MPLBACKEND="Agg", PYTHONDONTWRITEBYTECODE="1")
    return repo, env


def _run_page(page: str, tmp: Path, files: list[Path], full: bool) -> None:
    kinds = ("fast", "collect", "slow") if full else ("fast", "collect")
    todo = [c for c in PAGES[page] if kind_of(c) in kinds]
    missing = sorted({m for c in todo for m in missing_needs(c)})
    if missing:
        if CI:
            pytest.fail(f"{page}: CI lacks {missing}")
        pytest.skip(f"{page} needs {', '.join(missing)} (CI installs it)")
    repo, env = _scratch(tmp, files)
    for c in todo:
        text = runnable_text(c, full)
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        out = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", text], cwd=repo, env=env,
                             capture_output=True, text=True,
                             timeout=None if full else 600)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        assert out.returncode == 0, (
            f"{c.id}: `{text}` exited {out.returncode}\n--- stdout\n{out.stdout[-4000:]}\n"
            f"--- stderr\n{out.stderr[-4000:]}"
        )
        if not full and kind_of(c) == "fast" and cpu > FAST_CPU_SECONDS:
            # a budget signal, not a verdict: CPU time grows on a loaded machine, and speed
            # is measured in tools/bench, never asserted in a test
            warnings.warn(f"{c.id}: `{text}` took {cpu:.1f} CPU-s (budget "
                          f"{FAST_CPU_SECONDS:.0f}); mark it slow in tests/docs/marks.py "
                          f"if it does so on an idle machine", stacklevel=1)


@pytest.mark.parametrize("page", FAST)
def test_documented_commands_run(page: str, tmp_path: Path, source_files: list[Path]) -> None:
    _run_page(page, tmp_path, source_files, full=False)


@pytest.mark.slow
@pytest.mark.parametrize("page", SLOW)
def test_documented_slow_commands_run(
    page: str, tmp_path: Path, source_files: list[Path]
) -> None:
    _run_page(page, tmp_path, source_files, full=True)


@pytest.mark.parametrize("command", SKIPPED, ids=[c.id for c in SKIPPED])
def test_unrunnable_commands_are_listed_with_their_reason(command: Command) -> None:
    reasons = "; ".join(m.reason for m in marks_of(command) if m.kind == "skip")
    assert reasons.strip()
    pytest.skip(f"not run: `{command.text[:80]}`: {reasons}".replace("\n", " / "))


def test_commands_are_found_in_readme_and_docs() -> None:
    found = {c.page for c in COMMANDS}
    assert "README.md" in found and any(p.startswith("docs/") for p in found)
    assert len(COMMANDS) >= 40
    assert any(_uncommented(c.text) == "refq golden list" for c in COMMANDS)


def test_every_mark_matches_a_documented_command() -> None:
    """A mark left behind by an edited page is an error, not a silent no-op."""
    for m in MARKS:
        assert m.reason.strip(), m
        assert m.kind in ("slow", "skip", "strip", "collect"), m
        texts = [(c, _uncommented(c.text) if m.kind == "strip" else stripped(c))
                 for c in COMMANDS]
        assert any(_applies(m, c, t) for c, t in texts), (
            f"tests/docs/marks.py: {m.pattern!r} matches nothing")
    for n in NEEDS:
        assert any(re.search(n.pattern, c.text) for c in COMMANDS), n


def test_no_command_hides_outside_a_shell_block() -> None:
    """Commands in an untagged fence or an indented block would escape these tests: tag the
    fence ``bash`` (run) or ``text`` (a synopsis or output, not run)."""
    found = [f"{p.relative_to(ROOT)}:{n}: {t}" for p in pages() for n, t in
             untagged_commands(p)]
    assert not found, "\n".join(found)
