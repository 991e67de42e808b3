"""Float32 figures of refq's calibration against the official codes run in float32.

The official codes run in float32 (on a GPU). tests/methods/test_official_quantizers.py
proves agreement in float64; this script counts, on the same seeded tensors (5 seeds ×
3/4/6/8 bits), how often refq's float32 arithmetic (``arith="float32"`` where a function has
it, else refq's float64 on the float32 values) and the re-typed official code run in torch
float32 CPU choose differently, and how often the resulting parameters differ.

    python tools/official_float32.py            # needs torch (the torch extra)

Prints one line per check: cases, chosen-candidate mismatches, parameter mismatches.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

import torch

from refq.calib import log2_init, sulq_eta_search
from refq.calib.fqvit import fqvit_act_params, fqvit_weight_quantizer
from refq.calib.lis import log_int_softmax
from refq.calib.search_ias import ACT_PERCENTILES, percentile_mse_search
from refq.calib.search_ptf import ptf_search
from refq.calib.search_ptq4vit import search_linear_scales
from tests.calib._data import ln_inputs, softmax_probs
from tests.methods.oracles import fqvit as ofq
from tests.methods.oracles import ptq4vit as opt
from tests.methods.oracles import repq_ias as orq

GRID = [(s, b) for s in range(5) for b in (3, 4, 6, 8)]


def t32(x: np.ndarray) -> torch.Tensor:
    return torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))


def f32(x: np.ndarray) -> np.ndarray:
    return np.asarray(x, np.float32).astype(np.float64)


def rng(seed: int, bits: int, salt: int) -> np.random.Generator:
    return np.random.default_rng([seed, bits, salt])


def main() -> int:
    torch.set_num_threads(1)
    rows: dict[str, list[int]] = {}

    def add(name: str, n: int, choice: int, param: int) -> None:
        r = rows.setdefault(name, [0, 0, 0])
        r[0] += n
        r[1] += choice
        r[2] += param

    for seed, bits in GRID:
        g = rng(seed, bits, 1)
        x = f32(g.standard_normal((2, 17, 24)) * g.uniform(0.2, 3.0))
        d, z, k = orq.uniform_init_tensor(t32(x), bits, orq.REPQ_PCTS)
        r = percentile_mse_search(x, bits, ACT_PERCENTILES, arith="float32")
        add("percentile-MSE, per tensor", 1, int(r["index"] != k),
            int((r["scale"], r["zero_point"]) != (float(d), int(z))))
        ln = f32(ln_inputs(g, (2, 13, 16), outliers=(3, 11)))
        d, z, ks = orq.uniform_init_channels(t32(ln), bits, orq.REPQ_PCTS, is_act=True)
        r = percentile_mse_search(ln.reshape(-1, 16), bits, ACT_PERCENTILES, axis=-1,
                                  arith="float32")
        add("percentile-MSE, per channel (16 ch)", 16,
            sum(a != b for a, b in zip(r["index"], ks, strict=True)),
            int(np.sum(np.array(r["scale"]) != d.double().numpy())))
        p = f32(softmax_probs(rng(seed, bits, 2), (2, 2, 20, 20)))
        d, k = orq.logsqrt2_init(t32(p), bits)
        q, rec = log2_init(p, bits, base="sqrt2", arith="float32")
        add("log√2 init", 1, int(rec["index"] != k), int(q.scale != float(d)))
        p = f32(softmax_probs(rng(seed, bits, 3), (2, 2, 20, 20)))
        st = orq.sulq_init(t32(p), bits)
        q, rec = sulq_eta_search(p, bits, mode="code", arith="float32")
        add("SULQ init", 1, int(rec["index"] != st["chosen"]),
            int((q.y_min, q.y_max) != (float(st["minv"]), float(st["maxv"]))))
        g = rng(seed, bits, 4)
        w = f32(g.standard_normal((10, 48)) * 0.1)
        ob = ofq.MinmaxObserver("linear_weight", bits, True, "channel_wise")
        ob.update(t32(w))
        s, _ = ob.params()
        ours = np.asarray(fqvit_weight_quantizer(w, bits).scale)
        add("FQ-ViT weight scale (10 rows), refq float64", 10, 0,
            int(np.sum(ours != s.double().numpy())))
        add("  the same rounded to float32", 10, 0,
            int(np.sum(ours.astype(np.float32) != s.numpy())))
        batches = [f32(g.standard_normal((2, 17, 24)) + 0.3) for _ in range(3)]
        op = ofq.PtfObserver("activation", bits, False, "channel_wise")
        for b in batches:
            op.update(t32(b))
        lo = min(float(b.min()) for b in batches)
        hi = max(float(b.max()) for b in batches)
        _, pz, alphas = op.params_ptf(t32(batches[-1]))
        r = ptf_search(batches[-1], bits, axis=-1, lo=lo, hi=hi)
        add("PTF alpha (24 ch)", 24, sum(a != b for a, b in zip(r["alpha"], alphas,
                                                              strict=True)),
            int(r["zero_point"] != int(pz)))
        lg = f32(rng(seed, bits, 5).standard_normal((2, 3, 17, 17)) * 3.0)
        sc, zp = fqvit_act_params(float(lg.min()), float(lg.max()), bits)
        xq = ofq.uniform_fake_quant(t32(lg), torch.tensor(np.float32(sc)),
                                    torch.tensor(np.float32(zp)), bits, False)
        want = ofq.log_int_softmax(xq, torch.tensor(np.float32(sc)), 4).double().numpy()
        got = log_int_softmax(xq.double().numpy(), float(np.float32(sc)), 4, "float32")
        ok = ~np.isnan(want)
        add("LIS values", int(ok.sum()), 0, int(np.sum(got[ok] != want[ok])))
        g = rng(seed, bits, 6)
        xl = f32(g.standard_normal((2, 9, 16)))
        wl = f32(g.standard_normal((6, 16)) * 0.2)
        bl = f32(g.standard_normal(6) * 0.1)
        o = opt.linear_search(t32(xl), t32(wl), t32(bl), w_bit=bits, a_bit=bits)
        r = search_linear_scales(xl, wl, bl, w_bits=bits, a_bits=bits, metric="cosine")
        hist = [{"w_index": h["w_index"], "a_index": h["a_index"]} for h in r["history"]]
        add("PTQ4ViT linear search (3 rounds, refq float64)", 6,
            sum(int(a != b) for h, oh in zip(hist, o["history"], strict=True)
                for a, b in ((h["w_index"], oh["w_index"]), (h["a_index"], oh["a_index"]))),
            int(r["a_delta"] != float(o["a_interval"])))
    print(f"{'check':48} {'cases':>6} {'choice differs':>15} {'params differ':>14}")
    for name, (n, c, p_) in rows.items():
        print(f"{name:48} {n:6d} {c:15d} {p_:14d}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
