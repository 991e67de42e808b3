"""refq's calibration functions against the official codes re-typed in torch
(tests/methods/oracles), on seeded tensors: 5 seeds × 3/4/6/8 bits, float64, every chosen
candidate and every resulting scale / zero point / η compared bit for bit.

Covered: RepQ-ViT's and I&S-ViT's percentile-MSE init (per tensor, per channel, weight
rows, both candidate lists) and log√2 init; I&S-ViT's SULQ init and code-form forward;
FQ-ViT's min-max observers (weights /127.5), PTF over calibration batches and the
log-int softmax; PTQ4ViT's linear (cosine, L2, Hessian; qkv blocks; post-GELU twin),
matmul (per head; post-softmax twin split) and patch-embedding channel searches.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refq.calib import log2_init, sulq_eta_search
from refq.calib.fqvit import fqvit_act_params, fqvit_act_quantizer, fqvit_weight_quantizer
from refq.calib.lis import log_int_softmax
from refq.calib.metrics import weighted_mse
from refq.calib.search_ias import ACT_PERCENTILES, WEIGHT_PERCENTILES, percentile_mse_search
from refq.calib.search_ptf import ptf_alpha_search, ptf_search
from refq.calib.search_ptq4vit import (
    search_channel_scales,
    search_linear_scales,
    search_matmul_scales,
)
from refq.quant.sulq import ShiftUniformLog2Quantizer

from ..calib._data import gelu_acts, ln_inputs, softmax_probs
from ..torch_oracle import needs_torch

pytestmark = [pytest.mark.torch, needs_torch]

SEEDS = range(5)
BITS = (3, 4, 6, 8)
GRID = [(s, b) for s in SEEDS for b in BITS]


def _t(x: np.ndarray) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


def _f(v: Any) -> float:
    return float(v)


def _rng(seed: int, bits: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, bits, salt])


def _acts(rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((2, 17, 24)) * rng.uniform(0.2, 3.0)
    x[0, 3, 5] *= 25.0  # an outlier, so the percentiles matter
    return x


# ------------------------------------------------------------------ RepQ-ViT / I&S-ViT


@pytest.mark.parametrize("seed,bits", GRID)
def test_percentile_mse_per_tensor_and_per_channel(seed: int, bits: int) -> None:
    from .oracles.repq_ias import (
        IAS_WEIGHT_PCTS,
        REPQ_PCTS,
        uniform_init_channels,
        uniform_init_tensor,
    )

    rng = _rng(seed, bits, 1)
    x = _acts(rng)
    d, z, k = uniform_init_tensor(_t(x), bits, REPQ_PCTS)
    r = percentile_mse_search(x, bits, ACT_PERCENTILES)
    assert (r["index"], r["scale"], r["zero_point"]) == (k, _f(d), int(z))
    # per channel of a 3-D post-LayerNorm tensor (channel = last axis)
    ln = ln_inputs(rng, (2, 13, 16), outliers=(3, 11))
    d, z, ks = uniform_init_channels(_t(ln), bits, REPQ_PCTS, is_act=True)
    r = percentile_mse_search(ln.reshape(-1, 16), bits, ACT_PERCENTILES, axis=-1)
    assert r["index"] == ks
    np.testing.assert_array_equal(np.array(r["scale"]), d.numpy(), strict=True)
    np.testing.assert_array_equal(np.array(r["zero_point"], float), z.numpy(), strict=True)
    # weight rows, RepQ-ViT's three and I&S-ViT's nine candidates
    w = rng.standard_normal((12, 40)) * 0.05
    w[2, 7] = 0.9
    for ours, theirs in ((ACT_PERCENTILES, REPQ_PCTS), (WEIGHT_PERCENTILES, IAS_WEIGHT_PCTS)):
        d, z, ks = uniform_init_channels(_t(w), bits, theirs, is_act=False)
        r = percentile_mse_search(w, bits, ours, axis=0)
        assert r["index"] == ks
        np.testing.assert_array_equal(np.array(r["scale"]), d.numpy(), strict=True)
        np.testing.assert_array_equal(np.array(r["zero_point"], float), z.numpy(), strict=True)


@pytest.mark.parametrize("seed,bits", GRID)
def test_logsqrt2_init(seed: int, bits: int) -> None:
    from .oracles.repq_ias import logsqrt2_init

    p = softmax_probs(_rng(seed, bits, 2), (2, 2, 20, 20))
    d, k = logsqrt2_init(_t(p), bits)
    q, rec = log2_init(p, bits, base="sqrt2")
    assert (rec["index"], q.scale) == (k, _f(d))


def _torch_ln_is_correctly_rounded(t: float) -> bool:
    """torch's CPU float64 ln(t) is the float64 nearest to ln(t) (decimal arithmetic at 60
    digits, independent of refq and of NumPy)."""
    import decimal

    import torch

    with decimal.localcontext() as ctx:
        ctx.prec = 60
        exact = decimal.Decimal(t).ln()
        got = float(torch.log(torch.tensor(t, dtype=torch.float64)))
        err = abs(decimal.Decimal(got) - exact)
        return all(err <= abs(decimal.Decimal(n) - exact)
                   for n in (np.nextafter(got, -np.inf), np.nextafter(got, np.inf)))


@pytest.mark.parametrize("seed,bits", GRID)
def test_sulq_init_and_code_forward(seed: int, bits: int) -> None:
    """η, the y range (ln of the two extreme values over ln 2) and the code-form forward,
    exactly. refq's ln is correctly rounded; so is torch's CPU log at every value this grid
    reaches (checked per value: a platform whose torch log is not would be skipped by name,
    not passed). Seed 4, 8 bits pins the value where NumPy's SIMD log is one ulp off:
    ln(0.992427062106646)."""
    from .oracles.repq_ias import SULQ_BIASES, sulq_forward, sulq_init

    p = softmax_probs(_rng(seed, bits, 3), (2, 2, 20, 20))
    st = sulq_init(_t(p), bits)
    q, rec = sulq_eta_search(p, bits, mode="code", arith="float64")
    assert rec["index"] == st["chosen"]
    eta = SULQ_BIASES[st["chosen"]]
    assert q.eta == _f(st["delta"]) == float(np.float32(eta))
    for v in (p.min(), p.max()):
        if not _torch_ln_is_correctly_rounded(float(v + eta)):
            pytest.skip(f"torch's CPU log is not correctly rounded at {float(v + eta)!r}")
    assert (q.y_min, q.y_max) == (_f(st["minv"]), _f(st["maxv"]))
    # the forward on the official parameters: η rounded to float32, the code form
    qo = ShiftUniformLog2Quantizer(bits, _f(st["delta"]), _f(st["minv"]), _f(st["maxv"]),
                                   "code")
    want = sulq_forward(_t(p), st, bits).numpy()
    np.testing.assert_array_equal(qo.fake_quant(p), want, strict=True)


# ------------------------------------------------------------------ FQ-ViT


@pytest.mark.parametrize("seed,bits", GRID)
def test_fqvit_minmax_and_ptf_over_batches(seed: int, bits: int) -> None:
    from .oracles.fqvit import MinmaxObserver, PtfObserver

    rng = _rng(seed, bits, 4)
    w = rng.standard_normal((10, 3, 4, 4)) * 0.1  # a conv weight: one row per channel
    ob = MinmaxObserver("conv_weight", bits, True, "channel_wise")
    ob.update(_t(w))
    s, _ = ob.params()
    np.testing.assert_array_equal(np.asarray(fqvit_weight_quantizer(w, bits).scale),
                                  s.numpy(), strict=True)
    if bits == 8:
        amax = np.abs(w.reshape(10, -1)).max(axis=1)
        np.testing.assert_array_equal(s.numpy(), amax / 127.5, strict=True)
    batches = [_acts(rng) + 0.3 for _ in range(3)]
    oa = MinmaxObserver("activation", bits, False, "layer_wise")
    op = PtfObserver("activation", bits, False, "channel_wise")
    for b in batches:
        oa.update(_t(b))
        op.update(_t(b))
    lo = min(float(b.min()) for b in batches)
    hi = max(float(b.max()) for b in batches)
    s, z = oa.params()
    assert fqvit_act_params(lo, hi, bits) == (_f(s), int(z))
    ps, pz, alphas = op.params_ptf(_t(batches[-1]))
    r = ptf_search(batches[-1], bits, axis=-1, lo=lo, hi=hi)
    assert r["alpha"] == alphas and r["zero_point"] == int(pz)
    np.testing.assert_array_equal(r["base_scale"] * np.exp2(np.array(r["alpha"], float)),
                                  ps.numpy(), strict=True)


@pytest.mark.parametrize("seed,bits", GRID)
def test_fqvit_forward_adds_the_zero_point_before_rounding(seed: int, bits: int) -> None:
    """FQ-ViT's ``UniformQuantizer.quant`` / ``dequantize`` (round(x/s + z), then (q - z)·s)
    equals refq's fqvit activation and PTF quantizers element for element, on seeded
    activations and on the exact ties x/s = k + ½; the former refq form round(x/s) + z
    (``zp_in_round=False`` / PTF ``mode="paper"``) differs on the ties with an odd zero
    point (the negative control)."""
    from .oracles.fqvit import PtfObserver, uniform_fake_quant

    rng = _rng(seed, bits, 7)
    n = 2**bits - 1
    zp = 2 * int(rng.integers(0, n // 2)) + 1  # an odd zero point
    lo = -zp * 0.0625  # s = 1/16 exactly: (k + ½)·s is an exact tie
    q = fqvit_act_quantizer(lo, lo + n * 0.0625, bits)
    s, z = fqvit_act_params(lo, lo + n * 0.0625, bits)
    assert (s, z) == (0.0625, zp)
    ties = (np.arange(-zp - 2, n - zp + 2) + 0.5) * s
    x = np.concatenate([ties, rng.uniform(lo - 1, lo + n * s + 1, 500)])
    want = uniform_fake_quant(_t(x), _t(np.array(s)), _t(np.array(float(z))), bits, False)
    np.testing.assert_array_equal(q.fake_quant(x), want.numpy(), strict=True)
    old = fqvit_act_quantizer(lo, lo + n * 0.0625, bits, zp_in_round=False)
    assert (old.fake_quant(ties) != want.numpy()[: ties.size]).sum() > 0
    # PTF: the channel scales s8/8·2^α, one zero point, the same forward
    acts = _acts(rng) + 0.3
    qp, _ = ptf_alpha_search(acts, bits, axis=-1)
    op = PtfObserver("activation", bits, False, "channel_wise")
    op.update(_t(acts))
    ps, pz, _ = op.params_ptf(_t(acts))
    sc = ps.reshape(1, 1, -1)
    xt = np.concatenate([acts, (np.floor(acts / sc.numpy()) + 0.5) * sc.numpy()], axis=1)
    want = uniform_fake_quant(_t(xt), sc, pz, bits, False)
    np.testing.assert_array_equal(qp.fake_quant(xt), want.numpy(), strict=True)
    paper = ptf_alpha_search(acts, bits, axis=-1, mode="paper")[0]
    assert qp.mode == "code" and paper.mode == "paper"
    if int(pz) % 2:  # the negative control, where the zero point is odd
        assert (paper.fake_quant(xt) != want.numpy()).sum() > 0


@pytest.mark.parametrize("seed,bits", GRID)
def test_log_int_softmax(seed: int, bits: int) -> None:
    """LIS of quantized logits (uint``bits`` min-max quantizer, FQ-ViT's ``qact_attn1``;
    the softmax code width stays 4 as FQ-ViT's uint4)."""
    from .oracles.fqvit import log_int_softmax as official
    from .oracles.fqvit import uniform_fake_quant

    logits = _rng(seed, bits, 5).standard_normal((2, 3, 17, 17)) * 3.0
    s, z = fqvit_act_params(float(logits.min()), float(logits.max()), bits)
    xq = uniform_fake_quant(_t(logits), _t(np.array(s)), _t(np.array(float(z))), bits, False)
    want = official(xq, _t(np.array(s)), 4).numpy()
    got = log_int_softmax(xq.numpy(), s, 4)
    nan_rows = np.isnan(want).all(axis=-1)
    if nan_rows.any():
        # a coarse logits scale (3-4 bits here, S ≈ 1.4-2.9 > ln 2 / 2) can leave every
        # i-exp of a row at 0: FQ-ViT's forward divides 0 by 0 there (NaN for the whole
        # row); refq gives the zero code (value 0) — documented in docs/methods.md
        assert bits <= 4 and not got[nan_rows].any()
    assert not np.isnan(want[~nan_rows]).any()
    np.testing.assert_array_equal(got[~nan_rows], want[~nan_rows], strict=True)


# ------------------------------------------------------------------ PTQ4ViT


def _hist_linear(r: dict[str, Any]) -> list[dict[str, Any]]:
    return [{"w_index": h["w_index"], "a_index": h["a_index"]} for h in r["history"]]


@pytest.mark.parametrize("seed,bits", GRID)
@pytest.mark.parametrize("case", ["cosine", "L2_norm", "hessian", "qkv", "gelu"])
def test_ptq4vit_linear(seed: int, bits: int, case: str) -> None:
    from .oracles.ptq4vit import linear_search

    rng = _rng(seed, bits, 6)
    n_v = 3 if case == "qkv" else 1
    x = gelu_acts(rng, (2, 9, 16)) if case == "gelu" else rng.standard_normal((2, 9, 16))
    w = rng.standard_normal((6 * n_v, 16)) * 0.2
    b = rng.standard_normal(6 * n_v) * 0.1
    g = rng.standard_normal((2, 9, 6 * n_v)) if case == "hessian" else None
    metric = {"cosine": "cosine", "L2_norm": "L2_norm", "hessian": "hessian"}.get(case, "cosine")
    ours: Any = {"cosine": "cosine", "L2_norm": "mse"}.get(metric)
    if g is not None:
        ours = weighted_mse(g)
    want = linear_search(_t(x), _t(w), _t(b), w_bit=bits, a_bit=bits, n_v=n_v, metric=metric,
                         grad=None if g is None else _t(g), post_gelu=case == "gelu")
    got = search_linear_scales(x, w, b, w_bits=bits, a_bits=bits, metric=ours,
                               weight_blocks=n_v, post_gelu=case == "gelu")
    assert _hist_linear(got) == want["history"]
    np.testing.assert_array_equal(np.array(got["w_delta"]), want["w_interval"].numpy(),
                                  strict=True)
    assert got["a_delta"] == _f(want["a_interval"])


@pytest.mark.parametrize("seed,bits", GRID)
@pytest.mark.parametrize("softmax", [False, True])
def test_ptq4vit_matmul(seed: int, bits: int, softmax: bool) -> None:
    from refq.calib.search_twin import softmax_twin_quantizer

    from .oracles.ptq4vit import matmul_search

    rng = _rng(seed, bits, 7)
    if softmax:
        a = softmax_probs(rng, (2, 3, 10, 10))
        b = rng.standard_normal((2, 3, 10, 8))
    else:
        a = rng.standard_normal((2, 3, 10, 8)) * np.array([1.0, 4.0, 0.3])[None, :, None, None]
        b = rng.standard_normal((2, 3, 8, 10))
    want = matmul_search(_t(a), _t(b), a_bit=bits, b_bit=bits, softmax=softmax)

    def twin(v: np.ndarray, m: int) -> np.ndarray:
        return np.asarray(softmax_twin_quantizer(m, bits, "code").fake_quant(v))

    got = search_matmul_scales(a, b, a_bits=bits, b_bits=bits, metric="cosine",
                               a_twin=twin if softmax else None)
    for h, w_ in zip(got["history"], want["history"], strict=True):
        assert (h["a_index"], h["b_index"]) == (w_["a_index"], w_["b_index"])
    np.testing.assert_array_equal(np.array(got["b_delta"]), want["b_interval"].numpy(),
                                  strict=True)
    if softmax:
        assert 2.0 ** -got["a_split_m"] == _f(want["split"])
    else:
        np.testing.assert_array_equal(np.array(got["a_delta"]), want["a_interval"].numpy(),
                                      strict=True)


@pytest.mark.parametrize("seed,bits", GRID)
@pytest.mark.parametrize("metric", ["cosine", "L2_norm", "hessian"])
def test_ptq4vit_patch_embedding(seed: int, bits: int, metric: str) -> None:
    from refq.nn.layers import patchify

    from .oracles.ptq4vit import conv_channel_search

    rng = _rng(seed, bits, 8)
    img = rng.standard_normal((2, 2, 8, 8))
    w = rng.standard_normal((6, 2, 4, 4)) * 0.2
    b = rng.standard_normal(6) * 0.1
    x = patchify(img, 4)  # (B, P, K): the conv as a linear layer over patches
    g = rng.standard_normal((2, 4, 6)) if metric == "hessian" else None  # (B, P, C)
    ours: Any = weighted_mse(g) if g is not None else ("mse" if metric == "L2_norm" else metric)
    got = search_channel_scales(x, w.reshape(6, -1), b, w_bits=bits, metric=ours)
    gt = None if g is None else _t(g.transpose(0, 2, 1).reshape(2, 6, 2, 2))
    want = conv_channel_search(_t(img), _t(w), _t(b), w_bit=bits, metric=metric, grad=gt)
    assert got["w_index"] == want["w_index"]
    np.testing.assert_array_equal(np.array(got["w_delta"]), want["w_interval"].numpy(),
                                  strict=True)


def test_sulq_quantizer_keeps_the_float32_eta() -> None:
    """The official forward adds η as the float32 tensor ``torch.tensor(cur_bias)``."""
    p = softmax_probs(np.random.default_rng(0), (1, 1, 8, 8))
    q, rec = sulq_eta_search(p, 4, mode="code", arith="float64")
    assert isinstance(q, ShiftUniformLog2Quantizer)
    assert q.eta == float(np.float32(q.eta)) and rec["arith"] == "float64"
