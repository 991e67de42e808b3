"""refq eval / quantize / report / demo end to end, and bad input → exit 2 with a message."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from refq.cli import main
from refq.commands.demo import verify_golden
from refq.commands.eval import parse_bits
from refq.errors import GoldenError, SpecError
from refq.nn import load_bundled


@pytest.fixture(scope="module")
def folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny ImageFolder: 2 images each of digits 0, 1, 2 (32×32 grayscale PNG)."""
    root = tmp_path_factory.mktemp("imgs")
    _, data = load_bundled()
    test, labels = data.split("test")
    for digit in (0, 1, 2):
        (root / str(digit)).mkdir()
        idx = np.flatnonzero(labels == digit)[:2]
        for k, i in enumerate(idx):
            Image.fromarray(test[i, 0]).save(root / str(digit) / f"{k}.png")
    return root


def test_parse_bits() -> None:
    assert parse_bits("W8A8, w4a6,6") == [(8, 8), (4, 6), (6, 6)]
    for bad in ("W8X8", "W1A8", "W8A17", "", "eight"):
        with pytest.raises(SpecError):
            parse_bits(bad)


def test_eval_image_folder(folder: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["eval", "--data", str(folder), "--methods", "minmax", "--bits", "W8A8",
               "--calib", "2", "--integer", "--quiet"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "evaluated 4 images" in out
    assert "calibration 2 images" in out
    header = next(line for line in out.splitlines() if line.startswith("method"))
    assert [c.strip() for c in header.split("|")] == [
        "method", "bits", "FP", "fake-quant", "integer", "Δ", "time s"]
    row = next(line for line in out.splitlines() if line.startswith("minmax"))
    cells = [c.strip() for c in row.split("|")]
    assert cells[1] == "W8A8"
    for c in cells[2:5]:  # 4 images: every top-1 is a multiple of 25 %
        assert float(c) in (0.0, 25.0, 50.0, 75.0, 100.0)


def test_quantize_saves_spec(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    from refq.quant import QuantSpec

    out = tmp_path / "spec"
    assert main(["quantize", "--method", "minmax", "--bits", "W6A6", "--calib", "4",
                 "--quiet", "--out", str(out)]) == 0
    spec = QuantSpec.load(out)
    assert (spec.method, spec.w_bits, spec.a_bits) == ("minmax", 6, 6)
    assert json.loads((out / "spec.json").read_text())["a_bits"] == 6
    assert "W6A6" in capsys.readouterr().out


def test_report_table_and_plots(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    pytest.importorskip("matplotlib")
    rc = main(["report", "--bits", "W4A4", "--calib", "4", "--images", "2", "--quiet",
               "--plots", str(tmp_path), "--plot-only", "blocks.0.*"])
    out = capsys.readouterr().out
    assert rc == 0, out
    rows = [line.split("|") for line in out.splitlines() if line.startswith("blocks.0.")]
    assert rows, out
    cos = [float(r[3]) for r in rows]
    assert all(-1.0 <= c <= 1.0 + 1e-9 for c in cos)
    assert min(cos) < 1.0  # 4-bit quantization must change something
    pngs = sorted(p.name for p in tmp_path.glob("*.png"))
    assert "blocks.0.mlp.fc1.weight.png" in pngs and len(pngs) > 5
    assert all(p.startswith("blocks.0.") for p in pngs)


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["eval", "--methods", "nosuch"], "unknown method"),
        (["eval", "--bits", "W8X8"], "bad bits"),
        (["quantize", "--bits", "W8A8,W4A4", "--out", "x"], "one WxAy"),
        (["eval", "--model", "deit_tiny_patch16_224", "--weights", "/no/such.npz"],
         "no such file"),
        (["eval", "--data", "/no/such/folder"], "does not exist"),
        (["demo", "--test-images", "0"], "--test-images"),
        (["demo", "--threads", "0"], "--threads"),
        (["eval", "--opt", "ptq4vit.n"], "METHOD.KEY=VALUE"),
        (["eval", "--opt", "nosuch.n=3"], "unknown method"),
    ],
)
def test_bad_input_exits_2(argv: list[str], needle: str,
                           capsys: pytest.CaptureFixture[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1
    assert needle in err and err.startswith(f"refq {argv[0]}: error:")


def test_empty_folder_exits_2(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["eval", "--data", str(tmp_path)]) == 2
    assert "no class subfolders" in capsys.readouterr().err


def test_demo_quick(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "golden"
    assert main(["demo", "--quick", "--quiet", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "minmax | W8A8" in text and "minmax | W4A4" in text
    assert "verified: OK" in text
    # the reduced workload is stated: images, calibration, options, threads, CPU per phase
    assert "top-1 on the first 10 of the 400 test images" in text
    assert "calibration: the first 8 images" in text
    assert "BLAS threads: 1" in text
    assert "CPU seconds per method (calibrate / fake-quant eval / lower / integer eval)" in text
    # the golden input is the first two test images of the bundled split (independent read)
    from refq.files import read_npy

    _, data = load_bundled()
    test, _ = data.split("test")
    np.testing.assert_array_equal(read_npy(out / "input.npy"), test[:2], strict=True)
    manifest = json.loads((out / "MANIFEST.json").read_text())
    assert len(manifest["tensors"]) > 20
    assert verify_golden(out) == len(manifest["tensors"])
    # tampering with one tensor (and its hash) must be caught by the re-run comparison
    _, rel = sorted(manifest["tensors"].items())[-1]
    from refq.files import npy_bytes

    arr = read_npy(out / rel).copy()
    arr.flat[0] += 1
    (out / rel).write_bytes(npy_bytes(arr))
    with pytest.raises(GoldenError, match="sha256"):
        verify_golden(out)
    import hashlib

    manifest["files"][rel] = hashlib.sha256((out / rel).read_bytes()).hexdigest()
    (out / "MANIFEST.json").write_text(json.dumps(manifest))
    with pytest.raises(GoldenError, match="differs on re-run"):
        verify_golden(out)


def test_parse_recipe_options() -> None:
    from refq.commands.eval import format_recipe_options, parse_recipe_options

    opts = parse_recipe_options(["ptq4vit.n=20", "ptq4vit.metric=cosine", "ias.sos=false",
                                 "ias.sos_lr=4e-5", "dopq.choice=median", "ias.sos_iters=5",
                                 "ptq4vit.calib_sub=none"])
    assert opts == {"ptq4vit": {"n": 20, "metric": "cosine", "calib_sub": None},
                    "ias": {"sos": False, "sos_lr": 4e-5, "sos_iters": 5},
                    "dopq": {"choice": "median"}}
    assert isinstance(opts["ptq4vit"]["n"], int) and opts["ias"]["sos"] is False
    assert format_recipe_options({"ias": {"sos": False}, "ptq4vit": {"n": 5}}) == (
        "ias.sos=false ptq4vit.n=5")
    assert parse_recipe_options(None) == {}
    for bad in ("n=3", "ptq4vit.=3", "ptq4vit.n", "ptq4vit n=3"):
        with pytest.raises(SpecError):
            parse_recipe_options([bad])
    # keys, types, values and ranges are checked here, before any calibration work
    for bad, msg in (("ias.sos_iters=-1", "sos_iters"), ("ptq4vit.metric=l1", "one of"),
                     ("repq.weight_percentile=ias", r"did you mean repq\.weight_percentiles\?"),
                     ("ias.sos=yes", "true or false"), ("fqvit.calib_batch=0", "> 0"),
                     ("rpq.n=1", r"did you mean 'repq'\?")):
        with pytest.raises(SpecError, match=msg):
            parse_recipe_options([bad])


def test_eval_recipe_refusal_is_reported(capsys: pytest.CaptureFixture[str]) -> None:
    """A value the recipe refuses (a key it takes) stops the command before any work, exit
    2, naming the option; unknown keys likewise (tests/commands/test_first_hour.py)."""
    assert main(["eval", "--methods", "repq", "--opt", "repq.calib_sub=0", "--limit", "2",
                 "--calib", "2", "--quiet"]) == 2
    cap = capsys.readouterr()
    assert "repq.calib_sub must be > 0, got 0" in cap.err
    assert "repq W8A8" not in cap.out


def test_blas_threads_limits_and_restores() -> None:
    tpc = pytest.importorskip("threadpoolctl")
    from refq.commands._blas import blas_threads

    def blas() -> list[int]:
        return [int(i["num_threads"]) for i in tpc.threadpool_info()
                if i["user_api"] == "blas"]

    with tpc.threadpool_limits(limits=2, user_api="blas"):  # conftest holds it at 1
        before = blas()
        assert before and all(n == 2 for n in before)
        with blas_threads(1) as how:
            assert how == "threadpoolctl"  # NumPy is loaded in a test process
            assert all(n == 1 for n in blas())
        assert blas() == before
        with blas_threads(None) as how:
            assert how == "unchanged" and blas() == before


def test_demo_options_run_the_gradient_parts_at_reduced_budgets() -> None:
    """Issue #9: the demo runs PTQ4ViT's Hessian metric and I&S-ViT's SOS, with budgets
    below the recipes' (paper) defaults."""
    from refq.commands.demo import DEMO_OPTIONS
    from refq.methods import RECIPES

    ptq, ias = DEMO_OPTIONS["ptq4vit"], DEMO_OPTIONS["ias"]
    assert ptq["metric"] == "hessian"
    assert ptq["rounds"] < RECIPES["ptq4vit"].options().rounds  # type: ignore[attr-defined]
    assert ias["sos"] is True
    assert ias["sos_iters"] < RECIPES["ias"].options().sos_iters  # type: ignore[attr-defined]


def test_grid_reports_na_and_failures(monkeypatch: pytest.MonkeyPatch) -> None:
    import refq.methods
    from refq.commands.eval import Workload, evaluate_grid, table

    def fake(model: object, method: str, w: int, a: int, calib: object,
             seed: int = 0) -> object:
        if method == "ptq4vit":
            raise SpecError("method 'ptq4vit' is not implemented yet")
        raise RuntimeError("boom")

    monkeypatch.setattr(refq.methods, "quantize_model", fake)
    model, data = load_bundled()
    test, labels = data.split("test")
    work = Workload(model.fold_normalization(), test[:2], test[:2], labels[:2], "t")
    rows = evaluate_grid(work, ["ptq4vit", "repq"], [(4, 4)], integer=True,
                         progress=False, fp=0.5)
    text = table(rows)
    assert [r.fq for r in rows] == [None, None]
    assert "ptq4vit | W4A4 | 50.00 | n/a        | n/a     | n/a" in text
    assert "not implemented yet" in text and "FAILED: RuntimeError: boom" in text
