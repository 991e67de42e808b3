"""fqvit's spec lowered: its uniform activation quantizers add the zero point before
rounding (FQ-ViT's forward), which requantization cannot realise, so they reach their
codes by thresholds — and the tap must still hold those CODES (scale s, zero point z), as
FQ-ViT's integer kernels read them (the log-int softmax takes the logits codes and the
logits quantizer's scale). A lowering that decodes such a tap into levels at 2^-k instead
feeds the log-int softmax another scale and changes its output (at W4A4 the top-1 moved
from 66 % to 91 % of the bundled test split)."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from refq.golden.specs import block0_model, calib_images, golden_image, load_spec
from refq.program import lower
from refq.program.run import run
from refq.quant import QuantSpec, UniformQuantizer


def _former(spec: QuantSpec) -> QuantSpec:
    """The same spec with refq's former round(x/s) + z on every uniform activation."""
    acts = {t: (UniformQuantizer(q.scale, q.bits, q.zero_point, signed=q.signed,
                                 rounding=q.rounding)
                if isinstance(q, UniformQuantizer) and q.zp_in_round and q.axis is None
                else q)
            for t, q in spec.activations.items()}
    return dataclasses.replace(spec, activations=acts)


@pytest.mark.parametrize("bits", [4, 8])
def test_zero_point_in_rounding_taps_hold_their_codes(bits: int) -> None:
    spec = load_spec("fqvit", bits)
    model, cal = block0_model(), calib_images()
    prog = lower(model, spec, cal)
    checked = 0
    for tap, q in spec.activations.items():
        if not (isinstance(q, UniformQuantizer) and q.axis is None and tap in prog.tensors
                and tap not in prog.inputs):  # the input: uint8 pixels, folded
            continue
        assert q.zp_in_round, tap
        d = prog.tensors[tap]
        assert (d.scale, d.zero_point, d.fmt.bits, d.fmt.signed) == (
            float(q.scale), int(q.zero_point), q.bits, q.signed), tap
        checked += 1
    assert checked >= 8  # q@k, q, k, v, attn@v, proj, gelu, fc2, norm1, norm2, ...
    # the program differs from the former form's only where the zero point inside the
    # rounding decides a tie: on the golden image, not at all
    old = lower(model, _former(spec), cal)
    x = {"input": golden_image()}
    a, b = run(prog, x), run(old, x)
    for t in ("blocks.0.attn.q@k", "blocks.0.attn.softmax", "blocks.0.add2"):
        np.testing.assert_array_equal(a[t], b[t], strict=True)
