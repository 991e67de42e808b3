"""Registered is not committed: the extended cases (per-method attention/MLP parts, the
full-depth deit_tiny) are in the registry, generated on request, verifiable like any other
case — and left out of the default selection, i.e. out of golden/ (22 MiB budget)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refq.golden import cases, diff, export, generate, select, verify
from refq.golden.case import read_case
from refq.golden.cases_program import TINY_FULL_NAME, TINY_NAME, program_of
from refq.golden.manifest import read_manifest
from refq.program.run import run

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
METHODS = ("minmax", "ptq4vit", "tsptq", "dopq", "ias", "repq", "fqvit")  # issue #7, item 1
PARTS = ("attention", "mlp", "encoder")
EXTENDED = ("block.deit_digits.repq.w8a8.attention", "block.deit_digits.ias.w4a4.mlp")


def test_every_method_width_and_part_is_registered() -> None:
    table = cases()
    for method in METHODS:
        for wa in ("w8a8", "w4a4"):
            for part in PARTS:
                name = f"block.deit_digits.{method}.{wa}.{part}"
                assert name in table, name
                assert table[name].kind == "block"
                # committed: every method's encoder (min-max's too); the parts extended
                assert table[name].committed == (part == "encoder"), name
    assert table[TINY_NAME].committed and not table[TINY_FULL_NAME].committed


def test_default_selection_is_exactly_the_committed_folder() -> None:
    committed = set(read_manifest(GOLDEN)["cases"])
    assert {e.name for e in select(None)} == committed
    assert {p.name for p in GOLDEN.iterdir() if p.is_dir()} == committed
    everything = {e.name for e in select(None, include_extended=True)}
    assert everything == set(cases()) and everything > committed
    assert not {n for n, e in cases().items() if not e.committed} & committed
    # a pattern matches over every registered case, extended ones included
    assert {e.name for e in select("block.deit_digits.ias.w4a4.*")} == {
        f"block.deit_digits.ias.w4a4.{p}" for p in PARTS
    }


def test_extended_part_cases_generate_verify_and_equal_the_encoder_case(tmp_path: Path) -> None:
    """One attention and one MLP part, generated into a fresh folder: they verify (hash and
    re-computation), re-run from their own files, and every tensor is the committed encoder
    case's tensor of that name (read from golden/, not from the generator)."""
    out = tmp_path / "ext"
    generate(out, ",".join(EXTENDED), progress=False)
    assert sorted(read_manifest(out)["cases"]) == sorted(EXTENDED)
    results = verify(out, progress=False)
    assert len(results) == 2 and all(r.ok for r in results), [r.problems for r in results]
    roles: dict[str, dict[str, str]] = {}
    for name in EXTENDED:
        case = read_case(out / name)
        enc = read_case(GOLDEN / (name.rsplit(".", 1)[0] + ".encoder"))
        part = name.rsplit(".", 1)[1]
        assert case.meta["block"]["part"] == part and case.meta["block"]["tokens"] == 17
        assert set(case.tensors) < set(enc.tensors)
        for n, t in case.tensors.items():
            np.testing.assert_array_equal(t.values, enc.tensors[n].values, strict=True)
            assert t.fmt == enc.tensors[n].fmt
        prog, inputs = program_of(case)
        got = run(prog, inputs)
        for n, t in case.tensors.items():
            if t.role in ("intermediate", "output"):
                np.testing.assert_array_equal(got[n], t.values.astype(np.int64), strict=True)
        roles[part] = {n: t.role for n, t in case.tensors.items()}
    assert roles["attention"]["blocks.0.add1"] == "output"
    assert roles["attention"]["embed"] == "input"
    assert roles["mlp"]["blocks.0.add1"] == "input" and roles["mlp"]["blocks.0.add2"] == "output"
    assert not any(n.startswith("blocks.0.mlp.") for n in roles["attention"])
    assert not any(n.startswith("blocks.0.attn.") for n in roles["mlp"])
    # diff and export take any generated folder
    report = diff(out, out)
    assert set(report) == set(EXTENDED) and all(r.equal for rows in report.values() for r in rows)
    assert export(out, "hex", tmp_path / "hex") > 0


def test_cli_list_marks_committed_and_extended(capsys: pytest.CaptureFixture[str]) -> None:
    from refq.cli import main

    assert main(["golden", "list", "--only", "block.deit_digits.repq.w8a8.*"]) == 0
    lines = capsys.readouterr().out.splitlines()
    marks = {ln.split()[0]: ln.split()[1] for ln in lines[:-1]}
    assert marks == {
        "block.deit_digits.repq.w8a8.attention": "extended",
        "block.deit_digits.repq.w8a8.encoder": "committed",
        "block.deit_digits.repq.w8a8.mlp": "extended",
    }
    assert lines[-1] == "3 registered: 1 committed, 2 extended"


def test_cli_generate_only_reaches_extended_cases(tmp_path: Path) -> None:
    from refq.cli import main

    out = tmp_path / "g"
    assert main(["golden", "generate", "--out", str(out), "--quiet",
                 "--only", "block.deit_digits.tsptq.w4a4.mlp"]) == 0
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert manifest["cases"] == {"block.deit_digits.tsptq.w4a4.mlp": "block"}
    assert main(["golden", "verify", str(out), "--quiet"]) == 0


@pytest.mark.slow
def test_full_depth_deit_tiny_generates_and_verifies(tmp_path: Path) -> None:
    """The depth-12 deit_tiny case (extended: ~80 MB with every intermediate): generated,
    verified by re-computation, re-run by hand from its files."""
    out = tmp_path / "tiny"
    generate(out, TINY_FULL_NAME, progress=False)
    assert all(r.ok for r in verify(out, progress=False))
    case = read_case(out / TINY_FULL_NAME)
    shapes = {n: t.values.shape for n, t in case.tensors.items()}
    assert shapes["input"] == (1, 3, 224, 224) and shapes["head"] == (1, 1000)
    assert sum(n.endswith(".add2") for n in shapes) == 12
    assert shapes["blocks.11.add2"] == (1, 197, 192)
    assert shapes["blocks.11.attn.softmax"] == (1, 3, 197, 197)
    prog, inputs = program_of(case)
    got = run(prog, inputs)
    stored = {n: t for n, t in case.tensors.items() if t.role in ("intermediate", "output")}
    assert set(stored) == set(got) - set(inputs)  # every intermediate is stored
    for n, t in stored.items():
        np.testing.assert_array_equal(got[n], t.values.astype(np.int64), strict=True)
