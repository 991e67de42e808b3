"""The integerization gap: the integer Program against the fake-quant simulation of the
same QuantSpec, tensor by tensor and in top-1 accuracy.

The fake-quant model and its tap hook are the caller's (``refq.methods.fake_quant(model,
spec)``, built by :func:`refq.calib.fakequant.fake_quantized_model` — the one fake-quant
implementation; program knows no method). For every program tensor named like a tap (and
with a per-tensor scale) the integer values are dequantized, ``scale · (q - zero_point)``,
and compared with that tap of the fake-quant forward: cosine similarity and the largest
difference in LSBs of the program tensor. ``python tools/integer_gap.py`` prints the table
of docs/integer-gap.md.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.nn.base import Model
from refq.program.ir import Program
from refq.program.run import run

TapHook = Callable[[str, Any], Any]

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


def integer_gap(program: Program, fake_quant: tuple[Model, TapHook | None],
                images: npt.ArrayLike, labels: npt.ArrayLike, *, batch: int = 100,
                compare: bool = True) -> Gap:
    """Run the program and the fake-quant model ``fake_quant = (model_q, tap)`` on
    ``images`` (uint8 pixels) and measure the gap (module docstring). ``model_q`` takes the
    same uint8 pixels (normalisation folded). ``compare=False`` only measures accuracy."""
    mq, hook = fake_quant
    imgs = np.asarray(images)
    lab = np.asarray(labels)
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


__all__ = ["Gap", "TapHook", "integer_gap"]
