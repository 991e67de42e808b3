"""Lowered Swin programs (windows, cyclic shift, relative position bias, shifted-window mask,
patch merging, integer mean pooling) run in torch int64 ops
(refq.crosscheck.adapters.torch_program) agree with refq.program.run on EVERY intermediate
tensor, bit for bit — at W8A8 and W4A4, under every kernel profile, and fqvit's program
(quantized logits, the log-int softmax beside the shifted-window mask).

Device: ``REFQ_TORCH_DEVICE`` (default "cpu")."""

from __future__ import annotations

import copy
from collections.abc import Iterator
from typing import Any

import numpy as np
import pytest

from ..torch_oracle import needs_torch
from .torch_programs import DEVICE, compare_every_tensor, one_torch_thread

pytestmark = [pytest.mark.torch, needs_torch]


@pytest.fixture(scope="module", autouse=True)
def _one_thread() -> Iterator[None]:
    with one_torch_thread():
        yield


@pytest.fixture(scope="module")
def swin() -> tuple[Any, Any, Any]:
    from tests.nn.swin_util import pixels, random_swin

    return random_swin(), pixels(6), pixels(3, seed=7)


def _lowered(swin: tuple[Any, Any, Any], method: str, bits: int, kernels: str | None) -> Any:
    from refq.methods import quantize_model
    from refq.methods.registry import recipe
    from refq.program import lower

    m, cal, _ = swin
    # the recipes that take calib_sub search on the first 4 images (fqvit, minmax: none)
    takes = recipe(method).options.keys()
    opts: dict[str, Any] = {"calib_sub": 4} if "calib_sub" in takes else {}
    return lower(m, quantize_model(m, method, bits, bits, cal, **opts), cal, kernels=kernels)


@pytest.mark.parametrize("method,bits,kernels", [
    ("minmax", 8, None), ("minmax", 4, None), ("repq", 4, None), ("tsptq", 8, None),
    ("fqvit", 8, None), ("minmax", 8, "ibert"), ("minmax", 8, "ivit"), ("minmax", 8, "tflite")])
def test_every_intermediate_equal(swin: tuple[Any, Any, Any], method: str, bits: int,
                                  kernels: str | None) -> None:
    prog = _lowered(swin, method, bits, kernels)
    want = compare_every_tensor(prog, swin[2])
    keys = {op.key for op in prog.ops}
    assert {"roll", "window_partition", "window_reverse", "patch_merge", "window_mask",
            "mean_pool"} <= keys
    assert len(want) >= 200


def test_a_wrong_shift_is_detected(swin: tuple[Any, Any, Any]) -> None:
    """Negative control: the torch run of a program whose cyclic shift goes the wrong way
    differs from refq's run of the original from the shifted tensor on."""
    from refq.crosscheck.adapters.torch_program import run_program_torch
    from refq.program import run

    prog = _lowered(swin, "minmax", 8, None)
    bad = copy.deepcopy(prog)
    for op in bad.ops:
        if op.key == "roll":
            op.params["shift"] = -op.params["shift"]
    x = swin[2]
    want = run(prog, {"input": x})
    got = run_program_torch(bad, {"input": x}, device=DEVICE)
    differ = [n for n in want if not np.array_equal(want[n], got[n])]
    assert "layers.0.blocks.1.norm1.shifted" in differ and "head" in differ
    assert "layers.0.blocks.1.norm1" not in differ
