"""What the torch cross-check tests share: the device (``REFQ_TORCH_DEVICE``, default "cpu";
tools/gpu_check.sh sets "cuda"), one torch thread while a module runs, and the comparison
of a whole program run in torch int64 ops with refq.program.run, tensor by tensor.

Skip-or-fail without torch: :data:`tests.torch_oracle.needs_torch`."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import numpy as np

DEVICE = os.environ.get("REFQ_TORCH_DEVICE", "cpu")


@contextmanager
def one_torch_thread() -> Iterator[None]:
    """torch intra-op threads spin badly on a shared 2-core machine: use one, then restore."""
    import torch

    n = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(n)


def compare_every_tensor(prog: Any, x: Any, backend: Any = None) -> dict[str, Any]:
    """refq's run of ``prog`` on input ``x``, after asserting that the torch run
    (refq.crosscheck.adapters.torch_program) produced the same tensors, each bit for bit."""
    from refq.crosscheck.adapters.torch_program import run_program_torch
    from refq.program import run

    want = run(prog, {"input": x})
    got = run_program_torch(prog, {"input": x}, device=DEVICE, backend=backend)
    assert sorted(got) == sorted(want)
    for name in want:
        np.testing.assert_array_equal(
            got[name].astype(np.int64), want[name].astype(np.int64), strict=True,
            err_msg=f"tensor {name}",
        )
    return want
