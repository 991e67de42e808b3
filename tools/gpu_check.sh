#!/usr/bin/env bash
# Run the torch cross-check suite on CUDA (needs a GPU machine with torch+CUDA).
set -euo pipefail
cd "$(dirname "$0")/.."
python - <<'PY'
from pathlib import Path
from refq.crosscheck.adapters.torch_backend import SUPPORTED, cuda_backend
from refq.crosscheck.testing import assert_conforms
report = assert_conforms(cuda_backend(), ops=list(SUPPORTED), golden=Path("golden"), examples=100)
print(report.counts())
PY
