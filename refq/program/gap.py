"""The integerization gap: the integer Program against the fake-quant simulation of the
same QuantSpec, tensor by tensor and in top-1 accuracy.

For every program tensor named like a tap (and with a per-tensor scale) the integer values
are dequantized, ``scale · (q - zero_point)``, and compared with the tap of the fake-quant
forward (``refq.methods.fake_quant`` when available, else :func:`simulate`): cosine
similarity and the largest difference in LSBs of the program tensor.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.nn.base import Model
from refq.program.ir import Program
from refq.program.lower import prepare
from refq.program.run import run
from refq.quant import QuantSpec

TapHook = Callable[[str, Any], Any]


def simulate(model: Model, spec: QuantSpec) -> tuple[Model, TapHook]:
    """Fake-quant model and hook: weights replaced by ``spec.weights[...].fake_quant`` (on
    the model with the spec's params and folded normalisation), each tap in
    ``spec.activations`` replaced by its quantizer's ``fake_quant``."""
    m = prepare(model, spec)
    p = dict(m.params)
    for k, q in spec.weights.items():
        p[k] = q.fake_quant(p[k])
    mq = m.with_params(p)
    acts = spec.activations

    def hook(name: str, x: Any) -> Any:
        q = acts.get(name)
        return None if q is None else q.fake_quant(x)

    return mq, hook


def fake_quant_model(model: Model, spec: QuantSpec) -> tuple[Model, TapHook]:
    """``refq.methods.fake_quant`` if the methods package provides it, else :func:`simulate`."""
    import importlib

    try:
        methods = importlib.import_module("refq.methods")
    except ImportError:
        return simulate(model, spec)
    fake_quant = getattr(methods, "fake_quant", None)
    if fake_quant is None:
        return simulate(model, spec)
    mq, hook = fake_quant(model if model.pixel_input else model.fold_normalization(), spec)
    return mq, hook


@dataclass
class Gap:
    """Per-tensor cosine and max |Δ| in LSBs; top-1 of the program and of the fake-quant."""

    tensors: dict[str, tuple[float, float]] = field(default_factory=dict)
    int_top1: float = 0.0
    fq_top1: float = 0.0
    n: int = 0

    def table(self) -> str:
        lines = [f"{'tensor':32} {'cosine':>9} {'max LSB':>10}"]
        for k, (c, d) in self.tensors.items():
            lines.append(f"{k:32} {c:9.6f} {d:10.1f}")
        lines.append(f"top-1 integer {self.int_top1:.4f}  fake-quant {self.fq_top1:.4f}  "
                     f"(n = {self.n})")
        return "\n".join(lines)


def integer_gap(program: Program, model: Model, spec: QuantSpec, images: npt.ArrayLike,
                labels: npt.ArrayLike, *, batch: int = 100, compare: bool = True) -> Gap:
    """Run the program and the fake-quant simulation on ``images`` (uint8 pixels) and
    measure the gap (module docstring). ``compare=False`` only measures accuracy."""
    imgs = np.asarray(images)
    lab = np.asarray(labels)
    mq, hook = fake_quant_model(model, spec)
    logits_name = str(program.meta.get("logits", program.outputs[0]))
    gap = Gap(n=int(imgs.shape[0]))
    acc: dict[str, list[float]] = {}
    ok_i = ok_f = 0
    for i in range(0, imgs.shape[0], batch):
        x = imgs[i:i + batch]
        out = run(program, {"input": x}, keep="all" if compare else "outputs")
        lf, taps = mq.forward_with_taps(x, hook)
        ok_i += int(np.sum(np.argmax(out[logits_name], axis=-1) == lab[i:i + batch]))
        ok_f += int(np.sum(np.argmax(lf, axis=-1) == lab[i:i + batch]))
        if not compare:
            continue
        for name, decl in program.tensors.items():
            if name not in taps or name not in out or decl.scale is None:
                continue
            deq = decl.scale * (out[name].astype(np.float64) - decl.zero_point)
            f = np.asarray(taps[name], dtype=np.float64)
            s = acc.setdefault(name, [0.0, 0.0, 0.0, 0.0])
            s[0] += float(np.sum(deq * f))
            s[1] += float(np.sum(deq * deq))
            s[2] += float(np.sum(f * f))
            s[3] = max(s[3], float(np.max(np.abs(deq - f))) / decl.scale)
    for name, (dot, a2, b2, lsb) in acc.items():
        cos = dot / np.sqrt(a2 * b2) if a2 > 0 and b2 > 0 else float(a2 == b2)
        gap.tensors[name] = (float(cos), lsb)
    gap.int_top1 = ok_i / max(1, gap.n)
    gap.fq_top1 = ok_f / max(1, gap.n)
    return gap




def minmax_spec(model: Model, calib: npt.ArrayLike, bits: int, *,
                softmax: str = "uniform") -> QuantSpec:
    """A self-contained min-max spec (refq.methods not needed): per-channel symmetric
    weights, per-tensor asymmetric min-max activations at every linear/matmul input;
    ``softmax="log2"`` puts a base-2 log quantizer (scale 1) on the softmax outputs."""
    from refq.quant import Log2Quantizer, Quantizer, UniformQuantizer

    m = prepare(model, QuantSpec("minmax", model.config.name, bits, bits))
    _, taps = m.forward_with_taps(np.asarray(calib))
    w: dict[str, Quantizer] = {}
    acts: dict[str, Quantizer] = {}
    for op in m.ops():
        if op.weight:
            wt = m.params[op.weight]
            amax = np.abs(wt.reshape(wt.shape[0], -1)).max(1)
            w[op.weight] = UniformQuantizer.from_minmax(-amax, amax, bits, symmetric=True,
                                                        axis=0)
        for t in op.inputs:
            if t == "input":
                continue
            if softmax == "log2" and t.endswith("attn.softmax"):
                acts[t] = Log2Quantizer(bits)
            else:
                x = taps[t]
                acts[t] = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), bits)
    return QuantSpec(f"minmax-{softmax}", model.config.name, bits, bits, w, acts)


def main() -> None:
    """``python -m refq.program.gap``: the gap table of docs/integer-gap.md (bundled model,
    100 calibration images, 400 test images)."""
    import argparse

    from refq.nn import load_bundled
    from refq.program.lower import lower

    ap = argparse.ArgumentParser(description=main.__doc__)
    ap.add_argument("--bits", type=int, nargs="+", default=[8, 6, 4])
    ap.add_argument("--softmax", nargs="+", default=["uniform", "log2"])
    a = ap.parse_args()
    model, data = load_bundled()
    fm = model.fold_normalization()
    cal, _ = data.split("calib")
    test, lab = data.split("test")
    print("| spec | bits | fake-quant top-1 | integer top-1 | Δ (points) | min cosine | "
          "worst tensor |")
    print("|---|---|---|---|---|---|---|")
    for sm in a.softmax:
        for bits in a.bits:
            spec = minmax_spec(fm, cal, bits, softmax=sm)
            prog = lower(fm, spec, cal)
            g = integer_gap(prog, fm, spec, test, lab)
            worst = min(g.tensors, key=lambda k: g.tensors[k][0])
            print(f"| {spec.method} | W{bits}A{bits} | {100 * g.fq_top1:.2f} | "
                  f"{100 * g.int_top1:.2f} | {100 * (g.int_top1 - g.fq_top1):+.2f} | "
                  f"{g.tensors[worst][0]:.5f} | {worst} |", flush=True)


__all__ = ["Gap", "fake_quant_model", "integer_gap", "main", "minmax_spec", "simulate"]


if __name__ == "__main__":
    main()
