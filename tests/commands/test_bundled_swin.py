"""``--model swin_digits`` (the bundled digits Swin) in eval and its row in the demo."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from refq.cli import main
from refq.errors import SpecError
from refq.nn import load_bundled
from refq.nn.sources import parse_model


def _row(out: str, method: str, after: str = "") -> list[str]:
    text = out.split(after, 1)[1] if after else out
    line = next(ln for ln in text.splitlines() if ln.startswith(method + " "))
    return [c.strip() for c in line.split("|")]


def test_parse_model_names_the_bundled_swin(tmp_path: Path) -> None:
    src = parse_model("swin_digits")
    assert (src.kind, src.name, src.bundled_name, src.label) == (
        "bundled", "swin_digits", "swin_digits", "swin_digits")
    assert src.config().name == "swin_digits" and src.class_names() is not None
    assert src.describe() == "swin_digits (bundled)"
    bundled = parse_model("bundled")
    assert (bundled.bundled_name, bundled.describe()) == ("deit_digits", "bundled (deit_digits)")
    assert src.fingerprint() != bundled.fingerprint()
    # with weights, the name is a config like any other (the bundled file is not used)
    with pytest.raises(SpecError, match="no such file"):
        parse_model("swin_digits", tmp_path / "none.safetensors")


def test_eval_swin_digits(capsys: pytest.CaptureFixture[str]) -> None:
    n = 40
    rc = main(["eval", "--model", "swin_digits", "--methods", "minmax,repq", "--bits", "W8A8",
               "--calib", "4", "--limit", str(n), "--integer", "--quiet", "--threads", "1"])
    out = capsys.readouterr().out
    assert rc == 0, out
    assert "model swin_digits (bundled); data bundled digits test split" in out
    # the FP column is the Swin's (independently: refq.nn's float forward, folded), which
    # differs from the DeiT's on these images
    model, data = load_bundled(model="swin_digits")
    x, y = data.split("test")
    fp = 100 * float(np.mean(model.fold_normalization().predict(x[:n]) == y[:n]))
    deit, _ = load_bundled()
    assert fp != 100 * float(np.mean(deit.fold_normalization().predict(x[:n]) == y[:n]))
    for method in ("minmax", "repq"):
        cells = _row(out, method)
        assert cells[1] == "W8A8" and float(cells[2]) == pytest.approx(fp)
        for c in cells[3:5]:  # fake-quant and integer: numbers (not n/a)
            assert float(c) * n / 100 == pytest.approx(round(float(c) * n / 100))


def test_demo_quick_shows_a_swin_row(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["demo", "--quick", "--quiet", "--out", str(tmp_path / "g")]) == 0
    out = capsys.readouterr().out
    head = "bundled digits Swin (swin_digits"
    assert head in out
    cells = _row(out, "minmax", after=head)
    assert cells[1] == "W8A8" and "n/a" not in cells[2:5]
    assert "  swin     " in out  # its CPU seconds
