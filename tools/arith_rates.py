"""How often the float32 and float64 forms of the quantizers' code modes give different
codes on real data: the bundled digits DeiT's calibration taps (post-softmax, post-GELU,
LayerNorm inputs) and its weights.

Every tensor is first rounded to float32 (what the official torch code holds), so the forms
see the same inputs and differ only in their arithmetic. Parameters are chosen the way the
methods initialise them (PTQ4ViT Δ0 = max/(2^(b-1) - 0.5), FQ-ViT PTF search, I&S-ViT SULQ
from the data in each form's own arithmetic, RepQ-ViT Δ = max).

    PYTHONPATH=. python3 tools/arith_rates.py [--images 32] [--markdown]
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:
    sys.path.append(str(ROOT))

FORMS = ("float64", "float32_cuda", "float32_cpu")


def taps(n_images: int) -> dict[str, np.ndarray]:  # type: ignore[type-arg]
    from refq.nn import load_bundled

    model, data = load_bundled()
    model = model.fold_normalization()
    calib, _ = data.split("calib")
    x = np.asarray(calib[:n_images])
    names = model.tap_names()
    want = [t for t in names if t.endswith(("attn.softmax", "mlp.gelu", ".add1", "embed"))]
    _, got = model.forward_with_taps(x, names=want)
    groups: dict[str, list[np.ndarray]] = {"softmax": [], "gelu": [], "ln_input": []}  # type: ignore[type-arg]
    for k, v in got.items():
        key = "softmax" if "softmax" in k else "gelu" if "gelu" in k else "ln_input"
        groups[key].append(np.asarray(v, dtype=np.float32).astype(np.float64))
    out_flat: dict[str, Any] = dict(groups)
    w = [np.asarray(model.params[k], dtype=np.float32).astype(np.float64)
         for k in model.params if k.endswith("weight") and (".attn." in k or ".mlp." in k)]
    out_flat["weights"] = w
    return out_flat


def rates(tensors: list[np.ndarray], make: Callable[[str, np.ndarray], Any]  # type: ignore[type-arg]
          ) -> dict[str, float]:
    """Fraction of elements whose code differs between forms (over all tensors)."""
    n = 0
    diff = {"64-cuda": 0, "64-cpu": 0, "cuda-cpu": 0}
    for t in tensors:
        c = {f: make(f, t).quantize(t) for f in FORMS}
        n += t.size
        diff["64-cuda"] += int((c["float64"] != c["float32_cuda"]).sum())
        diff["64-cpu"] += int((c["float64"] != c["float32_cpu"]).sum())
        diff["cuda-cpu"] += int((c["float32_cuda"] != c["float32_cpu"]).sum())
    return {"n": float(n), **{k: v / n for k, v in diff.items()}}


def main(argv: list[str] | None = None) -> int:
    from refq.calib.search_ptf import ptf_search
    from refq.quant import (
        Log2Quantizer,
        PowerOfTwoFactorQuantizer,
        ShiftUniformLog2Quantizer,
        TwinUniformQuantizer,
        UniformQuantizer,
    )

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--images", type=int, default=32)
    a = ap.parse_args(argv)
    data = taps(a.images)
    rows: list[tuple[str, str, int, dict[str, float]]] = []
    for b in (4, 6, 8):
        for m in (2, 4, 6):
            rows.append((f"twin softmax code m={m}", "softmax", b, rates(
                data["softmax"],
                lambda f, t, m=m, b=b: TwinUniformQuantizer(b, "softmax", m=m, arith=f))))
        rows.append(("twin GELU code Δ+=max/(2^(b-1)-½)", "gelu", b, rates(
            data["gelu"], lambda f, t, b=b: TwinUniformQuantizer(
                b, "gelu", delta_pos=float(t.max()) / (2 ** (b - 1) - 0.5), arith=f))))
        rows.append(("uniform sym (PTQ4ViT Δ0)", "weights", b, rates(
            data["weights"], lambda f, t, b=b: UniformQuantizer.from_absmax(
                float(np.abs(t).max()), b, denom=2 ** (b - 1) - 0.5, arith=f))))
        rows.append(("uniform asym (I&S-ViT, RepQ-ViT)", "ln_input", b, rates(
            data["ln_input"], lambda f, t, b=b: UniformQuantizer.from_minmax(
                float(t.min()), float(t.max()), b, arith=f))))
        rows.append(("log√2 (RepQ-ViT) Δ=max", "softmax", b, rates(
            data["softmax"], lambda f, t, b=b: Log2Quantizer(b, "sqrt2", float(t.max()),
                                                            arith=f))))
        rows.append(("log2 (FQ-ViT) Δ=1", "softmax", b, rates(
            data["softmax"], lambda f, t, b=b: Log2Quantizer(b, "2", 1.0, arith=f))))
        for mode in ("code", "paper"):
            rows.append((f"SULQ {mode} η=0.01 (own calibration)", "softmax", b, rates(
                data["softmax"], lambda f, t, b=b, mode=mode: ShiftUniformLog2Quantizer
                .from_data(t, b, 0.01, mode, arith=f))))

        def ptf(f: str, t: np.ndarray, b: int = b) -> Any:  # type: ignore[type-arg]
            r = ptf_search(t, b)
            return PowerOfTwoFactorQuantizer(r["base_scale"], b, np.array(r["alpha"]),
                                             r["zero_point"], mode="code", arith=f)

        rows.append(("PTF code (FQ-ViT)", "ln_input", b, rates(data["ln_input"], ptf)))
    print("| quantizer | data | bits | elements | float64 vs float32_cuda | "
          "float64 vs float32_cpu | float32_cuda vs float32_cpu |")
    print("|---|---|---|---|---|---|---|")
    for name, d, b, r in rows:
        print(f"| {name} | {d} | {b} | {int(r['n'])} | {r['64-cuda']:.2e} | {r['64-cpu']:.2e} | "
              f"{r['cuda-cpu']:.2e} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
