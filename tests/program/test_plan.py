"""The interpreter's execution plan (refq.program.plan): fused chains, carriers and cached
proofs give exactly the integers and errors of running every op by itself."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from refq.crosscheck.strategies import STRATEGIES
from refq.errors import RangeError
from refq.intmath import IntFormat
from refq.nn import load_bundled
from refq.ops.registry import lookup
from refq.ops.requantize import RequantParams
from refq.program import Op, Program, lower, run
from refq.program.movement import movement
from refq.program.plan import plan_for
from refq.program.stages import ROW_LOCAL
from refq.program.steps import ChainStep
from refq.quant import QuantSpec, UniformQuantizer


def reference_run(program: Program, inputs: dict[str, Any]) -> dict[str, np.ndarray]:
    """The oracle: each op in program order by its registry function or movement op on
    int64 arrays — no plan, no carrier, no fusion — every output checked against its
    declaration."""
    env: dict[str, np.ndarray] = {n: np.asarray(v, dtype=np.int64) for n, v in inputs.items()}
    env.update(program.consts)
    for op in program.ops:
        args = [np.asarray(env[i], dtype=np.int64) for i in op.inputs]
        if op.kind == "kernel":
            v = lookup(op.key)
            params = v.params_type.from_dict(op.params)
            outs = (v.compute(dict(zip(v.inputs, args, strict=True)), params),)
        else:
            outs = movement(op.key)(*args, **op.params)
        for name, value in zip(op.outputs, outs, strict=True):
            arr = np.asarray(value, dtype=np.int64)
            fmt = program.tensors[name].fmt
            assert arr.size == 0 or fmt.min <= int(arr.min()) <= int(arr.max()) <= fmt.max
            env[name] = arr
    return {n: v for n, v in env.items() if n not in program.consts}


def _spec(model: Any, cal: np.ndarray, per_head: bool) -> QuantSpec:
    _, taps = model.forward_with_taps(cal)
    w, acts = {}, {}
    for op in model.ops():
        if op.weight:
            wt = model.params[op.weight]
            amax = np.abs(wt.reshape(wt.shape[0], -1)).max(1)
            w[op.weight] = UniformQuantizer.from_minmax(-amax, amax, 8, symmetric=True, axis=0)
        for t in op.inputs:
            if t == "input":
                continue
            x = taps[t]
            if per_head and t.split(".")[-1] in ("q", "k", "v"):  # the threshold route
                amax = np.abs(x).max(axis=(0, 2, 3))
                acts[t] = UniformQuantizer.from_minmax(-amax, amax, 8, symmetric=True,
                                                       narrow=True, axis=1)
            else:
                acts[t] = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), 8)
    return QuantSpec("minmax-plan", model.config.name, 8, 8, w, acts)


@pytest.fixture(scope="module")
def small_vit() -> tuple[Any, np.ndarray, np.ndarray]:
    """The bundled DeiT (trained weights: every kernel profile lowers and stays in range)."""
    model, data = load_bundled()
    cal, _ = data.split("calib")
    test, _ = data.split("test")
    return model.fold_normalization(), cal[:8], test[:3]


@pytest.mark.parametrize(
    ("kernels", "per_head"),
    [("refq", False), ("refq", True), ("ibert", False), ("ivit", False), ("tflite", False)],
)
def test_planned_run_equals_op_by_op(
    small_vit: tuple[Any, np.ndarray, np.ndarray], kernels: str, per_head: bool
) -> None:
    fm, cal, x = small_vit
    prog = lower(fm, _spec(fm, cal, per_head), cal, kernels=kernels)
    want = reference_run(prog, {"input": x})
    every = run(prog, {"input": x})
    assert set(every) == set(want)
    for name, value in want.items():
        np.testing.assert_array_equal(every[name], value, strict=True, err_msg=name)
    outs = run(prog, {"input": x}, keep="outputs")
    assert set(outs) == set(prog.outputs)
    for name in prog.outputs:
        np.testing.assert_array_equal(outs[name], want[name], strict=True, err_msg=name)
    plan = plan_for(prog, "outputs")
    fused = [s for s in plan.steps if isinstance(s, ChainStep) and len(s.ops) > 1]
    assert fused, "no chain was fused: the test would not exercise the fused path"
    assert plan.declined() == 0 and plan_for(prog, "all").declined() == 0


# --- row-local kernels -----------------------------------------------------------------------


@pytest.mark.parametrize("key", sorted(ROW_LOCAL))
def test_row_local_kernels_are_row_local(key: str) -> None:
    """Each ROW_LOCAL variant on row blocks of its inputs gives the rows of its result on
    the whole tensor (the premise of running it inside a chain)."""
    if key not in STRATEGIES:
        pytest.skip(f"{key} declares no strategy")  # pragma: no cover - all do today
    v = lookup(key)

    @settings(max_examples=25, deadline=None,
              suppress_health_check=[HealthCheck.filter_too_much, HealthCheck.too_slow])
    @given(STRATEGIES[key](), st.integers(1, 5))
    def check(case: Any, cut: int) -> None:
        params = v.params_type.from_dict(case.meta["params"])
        arrays = {n: case.tensors[n].values.astype(np.int64) for n in v.inputs}
        shapes = {a.shape for a in arrays.values()}
        if len(shapes) != 1 or not next(iter(shapes)):
            return  # inputs of different shapes (broadcast) are not run as row blocks
        whole = v.compute(arrays, params)
        c = whole.shape[-1]
        rows = {n: a.reshape(-1, c) for n, a in arrays.items()}
        r = min(cut, whole.size // c)
        parts = [v.compute({n: a[i:j] for n, a in rows.items()}, params)
                 for i, j in ((0, r), (r, whole.size // c)) if j > i]
        np.testing.assert_array_equal(np.concatenate(parts), whole.reshape(-1, c), strict=True)

    check()


# --- a chain that fails gives the plain op's error ------------------------------------------


def _chain_program(declared: IntFormat) -> Program:
    """linear (int8 x, const W and bias) → requantize.dyadic into ``declared``."""
    p = Program("chain")
    p.declare("x", (-1, 8), IntFormat(8, True), "input")
    p.declare("acc", (-1, 3), IntFormat(32, True))
    p.declare("y", (-1, 3), declared)
    p.const("w", (np.arange(24, dtype=np.int64).reshape(3, 8) % 7) - 3, IntFormat(8, True))
    p.const("b", np.array([5, -7, 11], dtype=np.int64), IntFormat(32, True))
    from refq.ops.linear import GemmParams

    p.add(Op("kernel", "linear.gemm", ("x", "w", "b"), ("acc",), GemmParams().to_dict(), "fc"))
    rq = RequantParams(family="dyadic", multiplier=(3, 5, 7), shift=(2, 3, 4),
                       out_format=IntFormat(16, True), rounding="half_even")
    p.add(Op("kernel", "requantize.dyadic", ("acc",), ("y",), rq.to_dict(), "rq"))
    p.outputs = ["y"]
    p.validate()
    return p


def test_fused_chain_values_and_errors_are_the_plain_ones() -> None:
    x = np.random.default_rng(1).integers(-128, 128, (300, 8))
    ok = _chain_program(IntFormat(16, True))
    want = reference_run(ok, {"x": x})["y"]
    np.testing.assert_array_equal(run(ok, {"x": x}, keep="outputs")["y"], want, strict=True)
    (step,) = plan_for(ok, "outputs").steps
    assert isinstance(step, ChainStep) and step.ops == (0, 1) and step.declined == 0
    # a declaration narrower than the requantizer's int16: checked, and the chain gives way
    narrow = _chain_program(IntFormat(6, True))
    with pytest.raises(RangeError) as plain_err:
        run(narrow, {"x": x}, keep="all")
    with pytest.raises(RangeError) as fused_err:
        run(narrow, {"x": x}, keep="outputs")
    assert str(fused_err.value) == str(plain_err.value)
    assert "tensor 'y'" in str(fused_err.value)
    assert plan_for(narrow, "outputs").declined() == 1
    # an input outside linear's int8 a_format but inside its int16 declaration
    wide_in = _chain_program(IntFormat(16, True))
    wide_in.tensors["x"] = wide_in.tensors["x"].__class__("x", (-1, 8), IntFormat(16, True),
                                                          "input")
    bad = x.copy()
    bad[7, 3] = 300
    with pytest.raises(RangeError, match="value 300"):
        run(wide_in, {"x": bad}, keep="outputs")
    np.testing.assert_array_equal(run(wide_in, {"x": x}, keep="outputs")["y"], want,
                                  strict=True)


def test_plan_is_rebuilt_when_the_program_changes() -> None:
    x = np.random.default_rng(2).integers(-128, 128, (5, 8))
    prog = _chain_program(IntFormat(16, True))
    first = plan_for(prog, "outputs")
    assert plan_for(prog, "outputs") is first  # cached
    prog.ops[1].params["rounding"] = "floor"  # edited in place
    assert plan_for(prog, "outputs") is not first
    np.testing.assert_array_equal(run(prog, {"x": x}, keep="outputs")["y"],
                                  reference_run(prog, {"x": x})["y"], strict=True)
    prog.consts["w"] = -prog.consts["w"]  # a const replaced
    np.testing.assert_array_equal(run(prog, {"x": x}, keep="outputs")["y"],
                                  reference_run(prog, {"x": x})["y"], strict=True)


def test_threads_running_one_program_get_the_plain_results() -> None:
    """A plan's stages reuse block buffers: each thread runs its own plan."""
    from concurrent.futures import ThreadPoolExecutor

    prog = _chain_program(IntFormat(16, True))
    xs = [np.random.default_rng(s).integers(-128, 128, (4096, 8)) for s in range(6)]
    wants = [reference_run(prog, {"x": x})["y"] for x in xs]

    def work(i: int) -> bool:
        return all(np.array_equal(run(prog, {"x": xs[i]}, keep="outputs")["y"], wants[i])
                   for _ in range(5))

    with ThreadPoolExecutor(3) as pool:
        assert all(pool.map(work, range(len(xs))))


def _wide_activation_program(w_levels: int) -> Program:
    """linear of int16 activations (16-bit levels of a non-uniform quantizer) and an int8
    weight of 4-bit levels |w| <= ``w_levels``, K = 1536: b_format's int8 bound proves no
    int32 accumulator (1536·32768·128 > 2^31), the weight's own values do when small."""
    from refq.ops.linear import GemmParams

    k = 1536
    p = Program("wide")
    p.declare("x", (-1, k), IntFormat(16, True), "input")
    p.declare("acc", (-1, 4), IntFormat(32, True))
    rng = np.random.default_rng(4)
    p.const("w", rng.integers(-w_levels, w_levels + 1, (4, k)), IntFormat(8, True))
    p.const("b", np.array([5, -7, 11, 0], dtype=np.int64), IntFormat(32, True))
    params = GemmParams(a_format=IntFormat(16, True)).to_dict()
    p.add(Op("kernel", "linear.gemm", ("x", "w", "b"), ("acc",), params, "fc2"))
    p.outputs = ["acc"]
    p.validate()
    return p


def test_linear_source_takes_its_bound_from_the_constant_weight() -> None:
    """A fused GEMM proves its int32 accumulator from the weight's own values (|w| <= 7):
    the plain kernel's value check could never fail there, the chain gives its integers
    and never gives way; with |w| up to 127 the bound fails and the op runs plain."""
    x = np.random.default_rng(2).integers(-(2**15), 2**15, (5, 1536))
    x[0] = 2**15 - 1  # the largest |acc| row
    x[1] = -(2**15)
    small = _wide_activation_program(7)
    want = reference_run(small, {"x": x})["acc"]
    np.testing.assert_array_equal(run(small, {"x": x}, keep="outputs")["acc"], want,
                                  strict=True)
    (step,) = plan_for(small, "outputs").steps
    assert isinstance(step, ChainStep) and step.declined == 0
    big = _wide_activation_program(127)
    (plain,) = plan_for(big, "outputs").steps
    assert not isinstance(plain, ChainStep)
    np.testing.assert_array_equal(run(big, {"x": x[2:]}, keep="outputs")["acc"],
                                  reference_run(big, {"x": x[2:]})["acc"], strict=True)
