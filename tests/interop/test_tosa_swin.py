"""Swin's movement ops in TOSA (refq.interop.tosa.moves_swin) and whole Swin programs: each
op's graph on Arm's reference model equals refq.program.movement on random tokens (int8,
int16 and two-word 64-bit values; rolls by ±k, 0 and a multiple of the side; a window equal
to the side; a constant and a runtime mask), the small random-weight Swin programs (W8A8,
W4A4: shifted windows, the mask, patch merging, integer mean pooling) agree with refq's
interpreter on every tensor, on the reference model and (slow) on IREE llvm-cpu, and wrong
translations (a roll the wrong way, patch merging's parts in the wrong order) are caught."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model")

from refq.crosscheck import run_suite  # noqa: E402
from refq.crosscheck.adapters import tosa_cases  # noqa: E402
from refq.crosscheck.adapters.tosa_backend import TosaBackend  # noqa: E402
from refq.golden.case import write_case  # noqa: E402
from refq.golden.manifest import write_manifest  # noqa: E402
from refq.golden.registry import lookup  # noqa: E402
from refq.interop.tosa import moves_swin  # noqa: E402
from refq.interop.tosa.graph import Graph, Val  # noqa: E402
from refq.interop.tosa.reference import run_reference  # noqa: E402
from refq.interop.tosa.values import Const, Operand, Value  # noqa: E402
from refq.interop.tosa.wide import Wide  # noqa: E402
from refq.intmath import IntFormat  # noqa: E402
from refq.program import movement  # noqa: E402

SWIN = ("program.swin_random.minmax.w8a8", "program.swin_random.minmax.w4a4")
DTYPES = {"int8": (-128, 127), "int16": (-32768, 32767), "wide": (-(2**40), 2**40)}


def _graph_run(op: Callable[..., tuple[Value, ...]], x: np.ndarray, lo: int, hi: int,
               wide: bool, extra: list[Operand] | None = None, **params: Any) -> np.ndarray:
    """``op`` on input x (values in [lo, hi]; a 64-bit value as two int32 words) on the
    reference model; the output as int64."""
    g = Graph("probe")
    if wide:
        hi_w = g.input("x_hi", x.shape, "int32", lo >> 32, hi >> 32)
        lo_w = g.input("x_lo", x.shape, "int32", -(2**31), 2**31 - 1)
        xin: Value = Wide(hi_w, lo_w, lo, hi)
        feed = [(x >> 32).astype(np.int32), (x & 0xFFFFFFFF).astype(np.uint32).view(np.int32)]
    else:
        dt = "int8" if hi <= 127 else "int16"
        xin = g.input("x", x.shape, dt, lo, hi)
        feed = [x.astype(np.int8 if dt == "int8" else np.int16)]
    (y,) = op(g, xin, *(extra or []), **params)
    if isinstance(y, Wide):
        g.output(y.hi)
        g.output(y.lo)
    else:
        assert isinstance(y, Val)
        g.output(g.i32(y))
    res = run_reference(g.serialize(), feed)
    assert res.valid, res.reasons
    if isinstance(y, Wide):
        h, low = (np.asarray(o).astype(np.int64) for o in res.outputs)
        return (h << 32) | (low & 0xFFFFFFFF)
    return np.asarray(res.outputs[0]).astype(np.int64)


def _tokens(rng: np.random.Generator, shape: tuple[int, ...], kind: str) -> np.ndarray:
    lo, hi = DTYPES[kind]
    x = rng.integers(lo, hi + 1, size=shape, dtype=np.int64)
    x.reshape(-1)[:2] = [lo, hi]
    return x


@pytest.mark.parametrize("kind", sorted(DTYPES))
@pytest.mark.parametrize(("side", "shift"), [(8, -2), (8, 2), (8, 0), (8, 16), (6, -5),
                                             (4, 3)])
def test_roll_on_the_reference_model(kind: str, side: int, shift: int) -> None:
    x = _tokens(np.random.default_rng(side * 7 + shift), (2, side * side, 3), kind)
    got = _graph_run(moves_swin.roll, x, *DTYPES[kind], kind == "wide", side=side,
                     shift=shift)
    np.testing.assert_array_equal(got, movement.roll(x, side=side, shift=shift)[0],
                                  strict=True)


@pytest.mark.parametrize("kind", sorted(DTYPES))
@pytest.mark.parametrize(("side", "window"), [(8, 4), (6, 2), (4, 4), (6, 3)])
def test_window_partition_and_reverse_on_the_reference_model(kind: str, side: int,
                                                            window: int) -> None:
    x = _tokens(np.random.default_rng(side * 5 + window), (2, side * side, 3), kind)
    lo, hi = DTYPES[kind]
    parts = _graph_run(moves_swin.window_partition, x, lo, hi, kind == "wide", side=side,
                       window=window)
    want = movement.window_partition(x, side=side, window=window)[0]
    np.testing.assert_array_equal(parts, want, strict=True)
    back = _graph_run(moves_swin.window_reverse, want, lo, hi, kind == "wide", side=side,
                      window=window)
    np.testing.assert_array_equal(back, movement.window_reverse(want, side=side,
                                                                 window=window)[0], strict=True)
    np.testing.assert_array_equal(back, x, strict=True)


@pytest.mark.parametrize("kind", sorted(DTYPES))
@pytest.mark.parametrize("side", [8, 2, 6])
def test_patch_merge_on_the_reference_model(kind: str, side: int) -> None:
    x = _tokens(np.random.default_rng(side), (2, side * side, 5), kind)
    got = _graph_run(moves_swin.patch_merge, x, *DTYPES[kind], kind == "wide", side=side)
    np.testing.assert_array_equal(got, movement.patch_merge(x, side=side)[0], strict=True)


@pytest.mark.parametrize("runtime_mask", [False, True])
def test_window_mask_on_the_reference_model(runtime_mask: bool) -> None:
    rng = np.random.default_rng(3)
    x = _tokens(rng, (2 * 4, 2, 9, 9), "int16")
    x = np.clip(x, -16384, 16383)
    mask = rng.integers(0, 2, size=(4, 9, 9), dtype=np.int64)
    mask[0] = 0
    mask[1] = 1
    want = movement.window_mask(x, mask, value=-32768)[0]
    if runtime_mask:
        g = Graph("probe")
        xin = g.input("x", x.shape, "int16", -16384, 16383)
        m = g.input("m", mask.shape, "int8", 0, 1)
        (y,) = moves_swin.window_mask(g, xin, m, value=-32768)
        assert isinstance(y, Val)
        g.output(g.i32(y))
        res = run_reference(g.serialize(), [x.astype(np.int16), mask.astype(np.int8)])
        assert res.valid, res.reasons
        got = np.asarray(res.outputs[0]).astype(np.int64)
    else:
        const = Const("mask", mask, IntFormat(2, True))
        got = _graph_run(moves_swin.window_mask, x, -16384, 16383, False, [const],
                         value=-32768)
    np.testing.assert_array_equal(got, want, strict=True)
    assert (got == -32768).sum() > 0 and (got != -32768).sum() > 0


def test_patch_merge_in_the_wrong_order_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    """(r, c) = (0,0), (0,1), (1,0), (1,1) — column offset first — differs from Swin's
    order, and the reference-model check says so."""
    real = Graph.transpose

    def swapped(self, a, perm, name=None):  # type: ignore[no-untyped-def]
        if tuple(perm) == (0, 1, 3, 4, 2, 5):
            perm = (0, 1, 3, 2, 4, 5)
        return real(self, a, perm, name)

    monkeypatch.setattr(Graph, "transpose", swapped)
    x = _tokens(np.random.default_rng(1), (1, 16, 2), "int8")
    got = _graph_run(moves_swin.patch_merge, x, -128, 127, False, side=4)
    assert not np.array_equal(got, movement.patch_merge(x, side=4)[0])


@pytest.fixture(scope="module")
def swin_golden(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The small Swin program cases (extended golden cases), generated into a folder."""
    folder = tmp_path_factory.mktemp("swin") / "golden"
    folder.mkdir()
    cases = [lookup(n).make() for n in SWIN]
    for c in cases:
        write_case(c, folder / c.name)
    write_manifest(folder, {c.name: c.kind for c in cases})
    return folder


def test_swin_programs_every_tensor_identical_on_the_reference_model(
        swin_golden: Path) -> None:
    report = run_suite(TosaBackend(), golden=swin_golden, generated=False)
    assert report.ok, report.text()
    status = {e.key: e.status for e in report.entries}
    assert status == {n: "pass" for n in SWIN}
    prep = tosa_cases.prepare(_read(swin_golden, SWIN[0]))
    program = prep.program
    assert program is not None
    keys = {op.key for op in program.ops}
    assert {"roll", "window_partition", "window_reverse", "patch_merge", "window_mask",
            "mean_pool"} <= keys
    assert {m.name for m in prep.exported.outputs} == {t for op in program.ops
                                                        for t in op.outputs}


def _read(folder: Path, name: str) -> Any:
    from refq.golden.case import read_case

    return read_case(folder / name)


def test_a_roll_the_wrong_way_is_named_in_a_program_run(
        swin_golden: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = moves_swin.roll

    def backwards(g, x, *, side, shift):  # type: ignore[no-untyped-def]
        return real(g, x, side=side, shift=-shift)

    monkeypatch.setitem(moves_swin.SWIN_MOVES, "roll", backwards)
    from refq.interop.tosa import moves

    monkeypatch.setitem(moves.MOVES, "roll", backwards)
    monkeypatch.setattr(tosa_cases, "_CACHE", {})
    with pytest.raises(tosa_cases.ProgramMismatch,
                       match=r"layers\.0\.blocks\.1\.norm1\.shifted"):
        TosaBackend().run(_read(swin_golden, SWIN[0]))


@pytest.mark.slow
def test_swin_programs_every_tensor_identical_on_iree(swin_golden: Path) -> None:
    require("iree.compiler", "iree.runtime")
    from refq.crosscheck.adapters.iree_backend import IreeBackend

    iree = IreeBackend()
    assert iree.available, iree.why
    report = run_suite(iree, golden=swin_golden, generated=False)
    assert report.ok, report.text()
    assert {e.key: e.status for e in report.entries} == {n: "pass" for n in SWIN}
