"""Surprises a first-time user met, each pinned: a legend under every table, unknown or
abbreviated options refused with a suggestion, and the demo's golden folder removed unless
asked for. (Data that does not fit the model: tests/sweep/test_sweep.py.)"""

from __future__ import annotations

from pathlib import Path

import pytest

from refq.cli import main
from refq.commands.eval import Row, table

# -- tables carry a legend ------------------------------------------------------------------

def test_accuracy_tables_say_what_delta_is() -> None:
    rows = [Row("minmax", "W8A8", 0.9, 0.8, 0.7)]
    with_int = table(rows, integer=True).splitlines()
    without = table(rows, integer=False).splitlines()
    assert with_int[2].split("|")[-2].strip() == "-10.00"  # integer − fake-quant
    assert without[2].split("|")[-2].strip() == "-10.00"  # fake-quant − FP
    assert with_int[3].startswith("top-1 in %; Δ = integer − fake-quant, in percentage points")
    assert without[3].startswith("top-1 in %; Δ = fake-quant − FP, in percentage points")


@pytest.mark.parametrize("integer", [True, False])
def test_sweep_tables_say_what_delta_is(integer: bool) -> None:
    from refq.sweep.report import Line, Setup, Value, text

    line = Line("minmax", "W8A8", {}, fp=Value(0.9), fq=Value(0.8),
                integer=Value(0.7) if integer else None)
    describe = {"model": "m", "data": "d", "images": 1, "limit": None, "labels": "l",
                "seed": 0, "calib": 1, "shard_size": 1, "refq": "0"}
    lines = text([Setup(describe, [line], integer=integer)]).splitlines()
    assert lines[3].split("|")[-2].strip() == "-10.00"
    want = "integer − fake-quant" if integer else "fake-quant − FP"
    assert lines[4].startswith(f"top-1 in %; Δ = {want}, in percentage points; CPU s = ")


def test_eval_prints_the_legend_under_its_table(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--methods", "minmax", "--limit", "4", "--calib", "2", "--quiet"]) == 0
    lines = capsys.readouterr().out.splitlines()
    row = next(i for i, ln in enumerate(lines) if ln.startswith("minmax"))
    assert lines[row + 1].startswith("top-1 in %; Δ = fake-quant − FP")


# -- options are spelled in full; unknown ones get a suggestion ------------------------------

@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["eval", "--integr"], "--integr (did you mean --integer?)"),
        (["eval", "--int"], "--int (did you mean --integer?)"),  # no silent prefix match
        (["eval", "--bitz", "W4A4"], "--bitz (did you mean --bits?) W4A4"),
        (["golden", "export", "golden", "--format", "hex", "--onl", "x"],
         "--onl (did you mean --only?)"),
        (["check", "--backend", "reference", "--exampels", "3"], "did you mean --examples?"),
        (["demo", "--kep"], "--kep (did you mean --keep?)"),
    ],
)
def test_unknown_options_get_a_suggestion(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str]
) -> None:
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert needle in err and f"refq {' '.join(argv[:2 if argv[0] == 'golden' else 1])}" in err


def test_every_parser_refuses_abbreviations() -> None:
    import argparse

    from refq.cli import build_parser

    def walk(p: argparse.ArgumentParser) -> list[argparse.ArgumentParser]:
        out = [p]
        for a in p._actions:
            if isinstance(a, argparse._SubParsersAction):
                for sub in a.choices.values():
                    out += walk(sub)
        return out

    parsers = walk(build_parser())
    assert len(parsers) > 10 and all(not p.allow_abbrev for p in parsers)


# -- refq demo: where the files go ---------------------------------------------------------

@pytest.mark.parametrize("keep", [False, True])
def test_demo_removes_its_temporary_golden_folder_unless_kept(
    keep: bool, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    import tempfile

    made: list[Path] = []

    def mkdtemp(prefix: str = "") -> str:
        made.append(tmp_path / f"{prefix}x")
        made[-1].mkdir()
        return str(made[-1])

    monkeypatch.setattr(tempfile, "mkdtemp", mkdtemp)
    argv = ["demo", "--quick", "--quiet", *(["--keep"] if keep else [])]
    assert main(argv) == 0
    out = capsys.readouterr().out
    assert len(made) == 1 and made[0].name == "refq-demo-x"
    golden = made[0] / "golden"
    if keep:
        assert f"kept in {golden}" in out and (golden / "MANIFEST.json").is_file()
    else:
        assert f"removed {golden} at the end" in out and not made[0].exists()


# -- --opt keys are checked for every method before any work --------------------------------

@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["--opt", "ptq4vit.metrc=cosine"],
         "ptq4vit has no option 'metrc' (did you mean ptq4vit.metric?); ptq4vit takes "
         "calib_sub, hessian_loss, metric, n, patch_embed, rounds, sequential"),
        (["--methods", "minmax", "--opt", "ptq4vit.metric=cosine"],
         "ptq4vit is not run here (methods: minmax); add it to --methods or drop the option"),
        (["--opt", "ptq4vt.n=3"], "unknown method 'ptq4vt' (did you mean 'ptq4vit'?)"),
        (["--opt", "ias.sos_iter=5"], "(did you mean ias.sos_iters?); ias takes arith, "
         "calib_sub, quantize_input, sos, sos_batch, sos_iters, sos_lr, sos_zero_point, sulq, "
         "weight_percentiles"),
        (["--methods", "minmax", "--opt", "minmax.n=1"], "minmax takes no options"),
    ],
)
def test_recipe_options_are_checked_before_any_work(
    argv: list[str], needle: str, capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    import refq.commands.eval as ev

    def no_work(*a: object, **k: object) -> None:
        raise AssertionError("data loaded before the options were checked")

    monkeypatch.setattr(ev, "load_workload", no_work)
    assert main(["eval", *argv]) == 2
    out, err = capsys.readouterr()
    assert needle in err and out == ""


def test_sweep_checks_recipe_options_too(tmp_path: Path,
                                         capsys: pytest.CaptureFixture[str]) -> None:
    db = tmp_path / "r.sqlite"
    assert main(["sweep", "--methods", "minmax", "--opt", "ias.sos=false", "--workers", "0",
                 "--results", str(db)]) == 2
    assert "ias is not run here (methods: minmax)" in capsys.readouterr().err
    assert not db.exists()
