"""ptq4vit's paper metric (Hessian-guided) on a Swin: refq.nn.grad_swin gives the op-output
gradients that refq.calib.hessian weights the layer-output error with."""

from __future__ import annotations

from refq.methods import quantize_model
from tests.nn.swin_util import pixels, random_swin


def test_ptq4vit_hessian_on_swin() -> None:
    """The default ce policy and the kl one both run on a Swin and say which they used."""
    swin = random_swin()
    for loss in ("ce", "kl"):
        spec = quantize_model(swin, "ptq4vit", 8, 8, pixels(4), calib_sub=4, n=8, rounds=1,
                              hessian_loss=loss)
        assert spec.notes["metric"] == "hessian" and spec.notes["hessian_loss"] == loss
        assert "layers.1.downsample.norm" in spec.activations
