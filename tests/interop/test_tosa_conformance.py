"""``refq golden export DIR --format tosa``: conformance-test folders that tosa-tools' own
runner (tosa_verif_run_tests) accepts and passes — with the reference model as the system
under test, and with refq's expected results as the system under test (tosa_verify compares
them EXACT with the reference model); a tampered expected result fails."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model", "runner")

from refq.errors import GoldenError  # noqa: E402
from refq.interop.tosa.conformance import export_golden, read_refq, refused_cases  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
GOLDEN = ROOT / "golden"
SUBSET = ["gelu.lut.int8.exhaustive", "layernorm.ivit.int8.c48", "requantize.tflite_double.*",
          "softmax.tflite.rows16x37", "block.deit_digits.minmax.w8a8.encoder",
          "program.deit_digits.depth1.ptq4vit.w8a8"]


def _runner() -> str:
    path = Path(sys.executable).with_name("tosa_verif_run_tests")
    return str(path) if path.is_file() else shutil.which("tosa_verif_run_tests") or ""


def _run(folder: Path, *extra: str) -> str:
    env = dict(os.environ, PYTHONPATH=str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    xunit = folder.parent / f"{folder.name}.xunit.xml"  # not the runner's default ./result.xml
    proc = subprocess.run([_runner(), "-r", "-t", str(folder), "-j", "2", "--no-color",
                           "--xunit-file", str(xunit), *extra],
                          capture_output=True, text=True, env=env, timeout=1800, check=False)
    return proc.stdout + proc.stderr


@pytest.fixture(scope="module")
def exported(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("tosa") / "T"
    assert export_golden(GOLDEN, out, only=SUBSET) > 0
    return out


def test_folders_hold_what_the_runner_and_refq_need(exported: Path) -> None:
    folders = sorted(p for p in exported.iterdir() if p.is_dir())
    assert len(folders) == 11  # 6 requantize.tflite_double cases + 5 named
    for f in folders:
        desc = json.loads((f / "desc.json").read_text())
        assert set(desc) >= {"tosa_file", "ifm_name", "ifm_file", "ofm_name", "ofm_file",
                             "expected_failure"}
        assert (f / desc["tosa_file"]).is_file() and (f / f"{f.name}.mlir").is_file()
        assert all((f / n).is_file() for n in desc["ifm_file"])
        refq = read_refq(f)
        assert len(refq["expected_result_file"]) == len(desc["ofm_file"])
        assert all((f / n).is_file() for n in refq["expected_result_file"])
        assert "func.func" in (f / f"{f.name}.mlir").read_text()


def test_tosa_tools_runner_passes_every_folder(exported: Path) -> None:
    out = _run(exported)
    assert "11 expected_pass, 0 expected_failure, 0 unexpected_pass, 0 unexpected_failure, " \
        "0 internal_error" in out, out[-2000:]


def test_refq_expected_results_equal_the_reference_model_through_tosa_verify(
        exported: Path, tmp_path: Path) -> None:
    out = _run(exported, "--sut-module", "refq.interop.tosa.refq_sut")
    assert "Totals (refq.interop.tosa.refq_sut): 11 expected_pass" in out, out[-2000:]
    # negative control: one expected element off by one fails that folder
    bad = tmp_path / "bad"
    shutil.copytree(exported / "gelu.lut.int8.exhaustive", bad / "gelu.lut.int8.exhaustive")
    f = bad / "gelu.lut.int8.exhaustive" / "expected_y.npy"
    a = np.load(f)
    a[7] += 1
    np.save(f, a)
    out = _run(bad, "--sut-module", "refq.interop.tosa.refq_sut")
    assert "UNEXPECTED_FAILURE" in out and "1 unexpected_failure" in out, out[-2000:]


def test_cli_exports_and_refuses_a_tampered_set(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "T"
    only = "add.*.int32_int8,softmax.refq.rows*"  # not the corner cases
    proc = subprocess.run([sys.executable, "-m", "refq", "golden", "export", str(GOLDEN),
                           "--format", "tosa", "--out", str(out), "--only", only],
                          capture_output=True, text=True, env=env, check=False)
    assert proc.returncode == 0, proc.stderr
    assert sorted(p.name for p in out.iterdir()) == ["add.ivit.int32_int8",
                                                      "add.shared_shift.int32_int8",
                                                      "softmax.refq.rows16x37"]
    bad = tmp_path / "bad"
    shutil.copytree(GOLDEN, bad)
    (bad / "gelu.lut.int8.exhaustive" / "y.npy").write_bytes(b"tampered")
    with pytest.raises(GoldenError, match="manifest"):
        export_golden(bad, tmp_path / "T2", only=["gelu.*"])


def test_cases_without_an_exact_tosa_form_are_refused_by_name(tmp_path: Path) -> None:
    env = dict(os.environ, PYTHONPATH=str(ROOT))
    out = tmp_path / "T"
    proc = subprocess.run([sys.executable, "-m", "refq", "golden", "export", str(GOLDEN),
                           "--format", "tosa", "--out", str(out), "--only",
                           "requantize.fp*"], capture_output=True, text=True, env=env,
                          check=False)
    assert proc.returncode == 0, proc.stderr

    def named(prefix: str) -> list[str]:
        return sorted(p.name for p in GOLDEN.iterdir() if p.name.startswith(prefix))

    refused_names = named("requantize.fp32_zp.") + named("requantize.fp64.")
    assert named("requantize.fp32.") and named("requantize.fp32_zp.") and named(
        "requantize.fp64.")
    assert sorted(p.name for p in out.iterdir() if p.is_dir()) == named("requantize.fp32.")
    refused = refused_cases(out)
    assert sorted(refused) == sorted(refused_names)
    assert all(("requantize.fp32_zp" in why or "requantize.fp64" in why)
               and "no TOSA translation" in why for why in refused.values())
    assert f"refused {len(refused_names)} cases" in proc.stdout
    assert refused_names[0] in proc.stdout
