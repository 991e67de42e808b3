"""The ``refq`` command line: --version, --help, demo."""

from __future__ import annotations

import subprocess
import sys

import pytest

from refq import __version__
from refq.cli import main


def test_version(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["--version"])
    assert info.value.code == 0
    assert capsys.readouterr().out.strip() == f"refq {__version__}"


def test_help_lists_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    assert "demo" in capsys.readouterr().out


def test_console_script_runs() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "refq", "--help"], capture_output=True, text=True, check=True
    )
    assert "usage: refq" in out.stdout


def test_unknown_command_is_an_error(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as info:
        main(["no-such-command"])
    assert info.value.code == 2


def test_help_lists_model_commands(capsys: pytest.CaptureFixture[str]) -> None:
    assert main([]) == 0
    out = capsys.readouterr().out
    for name in ("demo", "eval", "quantize", "report", "golden"):
        assert name in out


def test_help_imports_nothing_heavy() -> None:
    code = ("import sys; from refq.cli import build_parser; build_parser(); "
            "print(sorted(m for m in ('refq.methods', 'refq.program', 'refq.nn', 'tqdm', "
            "'matplotlib') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True)
    assert out.stdout.strip() == "[]"
