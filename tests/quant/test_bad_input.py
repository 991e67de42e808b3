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
