"""Draw one small picture per refq quantizer: its reconstruction levels over a histogram of
a typical input, written as PNGs into docs/img/quantizer_<kind>.png.

    python tools/plot_quantizers.py [--out docs/img]

matplotlib is an optional extra (``refq[plot]``), imported here only.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import numpy as np

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
)


def _softmax_sample(rng: np.random.Generator) -> np.ndarray:  # type: ignore[type-arg]
    z = rng.normal(0, 2.5, (400, 64))
    e = np.exp(z - z.max(axis=1, keepdims=True))
    return (e / e.sum(axis=1, keepdims=True)).ravel()


def cases() -> list[tuple[str, str, Quantizer, Any, bool]]:
    """(file stem, title, quantizer, sample, log-x axis)."""
    rng = np.random.default_rng(0)
    sm = _softmax_sample(rng)
    g = rng.normal(0, 1.2, 20000)
    gelu = 0.5 * g * (1 + np.tanh(0.7978845608 * (g + 0.044715 * g**3)))
    ln = rng.normal(0, 1, (2000, 4)) * np.array([1.0, 1.5, 12.0, 0.8])
    return [
        ("uniform", "uniform int4 (asym, min-max)",
         UniformQuantizer.from_minmax(g.min(), g.max(), 4), g, False),
        ("log2", "log2 uint4 (FQ-ViT LIS)", Log2Quantizer(4, "2"), sm, True),
        ("log_sqrt2", "log√2 4-bit (RepQ-ViT)", Log2Quantizer(4, "sqrt2"), sm, True),
        ("twin_softmax", "twin uniform 4-bit softmax, m=4 (code)",
         TwinUniformQuantizer(4, "softmax", m=4, mode="code"), sm, True),
        ("twin_gelu", "twin uniform 4-bit GELU",
         TwinUniformQuantizer(4, "gelu", delta_pos=float(gelu.max()) / 7), gelu, False),
        ("v2sf", "V-2SF 4-bit, k=2 (refq's reading)",
         ValueTwoScaleQuantizer.from_max(float(sm.max()), 4, 2), sm, True),
        ("o2sf", "O-2SF int4: normal ch. 0 vs outlier ch. 2",
         OutlierTwoScaleQuantizer.from_calibration(ln, 4), ln, False),
        ("ptf", "PTF 4-bit: α=0 vs α=3",
         PowerOfTwoFactorQuantizer.from_layer_range(ln.min(), ln.max(), 4, [0, 1, 3, 0]), ln,
         False),
        ("sulq", "SULQ 4-bit, η=0.01 (code mode)",
         ShiftUniformLog2Quantizer.from_data(sm, 4, 0.01, "code"), sm, True),
        ("tan", "TanQ 4-bit, a=1.2 (refq's reading)", TanQuantizer(4, 1.2), sm, False),
    ]


def main(argv: list[str] | None = None) -> int:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--out", default="docs/img")
    args = ap.parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for stem, title, q, x, logx in cases():
        fig, ax = plt.subplots(figsize=(4.2, 2.2), dpi=96)
        lv = np.asarray(q.levels())
        if lv.ndim == 2:  # per-channel: show two channels
            chans = [0, 2]
            for c, col in zip(chans, ("tab:blue", "tab:orange"), strict=True):
                ax.hist(x[:, c], bins=80, color=col, alpha=0.4)
                for v in lv[c]:
                    ax.axvline(v, color=col, lw=0.6)
        else:
            data = x[x > 0] if logx else x
            bins: Any = (np.logspace(np.log10(data.min()), 0, 80) if logx else 80)
            ax.hist(data, bins=bins, color="0.7")
            for v in lv:
                if not logx or v > 0:
                    ax.axvline(v, color="tab:red", lw=0.6)
            if logx:
                ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_title(title, fontsize=8)
        ax.tick_params(labelsize=6)
        fig.tight_layout()
        fig.savefig(out / f"quantizer_{stem}.png")
        plt.close(fig)
        print(out / f"quantizer_{stem}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
