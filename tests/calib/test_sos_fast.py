"""refq.calib.sos fast paths: the prepared fake quantization equals ``q.fake_quant`` bit for
bit (and its STE mask the level-range definition), and the precomputed-norm1 step gives the
same loss and learned-parameter gradients, bit for bit, as the plain step."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refq.calib.sos import LEARNED_SUFFIXES, _fq, _Prepared, quant_block_loss_grad
from refq.nn.layers import layernorm
from refq.quant import Log2Quantizer, ShiftUniformLog2Quantizer, UniformQuantizer


def _range_mask(q: Any, x: np.ndarray) -> np.ndarray:
    lv = np.asarray(q.levels(), dtype=np.float64)
    lo, hi = lv.min(axis=-1), lv.max(axis=-1)
    if lv.ndim == 2:
        shape = [1] * x.ndim
        shape[q.axis] = lo.shape[0]
        lo, hi = lo.reshape(shape), hi.reshape(shape)
    return (x >= lo) & (x <= hi)


def _data(shape: tuple[int, ...], scale: np.ndarray | float, seed: int) -> np.ndarray:
    r = np.random.default_rng(seed)
    x = r.normal(size=shape) * 4 * np.max(scale)
    # exact ties k + 1/2 steps (half-even matters), zeros and -0.0
    flat = x.reshape(-1)
    s = float(np.min(scale))
    flat[:40] = (np.arange(40) - 20 + 0.5) * s
    flat[40:44] = [0.0, -0.0, -0.4 * s, 0.4 * s]
    return x


def _with_levels(q: Any, x: np.ndarray) -> np.ndarray:
    """x with every level of q (its clipping ends included) at the end of each channel."""
    lv = np.asarray(q.levels(), dtype=np.float64)
    if lv.ndim == 1:
        x.reshape(-1)[-lv.size:] = lv
        return x
    xm = np.moveaxis(x, q.axis, 0).copy()
    flat = xm.reshape(xm.shape[0], -1)
    flat[:, -lv.shape[1]:] = lv
    return np.moveaxis(flat.reshape(xm.shape), 0, q.axis)


@pytest.mark.parametrize("case", ["tensor_signed", "tensor_unsigned_zp", "channel_last",
                                  "channel_neg_axis", "channel_axis1"])
def test_uniform_fast_path_bit_exact(case: str) -> None:
    r = np.random.default_rng(0)
    shape = (3, 5, 7, 6)
    if case == "tensor_signed":
        q = UniformQuantizer(0.37, 4)
    elif case == "tensor_unsigned_zp":
        q = UniformQuantizer(0.21, 3, 5, signed=False)
    elif case == "channel_last":
        q = UniformQuantizer(r.uniform(0.1, 0.5, 6), 4, r.integers(0, 15, 6), signed=False,
                             axis=3)
    elif case == "channel_neg_axis":
        q = UniformQuantizer(r.uniform(0.1, 0.5, 6), 3, axis=-1)
    else:
        q = UniformQuantizer(r.uniform(0.1, 0.5, 5), 4, r.integers(-3, 3, 5), axis=1)
    prep = _Prepared(q)
    assert prep.kind == "uniform"
    x = _with_levels(q, _data(shape, q.scale, 1))
    y, mask = prep(x)
    ref = q.fake_quant(x)
    np.testing.assert_array_equal(y, ref, strict=True)
    assert np.array_equal(np.signbit(y), np.signbit(ref))   # no -0.0 where the codes give +0.0
    assert mask is not None
    np.testing.assert_array_equal(mask, _range_mask(q, x), strict=True)
    # the cached path returns the same
    cache: dict[int, Any] = {}
    y2, _ = _fq(q, x, cache)
    y3, _ = _fq(q, x, cache)
    np.testing.assert_array_equal(y2, ref, strict=True)
    np.testing.assert_array_equal(y3, ref, strict=True)
    assert len(cache) == 1


@pytest.mark.parametrize("q", [ShiftUniformLog2Quantizer(4, 0.01, -6.0, 0.0),
                               Log2Quantizer(4), Log2Quantizer(3, base="sqrt2", zero="reserve")])
def test_table_fast_path_bit_exact(q: Any) -> None:
    prep = _Prepared(q)
    assert prep.kind == "table"
    r = np.random.default_rng(2)
    x = r.dirichlet(np.ones(17), size=(4, 9))      # softmax-like rows
    th = np.asarray(q.thresholds)
    x.reshape(-1)[: th.size] = th                   # exactly on every threshold
    x = _with_levels(q, x)
    y, mask = prep(x)
    np.testing.assert_array_equal(y, q.fake_quant(x), strict=True)
    assert mask is not None
    np.testing.assert_array_equal(mask, _range_mask(q, x), strict=True)


def test_other_rounding_uses_generic_path() -> None:
    q = UniformQuantizer(0.3, 4, 2, signed=False, rounding="half_away")
    prep = _Prepared(q)
    assert prep.kind == "generic"
    x = _data((4, 6, 5), 0.3, 3)
    y, mask = prep(x)
    np.testing.assert_array_equal(y, q.fake_quant(x), strict=True)
    assert mask is not None
    np.testing.assert_array_equal(mask, _range_mask(q, x), strict=True)


def test_precomputed_norm1_step_bit_identical() -> None:
    pre = "blocks.0."
    c, hid = 8, 12
    r = np.random.default_rng(4)
    shapes = {"norm1.weight": (c,), "norm1.bias": (c,), "attn.qkv.weight": (3 * c, c),
              "attn.qkv.bias": (3 * c,), "attn.proj.weight": (c, c), "attn.proj.bias": (c,),
              "norm2.weight": (c,), "norm2.bias": (c,), "mlp.fc1.weight": (hid, c),
              "mlp.fc1.bias": (hid,), "mlp.fc2.weight": (c, hid), "mlp.fc2.bias": (c,)}
    p = {pre + k: r.normal(size=s) * 0.5 for k, s in shapes.items()}
    x, t = r.normal(size=(5, 6, c)), r.normal(size=(5, 6, c))
    act = {pre + "norm1": UniformQuantizer(r.uniform(0.1, 0.4, c), 3, axis=-1),
           pre + "attn.softmax": Log2Quantizer(4), pre + "mlp.gelu": UniformQuantizer(0.1, 4)}
    wq = {pre + "mlp.fc1.weight": UniformQuantizer(0.05, 4)}
    l0, g0 = quant_block_loss_grad(p, pre, 2, 1e-6, x, t, act, wq)
    n1 = act[pre + "norm1"].fake_quant(layernorm(x, p[pre + "norm1.weight"],
                                                 p[pre + "norm1.bias"], 1e-6))
    cache: dict[int, Any] = {}
    l1, g1 = quant_block_loss_grad(p, pre, 2, 1e-6, x, t, act, wq, n1=n1, fq_cache=cache)
    assert l0 == l1
    for s in LEARNED_SUFFIXES:
        np.testing.assert_array_equal(g1[pre + s], g0[pre + s], strict=True)
    assert pre + "norm1.weight" not in g1 and pre + "norm1.weight" in g0
