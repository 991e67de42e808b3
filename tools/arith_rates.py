"""How often the float32 and float64 forms of the quantizers' code modes give different
codes on real data: the bundled digits DeiT's calibration taps (post-softmax, post-GELU,
LayerNorm inputs) and its weights.

Every tensor is first rounded to float32 (what the official torch code holds), so the forms
see the same inputs and differ only in their arithmetic. Parameters are chosen the way the
methods initialise them (PTQ4ViT Δ0 = max/(2^(b-1) - 0.5), FQ-ViT PTF search, I&S-ViT SULQ
from the data in each form's own arithmetic, RepQ-ViT Δ = max).

    PYTHONPATH=. python3 tools/arith_rates.py [--images 32] [--torch] [--libm]

``--torch`` (needs torch) adds how often refq's ``float32_cpu`` SULQ differs from the I&S-ViT
forward re-typed in torch (tests/quant/official.py) running on this CPU with torch's own
``log`` (not correctly rounded), on the same post-softmax data. ``--libm`` (needs torch)
only counts the float32 inputs in [0.001, 2) where torch's CPU ``log``/``log2`` differ from
the correctly rounded value (refq.quant.arith.log_cr).
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
    ap.add_argument("--torch", action="store_true")
    ap.add_argument("--libm", action="store_true")
    a = ap.parse_args(argv)
    if a.libm:
        libm()
        return 0
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
    if a.torch:
        torch_sulq(data["softmax"])
    return 0


def libm() -> None:
    """torch's CPU float32 log/log2 against the correctly rounded value, every float32 in
    [0.001, 2)."""
    import torch

    from refq.quant.arith import log_cr

    lo, hi = int(np.float32(0.001).view(np.int32)), int(np.float32(2.0).view(np.int32))
    n, bad = 0, {"ln": 0, "log2": 0}
    for start in range(lo, hi, 1 << 22):
        x = np.arange(start, min(start + (1 << 22), hi), dtype=np.int32).view(np.float32)
        t = torch.from_numpy(x)
        for kind, fn in (("ln", torch.log), ("log2", torch.log2)):
            ref = log_cr(x.astype(np.float64), kind, True)  # type: ignore[arg-type]
            bad[kind] += int((fn(t).numpy().astype(np.float64) != ref).sum())
        n += x.size
    for kind, v in bad.items():
        print(f"torch.{'log' if kind == 'ln' else 'log2'} float32 (CPU): {v} of {n} inputs "
              f"in [0.001, 2) not correctly rounded ({v / n:.2%})")


def torch_sulq(tensors: list[np.ndarray]) -> None:  # type: ignore[type-arg]
    """refq float32_cpu SULQ against the torch CPU forward with torch's own log."""
    import torch

    from refq.quant import ShiftUniformLog2Quantizer
    from tests.quant import official as off

    for b in (4, 8):
        for mode in ("code", "paper"):
            n = d = 0
            for t in tensors:
                x = t.ravel()
                xt = torch.tensor(x, dtype=torch.float32)
                _, _, mn, mx = off.ias_sulq_init(xt, 0.01, b)  # the official y extremes
                q = ShiftUniformLog2Quantizer.from_data(x, b, 0.01, mode,  # type: ignore[arg-type]
                                                        arith="float32_cpu")
                if (q.y_min, q.y_max) != (float(mn), float(mx)):
                    raise SystemExit("calibration extremes differ from torch's")
                if mode == "code":
                    pc, _ = off.ias_sulq_forward(xt, 0.01, mn, mx, b)
                else:
                    pc, _, _, _ = off.ias_sulq_init(xt, 0.01, b)
                d += int((q.quantize(x) != off.as_np(pc)).sum())
                n += x.size
            print(f"SULQ {mode} η=0.01 {b} bits, refq float32_cpu vs torch CPU (own log): "
                  f"{d} of {n} codes differ")


if __name__ == "__main__":
    raise SystemExit(main())
