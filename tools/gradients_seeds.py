"""Paired multi-seed comparison of the gradient-based calibration options.

Arms (bundled ``deit_digits``, normalised float input, fake-quant, top-1 on the 400 test
images):

- ``ptq4vit`` with ``metric="hessian"`` (arm ``hessian``: ``hessian_loss="ce"``; arm
  ``fisher``: ``hessian_loss="fisher"``) vs ``metric="cosine"`` (paper budget n=100,
  rounds=3); sequential calibration (docs/results-gradients-sequential.md):
  arm ``hessian_seq`` (``metric="hessian", sequential=True``: the official KL gradient at
  the partially quantized model) and arm ``cosine_seq`` (``metric="cosine",
  sequential=True``: the same sequential inputs, cosine metric);
- ``ias`` with ``sos=True`` (reduced budget: ``sos_iters=100``; lr 4e-5 at W4A4 and 4e-4 at
  W3A3, the values chosen earlier by held-out KL on calib images 64..99, see
  docs/results-gradients.md) vs ``sos=False``.

Calibration draw for seed ``s``: 64 images of the 100-image ``calib`` split (never the
test split), ``np.random.default_rng(s).permutation(100)[:64]`` in that order, so the
recipes' search subset (``calib_sub`` = first 8) differs between seeds; the recipe seed is
``s`` too. Both arms of a comparison use the same draw (paired). Deterministic.

Extra ``key=value`` arguments after OUT override recipe options of that run (e.g.
``calib_sub=32``, ``sos_iters=1000``, ``sos_lr=4e-5``) and are recorded in ``opts``; keep
runs with different overrides in different OUT files (``table`` pairs by method, bits, arm
and seed only).

Usage (one JSON line per run appended to OUT; ``table`` prints the markdown tables)::

    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tools/gradients_seeds.py run ptq4vit 4 hessian 0 OUT
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tools/gradients_seeds.py run ptq4vit 4 fisher 0 OUT
    OPENBLAS_NUM_THREADS=1 PYTHONPATH=. python tools/gradients_seeds.py run ias 4 sos 0 OUT
    python tools/gradients_seeds.py table OUT
    python tools/gradients_seeds.py decide OUT      # the pre-registered rule of the seq arms
    python tools/gradients_seeds.py diag BITS SEED  # calib-only diagnostics of the seq arms
    python tools/gradients_seeds.py cost            # CPU s of one sequential step
"""
from __future__ import annotations

import json
import statistics
import sys
import time
from typing import Any

import numpy as np

ARMS: dict[str, tuple[str, ...]] = {"ptq4vit": ("hessian", "fisher", "cosine",
                                                "hessian_seq", "cosine_seq"),
                                    "ias": ("sos", "nosos")}
COMPARISONS: list[tuple[str, str, str]] = [("ptq4vit", "hessian", "cosine"),
                                           ("ptq4vit", "fisher", "cosine"),
                                           ("ptq4vit", "fisher", "hessian"),
                                           ("ptq4vit", "hessian_seq", "cosine_seq"),
                                           ("ptq4vit", "hessian_seq", "cosine"),
                                           ("ptq4vit", "cosine_seq", "cosine"),
                                           ("ptq4vit", "hessian_seq", "hessian"),
                                           ("ias", "sos", "nosos")]
"""(method, arm a, arm b) pairs that ``table`` prints where both arms were run."""
SOS_LR = {4: 4e-5, 3: 4e-4}   # selected on held-out calib images, never on the test set
SOS_ITERS = 100               # reduced budget (paper 1000)
NCAL = 64


def calib_indices(seed: int, n_split: int = 100, n: int = NCAL) -> list[int]:
    """Indices into the calib split used as calibration images for ``seed``."""
    return [int(i) for i in np.random.default_rng(seed).permutation(n_split)[:n]]


def options(method: str, bits: int, arm: str) -> dict[str, Any]:
    """Recipe options of one arm."""
    if method == "ptq4vit":
        if arm == "fisher":
            return {"metric": "hessian", "hessian_loss": "fisher"}
        if arm.endswith("_seq"):
            return {"metric": arm[: -len("_seq")], "sequential": True}
        return {"metric": arm}
    if arm == "sos":
        return {"sos": True, "sos_iters": SOS_ITERS, "sos_lr": SOS_LR[bits]}
    return {"sos": False}


def _value(v: str) -> Any:
    for conv in (int, float):
        try:
            return conv(v)
        except ValueError:
            pass
    return {"True": True, "False": False}.get(v, v)


def run_one(method: str, bits: int, arm: str, seed: int, out: str,
            extra: dict[str, Any] | None = None) -> dict[str, Any]:
    """Quantize with one arm on the calibration draw of ``seed``; append a JSON line."""
    import hashlib

    from refq.methods import evaluate
    from refq.nn import load_bundled

    if arm not in ARMS[method]:
        raise SystemExit(f"arm {arm!r} not in {ARMS[method]}")
    model, data = load_bundled()
    ci, _ = data.split("calib")
    ti, tl = data.split("test")
    idx = calib_indices(seed, ci.shape[0])
    xc = data.normalize(ci[idx])
    opts = options(method, bits, arm)
    opts.update(extra or {})
    t0 = time.process_time()
    spec = _quantize(model, method, bits, xc, seed, opts)
    cpu = time.process_time() - t0
    acc = float(evaluate(model, spec, data.normalize(ti), tl))
    blob = json.dumps(spec.to_dict(), sort_keys=True, default=str).encode()
    rec = {"method": method, "bits": bits, "arm": arm, "seed": seed, "opts": opts,
           "calib_first8": idx[:8], "test_top1": round(100.0 * acc, 2), "cpu_s": round(cpu, 1),
           "spec_sha256": hashlib.sha256(blob).hexdigest()[:16]}
    with open(out, "a", encoding="utf-8") as f:
        f.write(json.dumps(rec) + "\n")
    print(json.dumps(rec), flush=True)
    return rec


def _quantize(model: Any, method: str, bits: int, xc: Any, seed: int,
              opts: dict[str, Any]) -> Any:
    """``quantize_model`` at W{bits}A{bits} with the arm's recipe options."""
    from refq.methods import quantize_model

    return quantize_model(model, method, bits, bits, xc, seed=seed, **opts)


def read_records(path: str) -> dict[tuple[str, int, str, int], dict[str, Any]]:
    """The JSON lines of ``path`` keyed by (method, bits, arm, seed) (a later line wins)."""
    recs: dict[tuple[str, int, str, int], dict[str, Any]] = {}
    with open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                r = json.loads(line)
                recs[(r["method"], r["bits"], r["arm"], r["seed"])] = r
    return recs


def ptq4vit_top1(path: str) -> dict[tuple[int, str, int], float]:
    """ptq4vit test top-1 of ``path`` keyed by (bits, arm, seed)."""
    return {k[1:]: float(r["test_top1"]) for k, r in read_records(path).items()
            if k[0] == "ptq4vit"}


def decide(path: str) -> str:
    """The rule pre-registered in docs/results-gradients-sequential.md, evaluated."""
    recs = ptq4vit_top1(path)
    out: list[str] = []
    ok = True

    def diffs(bits: int, a: str, b: str) -> list[float]:
        return [recs[(bits, a, s)] - recs[(bits, b, s)] for s in range(5)
                if (bits, a, s) in recs and (bits, b, s) in recs]

    for bits in (4, 3):
        for a, b in (("hessian_seq", "cosine_seq"), ("hessian_seq", "cosine"),
                     ("cosine_seq", "cosine"), ("hessian_seq", "hessian")):
            d = diffs(bits, a, b)
            if len(d) < 5:
                out.append(f"W{bits}A{bits}: {a} vs {b}: only {len(d)} paired draws")
                if (a, b) == ("hessian_seq", "cosine_seq"):
                    ok = False
                continue
            m, sd = statistics.mean(d), statistics.stdev(d)
            per = ", ".join(f"{x:+.2f}" for x in d)
            verdict = ""
            if (a, b) == ("hessian_seq", "cosine_seq"):
                met = m >= 0
                ok = ok and met
                verdict = " [rule part 1: " + ("met" if met else "NOT met") + "]"
            if (a, b) == ("hessian_seq", "hessian") and bits == 3:
                met = m >= -sd
                ok = ok and met
                verdict = " [rule part 2 (mean >= -sd): " + ("met" if met else "NOT met") + "]"
            if (a, b) == ("hessian_seq", "cosine"):
                verdict = " [the gradient rule against the non-sequential cosine: " + (
                    "met" if m >= 0 else "NOT met") + "]"
            out.append(f"W{bits}A{bits}: {a} - {b} = {m:+.2f} ± {sd:.2f} ({per}){verdict}")
    out.append("decision: " + ("make sequential=True the ptq4vit default" if ok
                               else "keep the default"))
    return "\n".join(out)


def _held_out_kl(model: Any, spec: Any, x: Any) -> float:
    from refq.methods import fake_quant
    from refq.nn.backward import kl_logits

    mq, tap = fake_quant(model, spec)
    return kl_logits(model.forward(x), mq.forward(x, tap=tap))[0]


def diag(bits: int, seed: int) -> str:
    """Calibration-only diagnostics (never the test split) of the sequential arms on the draw
    of ``seed``: per searched op, the share of the Hessian weight sum(g^2) carried by the
    single heaviest of the 8 search images, for the sequential KL gradient (at the partially
    quantized model of the hessian_seq spec) and for the ``ce`` gradient at the FP model; the
    per-head scales of ``blocks.0.attn.v``; and KL(FP || Q) on the 36 calibration images of
    the split NOT in the draw, for the arms hessian_seq, cosine_seq, cosine, hessian."""
    from refq.calib.hessian import layer_output_grads, sequential_state
    from refq.nn import load_bundled
    from refq.quant import Quantizer

    model, data = load_bundled()
    ci, _ = data.split("calib")
    perm = [int(i) for i in np.random.default_rng(seed).permutation(ci.shape[0])]
    xc, xh = data.normalize(ci[perm[:NCAL]]), data.normalize(ci[perm[NCAL:]])
    xs = xc[:8]
    specs = {a: _quantize(model, "ptq4vit", bits, xc, seed, options("ptq4vit", bits, a))
             for a in ("hessian_seq", "cosine_seq", "cosine", "hessian")}
    sp = specs["hessian_seq"]
    gce = layer_output_grads(model, xs, loss="ce")
    zfp = model.forward(xs)
    w: dict[str, Quantizer] = {"patch_embed.proj.weight": sp.weights["patch_embed.proj.weight"]}
    a: dict[str, Quantizer] = {}

    def share(g: Any) -> float:
        e = (np.asarray(g) ** 2).reshape(g.shape[0], -1).sum(axis=1)
        return float(e.max() / e.sum()) if e.sum() > 0 else float("nan")

    lines = [f"W{bits}A{bits} seed {seed}: heaviest-image share of sum(g^2) per op "
             "(sequential KL | ce at FP); KL of the partially quantized model before the op"]
    for op in model.ops():
        if op.name == "patch_embed.proj":
            continue
        st = sequential_state(model, xs, w, a, zfp)
        assert st.grads is not None
        lines.append(f"  {op.name:24s} {share(st.grads[op.name]):.3f} | "
                     f"{share(gce[op.name]):.3f}   KL {st.kl:.4f}")
        if op.weight is not None:
            w[op.weight] = sp.weights[op.weight]
        a.update({t: sp.activations[t] for t in op.inputs})
    for arm, spec in specs.items():
        vq = spec.activations["blocks.0.attn.v"].to_dict()
        sc = ", ".join(f"{v:.3f}" for v in np.atleast_1d(vq["scale"]))
        lines.append(f"  {arm:12s} held-out KL {_held_out_kl(model, spec, xh):.4f}   "
                     f"blocks.0.attn.v scales [{sc}]")
    return "\n".join(lines)


def cost(reps: int = 20) -> str:
    """Median CPU s (``time.process_time``) on the 8 search images of draw 0: one float
    forward (the forward-pass-equivalent unit), one sequential step without and with the
    backward (partial quantizers: those of a min-max spec for the first half of the ops)."""
    from refq.calib.hessian import sequential_state
    from refq.methods import quantize_model
    from refq.nn import load_bundled

    model, data = load_bundled()
    ci, _ = data.split("calib")
    xs = data.normalize(ci[calib_indices(0, ci.shape[0])[:8]])
    spec = quantize_model(model, "minmax", 4, 4, xs)
    ops = model.ops()
    half = ops[: len(ops) // 2]
    w = {o.weight: spec.weights[o.weight] for o in half if o.weight is not None}
    a = {t: spec.activations[t] for o in half for t in o.inputs if t in spec.activations}
    zfp = model.forward(xs)

    def med(f: Any) -> float:
        ts = []
        for _ in range(reps):
            t0 = time.process_time()
            f()
            ts.append(time.process_time() - t0)
        return statistics.median(ts)

    t_f = med(lambda: model.forward(xs))
    t_s = med(lambda: sequential_state(model, xs, w, a, zfp, grads=False))
    t_b = med(lambda: sequential_state(model, xs, w, a, zfp, grads=True))
    n_ops = sum(1 for o in ops if o.name != "patch_embed.proj")
    return (f"float forward {t_f * 1e3:.1f} ms; sequential step without backward "
            f"{t_s * 1e3:.1f} ms ({t_s / t_f:.1f} fwd-eq); with backward {t_b * 1e3:.1f} ms "
            f"({t_b / t_f:.1f} fwd-eq); x {n_ops} searched ops: {n_ops * t_s:.2f} / "
            f"{n_ops * t_b:.2f} CPU s per calibration")


def _ms(v: list[float], sign: str = "") -> str:
    if len(v) < 2:
        return f"{v[0]:{sign}.2f}" if v else "–"
    return f"{statistics.mean(v):{sign}.2f} ± {statistics.stdev(v):.2f}"


def table(path: str) -> str:
    """Markdown tables (per seed, mean ± sd, paired difference) from a JSON-lines file."""
    recs = read_records(path)
    lines: list[str] = []
    for method, a, b in COMPARISONS:
        for bits in (4, 3):
            seeds = sorted({k[3] for k in recs if k[:2] == (method, bits)})
            paired = [s for s in seeds if (method, bits, a, s) in recs
                      and (method, bits, b, s) in recs]
            if not paired:
                continue
            lines += [f"#### {method} W{bits}A{bits}: {a} vs {b}", "",
                      f"| seed | calib first 8 | {a} % | {b} % | {a} − {b} | "
                      f"{a} CPU s | {b} CPU s |", "|---|---|---|---|---|---|---|"]
            va, vb, dd, ca, cb = [], [], [], [], []
            for s in paired:
                ra, rb = recs[(method, bits, a, s)], recs[(method, bits, b, s)]
                d = ra["test_top1"] - rb["test_top1"]
                va.append(ra["test_top1"])
                vb.append(rb["test_top1"])
                dd.append(d)
                ca.append(ra["cpu_s"])
                cb.append(rb["cpu_s"])
                lines.append(f"| {s} | {ra['calib_first8']} | {ra['test_top1']:.2f} | "
                             f"{rb['test_top1']:.2f} | {d:+.2f} | {ra['cpu_s']:.1f} | "
                             f"{rb['cpu_s']:.1f} |")
            wins = sum(x > 0 for x in dd)
            ties = sum(x == 0 for x in dd)
            lines += [f"| mean ± sd | | {_ms(va)} | {_ms(vb)} | {_ms(dd, '+')} | "
                      f"{statistics.mean(ca):.1f} | {statistics.mean(cb):.1f} |", "",
                      f"{a} ≥ {b} on average: {'yes' if statistics.mean(dd) >= 0 else 'NO'}; "
                      f"per seed: {wins} better, {ties} equal, {len(dd) - wins - ties} worse "
                      f"(of {len(dd)}).", ""]
    return "\n".join(lines)


def main(argv: list[str]) -> None:
    if len(argv) >= 6 and argv[0] == "run":
        extra = {k: _value(v) for k, v in (kv.split("=", 1) for kv in argv[6:])}
        run_one(argv[1], int(argv[2]), argv[3], int(argv[4]), argv[5], extra)
    elif len(argv) == 2 and argv[0] == "table":
        print(table(argv[1]))
    elif len(argv) == 2 and argv[0] == "decide":
        print(decide(argv[1]))
    elif len(argv) == 3 and argv[0] == "diag":
        print(diag(int(argv[1]), int(argv[2])))
    elif len(argv) == 1 and argv[0] == "cost":
        print(cost())
    else:
        raise SystemExit(__doc__)


if __name__ == "__main__":
    main(sys.argv[1:])
