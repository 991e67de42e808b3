#!/usr/bin/env bash
# Run the torch cross-checks on CUDA (needs a GPU machine with torch+CUDA):
#  0. torch._int_mm (cuBLAS int8 GEMM) through the torch-native-cuda backend: refq's suite
#     plus its torch_native.int_mm strategy (int8 x int8 -> int32, M > 16 and odd shapes);
#  1. the kernel conformance suite on cuda_backend() with examples=100, counts printed;
#  2. the torch test files with REFQ_TORCH_DEVICE=cuda: kernels (hypothesis + golden),
#     the exact isqrt, and whole lowered programs of the bundled DeiT compared with
#     refq.program.run on every intermediate;
#  3. timing of one lowered W8A8 program (100 test images): refq.program.run on CPU,
#     run_program_torch on CPU and on CUDA, outputs compared.
set -euo pipefail
cd "$(dirname "$0")/.."
status=0
python -m refq check --backend torch-native-cuda --ops 'matmul.gemm,linear.gemm,torch_native.int_mm' \
    --examples 100 --golden golden --artifacts refq-check-failures/int_mm || status=$?
python - <<'PY'
from pathlib import Path
from refq.crosscheck.adapters.torch_backend import SUPPORTED, cuda_backend
from refq.crosscheck.testing import assert_conforms
report = assert_conforms(cuda_backend(), ops=list(SUPPORTED), golden=Path("golden"), examples=100)
print("kernel suite on cuda:", report.counts())
PY
REFQ_TORCH_DEVICE=cuda python -m pytest -q -p no:cacheprovider \
    tests/crosscheck/test_torch.py tests/crosscheck/test_torch_program.py
python - <<'PY'
import time

import numpy as np

from refq.crosscheck.adapters.torch_program import run_program_torch
from refq.nn import load_bundled
from refq.program import lower, run
from refq.calib.minmax import minmax_spec

model, data = load_bundled()
fm = model.fold_normalization()
cal, _ = data.split("calib")
test, _ = data.split("test")
prog = lower(fm, minmax_spec(fm, cal[:16], 8), cal[:16])
x = test[:100]
t = time.perf_counter(); want = run(prog, {"input": x}); t_ref = time.perf_counter() - t
times = {}
for dev in ("cpu", "cuda"):
    run_program_torch(prog, {"input": x[:2]}, device=dev)  # warm-up
    t = time.perf_counter(); got = run_program_torch(prog, {"input": x}, device=dev)
    times[dev] = time.perf_counter() - t
    bad = [n for n in want if not np.array_equal(want[n], got[n])]
    print(f"{dev}: {len(want)} tensors, {len(bad)} differ", bad[:3])
print(f"W8A8 program, 100 images: refq.program.run {t_ref:.2f}s, torch cpu "
      f"{times['cpu']:.2f}s, torch cuda {times['cuda']:.2f}s")
PY
exit "$status"
