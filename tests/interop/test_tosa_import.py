"""TOSA graphs → refq Programs: a TFLite-style int8 graph (MATMUL with zero points, per-channel
RESCALE DOUBLE_ROUND, TABLE, RESHAPE, RESCALE SINGLE_ROUND branches, ADD, REDUCE_SUM, SLICE,
GATHER), given as a flatbuffer or as MLIR text, runs on refq's interpreter with the same
integers as on the TOSA reference model; anything else is refused by name."""

from __future__ import annotations

import numpy as np
import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model")

from refq.errors import SpecError  # noqa: E402
from refq.interop.tosa.graph import Graph  # noqa: E402
from refq.interop.tosa.importer import IMPORTERS, import_tosa  # noqa: E402
from refq.interop.tosa.mlir import to_mlir  # noqa: E402
from refq.interop.tosa.reference import run_reference  # noqa: E402
from refq.program.run import run  # noqa: E402


def _tflite_like(rng: np.random.Generator) -> bytes:
    g = Graph()
    x = g.input("x", (1, 8, 16), "int8", -128, 127)
    w = g.const(rng.integers(-128, 128, (1, 16, 12)), "int8", name="w")
    acc = g.matmul(x, w, 3, -2, name="acc")
    mults = [int(m) for m in rng.integers(2**30, 2**31, 12)]
    shifts = [int(s) for s in rng.integers(34, 40, 12)]
    y = g.rescale(acc, mults, shifts, "int8", rounding="DOUBLE_ROUND", out_zp=-5, name="y")
    t = g.table(y, rng.integers(-128, 128, 256), name="t")
    r = g.reshape(t, (1, 96), name="r")
    b1 = g.rescale(r, [1 << 30], [28], "int32", rounding="SINGLE_ROUND", name="b1")
    b2 = g.rescale(r, [3 << 29], [30], "int32", rounding="SINGLE_ROUND", name="b2")
    s = g.add(b1, b2, name="s")
    red = g.reduce("SUM", s, 1, name="red")
    first = g.slice(t, [0, 2, 0], [1, 1, 12], name="first")
    idx = g.rescale(g.reshape(first, (1, 12)), [1 << 30], [34], "int32", in_zp=-128,
                    rounding="SINGLE_ROUND", name="idx")  # (x + 128) / 16: 0..16
    tab = g.const(rng.integers(-1000, 1000, (1, 17, 1)), "int32", name="tab")
    looked = g.gather(tab, idx, name="looked")
    for v in (red, t, looked):
        g.output(v)
    return g.serialize()


@pytest.mark.parametrize("form", ["flatbuffer", "mlir"])
def test_a_tflite_style_int8_graph_runs_on_refq_exactly(form: str) -> None:
    rng = np.random.default_rng(5)
    graph = _tflite_like(rng)
    prog = import_tosa(graph if form == "flatbuffer" else to_mlir(graph), name="tflite_like")
    assert [o.key for o in prog.ops][:4] == ["matmul.gemm", "requantize.double", "lookup",
                                            "reshape"]
    for seed in range(3):
        x = np.random.default_rng(seed).integers(-128, 128, (1, 8, 16)).astype(np.int8)
        ref = run_reference(graph, [x])
        assert ref.valid
        got = run(prog, {"x": x})
        for name, want in zip(("red", "t", "looked"), ref.outputs, strict=True):
            np.testing.assert_array_equal(got[name], want.astype(np.int64), strict=True)


def test_other_operators_are_refused_by_name() -> None:
    g = Graph()
    x = g.input("x", (4,), "int32", -100, 100)
    g.output(g.clz(x, name="lead"))
    with pytest.raises(SpecError, match=r"TOSA CLZ .*lead.* no refq Program equivalent"):
        import_tosa(g.serialize())
    g = Graph()
    x = g.input("x", (4,), "int32", -100, 100)
    g.output(g.rescale(x, [1 << 30], [30], "int8", rounding="INEXACT_ROUND", name="q"))
    with pytest.raises(SpecError, match="RESCALE 'q': rounding mode INEXACT_ROUND"):
        import_tosa(g.serialize())
    assert "MATMUL" in IMPORTERS and "CLZ" not in IMPORTERS
