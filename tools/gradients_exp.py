"""One calibration run of the gradient-based options on the bundled digits DeiT
(docs/results-gradients.md, "the same comparison" tables): one JSON line on stdout.

    OPENBLAS_NUM_THREADS=1 python tools/gradients_exp.py METHOD BITS NCAL [key=value ...]

METHOD: a recipe (``ias``, ``ptq4vit``, …); BITS: W=A bits; NCAL: ``64`` = the first 64
images of the calib split, ``t256`` = the first 256 of the train split; ``key=value``:
recipe options (``True``/``False``, ints and floats are converted). Normalised float input,
fake-quant; top-1 on the 400 test images, and on the held-out calib images 64..99 (never
used to calibrate) the KL(FP || Q) of the logits and top-1. ``cpu_s`` is the CPU time of
``quantize_model`` alone.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from refq.methods import evaluate, fake_quant, quantize_model
from refq.nn import load_bundled


def _value(v: str) -> Any:
    if v in ("True", "False"):
        return v == "True"
    for cast in (int, float):
        try:
            return cast(v)
        except ValueError:
            pass
    return v


def _log_softmax(z: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    z = z - z.max(-1, keepdims=True)
    out: npt.NDArray[np.float64] = z - np.log(np.exp(z).sum(-1, keepdims=True))
    return out


def main(argv: list[str]) -> int:
    if len(argv) < 3:
        print(__doc__, file=sys.stderr)
        return 2
    method, bits, ncal_arg = argv[0], int(argv[1]), argv[2]
    src = "train" if ncal_arg.startswith("t") else "calib"
    ncal = int(ncal_arg.lstrip("t"))
    opts = {k: _value(v) for k, v in (kv.split("=", 1) for kv in argv[3:])}
    model, digits = load_bundled()
    calib, calib_labels = digits.split("calib")
    test, test_labels = digits.split("test")
    xc = digits.normalize(digits.split(src)[0][:ncal])
    xh, xt = digits.normalize(calib[64:]), digits.normalize(test)
    t0 = time.process_time()
    spec = quantize_model(model, method, bits, bits, xc, seed=0, **opts)
    cpu = time.process_time() - t0
    acc = evaluate(model, spec, xt, test_labels)
    mq, tap = fake_quant(model, spec)
    lf, lq = _log_softmax(model.forward(xh)), _log_softmax(mq.forward(xh, tap=tap))
    kl = float(np.mean(np.sum(np.exp(lf) * (lf - lq), -1)))
    out: dict[str, Any] = {
        "method": method, "bits": bits, "ncal": ncal, "calib_src": src, "opts": opts,
        "test_top1": acc, "holdout_kl": kl,
        "holdout_top1": float(np.mean(np.argmax(lq, -1) == calib_labels[64:])),
        "cpu_s": round(cpu, 1)}
    sos = spec.notes.get("sos")
    if isinstance(sos, dict):
        out["sos_losses"] = sos["losses"]
        out["stage2_diff"] = sos["stage2_max_abs_diff"]
    print(json.dumps(out), flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
