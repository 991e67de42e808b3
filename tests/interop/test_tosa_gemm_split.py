"""GEMM operands one bit (or more) wider than int16 (refq.interop.tosa.gemm.split_int16):
the exported graph on Arm's reference model equals refq's ``matmul.gemm`` / ``linear.gemm``
on every element, at the operand extremes (2^15 = 32768, FQ-ViT's log-int softmax output
1.0, the one value beyond int16), for the clamp split d = d1 + d2 and the byte split
d = 2^8·h + l, with 32- and 48-bit accumulators; and a split that drops a part is caught."""

from __future__ import annotations

import numpy as np
import pytest

from tests.interop.tosa_extra import require

require("tosa_serializer", "tosa_reference_model")

from refq.interop.tosa import gemm  # noqa: E402
from refq.interop.tosa.export import Exported, export_kernel  # noqa: E402
from refq.interop.tosa.graph import ExportError, Graph  # noqa: E402
from refq.interop.tosa.reference import run_reference  # noqa: E402
from refq.intmath import IntFormat  # noqa: E402
from refq.ops.linear import GemmParams, matmul  # noqa: E402

K = 40
INT16, UINT8, UINT16 = IntFormat(16, True), IntFormat(8, False), IntFormat(16, False)


def _operand(rng: np.random.Generator, fmt: IntFormat, shape: tuple[int, ...],
             pins: list[int]) -> np.ndarray:
    """Random values of ``fmt`` with the format's ends and ``pins`` placed in front."""
    x = rng.integers(fmt.min, fmt.max + 1, size=shape, dtype=np.int64)
    flat = x.reshape(-1)
    edge = [fmt.min, fmt.max, *pins]
    flat[:len(edge)] = edge
    # one whole row at the extreme, so a partial sum reaches its bound
    x.reshape(-1, shape[-1])[1] = fmt.max
    return x


def _run(ex: Exported, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    res = run_reference(ex.graph, ex.feed({"a": a, "b": b}))
    assert res.valid, res.reasons
    return ex.assemble(res.outputs)["y"]


SPLITS = [
    # (a format, a zero point, b format, b zero point, acc bits, the split used)
    (UINT16, 1, UINT8, 125, 48, "clamp"),      # d ∈ [-1, 65534]: d1 + d2
    (INT16, -1, UINT8, 125, 32, "clamp"),      # d ∈ [-32767, 32768]: FQ-ViT's +1 edge
    (INT16, 32767, INT16, 0, 48, "clamp"),     # d ∈ [-65535, 0]: the negative side
    (UINT16, 0, UINT8, 3, 48, "bytes"),        # d ∈ [0, 65535]: 2^8·h + l
    (UINT16, 0, UINT16, 65535, 48, "bytes"),   # both operands split (four pairs)
]


@pytest.mark.parametrize(("afmt", "azp", "bfmt", "bzp", "acc", "kind"), SPLITS)
def test_split_operands_are_exact_on_the_reference_model(
        afmt: IntFormat, azp: int, bfmt: IntFormat, bzp: int, acc: int, kind: str) -> None:
    probe = Graph("probe")
    parts = gemm.split_int16(probe, probe.input("a", (1, 1, 1), "int32", afmt.min, afmt.max),
                             azp, "probe")
    assert [s for _, _, s in parts] == ([0, 0] if kind == "clamp" else [8, 0])
    rng = np.random.default_rng(19)
    p = GemmParams(a_format=afmt, b_format=bfmt, a_zero_point=azp, b_zero_point=bzp,
                   acc_bits=acc)
    a = _operand(rng, afmt, (2, 6, K), [azp + 32768 if afmt.max >= azp + 32768 else azp - 1,
                                       azp + 32767 if afmt.max >= azp + 32767 else azp])
    b = _operand(rng, bfmt, (2, K, 5), [bzp])
    if acc == 32:  # keep refq's declared int32 accumulator: |Σ| < 2^31
        b = np.clip(b, bzp - 3, bzp + 3)
    ex = export_kernel("matmul.gemm", p, {"a": a.shape, "b": b.shape})
    assert ex.op_counts.get("MATMUL", 0) >= 2  # split: one MATMUL per pair of parts
    got = _run(ex, a, b)
    np.testing.assert_array_equal(got, matmul(a, b, p), strict=True)


def test_fqvit_attention_operand_reaches_32768() -> None:
    """attn@V as FQ-ViT lowers it: probabilities 0..2^15 (uint16, zero point 0) against
    uint8 values with a zero point; rows that are one-hot at 1.0 (= 32768)."""
    g = Graph("probe")
    v = g.input("p", (1, 4, K), "int32", 0, 32768)
    parts = gemm.split_int16(g, v, 0, "probe")
    assert [(t.lo, t.hi) for t, _, _ in parts] == [(0, 32767), (0, 1)]
    p = GemmParams(a_format=UINT16, b_format=UINT8, a_zero_point=0, b_zero_point=125)
    ex = _fqvit_export(p)
    a, b = _fqvit_inputs()
    np.testing.assert_array_equal(_run(ex, a, b), matmul(a, b, p), strict=True)


def _fqvit_export(p: GemmParams) -> Exported:
    """The kernel with ``a`` declared [0, 2^15] as the softmax translation declares it."""
    from refq.interop.tosa import export

    orig = export._Builder.add_input

    def narrowed(self, name, shape, fmt):  # type: ignore[no-untyped-def]
        orig(self, name, shape, fmt)
        if name == "a":
            self.env[name] = self.g.with_interval(self.env[name], 0, 32768)

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(export._Builder, "add_input", narrowed)
        return export_kernel("matmul.gemm", p, {"a": (3, 4, K), "b": (3, K, 6)})


def _fqvit_inputs() -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(20)
    a = rng.integers(0, 4097, size=(3, 4, K), dtype=np.int64)
    a[0, 0] = 0
    a[0, 0, 7] = 32768  # one-hot rows at 1.0
    a[1, 2] = 0
    a[1, 2, 0] = 32768
    a[2, 3] = 32768  # every lane at 1.0 (beyond a softmax, within the declared interval)
    b = rng.integers(0, 256, size=(3, K, 6), dtype=np.int64)
    b[2, :, 1] = 255
    return a, b


def test_a_split_that_drops_a_part_is_caught(monkeypatch: pytest.MonkeyPatch) -> None:
    real = gemm.split_int16

    def drop_second(g, v, zp, what):  # type: ignore[no-untyped-def]
        return real(g, v, zp, what)[:1]

    monkeypatch.setattr(gemm, "split_int16", drop_second)
    p = GemmParams(a_format=UINT16, b_format=UINT8, a_zero_point=0, b_zero_point=125)
    ex = _fqvit_export(p)
    a, b = _fqvit_inputs()
    got, want = _run(ex, a, b), matmul(a, b, p)
    bad = got != want
    # exactly the outputs whose row holds a 32768 differ, by Σ (b - zb) over those lanes
    assert bad.any()
    rows = (a == 32768).any(axis=-1)
    assert np.array_equal(bad.any(axis=-1), rows)
    d2 = (a == 32768).astype(np.int64)
    np.testing.assert_array_equal(want - got, np.matmul(d2, b - 125), strict=True)


def test_operands_beyond_the_splits_are_refused() -> None:
    g = Graph("probe")
    v = g.input("x", (1, 2, 3), "int32", -(2**23), 5)
    with pytest.raises(ExportError, match="needs more than 24 bits"):
        gemm.split_int16(g, v, 0, "probe")
