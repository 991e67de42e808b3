"""Benchmark of the refq.quant quantizers fitted by refq.calib on ViT-like data.

Run: python tools/bench/quantizers.py [--bits 3 4 6 8] [--seed 0] [--images 8]
     [--diagnose] [--markdown FILE]

Data (each tensor is fitted on itself and scored on itself: a comparison of quantizer forms
and their calibration searches, not of generalisation):
- post-softmax (bundled DeiT): the attention probabilities (``blocks.i.attn.softmax``,
  B×4 heads×65×65) of the bundled digits DeiT on ``--images`` calibration images; one
  quantizer per block (as the recipes do), MSE/cosine pooled over the four blocks;
- post-softmax (synthetic): softmax over 197 tokens of 3·N(0,1) logits (2, 3, 197, 197) —
  the issue's original recipe, kept for comparison; far peakier than real attention;
- post-GELU: GELU of N(0, 1.5²) pre-activations with a t(3) tail (2, 197, 768);
- LayerNorm input: (2, 197, 192) Gaussian channels with per-channel means/stds, and 4
  outlier channels whose range is 40× the median channel range.
For every applicable quantizer and bit-width it prints the MSE and the cosine similarity
(flattened) of the fake-quantized tensor against the float one, and the fit/search time.
``--diagnose`` adds the investigation behind docs/quantizers-bench.md: data statistics,
per-block MSE, and oracle searches (fine grids) for SULQ and code-mode twin uniform.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

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


def bundled_softmax(images: int = 8) -> list[FloatArray]:
    """The four ``blocks.i.attn.softmax`` taps of the bundled digits DeiT (normalisation
    folded, uint8 pixels in) on the first ``images`` calibration images: 4 × (images, 4,
    65, 65)."""
    from refq.nn.bundled import load_bundled

    model, data = load_bundled()
    fm = model.fold_normalization()
    names = [n for n in fm.tap_names() if n.endswith(".attn.softmax")]
    _, taps = fm.forward_with_taps(data.images[data.calib_idx[:images]], names=names)
    return [np.asarray(taps[n], dtype=np.float64) for n in names]


@dataclass
class Row:
    data: str
    quantizer: str
    bits: int
    mse: float
    cosine: float
    seconds: float


def measure(name: str, data: str, bits: int, xs: list[FloatArray],
            fit: Callable[[FloatArray, int], Callable[[FloatArray], FloatArray]]) -> Row:
    """Fit each tensor of ``xs`` on itself (timed, summed), fake-quantize it, and score the
    pooled result: MSE over every element, cosine of the concatenation."""
    sse = dot = nx = ny = 0.0
    n = 0
    dt = 0.0
    for x in xs:
        t0 = time.perf_counter()
        fq = fit(x, bits)
        dt += time.perf_counter() - t0
        y = fq(x)
        d = x - y
        sse += float(np.sum(d * d))
        dot += float(np.dot(x.ravel(), y.ravel()))
        nx += float(np.sum(x * x))
        ny += float(np.sum(y * y))
        n += x.size
    cos = dot / max(float(np.sqrt(nx * ny)), 1e-300)
    return Row(data, name, bits, sse / n, cos, dt)


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


def _optional(modname: str, fn: str) -> Callable[..., Any] | None:
    import importlib

    try:
        f: Callable[..., Any] = getattr(importlib.import_module(modname), fn)
    except (ImportError, AttributeError):
        return None
    return f


def _searched(fn: str, **kw: object) -> Callable[[FloatArray, int], FakeQuant] | None:
    f = _optional("refq.calib", fn)
    if f is None:
        return None

    def fit(x: FloatArray, bits: int) -> FakeQuant:
        q, _ = f(x, bits, **kw)
        fq: FakeQuant = q.fake_quant
        return fq

    return fit


def _log(base: str) -> Callable[[FloatArray, int], FakeQuant] | None:
    f = _optional("refq.calib", "log2_init")
    if f is None:
        return None

    def fit(x: FloatArray, bits: int) -> FakeQuant:
        q, _ = f(x, bits, base=base)
        fq: FakeQuant = q.fake_quant
        return fq

    return fit


SOFTMAX_BUNDLED = "post-softmax (bundled DeiT)"
SOFTMAX_SYNTH = "post-softmax (synthetic)"
UNIFORM = "uniform min-max"
SYMMETRIC = "uniform min-max signed symmetric (PTQ4ViT Δ0)"
TWIN_PAPER = "twin uniform (PTQ4ViT, paper)"
TWIN_CODE = "twin uniform (PTQ4ViT, code)"
LOG_SQRT2 = "log√2 (RepQ-ViT)"
SULQ_PAPER = "SULQ paper (I&S, η search)"
SULQ_CODE = "SULQ code (I&S, official η search)"
SULQ_CODE_OWN = "SULQ code (η by its own MSE, refq option)"
TANQ = "TanQ (DopQ, shape search)"
POST_SOFTMAX_CLAIMS = (TWIN_PAPER, TWIN_CODE, LOG_SQRT2, SULQ_PAPER, SULQ_CODE, TANQ)


def quantizer_table() -> dict[str, list[tuple[str, Callable[[FloatArray, int], FakeQuant] | None]]]:
    """data name -> [(quantizer label, fit(x, bits) -> fake_quant or None if unavailable)]."""
    softmax: list[tuple[str, Callable[[FloatArray, int], FakeQuant] | None]] = [
        (UNIFORM, _uniform_minmax),
        (SYMMETRIC, _uniform_symmetric),
        ("uniform percentile-MSE (I&S)", _percentile),
        (TWIN_PAPER, _searched("twin_split_search", mode="paper")),
        (TWIN_CODE, _searched("twin_split_search", mode="code")),
        ("log2 (FQ-ViT LIS)", _log("2")),
        (LOG_SQRT2, _log("sqrt2")),
        (SULQ_PAPER, _searched("sulq_eta_search", mode="paper")),
        (SULQ_CODE, _searched("sulq_eta_search", mode="code")),
        (SULQ_CODE_OWN, _searched("sulq_eta_search", mode="code", score_mode="code")),
        (TANQ, _searched("tanq_shape_search")),
        ("V-2SF (TSPTQ)", _searched("v2sf_search")),
    ]
    return {
        SOFTMAX_BUNDLED: softmax,
        SOFTMAX_SYNTH: softmax,
        "post-GELU": [
            (UNIFORM, _uniform_minmax),
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


def datasets(seed: int, images: int) -> dict[str, list[FloatArray]]:
    """data name -> the tensors of that data (each fitted on its own)."""
    rng = np.random.default_rng(seed)
    ln, _ = layernorm_input(rng)
    return {SOFTMAX_BUNDLED: bundled_softmax(images), SOFTMAX_SYNTH: [post_softmax(rng)],
            "post-GELU": [post_gelu(rng)], "LayerNorm input": [ln]}


def run(bits_list: list[int], data: dict[str, list[FloatArray]]) -> list[Row]:
    rows: list[Row] = []
    for dname, entries in quantizer_table().items():
        xs = data[dname]
        for bits in bits_list:
            for label, fit in entries:
                if fit is None:
                    rows.append(Row(dname, label, bits, float("nan"), float("nan"),
                                    float("nan")))
                    continue
                rows.append(measure(label, dname, bits, xs, fit))
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
    """The issue's acceptance checks, one line each (PASS / FAIL / MISSING). The post-softmax
    claim is judged on the bundled model's attention; the synthetic lines are informational.
    Both twin modes and both SULQ modes are listed; the claim "twin-uniform" is carried by
    the paper form (the code form's documented loss: docs/quantizers-bench.md)."""
    def get(d: str, q: str, b: int) -> float:
        for r in rows:
            if r.data == d and r.quantizer == q and r.bits == b:
                return r.mse
        return float("nan")

    lines = []
    for data, tag0 in ((SOFTMAX_BUNDLED, ""), (SOFTMAX_SYNTH, "(info) ")):
        for ref in (UNIFORM, SYMMETRIC):
            base = get(data, ref, 4)
            for q in POST_SOFTMAX_CLAIMS:
                v = get(data, q, 4)
                tag = "MISSING" if np.isnan(v) else ("PASS" if v < base else "FAIL")
                lines.append(f"{tag0}{tag}: 4-bit {data} {q} MSE {v:.3e} < {ref} {base:.3e}")
    base = get("LayerNorm input", "uniform min-max per-tensor", 4)
    for q in ("O-2SF (TSPTQ)", "PTF (FQ-ViT)", "MOSF reparam (median) uniform"):
        v = get("LayerNorm input", q, 4)
        tag = "MISSING" if np.isnan(v) else ("PASS" if v < base else "FAIL")
        lines.append(f"{tag}: 4-bit LayerNorm-input {q} MSE {v:.3e} < per-tensor uniform "
                     f"{base:.3e}")
    return lines


# ---------------------------------------------------------------------------- diagnostics
def _sulq_formula(x: FloatArray, bits: int, eta: float, lo: float, hi: float,
                  mode: str) -> FloatArray:
    """refq.quant.sulq's formula in plain NumPy (fast enough for an oracle grid)."""
    n = 2**bits - 1 if mode == "paper" else 2**bits
    d = (hi - lo) / n
    q = np.clip(np.rint((np.log2(x + eta) - lo) / d), 0, n)
    out: FloatArray = np.exp2(np.rint(q * d + lo)) - eta
    return out


def _twin_code_formula(x: FloatArray, bits: int, s: float) -> FloatArray:
    """PTQ4ViT's official post-softmax sum for any split s (Δ_R1 = s/M, Δ_R2 = 1/M)."""
    m = 2 ** (bits - 1) - 1
    d1, d2 = s / m, 1.0 / m
    out: FloatArray = (np.clip(np.rint(np.clip(x, s, 1.0) / d2), 0, m) * d2
                       + np.clip(np.rint(np.clip(x, 0.0, s) / d1), 0, m) * d1)
    return out


def _mse(a: FloatArray, b: FloatArray) -> float:
    return float(np.mean((a - b) ** 2))


def _sulq_oracle(x: FloatArray, bits: int, mode: str, rng: np.random.Generator,
                 sample: int = 40000) -> tuple[float, float, float, float]:
    """Best (MSE on the full x, η, y_min, y_max) over a fine grid: 25 η log-spaced in
    [1e-4, 1] × 7 y_min in [min y, min y + 0.6·(max y - min y)] × 7 y_max in
    [max y - 1.5, max y + 1]; searched on a ``sample``-value subsample of x."""
    from refq.quant.sulq import ShiftUniformLog2Quantizer

    xs = x.ravel()
    if xs.size > sample:
        xs = xs[rng.choice(xs.size, sample, replace=False)]
    best = (np.inf, 0.0, 0.0, 0.0)
    for eta in np.geomspace(1e-4, 1.0, 25):
        y = np.log2(xs + eta)
        ylo, yhi = float(y.min()), float(y.max())
        for lo in np.linspace(ylo, ylo + 0.6 * (yhi - ylo), 7):
            for hi in np.linspace(yhi - 1.5, yhi + 1.0, 7):
                if hi <= lo + 1e-6:
                    continue
                v = _mse(xs, _sulq_formula(xs, bits, float(eta), float(lo), float(hi), mode))
                if v < best[0]:
                    best = (v, float(eta), float(lo), float(hi))
    _, eta, lo, hi = best
    q = ShiftUniformLog2Quantizer(bits, eta, lo, hi, mode)  # type: ignore[arg-type]
    return _mse(x, q.fake_quant(x)), eta, lo, hi


def diagnose(data: dict[str, list[FloatArray]], bits: int = 4, seed: int = 0) -> str:
    """The investigation behind docs/quantizers-bench.md, as Markdown (see the module
    docstring): why SULQ and code-mode twin uniform lose or win against uniform min-max."""
    from refq.calib import sulq_eta_search, twin_split_search
    from refq.quant import UniformQuantizer

    rng = np.random.default_rng(seed)
    out: list[str] = [f"Diagnostics at {bits} bits (`--diagnose`).", ""]
    out += ["Data statistics (all values pooled):", "",
            "| data | values | tokens | median | median·tokens | p90 | p99 | p99.9 | max | "
            "share in [0.01, 0.25] |", "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|"]
    for name in (SOFTMAX_BUNDLED, SOFTMAX_SYNTH):
        allv = np.concatenate([x.ravel() for x in data[name]])
        tok = data[name][0].shape[-1]
        p = np.percentile(allv, [50, 90, 99, 99.9])
        share = float(np.mean((allv >= 0.01) & (allv <= 0.25)))
        out.append(f"| {name} | {allv.size} | {tok} | {p[0]:.2e} | {p[0] * tok:.3f} | "
                   f"{p[1]:.3f} | {p[2]:.3f} | {p[3]:.3f} | {allv.max():.3f} | {share:.3f} |")
    out += ["", "Per tensor (bundled: one row per block): MSE of each quantizer fitted on "
            "that tensor; the chosen split m / shift η in brackets.", "",
            "| data | tensor | uniform min-max | twin paper [m] | twin code [m] | "
            "SULQ paper [η] | SULQ code, official [η] | SULQ code, own MSE [η] |",
            "|---|---|---:|---:|---:|---:|---:|---:|"]
    for name in (SOFTMAX_BUNDLED, SOFTMAX_SYNTH):
        for i, x in enumerate(data[name]):
            uni = _mse(x, UniformQuantizer.from_minmax(float(x.min()), float(x.max()),
                                                       bits).fake_quant(x))
            cells = [f"{uni:.3e}"]
            for mode in ("paper", "code"):
                q, rec = twin_split_search(x, bits, mode=mode)
                cells.append(f"{_mse(x, q.fake_quant(x)):.3e} [{rec['m']}]")
            for mode, score in (("paper", "paper"), ("code", "paper"), ("code", "code")):
                _, rs = sulq_eta_search(x, bits, mode=mode, score_mode=score)
                cells.append(f"{rs['mse']:.3e} [{rs['eta']:g}]")
            tname = f"block {i}" if name == SOFTMAX_BUNDLED else "all"
            out.append(f"| {name} | {tname} | " + " | ".join(cells) + " |")
    out += ["", "Oracle searches and error anatomy. SULQ oracle: a fine grid (25 η "
            "log-spaced in [1e-4, 1] × 7 y_min × 7 y_max around the data's log range), "
            "searched on a 40k subsample, MSE on the full tensor. Twin code oracle: the "
            "official sum over 200 splits s log-spaced in [1e-4, 1] (any real s, not only "
            "2^-m). `code @ paper's m`: the code form at the split the paper form picks "
            "(its R2 branch then adds round(s·M)/M to every value below s). `R2 grid "
            "alone`: clamp(round(x·M), 0, M)/M, the fixed Δ_R2 = 1/M grid. `x ≥ 0.1`: "
            "share of the squared error from values ≥ 0.1.", "",
            "| data | tensor | uniform min-max [x ≥ 0.1] | SULQ paper [x ≥ 0.1] | "
            "SULQ paper oracle [η] | SULQ code oracle [η] | twin code oracle [s] | "
            "code @ paper's m | R2 grid alone |",
            "|---|---|---:|---:|---:|---:|---:|---:|---:|"]
    m_top = 2 ** (bits - 1) - 1

    def big_share(x: FloatArray, y: FloatArray) -> float:
        e2 = (x - y) ** 2
        return float(e2[x >= 0.1].sum() / max(float(e2.sum()), 1e-300))

    for name in (SOFTMAX_BUNDLED, SOFTMAX_SYNTH):
        for i, x in enumerate(data[name]):
            yu = UniformQuantizer.from_minmax(float(x.min()), float(x.max()),
                                              bits).fake_quant(x)
            ys = sulq_eta_search(x, bits)[0].fake_quant(x)
            cells = [f"{_mse(x, yu):.3e} [{big_share(x, yu):.2f}]",
                     f"{_mse(x, ys):.3e} [{big_share(x, ys):.2f}]"]
            for mode in ("paper", "code"):
                v, eta, _, _ = _sulq_oracle(x, bits, mode, rng)
                cells.append(f"{v:.3e} [{eta:.2g}]")
            tw = min((_mse(x, _twin_code_formula(x, bits, float(sp))), float(sp))
                     for sp in np.geomspace(1e-4, 1.0, 200))
            cells.append(f"{tw[0]:.3e} [{tw[1]:.3g}]")
            _, recp = twin_split_search(x, bits, mode="paper")
            mp = int(recp["m"])
            cells.append(f"{_mse(x, _twin_code_formula(x, bits, 2.0 ** -mp)):.3e} [{mp}]")
            r2 = np.clip(np.rint(x * m_top), 0, m_top) / m_top
            cells.append(f"{_mse(x, r2):.3e}")
            tname = f"block {i}" if name == SOFTMAX_BUNDLED else "all"
            out.append(f"| {name} | {tname} | " + " | ".join(cells) + " |")
    return "\n".join(out)


def _splice(path: str, tag: str, text: str) -> None:
    """Replace the text between ``<!-- tag:begin -->`` and ``<!-- tag:end -->`` in ``path``
    (appending the block if the markers are missing), keeping the hand-written parts."""
    import os

    begin, end = f"<!-- {tag}:begin -->", f"<!-- {tag}:end -->"
    block = f"{begin}\n{text}\n{end}"
    old = ""
    if os.path.exists(path):
        with open(path, encoding="utf-8") as f:
            old = f.read()
    if begin in old and end in old:
        new = old[: old.index(begin)] + block + old[old.index(end) + len(end):]
    else:
        new = (old.rstrip("\n") + "\n\n" if old else "") + block + "\n"
    with open(path, "w", encoding="utf-8") as f:
        f.write(new)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--bits", type=int, nargs="+", default=[3, 4, 6, 8])
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--images", type=int, default=8,
                    help="calibration images of the bundled model for post-softmax data")
    ap.add_argument("--diagnose", action="store_true",
                    help="also print the SULQ / twin investigation (4 bits)")
    ap.add_argument("--markdown", help="also write the table and checks (and diagnostics) "
                    "into this file, between its bench/diagnose markers")
    args = ap.parse_args()
    data = datasets(args.seed, args.images)
    rows = run(args.bits, data)
    table = format_table(rows)
    checks = acceptance(rows)
    print(table)
    print()
    print("\n".join(checks))
    diag = diagnose(data, 4, args.seed) if args.diagnose else None
    if diag is not None:
        print()
        print(diag)
    if args.markdown:
        _splice(args.markdown, "bench",
                table + "\n\n" + "\n".join(f"- {c}" for c in checks))
        if diag is not None:
            _splice(args.markdown, "diagnose", diag)


if __name__ == "__main__":
    main()
