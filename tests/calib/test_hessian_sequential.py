"""PTQ4ViT's sequential calibration (``ptq4vit(sequential=True)``, refq.calib.hessian
``sequential_state``): the KL gradient at the partially quantized model against finite
differences of the KL through ``model.forward`` taps (independent of the backward code), the
zero gradient when nothing upstream is quantized, the searches' inputs against the partially
quantized model's taps, option validation and determinism."""

from __future__ import annotations

import hashlib
import json
from typing import Any

import numpy as np
import pytest

import refq.methods.ptq4vit as recipes
from refq.calib.hessian import sequential_op_metric, sequential_state
from refq.errors import SpecError
from refq.methods.context import Ctx
from refq.nn.configs import ViTConfig
from refq.nn.factory import create_model
from refq.nn.grad_vit import vit_backward, vit_forward_cached, vit_forward_tapped
from refq.quant import Quantizer, UniformQuantizer


def _model(distilled: bool = False, depth: int = 2) -> Any:
    cfg = ViTConfig(name="tiny", img_size=8, patch_size=4, in_chans=1, num_classes=4,
                    embed_dim=12, depth=depth, num_heads=2, mlp_ratio=2.0, distilled=distilled)
    m = create_model(cfg, seed=5)
    # larger weights: less uniform predictions, so the gradients are not tiny
    return m.with_params({k: v * 6 for k, v in m.params.items()})


def _images(seed: int, b: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(b, 1, 8, 8))


def _kl_mean(zp: np.ndarray, zq: np.ndarray) -> float:
    """mean_b KL(softmax(zp) || softmax(zq)), written out independently."""
    def lsm(z: np.ndarray) -> np.ndarray:
        z = z - z.max(axis=-1, keepdims=True)
        return z - np.log(np.exp(z).sum(axis=-1, keepdims=True))
    lp, lq = lsm(zp), lsm(zq)
    return float(np.sum(np.exp(lp) * (lp - lq)) / zp.shape[0])


def _upstream_quantizers(model: Any, x: np.ndarray, upto: str,
                         bits: int = 3) -> tuple[dict[str, Quantizer], dict[str, Quantizer]]:
    """Min-max quantizers (weights per channel, activations per tensor, from the FP taps)
    for every op BEFORE ``upto`` in execution order; the image is not quantized."""
    _, taps = model.forward_with_taps(x)
    w: dict[str, Quantizer] = {}
    a: dict[str, Quantizer] = {}
    for op in model.ops():
        if op.name == upto:
            break
        if op.weight is not None:
            wt = np.asarray(model.params[op.weight], dtype=np.float64)
            red = tuple(range(1, wt.ndim))
            w[op.weight] = UniformQuantizer.from_minmax(wt.min(axis=red), wt.max(axis=red),
                                                        bits, symmetric=True, axis=0)
        for t in op.inputs:
            if t != "input":
                a[t] = UniformQuantizer.from_minmax(float(taps[t].min()), float(taps[t].max()),
                                                    bits)
    return w, a


def _quantized(model: Any, w: dict[str, Quantizer], a: dict[str, Quantizer]) -> tuple[Any, Any]:
    """The partially quantized model built here, not by the code under test."""
    params = {k: (w[k].fake_quant(np.asarray(v, dtype=np.float64)) if k in w else v)
              for k, v in model.params.items()}

    def tap(name: str, t: np.ndarray) -> np.ndarray | None:
        return a[name].fake_quant(t) if name in a else None

    return model.with_params(params), tap


OPS = ["blocks.0.attn.qkv", "blocks.0.attn.q@k", "blocks.0.attn.attn@v", "blocks.0.attn.proj",
       "blocks.1.mlp.fc1", "blocks.1.mlp.fc2", "head"]


@pytest.mark.parametrize("distilled", [False, True])
def test_sequential_grad_vs_finite_differences(distilled: bool) -> None:
    model = _model(distilled)
    x = _images(1)
    zfp = model.forward(x)
    tap_of = {o.name: o.output for o in model.ops()}
    rr = np.random.default_rng(2)
    ops = OPS + (["head_dist"] if distilled else [])
    for op in ops:
        w, a = _upstream_quantizers(model, x, op)
        st = sequential_state(model, x, w, a, zfp)
        assert st.grads is not None
        g = st.grads[op]
        mq, qtap = _quantized(model, w, a)
        assert st.kl == pytest.approx(_kl_mean(zfp, mq.forward(x, tap=qtap)), rel=1e-12)
        assert st.kl > 1e-6           # the upstream quantizers change the logits
        big = np.argwhere(np.abs(g) > 1e-2 * np.abs(g).max())
        probes = [tuple(int(i) for i in np.unravel_index(int(np.argmax(np.abs(g))), g.shape))]
        probes += [tuple(int(i) for i in big[j]) for j in rr.integers(0, len(big), size=2)]
        for idx in probes:
            def kl(e: float, op: str = op, idx: tuple[int, ...] = idx, mq: Any = mq,
                   qtap: Any = qtap) -> float:
                def tap(name: str, t: np.ndarray) -> np.ndarray | None:
                    r = qtap(name, t)
                    if name == tap_of[op]:
                        r = (t if r is None else r).copy()
                        r[idx] += e
                    return r
                return _kl_mean(zfp, mq.forward(x, tap=tap))

            def d(h: float) -> float:
                return (kl(h) - kl(-h)) / (2 * h)

            h = 1e-4 * max(1.0, float(np.abs(st.taps[tap_of[op]]).max()))
            fd = (4 * d(h / 2) - d(h)) / 3        # Richardson: removes the h^2 term
            assert abs(fd - g[idx]) <= 1e-6 * abs(g[idx]), (op, idx, fd, g[idx])


def test_zero_gradient_when_nothing_upstream_is_quantized() -> None:
    model = _model()
    x = _images(3)
    zfp = model.forward(x)
    st = sequential_state(model, x, {}, {}, zfp)
    assert st.grads is not None and st.kl == 0.0
    for op, g in st.grads.items():
        assert not np.any(g), op
    with pytest.raises(SpecError, match="identically zero"):
        sequential_op_metric(st, "blocks.0.attn.qkv")
    # the recipe's policy: the patch-embedding weight (min-max, never searched) is quantized
    # from the start, so the first searched op already has a non-zero KL gradient
    w, a = _upstream_quantizers(model, x, "blocks.0.attn.qkv")
    assert set(w) == {"patch_embed.proj.weight"} and not a
    st1 = sequential_state(model, x, w, a, zfp)
    assert st1.grads is not None and np.any(st1.grads["blocks.0.attn.qkv"])
    sequential_op_metric(st1, "blocks.0.attn.qkv")


def test_tapped_cache_equals_fp_cache_without_taps() -> None:
    model = _model()
    x = _images(4)
    z0, c0 = vit_forward_cached(model, x)
    z1, c1, _ = vit_forward_tapped(model, x, None)
    np.testing.assert_allclose(z1, z0, rtol=1e-13, atol=1e-13)
    gl = np.random.default_rng(5).normal(size=z0.shape)
    g0, g1 = vit_backward(model, c0, gl), vit_backward(model, c1, gl)
    assert set(g0) == set(g1)
    for op in g0:
        np.testing.assert_allclose(g1[op], g0[op], rtol=1e-10, atol=1e-12)


def test_state_taps_equal_partially_quantized_model() -> None:
    model = _model()
    x = _images(6)
    w, a = _upstream_quantizers(model, x, "blocks.1.attn.proj")
    st = sequential_state(model, x, w, a, model.forward(x), grads=False)
    assert st.grads is None
    mq, qtap = _quantized(model, w, a)
    z, taps = mq.forward_with_taps(x, tap=qtap)
    np.testing.assert_array_equal(st.logits, z, strict=True)
    for name, t in taps.items():
        np.testing.assert_array_equal(st.taps[name], t, strict=True)
    _, fp = model.forward_with_taps(x)
    assert not np.array_equal(st.taps["blocks.1.attn.attn@v"], fp["blocks.1.attn.attn@v"])


def _run(model: Any, x: np.ndarray, **opts: Any) -> Any:
    o = recipes.PTQ4ViTOptions(n=6, rounds=1, calib_sub=4, **opts)
    return recipes.run(Ctx(model, 4, 4, x), o)


@pytest.mark.parametrize("metric", ["hessian", "cosine"])
def test_recipe_search_inputs_are_the_partially_quantized_taps(
        monkeypatch: pytest.MonkeyPatch, metric: str) -> None:
    model = _model()
    x = _images(7, b=5)
    seen: list[tuple[str, list[np.ndarray], Any]] = []
    lin, mm = recipes.ptq4vit_search, recipes.ptq4vit_search_matmul

    def rec_lin(xx: np.ndarray, *args: Any, **kw: Any) -> Any:
        seen.append(("linear", [np.array(xx)], kw["metric"]))
        return lin(xx, *args, **kw)

    def rec_mm(aa: np.ndarray, bb: np.ndarray, **kw: Any) -> Any:
        seen.append(("matmul", [np.array(aa), np.array(bb)], kw["metric"]))
        return mm(aa, bb, **kw)

    monkeypatch.setattr(recipes, "ptq4vit_search", rec_lin)
    monkeypatch.setattr(recipes, "ptq4vit_search_matmul", rec_mm)
    spec = _run(model, x, metric=metric, sequential=True)
    ops = [o for o in model.ops() if o.name != "patch_embed.proj"]
    assert len(seen) == len(ops)
    xs = x[:4]
    _, fp = model.forward_with_taps(xs)
    differs = 0
    for i, (op, (kind, got, m)) in enumerate(zip(ops, seen, strict=True)):
        assert kind == op.kind
        before = {o.name for o in ops[:i]}
        w = {"patch_embed.proj.weight": spec.weights["patch_embed.proj.weight"]}
        a: dict[str, Quantizer] = {}
        for o in model.ops():
            if o.name in before:
                if o.weight is not None:
                    w[o.weight] = spec.weights[o.weight]
                a.update({t: spec.activations[t] for t in o.inputs})
        mq, qtap = _quantized(model, w, a)
        _, taps = mq.forward_with_taps(xs, tap=qtap)
        want = [taps[t] for t in op.inputs]
        if op.name == "head":
            want = [want[0][:, 0]]
        if op.kind == "matmul" and not op.inputs[0].endswith("softmax"):
            want[1] = np.swapaxes(want[1], -1, -2)
        for g_, w_ in zip(got, want, strict=True):
            np.testing.assert_array_equal(g_, w_, strict=True)
        differs += int(not np.array_equal(want[0], fp[op.inputs[0]][:, 0] if op.name == "head"
                                          else fp[op.inputs[0]]))
        if metric == "hessian":
            zfp = model.forward(xs)
            gq = sequential_state(model, xs, w, a, zfp).grads
            assert gq is not None
            gw = np.asarray(m.weight)
            g_op = gq[op.name]
            if gw.shape != g_op.shape:     # attn@v scored per head
                b_, h_, n_, d_ = gw.shape
                g_op = g_op.reshape(b_, n_, h_, d_).transpose(0, 2, 1, 3)
            np.testing.assert_array_equal(gw, g_op, strict=True)
        else:
            assert m == "cosine"
    assert differs == len(ops)   # every op sees quantized upstream (patch-embed weight at least)
    assert spec.notes["sequential"] is True
    assert len(spec.notes["sequential_kl"]) == len(ops) + 1  # + the patch embedding's step
    assert spec.notes["sequential_kl"][0] == 0.0  # nothing quantized before it


def test_sequential_determinism_and_differs_from_parallel() -> None:
    model = _model()
    x = _images(8, b=4)

    def sha(spec: Any) -> str:
        return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True,
                                         default=str).encode()).hexdigest()

    s1 = sha(_run(model, x, metric="hessian", sequential=True))
    s2 = sha(_run(model, x, metric="hessian", sequential=True))
    assert s1 == s2
    assert s1 != sha(_run(model, x, metric="hessian", hessian_loss="kl"))


def test_option_validation() -> None:
    model = _model()
    x = _images(9, b=2)
    with pytest.raises(SpecError, match="sequential"):
        _run(model, x, metric="hessian", sequential=True, hessian_loss="ce")
    with pytest.raises(SpecError, match="true or false"):
        _run(model, x, sequential="yes")
    spec = _run(model, x, metric="hessian")       # default policy unchanged: "ce"
    assert spec.notes["hessian_loss"] == "ce" and "sequential" not in spec.notes


def test_sequential_through_quantize_model_and_the_cli_option_parser() -> None:
    """``sequential`` reaches the recipe through quantize_model (the recipe's options
    options) and through ``refq eval --opt ptq4vit.sequential=true``."""
    from refq.commands.eval import parse_recipe_options
    from refq.methods import quantize_model

    model = _model()
    x = _images(10, b=4)

    def sha(spec: Any) -> str:
        return hashlib.sha256(json.dumps(spec.to_dict(), sort_keys=True,
                                         default=str).encode()).hexdigest()

    opts = parse_recipe_options(["ptq4vit.sequential=true", "ptq4vit.n=6", "ptq4vit.rounds=1"])
    assert opts == {"ptq4vit": {"sequential": True, "n": 6, "rounds": 1}}
    via = quantize_model(model, "ptq4vit", 4, 4, x, calib_sub=4, **opts["ptq4vit"])
    assert via.notes["sequential"] is True
    assert sha(via) == sha(_run(model, x, sequential=True))
