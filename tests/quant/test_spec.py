"""QuantSpec: dict / folder round trips and validation."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from refq.errors import SpecError
from refq.quant import QuantSpec, UniformQuantizer


def _spec() -> QuantSpec:
    return QuantSpec(
        method="minmax", model="deit_digits", w_bits=8, a_bits=8,
        weights={"blocks.0.attn.qkv.weight": UniformQuantizer([0.1, 0.2], 8, axis=0)},
        activations={"blocks.0.norm1": UniformQuantizer.from_minmax(-1.0, 3.0, 8)},
        params={"norm.weight": np.array([1.0, 0.5]), "idx": np.arange(3, dtype=np.int64)},
        kernels={"softmax": "refq"}, notes={"seed": 0},
    )


def test_dict_round_trip() -> None:
    s = _spec()
    r = QuantSpec.from_dict(json.loads(json.dumps(s.to_dict())))
    assert r == s
    x = np.linspace(-2, 4, 17)
    np.testing.assert_array_equal(r.activations["blocks.0.norm1"].quantize(x),
                                  s.activations["blocks.0.norm1"].quantize(x), strict=True)


def test_folder_round_trip(tmp_path: Path) -> None:
    s = _spec()
    s.save(tmp_path / "spec")
    r = QuantSpec.load(tmp_path / "spec")
    assert r == s
    assert r.params["idx"].dtype == np.int64


def test_bad_specs() -> None:
    d = _spec().to_dict()
    for bad in ({**d, "version": 1}, {**d, "kind": "x"}, {**d, "w_bits": 1},
                {k: v for k, v in d.items() if k != "model"}, [1]):
        with pytest.raises(SpecError):
            QuantSpec.from_dict(bad)
    with pytest.raises(SpecError):
        QuantSpec("m", "x", 8, 8, notes={"a": object()})
    with pytest.raises(SpecError):
        QuantSpec("m", "x", 8, 8, params={"p": np.array([np.nan])})
