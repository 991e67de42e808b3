"""The Swin program cases (refq.golden.cases_swin): generated, verified (hashes and
re-computation), a tampered intermediate caught, and the torch interpreter reproduces every
stored tensor from the case's own files."""

from __future__ import annotations

import json
import os
from pathlib import Path

import numpy as np
import pytest

from refq.golden.case import read_case
from refq.golden.cases_program import program_of
from refq.golden.generate import generate
from refq.golden.registry import cases
from refq.golden.verify import verify

NAMES = ("program.swin_random.minmax.w8a8", "program.swin_random.minmax.w4a4",
         "program.swin_random.fqvit.w8a8")
COMMITTED = Path(__file__).resolve().parents[2] / "golden"


@pytest.fixture(scope="module")
def swin_set(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("g") / "set"
    generate(out, only="program.swin_random.*", progress=False)
    return out


def test_registered() -> None:
    table = cases()
    for n in (*NAMES, "program.swin_tiny_random.minmax.w8a8"):
        assert n in table and table[n].kind == "program"
    assert all(table[n].committed for n in NAMES)
    assert not table["program.swin_tiny_random.minmax.w8a8"].committed


def test_generated_cases_verify(swin_set: Path) -> None:
    results = verify(swin_set, progress=False)
    assert sorted(r.name for r in results) == sorted(NAMES)
    assert all(not r.problems for r in results), [r.problems for r in results]
    case = read_case(swin_set / NAMES[0])
    keys = {op["key"] for op in case.meta["program"]["ops"]}
    assert {"roll", "window_partition", "window_reverse", "window_mask", "patch_merge",
            "mean_pool"} <= keys
    roles = {t.role for t in case.tensors.values()}
    assert roles == {"input", "param", "intermediate", "output"}
    assert "layers.0.blocks.1.attn.logits" in case.tensors


def test_tampered_intermediate_is_caught(swin_set: Path, tmp_path: Path) -> None:
    """Negative control: one stored intermediate changed by one LSB, manifest hash updated:
    re-computation names the case."""
    import hashlib
    import shutil

    bad = tmp_path / "bad"
    shutil.copytree(swin_set, bad)
    name = NAMES[0]
    f = bad / name / "layers.0.blocks.1.attn.softmax.npy"
    arr = np.load(f, allow_pickle=False)
    arr.flat[0] = arr.flat[0] + 1 if arr.flat[0] < np.iinfo(arr.dtype).max else arr.flat[0] - 1
    np.save(f, arr)
    man = json.loads((bad / "MANIFEST.json").read_text())
    digest = hashlib.sha256(f.read_bytes()).hexdigest()
    man["files"][f"{name}/{f.name}"] = digest
    (bad / "MANIFEST.json").write_text(json.dumps(man, indent=1))
    results = {r.name: r for r in verify(bad, progress=False)}
    assert results[name].problems
    assert not any("sha256" in p for p in results[name].problems), results[name].problems
    assert not results[NAMES[1]].problems and not results[NAMES[2]].problems


@pytest.mark.torch
@pytest.mark.skipif(os.environ.get("CI") != "true" and not __import__("importlib").util
                    .find_spec("torch"), reason="torch not installed (CI installs it)")
@pytest.mark.parametrize("where", ["generated", "committed"])
def test_torch_interpreter_reproduces_every_stored_tensor(swin_set: Path, where: str) -> None:
    """From a freshly generated set and from the committed golden/ folder (both cases are
    committed)."""
    from refq.crosscheck.adapters.torch_program import run_program_torch

    root = swin_set if where == "generated" else COMMITTED
    for name in NAMES:
        case = read_case(root / name)
        prog, inputs = program_of(case)
        got = run_program_torch(prog, inputs)
        stored = {n: t.values for n, t in case.tensors.items()
                  if t.role in ("intermediate", "output")}
        assert len(stored) >= 150
        for n, want in stored.items():
            np.testing.assert_array_equal(got[n], want.astype(np.int64), strict=True,
                                          err_msg=f"{name}: {n}")


def test_stored_fqvit_spec_is_the_recipe_output() -> None:
    """The stored spec of program.swin_random.fqvit.w8a8 is what the fqvit recipe gives
    today (a recipe change must rewrite it: ``python -m refq.golden.cases_swin --write``,
    then regenerate golden/); it puts FQ-ViT's quantizer on the logits after the bias."""
    from refq.golden.cases_swin import calibrate_fqvit, stored_fqvit_spec
    from refq.golden.specs import compare_specs

    stored = stored_fqvit_spec()
    assert compare_specs(calibrate_fqvit(), stored) in ("equal", "close")
    assert "layers.0.blocks.1.attn.logits" in stored.activations
    assert stored.kernels == {"softmax": "lis"}


def test_fqvit_case_masked_lanes_are_zero() -> None:
    """In the committed fqvit case every masked lane of the shifted block holds the one
    masked code and its log-int softmax code is the zero code 16 (value 0)."""
    from refq.nn.swin import shift_mask

    case = read_case(COMMITTED / NAMES[2])
    pre = "layers.0.blocks.1.attn."
    masked = case.tensors[pre + "masked"].values
    code = case.tensors[pre + "softmax.code"].values
    sel = np.broadcast_to((shift_mask(8, 4, 2) != 0)[:, None], masked.shape)
    assert int(sel.sum()) > 0 and len(np.unique(masked[sel])) == 1
    assert int(masked[sel][0]) < int(masked[~sel].min())
    assert np.all(code[sel] == 16) and np.all(code[~sel] < 16)
