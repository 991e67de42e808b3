"""Functional coverage: bins per kernel variant, the coverage mode (no effect on results),
the directed corner cases, `refq golden coverage` and the bins in `refq golden diff`."""

from __future__ import annotations

import importlib
import json
from pathlib import Path

import numpy as np
import pytest

from refq.cli import main
from refq.errors import SpecError
from refq.golden.case import read_case
from refq.golden.cases_corners import corner_cases
from refq.golden.cases_program import program_of
from refq.golden.coverage_bins import Clamp, Division, Ends, Shift, Top, masks
from refq.ops import RequantParams, lookup, variants
from refq.program.run import run

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
cov = importlib.import_module("refq.golden.coverage")  # the module, not the function


def test_tie_bins_by_hand() -> None:
    # x / 2^2: 2 and -2 are exact halves (0.5, -0.5); 1, 3, -1, -3 are one unit from them
    m = masks("tie", Shift(np.array([2, -2, 1, 3, -1, -3, 4, 0]), 2))
    assert m["tie+"].tolist() == [1, 0, 0, 0, 0, 0, 0, 0]
    assert m["tie-"].tolist() == [0, 1, 0, 0, 0, 0, 0, 0]
    assert m["near_tie+"].tolist() == [0, 0, 1, 1, 0, 0, 0, 0]
    assert m["near_tie-"].tolist() == [0, 0, 0, 0, 1, 1, 0, 0]
    d = masks("tie", Division(np.array([5, -5, 4, 7]), 10))
    assert d["tie+"].tolist() == [1, 0, 0, 0] and d["tie-"].tolist() == [0, 1, 0, 0]
    assert d["near_tie+"].tolist() == [0, 0, 1, 0]  # 4/10: |2·4 - 10| = 2
    s63 = masks("tie", Shift(np.array([1 << 62, -(1 << 62)]), 63))  # no int64 overflow
    assert s63["tie+"].tolist() == [True, False] and s63["tie-"].tolist() == [False, True]


def test_other_kinds_by_hand() -> None:
    c = masks("clamp", Clamp(np.array([-200, 0, 200]), -128, 127))
    assert c["below"].tolist() == [1, 0, 0] and c["above"].tolist() == [0, 0, 1]
    e = masks("operand", Ends(np.array([-128, 3, 127]), -128, 127, 3))
    assert (e["min"].tolist(), e["zero"].tolist(), e["max"].tolist()) == (
        [1, 0, 0], [0, 1, 0], [0, 0, 1])
    t = masks("top", Top(np.array([(1 << 14) - 1, 1 << 14, -(1 << 14), -(1 << 14) - 1]), 16))
    assert t["top_bit"].tolist() == [0, 1, 0, 1]
    with pytest.raises(SpecError):
        masks("tie", Clamp(0, 0, 0))


def test_every_variant_declares_bins_and_reasons() -> None:
    for v in variants():
        spec = cov.spec_of(v)
        if not v.builtin:  # e.g. a test's toy variant
            continue
        assert spec is not None, v.key
        assert spec.reachable, v.key
        assert all(reason for reason in spec.unreachable.values())


def _calls(seed: int) -> list[tuple[str, tuple[object, ...]]]:
    """Inputs of the corner cases (tiny, every bin) for comparisons with and without the mode."""
    out = []
    for entry in corner_cases():
        case = entry.make()
        v = lookup(f"{case.meta['op']}.{case.meta['variant']}")
        params = v.params_type.from_dict(case.meta["params"])
        out.append((v.key, (*(case.tensors[n].values.astype(np.int64) for n in v.inputs),
                            params)))
    return out


def test_coverage_mode_changes_no_output_byte() -> None:
    calls = _calls(0)
    off = [lookup(k)(*args) for k, args in calls]
    with cov.recording() as rec:
        on = [lookup(k)(*args) for k, args in calls]
    assert sum(rec.calls.values()) >= len(calls)
    for a, b in zip(off, on, strict=True):
        assert a.tobytes() == b.tobytes() and a.dtype == b.dtype and a.shape == b.shape
    # a whole program (block case): every tensor byte-identical with the mode on, and the
    # op-by-op run that coverage observes gives the interpreter's tensors
    case = read_case(GOLDEN / "block.deit_digits.minmax.w8a8.ibert.encoder")
    program, inputs = program_of(case)
    plain = run(program, inputs)
    with cov.recording() as rec:
        observed = run(program, inputs)
        by_op = cov.run_op_by_op(program, inputs)
    assert rec.calls and set(plain) == set(observed) == set(by_op)
    for name in plain:
        assert plain[name].tobytes() == observed[name].tobytes(), name
        assert np.asarray(plain[name], dtype=np.int64).tobytes() == by_op[name].tobytes(), name


def test_observer_gets_read_only_views() -> None:
    x = np.array([3, -3, 5], dtype=np.int64)
    view = cov._readonly(x)
    assert not view.flags.writeable and x.flags.writeable
    with pytest.raises(ValueError):
        view[0] = 1
    p = RequantParams(family="dyadic", multiplier=(1,), shift=(1,), rounding="half_even")
    assert cov.sample(lookup("requantize.dyadic"), (x, p), {}, x)["x·b / 2^c"]["tie+"].any()


@pytest.mark.parametrize("key", ["requantize.dyadic", "requantize.single", "requantize.double",
                                 "requantize.double_up", "requantize.fp32", "requantize.fp32_zp",
                                 "requantize.fp64",
                                 "add.ivit", "add.shared_shift"])
def test_models_rebuild_the_kernel_output(key: str) -> None:
    """The model's pre-saturation value, clamped, is the kernel's output (so its rounding
    points are the kernel's)."""
    v = lookup(key)
    for k, args in _calls(0):
        if k != key:
            continue
        y = v(*args)
        spec = cov.spec_of(v)
        assert spec is not None
        got = spec.model(args, {}, y)
        c = got["out"]
        assert isinstance(c, Clamp)
        np.testing.assert_array_equal(np.clip(c.value, c.lo, c.hi), y, strict=False)


def test_softmax_and_layernorm_refq_models_rebuild_the_output() -> None:
    for k, args in _calls(0):
        v = lookup(k)
        spec = cov.spec_of(v)
        assert spec is not None
        if k == "softmax.refq":
            d = spec.model(args, {}, v(*args))["e·(2^b - 1) / Σe"]
            assert isinstance(d, Division)
            num, den = np.broadcast_arrays(d.num, d.den)
            np.testing.assert_array_equal((2 * num + den) // (2 * den), v(*args))  # half up
        if k == "layernorm.refq":
            d = spec.model(args, {}, v(*args))["y·2^(F+k) / s"]
            assert isinstance(d, Division)
            num, den = np.broadcast_arrays(d.num, d.den)
            q, r = np.divmod(num, den)
            half_even = q + ((2 * r > den) | ((2 * r == den) & (q % 2 == 1)))
            np.testing.assert_array_equal(half_even + np.asarray(args[-1].bias), v(*args))


def test_corners_hit_every_reachable_bin(tmp_path: Path) -> None:
    out = tmp_path / "corners"
    assert main(["golden", "generate", "--out", str(out), "--corners", "--quiet"]) == 0
    report = cov.coverage(out)
    with_corners = {v.key for v in variants() if "coverage.corners" in v.meta}
    for key, r in report["variants"].items():
        if key not in with_corners:  # boundary bins hit by its ordinary cases (next test)
            continue
        assert r["missing"] == [], key
        assert r["hit"] == r["bins"] > 0
    size = sum(p.stat().st_size for p in out.rglob("*") if p.is_file())
    assert size < 256 * 1024  # tiny: the golden budget


def test_committed_set_coverage_json(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["golden", "coverage", str(GOLDEN), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert set(report["variants"]) >= {v.key for v in variants() if v.builtin}
    assert report["summary"]["hit"] == report["summary"]["bins"]
    shiftmax = report["variants"]["softmax.shiftmax"]
    assert "out: max" in shiftmax["unreachable"]
    one = report["cases"]["requantize.dyadic.corners.ties"]["requantize.dyadic"]
    assert one["hit"] < one["bins"] and one["missing"]  # per case: the bins of that case only


def test_coverage_of_a_set_missing_a_bin_fails(tmp_path: Path,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    """Negative control: a set without the dyadic corner cases misses named bins."""
    out = tmp_path / "g"
    assert main(["golden", "generate", "--out", str(out), "--only", "requantize.dyadic.*",
                 "--quiet"]) == 0
    import shutil

    for p in out.glob("requantize.dyadic.corners.*"):
        shutil.rmtree(p)
    assert main(["golden", "coverage", str(out)]) == 1
    text = capsys.readouterr().out
    assert "missing:" in text and "x·b: top_bit" in text


def test_diff_names_the_bins_of_the_differing_element(tmp_path: Path,
                                                       capsys: pytest.CaptureFixture[str]) -> None:
    import shutil

    a, b = tmp_path / "a", tmp_path / "b"
    shutil.copytree(GOLDEN / "requantize.dyadic.corners.ties", a)
    shutil.copytree(a, b)
    y = np.load(b / "y.npy")
    tie_minus = 1  # -4 / 2^3 = -0.5: the second element kept by the corner selection
    assert read_case(a).tensors["x"].values[tie_minus] == -4
    y[tie_minus] += 1
    np.save(b / "y.npy", y)
    assert main(["golden", "diff", str(a), str(b)]) == 1
    out = capsys.readouterr().out
    assert "coverage bins of that element: requantize.dyadic x·b / 2^c: tie-" in out
