"""Benchmark of the refq.quant quantizers fitted by refq.calib on synthetic ViT-like data.

Run: python tools/bench/quantizers.py [--bits 3 4 6 8] [--seed 0] [--markdown FILE]

Three synthetic tensors with the pathologies the ViT PTQ papers describe:
- post-softmax: softmax over 197 tokens of Gaussian logits scaled by 3 (B=2, H=3, 197, 197);
- post-GELU: GELU of N(0, 1.5²) pre-activations with a t(3) tail (2, 197, 768);
- LayerNorm input: (2, 197, 192) Gaussian channels with per-channel means/stds, and 4
  outlier channels whose range is 40× the median channel range.
For every applicable quantizer and bit-width it prints the MSE and the cosine similarity
(flattened) of the fake-quantized tensor against the float one, and the fit/search time.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from scipy.special import erf

FloatArray = np.ndarray


def post_softmax(rng: np.random.Generator, heads: int = 3, tokens: int = 197) -> FloatArray:
    """Softmax (last axis) of 3·N(0,1) logits: shape (2, heads, tokens, tokens)."""
    z = 3.0 * rng.standard_normal((2, heads, tokens, tokens))
    z -= z.max(axis=-1, keepdims=True)
    e = np.exp(z)
    out: FloatArray = e / e.sum(axis=-1, keepdims=True)
    return out


def post_gelu(rng: np.random.Generator, width: int = 768) -> FloatArray:
    """Exact GELU of 1.5·N(0,1) pre-activations plus a sparse t(3) tail: (2, 197, width)."""
    pre = 1.5 * rng.standard_normal((2, 197, width))
    tail = rng.random(pre.shape) < 0.01
    pre[tail] += 3.0 * rng.standard_t(3, size=int(tail.sum()))
    out: FloatArray = 0.5 * pre * (1.0 + erf(pre / np.sqrt(2.0)))
    return out


def layernorm_input(rng: np.random.Generator, channels: int = 192,
                    outliers: int = 4, factor: float = 40.0) -> tuple[FloatArray, list[int]]:
    """(2, 197, channels) activations, channel c ~ N(μ_c, σ_c²), μ_c ~ N(0, 0.5²),
    σ_c ~ U(0.5, 1.5); ``outliers`` channels rescaled so that their range is ``factor`` ×
    the median channel range. Returns (x, outlier channel indices)."""
    mu = 0.5 * rng.standard_normal(channels)
    sd = rng.uniform(0.5, 1.5, channels)
    x = mu + sd * rng.standard_normal((2, 197, channels))
    rng_c = x.reshape(-1, channels).max(0) - x.reshape(-1, channels).min(0)
    med = float(np.median(rng_c))
    idx = sorted(int(i) for i in rng.choice(channels, outliers, replace=False))
    for c in idx:
        xc = x[..., c]
        x[..., c] = (xc - xc.mean()) * (factor * med / rng_c[c]) + 5.0 * xc.mean()
    return x, idx


@dataclass
class Row:
    data: str
    quantizer: str
    bits: int
    mse: float
    cosine: float
    seconds: float


def measure(name: str, data: str, bits: int, x: FloatArray,
            fit: Callable[[], Callable[[FloatArray], FloatArray]]) -> Row:
    """Fit (timed), then fake-quantize ``x`` and score it."""
    t0 = time.perf_counter()
    fq = fit()
    dt = time.perf_counter() - t0
    y = fq(x)
    d = x - y
    cos = float(np.dot(x.ravel(), y.ravel())
                / max(np.linalg.norm(x) * np.linalg.norm(y), 1e-300))
    return Row(data, name, bits, float(np.mean(d * d)), cos, dt)


FakeQuant = Callable[[FloatArray], FloatArray]


def _uniform_minmax(x: FloatArray, bits: int) -> FakeQuant:
    from refq.quant import UniformQuantizer

    q = UniformQuantizer.from_minmax(float(x.min()), float(x.max()), bits)
    return q.fake_quant


def _uniform_symmetric(x: FloatArray, bits: int) -> FakeQuant:
    """PTQ4ViT's base quantizer at its start: signed, Δ0 = max|x|/(2^(b-1) - 0.5)."""
    from refq.quant import UniformQuantizer

    q = UniformQuantizer.from_absmax(float(np.abs(x).max()), bits, denom=2 ** (bits - 1) - 0.5)
    return q.fake_quant


def _percentile(x: FloatArray, bits: int) -> FakeQuant:
    from refq.calib import percentile_mse_init

    # the percentile search sorts the tensor: subsample for speed on the big softmax tensor
    q, _ = percentile_mse_init(x, bits)
    return q.fake_quant


def _reparam(choice: str) -> Callable[[FloatArray, int], FakeQuant]:
    """Per-channel min-max uniform of the LayerNorm input folded to one per-tensor quantizer
    (RepQ-ViT "mean", DopQ-ViT MOSF "median"); scored in the ORIGINAL domain:
    x̂ = r·(Q̃(x/r - b) + b)."""

    def fit(x: FloatArray, bits: int) -> FakeQuant:
        from refq.calib import layer_quantizer, reparameterize
        from refq.quant import UniformQuantizer

        c = x.shape[-1]
        flat = x.reshape(-1, c)
        qc = UniformQuantizer.from_minmax(flat.min(0), flat.max(0), bits, axis=-1)
        ident = {"n.weight": np.ones(c), "n.bias": np.zeros(c), "l.weight": np.eye(c),
                 "l.bias": np.zeros(c)}
        _, rec = reparameterize(ident, "n", "l", qc.scale, qc.zero_point, choice=choice,
                                zero_point_rounding="half_even")
        qt = layer_quantizer(rec, bits)
        r = qc.scale / rec["scale"]
        b = rec["scale"] * (rec["zero_point"] - qc.zero_point)
        return lambda v: r * (qt.fake_quant(v / r - b) + b)

    return fit


def _ptf(x: FloatArray, bits: int) -> FakeQuant:
    from refq.calib import ptf_alpha_search

    q, _ = ptf_alpha_search(x, bits)
    return q.fake_quant


def _optional(modname: str, fn: str) -> Callable[..., object] | None:
    import importlib

    try:
        return getattr(importlib.import_module(modname), fn)  # type: ignore[no-any-return]
    except (ImportError, AttributeError):
        return None


def _searched(fn: str, **kw: object) -> Callable[[FloatArray, int], FakeQuant] | None:
    f = _optional("refq.calib", fn)
    if f is None:
        return None

    def fit(x: FloatArray, bits: int) -> FakeQuant:
        q, _ = f(x, bits, **kw)  # type: ignore[misc]
        return q.fake_quant  # type: ignore[no-any-return]

    return fit


def _log(base: str) -> Callable[[FloatArray, int], FakeQuant] | None:
    f = _optional("refq.calib", "log2_init")
    if f is None:
        return None

    def fit(x: FloatArray, bits: int) -> FakeQuant:
        q, _ = f(x, bits, base=base)  # type: ignore[misc]
        return q.fake_quant  # type: ignore[no-any-return]

    return fit


def quantizer_table() -> dict[str, list[tuple[str, Callable[[FloatArray, int], FakeQuant] | None]]]:
    """data name -> [(quantizer label, fit(x, bits) -> fake_quant or None if unavailable)]."""
    return {
        "post-softmax": [
            ("uniform min-max", _uniform_minmax),
            ("uniform min-max signed symmetric (PTQ4ViT Δ0)", _uniform_symmetric),
            ("uniform percentile-MSE (I&S)", _percentile),
            ("twin uniform (PTQ4ViT, code)", _searched("twin_split_search", mode="code")),
            ("twin uniform (PTQ4ViT, paper)", _searched("twin_split_search", mode="paper")),
            ("log2 (FQ-ViT LIS)", _log("2")),
            ("log√2 (RepQ-ViT)", _log("sqrt2")),
            ("SULQ (I&S, η search)", _searched("sulq_eta_search")),
            ("SULQ code mode (I&S, η search)", _searched("sulq_eta_search", mode="code")),
            ("TanQ (DopQ, shape search)", _searched("tanq_shape_search")),
            ("V-2SF (TSPTQ)", _searched("v2sf_search")),
        ],
        "post-GELU": [
            ("uniform min-max", _uniform_minmax),
            ("uniform percentile-MSE (I&S)", _percentile),
            ("twin GELU (PTQ4ViT)", _searched("gelu_twin_search")),
            ("V-2SF (TSPTQ)", _searched("v2sf_search")),
        ],
        "LayerNorm input": [
            ("uniform min-max per-tensor", _uniform_minmax),
            ("uniform percentile-MSE (I&S)", _percentile),
            ("PTF (FQ-ViT)", _ptf),
            ("O-2SF (TSPTQ)", _searched("o2sf_search")),
            ("RepQ reparam (mean) uniform", _reparam("mean")),
            ("MOSF reparam (median) uniform", _reparam("median")),
            ("MAD reparam uniform", _reparam("mad")),
        ],
    }


def run(bits_list: list[int], seed: int) -> list[Row]:
    rng = np.random.default_rng(seed)
    ln, _ = layernorm_input(rng)
    data = {"post-softmax": post_softmax(rng), "post-GELU": post_gelu(rng),
            "LayerNorm input": ln}
    rows: list[Row] = []
    for dname, entries in quantizer_table().items():
        x = data[dname]
        for bits in bits_list:
            for label, fit in entries:
                if fit is None:
                    rows.append(Row(dname, label, bits, float("nan"), float("nan"),
                                    float("nan")))
                    continue
                rows.append(measure(label, dname, bits, x,
                                    lambda f=fit, b=bits, v=x: f(v, b)))
    return rows


def format_table(rows: list[Row]) -> str:
    """A Markdown table of the rows (n/a where a quantizer is not available)."""
    out = ["| data | quantizer | bits | MSE | cosine | fit time (s) |",
           "|---|---|---:|---:|---:|---:|"]
    for r in rows:
        if np.isnan(r.mse):
            out.append(f"| {r.data} | {r.quantizer} | {r.bits} | n/a | n/a | n/a |")
        else:
            out.append(f"| {r.data} | {r.quantizer} | {r.bits} | {r.mse:.3e} | "
                       f"{r.cosine:.6f} | {r.seconds:.3f} |")
    return "\n".join(out)


def acceptance(rows: list[Row]) -> list[str]:
    """The issue's acceptance checks, one line each (PASS / FAIL / MISSING)."""
    def get(d: str, q: str, b: int) -> float:
        for r in rows:
            if r.data == d and r.quantizer == q and r.bits == b:
                return r.mse
        return float("nan")

    lines = []
    for ref in ("uniform min-max", "uniform min-max signed symmetric (PTQ4ViT Δ0)"):
        base = get("post-softmax", ref, 4)
        for q in ("twin uniform (PTQ4ViT, code)", "twin uniform (PTQ4ViT, paper)",
                  "log√2 (RepQ-ViT)", "SULQ (I&S, η search)", "TanQ (DopQ, shape search)"):
            v = get("post-softmax", q, 4)
            tag = "MISSING" if np.isnan(v) else ("PASS" if v < base else "FAIL")
            lines.append(f"{tag}: 4-bit post-softmax {q} MSE {v:.3e} < {ref} {base:.3e}")
    base = get("LayerNorm input", "uniform min-max per-tensor", 4)
    for q in ("O-2SF (TSPTQ)", "PTF (FQ-ViT)", "MOSF reparam (median) uniform"):
        v = get("LayerNorm input", q, 4)
        tag = "MISSING" if np.isnan(v) else ("PASS" if v < base else "FAIL")
        lines.append(f"{tag}: 4-bit LayerNorm-input {q} MSE {v:.3e} < per-tensor uniform "
                     f"{base:.3e}")
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bits", type=int, nargs="+", default=[3, 4, 6, 8])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--markdown", help="also write the table and checks to this file")
    args = ap.parse_args()
    rows = run(args.bits, args.seed)
    table = format_table(rows)
    checks = acceptance(rows)
    print(table)
    print()
    print("\n".join(checks))
    if args.markdown:
        with open(args.markdown, "w", encoding="utf-8") as f:
            f.write(table + "\n\n" + "\n".join(f"- {c}" for c in checks) + "\n")


if __name__ == "__main__":
    main()
