# ruff: noqa: E501  (the placement table: one official quantizer per line)
"""The recipes against the official codes on the bundled DeiT (tests/methods/oracles).

- Placement, tensor by tensor: for every quantizer the official code builds on a ViT/DeiT
  (the table below, each row citing its source line), refq's spec holds a quantizer of the
  same kind, signedness and granularity on the same tensor, and nothing else.
- Calibration tensors: the tensor each of refq's in-order fitters sees (repq, ias) is fed
  to the re-typed official initialisation; scales and zero points agree bit for bit.
- The issue's checks: repq's proj / fc2 weight quantizers are RepQ-ViT's; fqvit's weight
  scales are max|w|/127.5 and its softmax is the log-int softmax; ptq4vit's patch-embedding
  weight is searched (and equals the official conv search); ias's post-softmax SULQ forward
  equals the official one.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np
import pytest

import refq.methods.ias as ias_mod
import refq.methods.repq as repq_mod
from refq.methods import fake_quant, quantize_model
from refq.methods.context import minmax_weight
from refq.nn import load_bundled
from refq.quant import Log2Quantizer, QuantSpec, UniformQuantizer

from ..torch_oracle import needs_torch

pytestmark = [pytest.mark.torch, needs_torch]

N_CALIB = 8


@pytest.fixture(scope="module")
def bundled() -> tuple[Any, np.ndarray]:
    m, d = load_bundled()
    ci, _ = d.split("calib")
    return m, d.normalize(ci[:N_CALIB])


def _t(x: Any) -> Any:
    import torch

    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float64))


# ------------------------------------------------------------------ placement

# (refq tensor with "{i}" for the block, kind, signed, granularity, source of the official
# quantizer). kind: uniform | log_sqrt2 | sulq | ptf | lis | twin_softmax | twin_gelu.
# granularity: tensor | channel (weights: output channel; activations: last axis, the
# post-LayerNorm ones before RepQ-ViT's fold) | head | rows (per-row blocks of qkv).
REPQ = "RepQ-ViT a160561 classification/"
IAS = "I&S-ViT 9300cea "
FQ = "FQ-ViT 5daf591 models/"
PT = "PTQ4ViT b42c790 "
OFFICIAL: dict[str, list[tuple[str, str, bool, str, str]]] = {
    "repq": [
        ("w:patch_embed.proj.weight", "uniform", False, "channel", REPQ + "quant/quant_model.py:30-46"),
        ("input", "uniform", False, "tensor", REPQ + "quant/quant_modules.py:37-39 (8 bits)"),
        ("w:blocks.{i}.attn.qkv.weight", "uniform", False, "channel", REPQ + "quant/quant_model.py:51-52"),
        ("blocks.{i}.norm1", "uniform", False, "tensor", REPQ + "test_quant.py:111-143 (folded)"),
        ("blocks.{i}.attn.q", "uniform", False, "tensor", REPQ + "quant/quant_modules.py:136-137"),
        ("blocks.{i}.attn.k", "uniform", False, "tensor", REPQ + "quant/quant_modules.py:137"),
        ("blocks.{i}.attn.softmax", "log_sqrt2", False, "tensor", REPQ + "quant/quant_modules.py:132-134"),
        ("blocks.{i}.attn.v", "uniform", False, "tensor", REPQ + "quant/quant_modules.py:137"),
        ("blocks.{i}.attn.attn@v", "uniform", False, "tensor", REPQ + "quant/quant_model.py:53-54"),
        ("w:blocks.{i}.attn.proj.weight", "uniform", False, "channel", REPQ + "quant/quant_model.py:53-54"),
        ("blocks.{i}.norm2", "uniform", False, "tensor", REPQ + "test_quant.py:111-143 (folded)"),
        ("w:blocks.{i}.mlp.fc1.weight", "uniform", False, "channel", REPQ + "quant/quant_model.py:51-52"),
        ("blocks.{i}.mlp.gelu", "uniform", False, "tensor", REPQ + "quant/quant_model.py:53-54"),
        ("w:blocks.{i}.mlp.fc2.weight", "uniform", False, "channel", REPQ + "quant/quant_model.py:53-54"),
        ("norm", "uniform", False, "tensor", REPQ + "quant/quant_model.py:53-54 (head, class token)"),
        ("w:head.weight", "uniform", False, "channel", REPQ + "quant/quant_model.py:53-54"),
    ],
    "ias": [
        ("w:patch_embed.proj.weight", "uniform", False, "channel", IAS + "quant/quant_modules.py:36-37"),
        ("w:blocks.{i}.attn.qkv.weight", "uniform", False, "channel", IAS + "quant/quant_model.py:51-52"),
        ("blocks.{i}.norm1", "uniform", False, "tensor", IAS + "test_quant.py:194-225 (folded)"),
        ("blocks.{i}.attn.q", "uniform", False, "tensor", IAS + "quant/quant_modules.py:129-136"),
        ("blocks.{i}.attn.k", "uniform", False, "tensor", IAS + "quant/quant_modules.py:136"),
        ("blocks.{i}.attn.softmax", "sulq", False, "tensor", IAS + "quant/quant_modules.py:131-133"),
        ("blocks.{i}.attn.v", "uniform", False, "tensor", IAS + "quant/quant_modules.py:136"),
        ("blocks.{i}.attn.attn@v", "uniform", False, "tensor", IAS + "quant/quant_model.py:53-54"),
        ("w:blocks.{i}.attn.proj.weight", "uniform", False, "channel", IAS + "quant/quant_model.py:53-54"),
        ("blocks.{i}.norm2", "uniform", False, "tensor", IAS + "test_quant.py:194-225 (folded)"),
        ("w:blocks.{i}.mlp.fc1.weight", "uniform", False, "channel", IAS + "quant/quant_model.py:51-52"),
        ("blocks.{i}.mlp.gelu", "uniform", False, "tensor", IAS + "quant/quant_model.py:53-54"),
        ("w:blocks.{i}.mlp.fc2.weight", "uniform", False, "channel", IAS + "quant/quant_model.py:53-54"),
        ("norm", "uniform", False, "tensor", IAS + "quant/quant_model.py:53-54 (head, class token)"),
        ("w:head.weight", "uniform", False, "channel", IAS + "quant/quant_model.py:53-54"),
    ],
    "fqvit": [
        ("input", "uniform", False, "tensor", FQ + "vit_quant.py:229-235,385-386"),
        ("w:patch_embed.proj.weight", "uniform", True, "channel", FQ + "layers_quant.py:197-207"),
        ("patch_embed", "uniform", False, "tensor", FQ + "vit_quant.py:259-264,392-393 (with cls)"),
        ("w:cls_token", "uniform", False, "tensor", FQ + "vit_quant.py:392-393 (qact_embed)"),
        ("w:pos_embed", "uniform", False, "tensor", FQ + "vit_quant.py:265-270,394 (qact_pos)"),
        ("embed", "ptf", False, "channel", FQ + "vit_quant.py:271-276,395"),
        ("blocks.{i}.norm1", "uniform", False, "tensor", FQ + "vit_quant.py:136-141,183"),
        ("w:blocks.{i}.attn.qkv.weight", "uniform", True, "channel", FQ + "vit_quant.py:43-51"),
        ("blocks.{i}.attn.q", "uniform", False, "tensor", FQ + "vit_quant.py:52-57,98 (qkv out)"),
        ("blocks.{i}.attn.k", "uniform", False, "tensor", FQ + "vit_quant.py:52-57,98 (qkv out)"),
        ("blocks.{i}.attn.v", "uniform", False, "tensor", FQ + "vit_quant.py:52-57,98 (qkv out)"),
        ("blocks.{i}.attn.q@k", "uniform", False, "tensor", FQ + "vit_quant.py:78-83,107"),
        ("blocks.{i}.attn.softmax", "lis", False, "tensor", FQ + "vit_quant.py:86-93,108"),
        ("blocks.{i}.attn.attn@v", "uniform", False, "tensor", FQ + "vit_quant.py:58-63,111"),
        ("w:blocks.{i}.attn.proj.weight", "uniform", True, "channel", FQ + "vit_quant.py:64-71"),
        ("blocks.{i}.attn.proj", "uniform", False, "tensor", FQ + "vit_quant.py:72-77,113"),
        ("blocks.{i}.add1", "ptf", False, "channel", FQ + "vit_quant.py:152-157,181"),
        ("blocks.{i}.norm2", "uniform", False, "tensor", FQ + "vit_quant.py:159-164,187"),
        ("w:blocks.{i}.mlp.fc1.weight", "uniform", True, "channel", FQ + "layers_quant.py:132-139"),
        ("blocks.{i}.mlp.gelu", "uniform", False, "tensor", FQ + "layers_quant.py:141-146,167"),
        ("w:blocks.{i}.mlp.fc2.weight", "uniform", True, "channel", FQ + "layers_quant.py:148-155"),
        ("blocks.{i}.mlp.fc2", "uniform", False, "tensor", FQ + "layers_quant.py:156-161,170"),
        ("blocks.{i}.add2", "ptf", False, "channel", FQ + "vit_quant.py:173-178,185"),
        ("norm", "uniform", False, "tensor", FQ + "vit_quant.py:295-300,404-406 (class token)"),
        ("w:head.weight", "uniform", True, "channel", FQ + "vit_quant.py:314-322"),
        ("head", "uniform", False, "tensor", FQ + "vit_quant.py:323-328,413"),
    ],
    "ptq4vit": [
        ("w:patch_embed.proj.weight", "uniform", True, "channel", PT + "configs/PTQ4ViT.py:52-54"),
        ("w:blocks.{i}.attn.qkv.weight", "uniform", True, "rows", PT + "configs/PTQ4ViT.py:58-60"),
        ("blocks.{i}.norm1", "uniform", True, "tensor", PT + "quant_layers/linear.py:164-169"),
        ("blocks.{i}.attn.q", "uniform", True, "head", PT + "quant_layers/matmul.py:411-417"),
        ("blocks.{i}.attn.k", "uniform", True, "head", PT + "quant_layers/matmul.py:411-417"),
        ("blocks.{i}.attn.softmax", "twin_softmax", False, "tensor", PT + "quant_layers/matmul.py:595-598"),
        ("blocks.{i}.attn.v", "uniform", True, "head", PT + "quant_layers/matmul.py:411-417"),
        ("blocks.{i}.attn.attn@v", "uniform", True, "tensor", PT + "quant_layers/linear.py:164-169"),
        ("w:blocks.{i}.attn.proj.weight", "uniform", True, "tensor", PT + "configs/PTQ4ViT.py:69-70"),
        ("blocks.{i}.norm2", "uniform", True, "tensor", PT + "quant_layers/linear.py:164-169"),
        ("w:blocks.{i}.mlp.fc1.weight", "uniform", True, "tensor", PT + "configs/PTQ4ViT.py:69-70"),
        ("blocks.{i}.mlp.gelu", "twin_gelu", False, "tensor", PT + "quant_layers/linear.py:601-607"),
        ("w:blocks.{i}.mlp.fc2.weight", "uniform", True, "tensor", PT + "configs/PTQ4ViT.py:61-65"),
        ("norm", "uniform", True, "tensor", PT + "configs/PTQ4ViT.py:66-68 (head, class token)"),
        ("w:head.weight", "uniform", True, "tensor", PT + "configs/PTQ4ViT.py:66-68"),
    ],
}
OFFICIAL["dopq"] = [r if "softmax" not in r[0] else (r[0], "tanq", False, "tensor", "DopQ-ViT")
                    for r in OFFICIAL["repq"]]


def _describe(q: Any, name: str) -> tuple[str, bool, str]:
    """(kind, signed, granularity) of a refq quantizer, in the table's words."""
    kind = {"uniform": "uniform", "sulq": "sulq", "ptf": "ptf", "tan": "tanq"}.get(q.kind, q.kind)
    if q.kind == "log2":
        kind = "log_sqrt2" if q.base == "sqrt2" else "lis"
    if q.kind == "twin":
        kind = "twin_" + q.to_dict()["kind_of_input"] if "kind_of_input" in q.to_dict() else (
            "twin_softmax" if "softmax" in name else "twin_gelu")
    signed = bool(getattr(q, "signed", False))
    axis = getattr(q, "axis", None)
    if axis is None:
        gran = "tensor"
    elif q.kind == "uniform" and axis == 1 and q.scale.size > 1 and "attn." in name:
        gran = "head"
    elif q.kind == "uniform" and "qkv.weight" in name and np.unique(q.scale).size <= 3:
        gran = "rows"
    else:
        gran = "channel"
    return kind, signed, gran


def _placement(spec: QuantSpec, depth: int) -> dict[str, tuple[str, bool, str]]:
    out = {}
    for k, q in spec.weights.items():
        out["w:" + k] = _describe(q, k)
    for k, q in spec.activations.items():
        out[k] = _describe(q, k)
    if spec.kernels.get("softmax") == "lis":
        for k in list(out):
            if k.endswith("attn.softmax"):
                out[k] = ("lis", False, "tensor")
    return out


def _official(method: str, depth: int) -> dict[str, tuple[str, bool, str]]:
    out = {}
    for name, kind, signed, gran, _src in OFFICIAL[method]:
        for i in range(depth) if "{i}" in name else [0]:
            out[name.format(i=i)] = (kind, signed, gran)
    return out


SMALL = {"ptq4vit": {"metric": "cosine", "n": 8, "rounds": 1, "calib_sub": 4}}


@pytest.mark.parametrize("method", ["repq", "dopq", "ias", "fqvit", "ptq4vit"])
def test_placement_tensor_by_tensor(bundled: tuple[Any, np.ndarray], method: str) -> None:
    m, x = bundled
    spec = quantize_model(m, method, 4, 4, x, **SMALL.get(method, {}))
    got = _placement(spec, m.config.depth)
    want = _official(method, m.config.depth)
    assert sorted(got) == sorted(want), (sorted(set(got) - set(want)),
                                         sorted(set(want) - set(got)))
    bad = {k: (got[k], want[k]) for k in want if got[k] != want[k]}
    assert not bad, bad
    if method == "fqvit":
        assert spec.kernels == {"softmax": "lis"}


# ------------------------------------------------------------------ calibration tensors


@contextmanager
def _capturing(module: Any) -> Iterator[dict[str, np.ndarray]]:
    """Record the tensor each in-order fitter of ``module``'s recipe sees."""
    seen: dict[str, np.ndarray] = {}
    real = module.fit_in_order

    def spy(model: Any, images: Any, fitters: Any, **kw: Any) -> Any:
        def wrap(name: str, f: Any) -> Any:
            def g(v: np.ndarray) -> Any:
                seen[name] = np.array(v)
                return f(v)
            return g
        return real(model, images, {k: wrap(k, f) for k, f in fitters.items()}, **kw)

    module.fit_in_order = spy
    try:
        yield seen
    finally:
        module.fit_in_order = real


def _check_uniform(q: Any, delta: Any, zp: Any) -> None:
    np.testing.assert_array_equal(np.asarray(q.scale).reshape(-1),
                                  np.asarray(delta, np.float64).reshape(-1), strict=True)
    np.testing.assert_array_equal(np.asarray(q.zero_point, np.float64).reshape(-1),
                                  np.asarray(zp, np.float64).reshape(-1), strict=True)


def _folded(m: Any) -> set[str]:
    """The LayerNorm outputs whose per-channel quantizers the recipes fold into the norm."""
    return {f"blocks.{i}.norm{j}" for i in range(m.config.depth) for j in (1, 2)}


def _check_weights(spec: QuantSpec, m: Any, bits: int, pcts: Any) -> None:
    """Every weight quantizer of ``spec`` is the official per-channel initialisation (with
    percentile candidates ``pcts``) of the weight it quantizes (the folded one if folded)."""
    from .oracles.repq_ias import uniform_init_channels

    for name, q in spec.weights.items():
        w = spec.params.get(name, m.params[name])
        d, z, _ = uniform_init_channels(_t(np.asarray(w, np.float64)), bits, pcts,
                                        is_act=False)
        _check_uniform(q, d, z)


@pytest.mark.parametrize("bits", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_repq_on_its_calibration_tensors(bundled: tuple[Any, np.ndarray], bits: int) -> None:
    """Every activation quantizer fitted on the tensor that reached it (upstream quantized)
    equals RepQ-ViT's init on that tensor; every weight quantizer equals RepQ-ViT's (proj
    and fc2 included, and qkv / fc1 on the folded weights)."""
    from .oracles.repq_ias import (
        REPQ_PCTS,
        logsqrt2_init,
        uniform_init_channels,
        uniform_init_tensor,
    )

    m, x = bundled
    with _capturing(repq_mod) as seen:
        spec = quantize_model(m, "repq", bits, bits, x)
    folded = _folded(m)
    assert sorted(seen) == sorted({*folded, *(t for t in spec.activations if t not in folded)})
    for tap, v in seen.items():
        if tap == "input":
            d, z, _ = uniform_init_tensor(_t(v), 8, REPQ_PCTS)
            _check_uniform(spec.activations[tap], d, z)
        elif tap in folded:  # per channel before the fold: check the fold's inputs
            d, z, _ = uniform_init_channels(_t(v), bits, REPQ_PCTS, is_act=True)
            q = spec.activations[tap]
            assert q.float_zero_point
            assert float(q.scale) == pytest.approx(float(d.mean()), rel=4e-16)
            assert float(q.zero_point) == pytest.approx(float(z.mean()), rel=1e-15, abs=1e-15)
        elif tap.endswith("softmax"):
            d, _ = logsqrt2_init(_t(v), bits)
            assert spec.activations[tap].scale == float(d)
        else:
            d, z, _ = uniform_init_tensor(_t(v), bits, REPQ_PCTS)
            _check_uniform(spec.activations[tap], d, z)
    _check_weights(spec, m, bits, REPQ_PCTS)


@pytest.mark.parametrize("bits", [4, pytest.param(8, marks=pytest.mark.slow)])
def test_ias_on_its_calibration_tensors(bundled: tuple[Any, np.ndarray], bits: int) -> None:
    """As for repq, with I&S-ViT's candidates; the post-softmax SULQ forward equals the
    official forward on the same tensor, element for element."""
    from .oracles.repq_ias import (
        IAS_ACT_PCTS,
        IAS_WEIGHT_PCTS,
        sulq_forward,
        sulq_init,
        uniform_init_channels,
        uniform_init_tensor,
    )

    m, x = bundled
    with _capturing(ias_mod) as seen:
        spec = quantize_model(m, "ias", bits, bits, x)
    assert "input" not in spec.activations  # the image stays float
    folded = _folded(m)
    for tap, v in seen.items():
        q = spec.activations[tap]
        if tap in folded:
            d, z, _ = uniform_init_channels(_t(v), bits, IAS_ACT_PCTS, is_act=True)
            assert float(q.scale) == pytest.approx(float(d.mean()), rel=4e-16)
        elif tap.endswith("softmax"):
            st = sulq_init(_t(v), bits)
            assert q.eta == float(st["delta"])
            assert (q.y_min, q.y_max) == (float(st["minv"]), float(st["maxv"]))
            np.testing.assert_array_equal(q.fake_quant(v), sulq_forward(_t(v), st, bits).numpy(),
                                          strict=True)
        else:
            d, z, _ = uniform_init_tensor(_t(v), bits, IAS_ACT_PCTS)
            _check_uniform(q, d, z)
    assert seen["norm"].shape[1] == 1  # the head's input: the class token only
    _check_weights(spec, m, bits, IAS_WEIGHT_PCTS)


@pytest.mark.parametrize("bits", [4, 8])
def test_fqvit_observers_and_log_int_softmax(bundled: tuple[Any, np.ndarray],
                                             bits: int) -> None:
    """FQ-ViT's observers fed the float model's taps (one batch here: fewer images than
    ``calib_batch``) give refq's scales; the weights are max|w|/((2^b-1)/2); the softmax
    tap of the fake-quant model is the official log-int softmax of the quantized logits."""
    import torch

    from .oracles.fqvit import MinmaxObserver, PtfObserver, log_int_softmax

    m, x = bundled
    spec = quantize_model(m, "fqvit", bits, bits, x)
    for name, q in spec.weights.items():
        if name in ("cls_token", "pos_embed"):
            continue
        w = np.asarray(m.params[name], np.float64)
        ob = MinmaxObserver("linear_weight", bits, True, "channel_wise")
        ob.update(_t(w))
        s, _ = ob.params()
        np.testing.assert_array_equal(np.asarray(q.scale), s.numpy(), strict=True)
        if bits == 8:
            np.testing.assert_array_equal(
                np.asarray(q.scale), np.abs(w.reshape(w.shape[0], -1)).max(axis=1) / 127.5,
                strict=True)
    # the calibration forward as FQ-ViT runs its (only, so last) batch: each logits
    # observer gets its scale during the forward and the softmax takes the log-int branch
    # on the float logits from then on (vit_quant.py 107-108, layers.py 279-288)
    pending: dict[str, Any] = {}

    def official_last_batch(name: str, v: np.ndarray) -> np.ndarray | None:
        if name.endswith("attn.q@k"):
            ob = MinmaxObserver("activation", bits, False, "layer_wise")
            ob.update(_t(v))
            pending[name] = (_t(v), ob.params()[0])
        elif name.endswith("attn.softmax"):
            lg, sc = pending.pop(name[: -len("softmax")] + "q@k")
            return np.asarray(log_int_softmax(lg, sc, 4).numpy())
        return None

    _, taps = m.forward_with_taps(x, tap=official_last_batch)
    for tap in ("blocks.0.norm1", "blocks.1.mlp.gelu", "blocks.2.attn.q@k", "head"):
        ob = MinmaxObserver("activation", bits, False, "layer_wise")
        ob.update(_t(taps[tap]))
        s, z = ob.params()
        _check_uniform(spec.activations[tap], s, z)
    ob = MinmaxObserver("activation", bits, False, "layer_wise")
    ob.update(_t(taps["norm"][:, 0]))
    _check_uniform(spec.activations["norm"], *ob.params())
    for tap in ("embed", "blocks.3.add2"):
        op = PtfObserver("activation", bits, False, "channel_wise")
        op.update(_t(taps[tap]))
        ps, pz, _ = op.params_ptf(_t(taps[tap]))
        _check_uniform(spec.activations[tap], ps, pz.expand(ps.shape))
    # every activation quantizer's forward adds the zero point before rounding, as FQ-ViT's
    for tap, q in spec.activations.items():
        if not isinstance(q, Log2Quantizer):
            assert getattr(q, "zp_in_round", False), tap
    assert spec.notes["zp_in_round"] is True
    # the softmax of the simulation is the log-int softmax of the quantized logits
    mq, tap = fake_quant(m, spec)
    _, qt = mq.forward_with_taps(x[:2], tap=tap)
    for i in range(m.config.depth):
        a = f"blocks.{i}.attn."
        sq = spec.activations[a + "q@k"]
        want = log_int_softmax(_t(qt[a + "q@k"]), torch.tensor(float(sq.scale),
                                                               dtype=torch.float64), 4)
        assert isinstance(spec.activations[a + "softmax"], Log2Quantizer)
        got, ref = qt[a + "softmax"], want.numpy()
        ok = ~np.isnan(ref)
        np.testing.assert_array_equal(got[ok], ref[ok], strict=True)
        assert not got[~ok].any()


def test_ptq4vit_searches_the_patch_embedding(bundled: tuple[Any, np.ndarray]) -> None:
    """The patch-embedding weight is searched per output channel, as the official conv
    search on the same calibration images (cosine metric: no gradient policy involved)."""
    from .oracles.ptq4vit import conv_channel_search

    m, x = bundled
    opts = {"metric": "cosine", "n": 100, "rounds": 1, "calib_sub": 4}
    spec = quantize_model(m, "ptq4vit", 4, 4, x, **opts)
    w = np.asarray(m.params["patch_embed.proj.weight"], np.float64)
    mm = minmax_weight(w, 4)  # refq's former choice, the option patch_embed=minmax
    q = spec.weights["patch_embed.proj.weight"]
    assert isinstance(q, UniformQuantizer) and q.axis == 0 and q.signed
    want = conv_channel_search(_t(x[:4]), _t(w), _t(m.params["patch_embed.proj.bias"]),
                               w_bit=4, metric="cosine")
    np.testing.assert_array_equal(np.asarray(q.scale), want["w_interval"].numpy(), strict=True)
    assert not np.array_equal(np.asarray(q.scale), np.asarray(mm.scale))
