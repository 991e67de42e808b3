"""refq.program.run, its execution plan, the movement ops and refq.ops touch no floats
(numeric contract 4)."""

from __future__ import annotations

from tests.float_scan import scan

INTERPRETER = ("run", "movement", "plan", "context", "steps", "chains", "stages",
               "move_stages", "sources", "carriers")
"""Every module refq.program.run executes (the plan and its steps included)."""


def test_interpreter_and_movement_are_float_free() -> None:
    for module in INTERPRETER:
        assert scan(f"program/{module}") == [], module
    # program/ir.py is not scanned: TensorDecl.scale holds the real scale as information
    # for humans and gap reports; run() never reads it (and run.py is scanned above).


def test_ops_are_float_free() -> None:
    assert scan("ops") == []
