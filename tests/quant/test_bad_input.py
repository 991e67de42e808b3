"""Bad input raises refq.errors subclasses naming what was wrong, for every kind."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

from refq.errors import RangeError, SpecError
from refq.quant import (
    Log2Quantizer,
    OutlierTwoScaleQuantizer,
    PowerOfTwoFactorQuantizer,
    Quantizer,
    ShiftUniformLog2Quantizer,
    TanQuantizer,
    TwinUniformQuantizer,
    UniformQuantizer,
    ValueTwoScaleQuantizer,
    quantizer_from_dict,
)

GOOD: dict[str, Callable[[], Quantizer]] = {
    "uniform": lambda: UniformQuantizer(0.1, 8),
    "log2": lambda: Log2Quantizer(4),
    "twin": lambda: TwinUniformQuantizer(8, "softmax", m=3),
    "v2sf": lambda: ValueTwoScaleQuantizer(0.01, 8, 2),
    "o2sf": lambda: OutlierTwoScaleQuantizer(0.1, 8, 3, [0, 1, 0], 5),
    "ptf": lambda: PowerOfTwoFactorQuantizer(0.1, 8, [0, 1, 3], 5),
    "sulq": lambda: ShiftUniformLog2Quantizer(4, 0.01, -6.6, 0.01),
    "tan": lambda: TanQuantizer(4, 1.0),
}


def _x(q: Quantizer, v: list[float]) -> np.ndarray:  # type: ignore[type-arg]
    a = np.array(v, dtype=np.float64)
    return np.repeat(a[:, None], q.n_groups, axis=1) if q.axis is not None else a


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_bad_data(kind: str) -> None:
    q = GOOD[kind]()
    for bad in ([0.1, float("nan")], [float("inf")], [-float("inf")]):
        with pytest.raises(SpecError, match="non-finite"):
            q.quantize(_x(q, bad))
    with pytest.raises(SpecError, match="empty"):
        q.quantize(np.zeros((0,) if q.axis is None else (0, q.n_groups)))
    with pytest.raises(SpecError):
        q.quantize(np.array(["a"]))
    lo, hi = q.code_range()
    for c in (lo - 1, hi + 1):
        with pytest.raises(RangeError, match="code_range"):
            q.dequantize(_x(q, [c]).astype(np.int64))
    with pytest.raises(SpecError):
        q.dequantize(_x(q, [0.5]))
    with pytest.raises(SpecError, match="in_scale"):
        q.int_thresholds(0.0)
    with pytest.raises(SpecError, match="in_scale"):
        q.int_thresholds(float("nan"))
    with pytest.raises(RangeError):
        q.quantize_int(_x(q, [0]).astype(np.int64) + 2**62 + 1, 1.0)
    with pytest.raises(SpecError):
        q.quantize_int(_x(q, [0.5]), 1.0)


@pytest.mark.parametrize("kind", sorted(GOOD))
def test_bad_dicts(kind: str) -> None:
    d = json.loads(json.dumps(GOOD[kind]().to_dict()))
    bads: list[Any] = [
        {**d, "version": 2},
        {**d, "version": "1"},
        {k: v for k, v in d.items() if k != "version"},
        {**d, "unexpected": 1},
        {**d, "bits": 1},
        {**d, "bits": 17},
        {**d, "bits": True},
        {**d, "kind": "nope"},
        "uniform",
    ]
    if "thresholds" in d:
        bads += [
            {**d, "thresholds": d["thresholds"][:-1]},
            {**d, "thresholds": d["thresholds"][::-1] if len(d["thresholds"]) > 1 else ["x"]},
            {**d, "levels": [*d["levels"][:-1], "inf"]},
        ]
    for bad in bads:
        with pytest.raises(SpecError):
            quantizer_from_dict(bad)


@pytest.mark.parametrize(
    "make",
    [
        lambda: Log2Quantizer(4, "e"),  # type: ignore[arg-type]
        lambda: Log2Quantizer(4, zero="maybe"),  # type: ignore[arg-type]
        lambda: Log2Quantizer(4, scale=-1.0),
        lambda: TwinUniformQuantizer(8, "softmax", m=20),
        lambda: TwinUniformQuantizer(8, "softmax", m=None),
        lambda: TwinUniformQuantizer(8, "gelu"),
        lambda: TwinUniformQuantizer(8, "gelu", delta_pos=0.03, mode="paper"),
        lambda: TwinUniformQuantizer(8, "softmax", m=2, mode="both"),  # type: ignore[arg-type]
        lambda: TwinUniformQuantizer(8, "relu", m=2),  # type: ignore[arg-type]
        lambda: ValueTwoScaleQuantizer(0.0, 8, 2),
        lambda: ValueTwoScaleQuantizer(0.1, 8, 0),
        lambda: OutlierTwoScaleQuantizer(0.1, 8, 2, [0, 2]),
        lambda: OutlierTwoScaleQuantizer(0.1, 8, 2, []),
        lambda: PowerOfTwoFactorQuantizer(0.1, 8, [0, 4]),
        lambda: PowerOfTwoFactorQuantizer(0.1, 8, [0, 1], 256),
        lambda: PowerOfTwoFactorQuantizer(0.1, 8, [0.5, 1]),
        lambda: ShiftUniformLog2Quantizer(4, 0.0, -1.0, 0.0),
        lambda: ShiftUniformLog2Quantizer(4, 0.1, 0.0, 0.0),
        lambda: ShiftUniformLog2Quantizer(4, 0.1, -1.0, 0.0, mode="x"),  # type: ignore[arg-type]
        lambda: TanQuantizer(4, 0.0),
        lambda: TanQuantizer(4, 1.6),
        lambda: TanQuantizer(4, 1.0, scale=float("inf")),
    ],
)
def test_bad_parameters(make: Callable[[], Quantizer]) -> None:
    with pytest.raises(SpecError):
        make()


def test_per_channel_shape_mismatch() -> None:
    q = GOOD["ptf"]()
    with pytest.raises(SpecError, match="channels"):
        q.quantize(np.zeros((4, 5)))


def test_bad_arithmetic_options() -> None:
    """``arith``, ``zp_in_round`` and PTF's ``mode``: refused with a named SpecError, and a
    stored value that is not one of the names is refused on read too."""
    for make in (
        lambda: UniformQuantizer(0.1, 8, arith="float16"),  # type: ignore[arg-type]
        lambda: Log2Quantizer(4, arith="float32"),  # type: ignore[arg-type]
        lambda: TwinUniformQuantizer(4, "softmax", m=1, arith="cuda"),  # type: ignore[arg-type]
        lambda: ShiftUniformLog2Quantizer(4, 0.01, -6.6, 0.01, arith=32),  # type: ignore[arg-type]
    ):
        with pytest.raises(SpecError, match="arith"):
            make()
    with pytest.raises(SpecError, match="paper form has no official code"):
        TwinUniformQuantizer(4, "softmax", m=1, mode="paper", arith="float32_cuda")
    with pytest.raises(SpecError, match="in float32"):
        UniformQuantizer(1e-50, 8, arith="float32_cpu")
    with pytest.raises(SpecError, match="in float32"):
        TwinUniformQuantizer(4, "gelu", delta_pos=1e300, arith="float32_cuda")
    with pytest.raises(SpecError, match="zp_in_round"):
        UniformQuantizer(0.1, 8, zp_in_round=1)  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="mode"):
        PowerOfTwoFactorQuantizer(0.1, 8, [0, 1], mode="fqvit")  # type: ignore[arg-type]
    with pytest.raises(SpecError, match="zero_point"):
        UniformQuantizer(0.1, 16, 2**25, signed=False, arith="float32_cpu")
    for q in (UniformQuantizer(0.1, 8, zp_in_round=True, arith="float32_cuda"),
              PowerOfTwoFactorQuantizer(0.1, 8, [0, 1], 3, mode="code"),
              Log2Quantizer(4, arith="float32_cpu")):
        d = q.to_dict()
        assert quantizer_from_dict(d) == q
        for key, bad in (("arith", "float128"), ("zp_in_round", "yes"), ("mode", "fqvit")):
            if key in d:
                with pytest.raises(SpecError):
                    quantizer_from_dict({**d, key: bad})


def test_default_options_are_not_written() -> None:
    """Specs written before the options existed read back unchanged (no new keys)."""
    assert set(UniformQuantizer(0.1, 8).to_dict()) == {
        "kind", "version", "bits", "signed", "narrow", "rounding", "axis", "group_size",
        "float_zero_point", "scale", "zero_point"}
    assert "mode" not in PowerOfTwoFactorQuantizer(0.1, 8, [0, 1], 5).to_dict()
    for q in GOOD.values():
        assert "arith" not in q().to_dict()
