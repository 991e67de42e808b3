"""The exporter's contract: every refq tensor keeps its name (and a declared-format TOSA
type, or two int32 words beyond 32 bits), every registered kernel variant names its TOSA
translation in the variant registry, refusals name the op, the variant and the reason, and
the layering holds (the core never imports the tosa extra)."""

from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model")

from refq.interop.tosa.export import (  # noqa: E402
    export_kernel,
    export_program,
    storage_dtype,
    translations,
)
from refq.interop.tosa.graph import ExportError  # noqa: E402
from refq.interop.tosa.reference import run_reference  # noqa: E402
from refq.intmath import INT8, INT32, IntFormat  # noqa: E402
from refq.ops import LayerNormParams, RequantParams  # noqa: E402
from refq.ops.layernorm import layernorm_ivit  # noqa: E402
from refq.ops.table import KERNELS  # noqa: E402


def test_every_variant_declares_a_translation_that_resolves() -> None:
    table = translations()
    assert set(table) == set(KERNELS)
    # the binary32-with-zero-point and binary64 engine requantizations, and the hls4ml-style
    # variants (ap_fixed types), are refused by name
    refused = {"requantize.fp32_zp", "requantize.fp64", "requantize.ap_fixed",
               "layernorm.hls4ml", "softmax.hls4ml_stable", "softmax.hls4ml_latency",
               "softmax.hls4ml_legacy"}
    assert {k for k, v in table.items() if not v} == refused
    assert all(v.startswith("refq.interop.tosa.") for k, v in table.items() if k not in refused)


def test_program_tensors_keep_their_names_and_types() -> None:
    from refq.golden.cases_program import _method_lowered

    prog, values = _method_lowered("ptq4vit", 8)
    ex = export_program(prog)
    names = {m.name for m in ex.outputs}
    assert names == {t for op in prog.ops for t in op.outputs}
    by = {m.name: m for m in ex.outputs}
    assert by["blocks.0.attn.q@k.acc"].wide  # a 48-bit accumulator: two int32 words
    assert by["blocks.0.attn.q@k.acc"].tosa == ("blocks.0.attn.q@k.acc:hi",
                                                 "blocks.0.attn.q@k.acc:lo")
    assert by["head"].dtype == "int32" and by["blocks.0.mlp.gelu"].dtype == "int16"
    assert ex.inputs[0].name == "input" and ex.inputs[0].dtype == "int16"  # uint8 pixels
    res = run_reference(ex.graph, ex.feed({"input": values["input"]}))
    assert res.valid
    got = ex.assemble(res.outputs)
    np.testing.assert_array_equal(got["blocks.0.attn.q@k.acc"],
                                  values["blocks.0.attn.q@k.acc"], strict=True)


def test_storage_types() -> None:
    assert storage_dtype(IntFormat(8, False), 0, 255) == "int16"
    assert storage_dtype(IntFormat(4, True), -8, 7) == "int8"
    assert storage_dtype(IntFormat(49, True), -(2**28), 2**28) == "int32"
    assert storage_dtype(IntFormat(62, True), -(2**40), 2**40) is None


def test_refusals_name_the_op_variant_and_reason() -> None:
    p = RequantParams("dyadic", (2**31,), (40,), "half_even", 0, 0, INT8)
    with pytest.raises(ExportError, match=r"requantize\.dyadic.*multiplier >= 2\^31"):
        export_kernel("requantize.dyadic", p, {"x": (3,)})
    lp = LayerNormParams(in_format=IntFormat(24, True))
    with pytest.raises(ExportError, match=r"layernorm\.ivit.*Σy² may reach 2\^5"):
        export_kernel("layernorm.ivit", lp, {"x": (2, 64)})
    with pytest.raises(ExportError, match=r"layernorm\.ivit.*REDUCE_SUM.*may overflow int32"):
        export_kernel("layernorm.ivit", LayerNormParams(in_format=INT32), {"x": (2, 8)})


@pytest.mark.parametrize(("bits", "channels"), [(8, 16), (16, 8), (16, 192), (20, 64)])
def test_layernorm_ivit_newton_steps_with_a_64_bit_variance(bits: int, channels: int) -> None:
    """Σy² beyond int32: the first Newton step from the two words, then restoring divisions
    (layernorm.divide_pair) — identical to refq on extremes and random rows."""
    fmt = IntFormat(bits, True)
    p = LayerNormParams(in_format=fmt)
    rng = np.random.default_rng(bits + channels)
    x = rng.integers(fmt.min, fmt.max + 1, (24, channels))
    x[0], x[1], x[2] = fmt.max, 0, fmt.min
    x[3, ::2] = fmt.max  # the largest variance: half the channels at each end
    x[3, 1::2] = fmt.min
    x[4] = rng.integers(-3, 4, channels)  # a tiny variance: the iterates fall to 64
    x[5, 0] = fmt.max  # one outlier
    x[5, 1:] = 0
    ex = export_kernel("layernorm.ivit", p, {"x": x.shape})
    res = run_reference(ex.graph, ex.feed({"x": x}))
    assert res.valid, res.reasons
    got = ex.assemble(res.outputs)
    np.testing.assert_array_equal(got[ex.outputs[-1].name], layernorm_ivit(x, p), strict=True)


def test_rescale_policy_native_records_the_precondition() -> None:
    p = RequantParams("single", (1 << 30,), (0,), None, 0, 0, INT32)
    exact = export_kernel("requantize.single", p, {"x": (3,)})
    native = export_kernel("requantize.single", p, {"x": (3,)}, rescale="native")
    assert "RESCALE" not in exact.op_counts and exact.notes
    assert native.op_counts["RESCALE"] == 1 and "UNPREDICTABLE" in native.assumptions[0]


def test_the_core_never_imports_the_tosa_extra() -> None:
    code = ("import sys, refq, refq.program, refq.golden, refq.crosscheck; "
            "import refq.crosscheck.adapters.tosa_backend; "
            "bad = [m for m in ('tosa_serializer', 'tosa_reference_model', 'iree.compiler') "
            "if m in sys.modules]; print(bad)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True).stdout.strip()
    assert out == "[]"


@pytest.mark.parametrize(("mantissa", "shift", "out"), [
    ((1 << 24) - 1, 40, INT8), (1 << 23, 30, IntFormat(16, True)), (12582913, 47, INT32),
    (9999991, 33, IntFormat(16, True)), (1, 0, INT32), (0, 5, INT8)])
def test_fp32_binary32_steps_on_the_reference_model(mantissa: int, shift: int,
                                                     out: IntFormat) -> None:
    """requantize.fp32 against refq at the edges of its three binary32 roundings:
    accumulators around 2^24..2^31 (rn24 drops 1..7 bits; ties of odd and even significands),
    products at 24-bit ties, int32 ends, and random draws."""
    from refq.ops.requantize_fp32 import requantize_fp32

    rng = np.random.default_rng(mantissa ^ shift)
    edges = [0, 1, -1, 2**31 - 1, -(2**31), -(2**31) + 1, 2**24, 2**24 + 1, 2**24 + 2,
             2**24 + 3, 2**25 + 2, 2**25 + 6, 2**30 + 64, 2**30 + 192, -(2**24) - 1,
             -(2**24) - 3, 3 << 23, (3 << 23) + 1]
    x = np.concatenate([np.array(edges, dtype=np.int64),
                        rng.integers(-(2**31), 2**31, 3000, dtype=np.int64),
                        rng.integers(-(2**26), 2**26, 3000, dtype=np.int64)])
    p = RequantParams(family="fp32", multiplier=(mantissa,), shift=(shift,), out_format=out)
    ex = export_kernel("requantize.fp32", p, {"x": x.shape})
    res = run_reference(ex.graph, ex.feed({"x": x}))
    assert res.valid, res.reasons[:2]
    np.testing.assert_array_equal(ex.assemble(res.outputs)["y"], requantize_fp32(x, p),
                                  strict=False)
