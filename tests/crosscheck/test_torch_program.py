"""Whole lowered programs (the bundled DeiT: patch embedding, 4 encoder blocks, head) run
in torch int64 ops (refq.crosscheck.adapters.torch_program) agree with refq.program.run on
EVERY intermediate tensor, bit for bit.

Device: ``REFQ_TORCH_DEVICE`` (default "cpu"; tools/gpu_check.sh sets "cuda")."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ..torch_oracle import needs_torch
from .torch_programs import DEVICE, compare_every_tensor, one_torch_thread

pytestmark = [pytest.mark.torch, needs_torch]

N_CAL = 8
N_TEST = 4


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def bundled() -> tuple[Any, Any, Any]:
    from refq.nn import load_bundled

    model, data = load_bundled()
    fm = model.fold_normalization()
    cal, _ = data.split("calib")
    test, _ = data.split("test")
    return fm, cal[:N_CAL], test[:N_TEST]


def _per_head(spec: Any, taps: dict[str, Any], bits: int) -> Any:
    """A copy of ``spec`` with per-head, symmetric narrow q/k/v quantizers (axis 1): the
    lowering realises them by add_exact + threshold + lookup(offset=1)."""
    from refq.quant import UniformQuantizer

    out = copy.copy(spec)
    out.activations = dict(spec.activations)
    for t in out.activations:
        if t.split(".")[-1] in ("q", "k", "v"):
            amax = np.abs(taps[t]).max(axis=(0, 2, 3))
            out.activations[t] = UniformQuantizer.from_minmax(
                -amax, amax, bits, symmetric=True, narrow=True, axis=1
            )
    return out


@pytest.fixture(scope="module")
def programs(bundled: tuple[Any, Any, Any]) -> dict[str, Any]:
    from refq.calib.minmax import minmax_spec
    from refq.program import lower

    fm, cal, _ = bundled
    _, taps = fm.forward_with_taps(cal)
    w8 = minmax_spec(fm, cal, 8)
    return {
        "w8a8": lower(fm, w8, cal),
        "w4a4-log2": lower(fm, minmax_spec(fm, cal, 4, softmax="log2"), cal),
        "w8a8-perhead": lower(fm, _per_head(w8, taps, 8), cal),
        **{f"w8a8-{p}": lower(fm, w8, cal, kernels=p) for p in PROFILES},
        "w8a8-perhead-tflite": lower(fm, _per_head(w8, taps, 8), cal, kernels="tflite"),
    }


PROFILES = ("ibert", "ivit", "tflite")
PROFILE_KEYS = {
    "ibert": {"softmax.ibert", "gelu.ibert", "layernorm.ibert", "add.ivit",
              "requantize.dyadic"},
    "ivit": {"softmax.shiftmax", "gelu.shiftgelu", "layernorm.ivit", "add.ivit"},
    "tflite": {"softmax.tflite", "gelu.lut", "layernorm.refq", "requantize.double"},
}


@pytest.mark.parametrize("which", ["w8a8", "w4a4-log2", "w8a8-perhead", "w8a8-ibert",
                                   "w8a8-ivit", "w8a8-tflite", "w8a8-perhead-tflite"])
def test_every_intermediate_equal(which: str, programs: dict[str, Any],
                                  bundled: tuple[Any, Any, Any]) -> None:
    prog = programs[which]
    _, _, test = bundled
    want = compare_every_tensor(prog, test)
    # the whole model: every op's output was compared, logits included
    produced = {o for op in prog.ops for o in op.outputs}
    assert produced <= set(want) and prog.outputs[0] in want and len(produced) >= 170
    # one whole encoder block, all of its stages
    block0 = [n for n in produced if n.startswith("blocks.0.")]
    for stage in ("norm1", "attn.q", "attn.q@k", "attn.softmax", "attn.attn@v", "attn.proj",
                  "add1", "norm2", "mlp.fc1", "mlp.gelu", "mlp.fc2", "add2"):
        assert f"blocks.0.{stage}" in block0, stage
    keys = {op.key for op in prog.ops}
    if which.startswith("w8a8-perhead"):
        assert "add_exact" in keys
    profile = which.removeprefix("w8a8-perhead-").removeprefix("w8a8-")
    want_keys = PROFILE_KEYS.get(profile, {"layernorm.refq", "gelu.lut", "softmax.refq"})
    assert want_keys | {"threshold", "lookup"} <= keys, keys
    if which == "w8a8-perhead-tflite":  # int48 q@k accumulators fall back to dyadic (noted)
        assert "requantize.dyadic" in keys and "requantize.double" in keys
        assert any("fallback" in n for n in prog.meta["notes"].values())


@pytest.mark.parametrize("profile", PROFILES)
def test_committed_profile_case_every_tensor(profile: str) -> None:
    """The committed block case of each kernel profile: the torch interpreter on its stored
    program reproduces every stored intermediate and output, bit for bit."""
    from pathlib import Path

    from refq.crosscheck.adapters.torch_program import run_program_torch
    from refq.golden.case import read_case
    from refq.golden.cases_program import program_of

    golden = Path(__file__).resolve().parents[2] / "golden"
    case = read_case(golden / f"block.deit_digits.minmax.w8a8.{profile}.encoder")
    prog, inputs = program_of(case)
    assert PROFILE_KEYS[profile] - {"requantize.double", "add.ivit", "requantize.dyadic"} <= {
        op.key for op in prog.ops}
    got = run_program_torch(prog, inputs, device=DEVICE)
    stored = {n: t.values for n, t in case.tensors.items()
              if t.role in ("intermediate", "output")}
    assert len(stored) >= 40  # every value of encoder block 0
    for name, want in stored.items():
        np.testing.assert_array_equal(got[name], want.astype(np.int64), strict=True,
                                      err_msg=f"{profile}: tensor {name}")


def test_broadcast_matmul_path_on_a_whole_program(programs: dict[str, Any],
                                                  bundled: tuple[Any, Any, Any]) -> None:
    """The exact int64 broadcast multiply-and-sum matmul (what CUDA uses) on the whole
    W8A8 program."""
    from refq.crosscheck.adapters.torch_backend import TorchBackend

    _, _, test = bundled
    compare_every_tensor(programs["w8a8"], test, TorchBackend(DEVICE, matmul="broadcast"))


def test_a_changed_rounding_is_detected(programs: dict[str, Any],
                                        bundled: tuple[Any, Any, Any]) -> None:
    """The comparison can fail: the torch run of a program whose requantize roundings are
    switched to floor differs from refq's run of the original."""
    from refq.crosscheck.adapters.torch_program import run_program_torch
    from refq.program import run

    _, _, test = bundled
    prog = programs["w8a8"]
    bad = copy.deepcopy(prog)
    for op in bad.ops:
        if op.key == "requantize.dyadic":
            op.params["rounding"] = "floor"
    want = run(prog, {"input": test})
    got = run_program_torch(bad, {"input": test}, device=DEVICE)
    differ = [n for n in want if not np.array_equal(want[n], got[n])]
    assert "patch_embed" in differ


def test_errors(programs: dict[str, Any], bundled: tuple[Any, Any, Any]) -> None:
    from refq.crosscheck.adapters.torch_program import run_program_torch
    from refq.errors import BackendError, RangeError, SpecError

    _, _, test = bundled
    prog = programs["w8a8"]
    with pytest.raises(RangeError, match="input"):
        run_program_torch(prog, {"input": test.astype(np.int64) + 256}, device=DEVICE)
    with pytest.raises(SpecError, match="missing inputs"):
        run_program_torch(prog, {}, device=DEVICE)
    other = copy.deepcopy(prog)
    i = next(j for j, op in enumerate(other.ops) if op.key == "softmax.refq")
    other.ops[i] = type(other.ops[i])("kernel", "requantize.fp32", other.ops[i].inputs,
                                      other.ops[i].outputs, {}, other.ops[i].name)
    with pytest.raises(BackendError, match=r"requantize\.fp32"):  # not implemented in torch
        run_program_torch(other, {"input": test}, device=DEVICE)


def test_movement_ops_not_in_lowered_programs() -> None:
    """mean_pool, shift_left, a 2-D lookup table and a negative select index, against
    refq.program.movement on random integers."""
    import torch

    from refq.crosscheck.adapters.torch_program import _Moves
    from refq.program import movement as mv

    rng = np.random.default_rng(3)
    x = rng.integers(-(2**20), 2**20, (3, 8, 5), dtype=np.int64)
    m = _Moves(torch).table()
    cases: list[tuple[str, list[Any], dict[str, Any]]] = [
        ("mean_pool", [x], {"axis": 1, "shift": 3}),
        ("shift_left", [x], {"shift": 7}),
        ("select", [x], {"axis": 1, "index": -1}),
        ("transpose", [x], {"perm": [2, 0, 1]}),
        ("reshape", [x], {"shape": [-1, 40]}),
    ]
    for key, args, kw in cases:
        want = mv.movement(key)(*args, **kw)
        got = m[key](*[torch.as_tensor(a) for a in args], **kw)
        for w, g in zip(want, got, strict=True):
            np.testing.assert_array_equal(g.numpy(), np.asarray(w, dtype=np.int64), strict=True)
    table = rng.integers(-100, 100, (3, 8, 16), dtype=np.int64)
    idx = rng.integers(0, 16, (3, 8, 5), dtype=np.int64)
    (want,) = mv.lookup(idx, table, offset=0)
    (got,) = m["lookup"](torch.as_tensor(idx), torch.as_tensor(table), offset=0)
    np.testing.assert_array_equal(got.numpy(), want, strict=True)
