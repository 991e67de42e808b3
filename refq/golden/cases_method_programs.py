"""Whole-program cases per quantization method: the bundled digits DeiT truncated after block
0 (refq.golden.specs.block0_model: patch embedding, tokens, encoder block 0, final norm and
head), quantized by each method's stored spec (refq/golden/specs/), lowered and run on the
first test image.

Compact by design (golden/ size budget): each case stores the input, every constant
(params), the logits and the block boundaries (``embed``, ``blocks.0.add1``,
``blocks.0.add2``) — ``meta.json`` → ``scope``. Every other intermediate is defined by the
program in ``meta.program``: a testbench or backend re-runs it (refq's interpreter, or the
tosa and iree backends, which compare every intermediate with refq's interpreter run live).
"""

from __future__ import annotations

from functools import partial

from refq.golden.case import Case
from refq.golden.cases_program import _method_lowered, program_case, tiny_boundary
from refq.golden.registry import register

BITS = (8,)
"""W8A8 for every method; the W4A4 integer paths use the same op sequence (narrower code
formats) and are covered by the per-method encoder-block cases."""


def _case(method: str, bits: int, name: str, seed: int) -> Case:
    from refq.golden.specs import MODEL_NOTE, N_CALIB, golden_image, spec_name

    program, _ = _method_lowered(method, bits)
    scope = {
        "model": MODEL_NOTE,
        "spec": f"refq/golden/specs/{spec_name(method, bits)} (stored, not recalibrated)",
        "lowering_calib_images": f"bundled digits calib split, first {N_CALIB}",
        "input": "the first test image of the bundled digits set",
        "stored": ("every parameter (params), the input, the logits (output) and the block "
                   "boundaries (intermediates embed, blocks.0.add1, blocks.0.add2); every "
                   "other intermediate is defined by meta.program (re-run it)"),
    }
    return program_case(name, seed, "program", program, {"input": golden_image()},
                        {"scope": scope}, keep=tiny_boundary)


def _register() -> None:
    from refq.golden.specs import METHODS

    for method in METHODS:
        for bits in BITS:
            name = f"program.deit_digits.depth1.{method}.w{bits}a{bits}"
            register(name, "program", 0,
                     f"bundled digits DeiT truncated after block 0, {method} W{bits}A{bits} "
                     "(stored spec), 1 test image: params, input, block boundaries, logits",
                     )(partial(_case, method, bits, name))


_register()

__all__ = ["BITS"]
