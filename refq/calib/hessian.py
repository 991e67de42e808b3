"""PTQ4ViT's Hessian-guided metric, with refq's policy for its degenerate gradient.

PTQ4ViT scores a candidate quantization of a layer with output O by
``score = -mean((dL/dO ⊙ (O - Ô))²)`` where ``L = KL(softmax(pred_fp) || softmax(pred))``
and the gradient is captured on the calibration set. Evaluated at the FP model itself
(pred == pred_fp, the default non-sequential calibration) that gradient is exactly zero
(PTQ4ViT issue #23), so the metric degenerates.

refq's policy (documented, default ``loss="ce"``): the gradient is that of the mean
cross-entropy of the FP model against labels — the ground-truth ``labels`` when given,
otherwise the FP model's own argmax predictions — w.r.t. each op output of the FP model:
``dL/dlogits = (softmax(pred_fp) - onehot(label)) / B`` back-propagated by
:func:`refq.nn.grad_vit.vit_op_output_grads`. ``loss="kl"`` with ``pred=`` a different
(e.g. partially quantized) model's logits is also offered; ``loss="kl"`` without ``pred``
reproduces the zero gradient and raises SpecError rather than returning a useless metric.

The search minimises a loss, so the metric returned is ``mean((g ⊙ (O - Ô))²)`` = -score,
realised by :func:`refq.calib.metrics.weighted_mse` with ``g`` the full gradient tensor.

Cost: one forward and one backward pass over the calibration images, about three
forward-pass equivalents (the backward costs about two forwards in FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib.metrics import WeightedMSE, weighted_mse
from refq.errors import SpecError
from refq.nn.backward import cross_entropy_logits, kl_logits
from refq.nn.grad_vit import vit_op_output_grads
from refq.nn.layers import FloatArray


def layer_output_grads(
    model: Any,
    calib_images: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    loss: str = "ce",
    pred: npt.ArrayLike | None = None,
) -> dict[str, FloatArray]:
    """``{op name: dL/d(op output)}`` (float64, full shapes) on the calibration images.

    ``loss="ce"``: cross-entropy against ``labels`` or the FP argmax (refq's default policy);
    ``loss="kl"``: KL(softmax(pred_fp) || softmax(pred)) w.r.t. ``pred`` given by the caller.
    Op names are those of ``model.ops()``. Raises SpecError for an unknown loss or a KL
    without ``pred``.
    """
    x = np.asarray(calib_images, dtype=np.float64)
    if loss == "ce":
        def lg(logits: FloatArray) -> FloatArray:
            lab = (np.argmax(logits, axis=-1) if labels is None
                   else np.asarray(labels, dtype=np.int64))
            return cross_entropy_logits(logits, lab)[1]
    elif loss == "kl":
        if pred is None:
            raise SpecError("layer_output_grads: loss='kl' needs pred= (at pred = pred_fp the "
                            "KL gradient is identically zero, PTQ4ViT issue #23)")
        pq = np.asarray(pred, dtype=np.float64)

        def lg(logits: FloatArray) -> FloatArray:
            # dKL/dpred = (softmax(pred) - softmax(pred_fp))/B, back-propagated through the
            # FP network (approximation: the FP Jacobian stands in for the quantized one).
            return kl_logits(logits, pq)[1]
    else:
        raise SpecError(f"layer_output_grads: unknown loss {loss!r} (use 'ce' or 'kl')")
    _, grads = vit_op_output_grads(model, x, lg)
    return grads


def hessian_metric_factory(
    model: Any,
    calib_images: npt.ArrayLike,
    labels: npt.ArrayLike | None = None,
    loss: str = "ce",
    pred: npt.ArrayLike | None = None,
) -> Callable[..., WeightedMSE]:
    """A per-layer metric: ``factory(op_name)`` -> ``weighted_mse(dL/dO)`` for that op.

    The returned callable is pluggable as ``metric=`` of refq.calib's PTQ4ViT searches for the
    op of that name (the scored tensor must be the op output on the SAME calibration images,
    in the same order). ``factory(op, shape)`` with the shape of the scored output also
    accepts a per-head ``(B, H, N, d)`` layout of a merged ``(B, N, H·d)`` op output (the
    attn@v search), re-laying the gradient out to match. ``loss``/``labels``/``pred`` as
    :func:`layer_output_grads`. Raises SpecError for an op without a gradient or a shape it
    cannot match.
    """
    grads = layer_output_grads(model, calib_images, labels=labels, loss=loss, pred=pred)

    def metric_for(op: str, shape: tuple[int, ...] | None = None) -> WeightedMSE:
        if op not in grads:
            raise SpecError(f"hessian metric: no gradient for op {op!r}; have {sorted(grads)}")
        g = grads[op]
        if shape is not None and tuple(shape) != g.shape:
            # a matmul scored per head, (B, H, N, d), whose op output is the merged (B, N, H·d)
            if len(shape) == 4 and g.ndim == 3 and g.shape == (
                    shape[0], shape[2], shape[1] * shape[3]):
                g = g.reshape(shape[0], shape[2], shape[1], shape[3]).transpose(0, 2, 1, 3)
            else:
                raise SpecError(f"hessian metric: gradient of {op!r} has shape {g.shape}, "
                                f"the scored output {tuple(shape)}")
        return weighted_mse(g)

    return metric_for


__all__ = ["hessian_metric_factory", "layer_output_grads"]
