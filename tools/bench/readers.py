"""Read-time cost of refq's readers on the largest committed files: a program folder (the
4-block digits program, saved from its golden case), that golden case (read_case), the
golden manifest, a stored spec with params, the bundled model config. Best of N CPU
seconds (the machine may be shared), one BLAS thread; run it with the refq to measure on PYTHONPATH:

    PYTHONPATH=/path/to/refq OPENBLAS_NUM_THREADS=1 python tools/bench/readers.py [--repeat 9]

Also times the published JSON Schema of the golden case with jsonschema (the validator an
outside tool would use), when the schemas exist in docs/schemas.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
REPO = Path(__file__).resolve().parents[2]
CASE = REPO / "golden" / "program.deit_digits.minmax.w8a8"


def best(fn: Callable[[], Any], repeat: int) -> float:
    out = []
    for _ in range(repeat):
        t0 = time.process_time()
        fn()
        out.append(time.process_time() - t0)
    return min(out)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__,
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--repeat", type=int, default=9)
    a = ap.parse_args(argv)
    import refq
    from refq.golden.case import read_case
    from refq.golden.cases_program import program_of
    from refq.golden.manifest import read_manifest
    from refq.nn.bundled import bundled_config
    from refq.program import load, save
    from refq.quant import QuantSpec

    print(f"refq {refq.__file__}")
    rows: list[tuple[str, float]] = []
    with tempfile.TemporaryDirectory() as tmp:
        prog, _ = program_of(read_case(CASE))
        save(prog, Path(tmp) / "p")
        size = (Path(tmp) / "p" / "program.json").stat().st_size
        rows.append((f"program load ({size} B program.json, {len(prog.consts)} consts)",
                     best(lambda: load(Path(tmp) / "p"), a.repeat)))
    rows.append(("golden read_case (576 kB meta.json, 300 tensors)",
                 best(lambda: read_case(CASE), a.repeat)))
    rows.append(("golden read_manifest (253 kB)",
                 best(lambda: read_manifest(REPO / "golden"), a.repeat)))
    spec_dir = REPO / "refq" / "golden" / "specs" / "ias.w8a8"
    rows.append(("QuantSpec.load ias.w8a8 (38 kB spec.json, 237 kB params.npz)",
                 best(lambda: QuantSpec.load(spec_dir), a.repeat)))
    rows.append(("bundled model config", best(bundled_config, a.repeat)))
    schema = REPO / "docs" / "schemas" / "golden-meta.schema.json"
    if schema.is_file():
        try:
            import jsonschema
        except ImportError:
            jsonschema = None
        if jsonschema is not None:
            v = jsonschema.Draft202012Validator(json.loads(schema.read_text()))
            meta = json.loads((CASE / "meta.json").read_text())
            rows.append(("jsonschema: the same meta.json against golden-meta.schema.json",
                         best(lambda: v.validate(meta), max(1, a.repeat // 3))))
    for name, secs in rows:
        print(f"{secs * 1e3:9.1f} ms  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
