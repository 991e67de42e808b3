"""``refq report``: per-layer error of one method at one bit width — cosine similarity and
MSE of every tapped tensor of the fake-quant forward against the FP forward (and of every
quantized weight against the FP weight) — as a table; ``--plots DIR`` also writes a PNG
histogram per quantized tensor with its quantization levels overlaid (needs matplotlib)."""

from __future__ import annotations

import argparse
import fnmatch
import re
from pathlib import Path
from typing import Any


def add_arguments(parser: argparse.ArgumentParser) -> None:
    from refq.commands.eval import add_model_arguments

    add_model_arguments(parser)
    parser.add_argument("--method", default="minmax", help="recipe name (default minmax)")
    parser.add_argument("--bits", default="W8A8", help="one WxAy, e.g. W4A4 (default W8A8)")
    parser.add_argument("--images", type=int, default=16,
                        help="evaluation images used for the statistics (default 16)")
    parser.add_argument("--plots", type=Path, help="write PNG histograms into this folder")
    parser.add_argument("--plot-only", metavar="GLOB", default="*",
                        help="plot only the tensors matching this glob (default: all)")


def cosine_mse(ref: Any, got: Any) -> tuple[float, float]:
    """(cosine similarity, mean squared error) of two same-shape float arrays (float64)."""
    import numpy as np

    a = np.asarray(ref, dtype=np.float64).ravel()
    b = np.asarray(got, dtype=np.float64).ravel()
    na, nb = float(np.sqrt(a @ a)), float(np.sqrt(b @ b))
    cos = float(a @ b) / (na * nb) if na > 0 and nb > 0 else float(na == nb)
    return cos, float(np.mean((a - b) ** 2)) if a.size else 0.0


def _levels(q: Any) -> Any:
    import numpy as np

    try:
        lv = q.levels()
    except Exception:  # a quantizer without a finite level table
        return None
    if lv is None:
        return None
    lv = np.asarray(lv, dtype=np.float64)
    return lv[0] if lv.ndim == 2 else lv


def _plot(path: Path, title: str, values: Any, levels: Any) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    fig, ax = plt.subplots(figsize=(6, 3.2))
    v = np.asarray(values, dtype=np.float64).ravel()
    ax.hist(v, bins=100, color="tab:blue", alpha=0.8, log=True)
    if levels is not None:
        lv = np.asarray(levels)[:: max(1, np.asarray(levels).size // 256)]
        ax.vlines(lv, 0, 1, transform=ax.get_xaxis_transform(), colors="tab:red",
                  linewidth=0.4, alpha=0.5)
    ax.set_title(title, fontsize=9)
    ax.set_xlabel("FP value (red: quantization levels)")
    fig.subplots_adjust(bottom=0.16)
    from refq.files.atomic import atomic_file

    with atomic_file(Path(path), force=True) as tmp:
        fig.savefig(tmp, format="png", dpi=90)
    plt.close(fig)


def run(args: argparse.Namespace) -> int:
    import numpy as np

    from refq.commands.eval import load_workload, parse_bits, parse_methods
    from refq.errors import RefqError, SpecError
    from refq.methods import fake_quant, quantize_model

    methods = parse_methods(args.method)
    if len(methods) != 1 or args.method.strip() == "all":
        raise SpecError(f"--method takes one name, got {args.method!r}")
    bits = parse_bits(args.bits)
    if len(bits) != 1:
        raise SpecError(f"--bits takes one WxAy, got {args.bits!r}")
    if args.images < 1:
        raise SpecError(f"--images must be >= 1, got {args.images}")
    if args.plots is not None:
        try:
            import matplotlib  # noqa: F401
        except ImportError:
            raise RefqError("--plots needs matplotlib (pip install matplotlib)") from None
    (w, a), method = bits[0], methods[0]
    work = load_workload(args)
    x = work.images[: args.images]
    if x.shape[0] == 0:
        raise SpecError("no images to evaluate")
    spec = quantize_model(work.model, method, w, a, work.calib, seed=args.seed)
    mq, tap = fake_quant(work.model, spec)
    _, fp_taps = work.model.forward_with_taps(x)
    _, q_taps = mq.forward_with_taps(x, tap)
    rows: list[tuple[str, str, str, float, float]] = []
    for name, ref in fp_taps.items():
        if name in q_taps and np.shape(q_taps[name]) == np.shape(ref):
            c, e = cosine_mse(ref, q_taps[name])
            kind = "act (q)" if name in spec.activations else "act"
            rows.append((name, kind, "x".join(map(str, np.shape(ref))), c, e))
    for name, q in spec.weights.items():
        ref = np.asarray(spec.params.get(name, work.model.params[name]), dtype=np.float64)
        c, e = cosine_mse(ref, q.fake_quant(ref))
        rows.append((name, "weight", "x".join(map(str, ref.shape)), c, e))
    width = max(len(r[0]) for r in rows)
    print(f"{method} W{w}A{a} vs FP on {x.shape[0]} images ({work.source}); "
          f"'act (q)': tap quantized by the spec; errors accumulate along the network")
    print(f"{'tensor':{width}} | {'kind':7} | {'shape':14} | {'cosine':>9} | {'MSE':>10}")
    print(f"{'-' * width}-|-{'-' * 7}-|-{'-' * 14}-|-{'-' * 9}-|-{'-' * 10}")
    for name, kind, shape, c, e in rows:
        print(f"{name:{width}} | {kind:7} | {shape:14} | {c:9.6f} | {e:10.3e}")
    print("cosine = cosine similarity and MSE = mean squared error of the fake-quant values "
          "against the FP values (act: the forward's tensor at that tap; weight: the weight)")
    if args.plots is not None:
        args.plots.mkdir(parents=True, exist_ok=True)
        n = 0
        for name, q in list(spec.activations.items()) + list(spec.weights.items()):
            vals = fp_taps.get(name) if name in spec.activations else np.asarray(
                spec.params.get(name, work.model.params[name]))[0]
            if vals is None or not fnmatch.fnmatchcase(name, args.plot_only):
                continue
            fname = re.sub(r"[^A-Za-z0-9._-]", "_", name) + ".png"
            _plot(args.plots / fname, f"{method} W{w}A{a} {name}", vals, _levels(q))
            n += 1
        print(f"plots: {n} PNG histograms in {args.plots}")
    return 0
