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

``loss="fisher"`` (principled form of the same KL): the first-order term of
``KL(p_fp || p_q)`` vanishes at the FP model, its second-order term is the Fisher information,
``KL ≈ ½ Δzᵀ F Δz`` with ``F = E_{y ~ p_fp}[∇(-log p_y) ∇(-log p_y)ᵀ]`` (labels drawn from the
FP model's OWN softmax, not its argmax). Its diagonal in the output space of each op is
``w_j = Σ_y p_{b,y} (∂(-log p_{b,y})/∂O_j)²`` for the element ``j`` of image ``b``
(:func:`fisher_diagonal`), and the metric is ``mean(w ⊙ (O - Ô)²)`` (weighted_mse with
weight ``sqrt(w)``). Cost: one forward and one backward per class (K backward passes).

``loss="fisher_balanced"`` (refq's image-balanced policy, NOT the paper's): the Fisher
diagonal of each image renormalised so that every image carries the same total weight
(:func:`balanced_fisher_diagonal`). Reason: on a confident model the Fisher (like the
argmax-CE gradient) of an image with p ≈ one-hot is ≈ 0, so the KL weight of the whole search
set is carried by one or two uncertain images (measured on the bundled model: 95–100 % of an
op's weight on one image of 8), and the scale search effectively fits those images alone.

Sequential mode (``ptq4vit(sequential=True)``, the official code's ``sequential=True``,
:func:`sequential_state`): ops are searched in execution order; before each op's search the
calibration images run through the PARTIALLY quantized model (every op searched so far, and
the min-max patch-embedding weight, fake-quantized; the current op and everything after it
float), which gives (a) the current op's inputs, its target output being the float op on
those inputs, and (b) for the Hessian metric ``dL/dO`` of ``L = KL(softmax(pred_fp) ||
softmax(pred))`` (batch mean) at the partially quantized model, back-propagated from the
logits through the float downstream network evaluated at the partially quantized
activations. That gradient is non-zero because the upstream is quantized; it is zero when
nothing upstream is (PTQ4ViT issue #23), and then :func:`sequential_op_metric` raises.
The recipe iterates in EXECUTION order; the official loop iterates over ``named_modules()``,
where the attention matmuls come after ``proj`` (attached after timm builds the block), see
docs/results-gradients-sequential.md.

The search minimises a loss, so the metric returned is ``mean((g ⊙ (O - Ô))²)`` = -score,
realised by :func:`refq.calib.metrics.weighted_mse` with ``g`` the full gradient tensor.

Cost: one forward and one backward pass over the calibration images, about three
forward-pass equivalents (the backward costs about two forwards in FLOPs).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib.fakequant import fake_quantized_model
from refq.calib.metrics import WeightedMSE, weighted_mse
from refq.errors import SpecError
from refq.nn.backward import cross_entropy_logits, kl_logits
from refq.nn.configs import SwinConfig
from refq.nn.grad_swin import swin_backward, swin_forward_tapped, swin_op_output_grads
from refq.nn.grad_vit import (
    vit_backward,
    vit_forward_cached,
    vit_forward_tapped,
    vit_op_output_grads,
)
from refq.nn.layers import FloatArray
from refq.quant import Quantizer

HESSIAN_LOSSES = ("ce", "kl", "fisher", "fisher_balanced")
"""Gradient policies of the Hessian-guided metric (see the module docstring)."""


def fisher_diagonal(model: Any, calib_images: npt.ArrayLike) -> dict[str, FloatArray]:
    """``{op name: w}``, the diagonal of the Fisher information of the FP model's predictive
    distribution in each op's OUTPUT space, one weight per output element (full shapes):

    ``w[b, ...] = Σ_y p[b, y] · (∂(-log p[b, y]) / ∂O[b, ...])²``, ``p = softmax(logits_fp)``

    (true Fisher: an expectation over labels drawn from the model's own softmax; the sum over
    images is that of the per-image KL, no 1/B). At the FP point
    ``Σ_b KL(p_b || p_b(O + ε e_j)) = ½ w_j ε² + O(ε³)``. Float64; one forward pass and one
    backward pass per class (:func:`refq.nn.grad_vit.vit_backward`, Swin:
    :func:`refq.nn.grad_swin.swin_backward`, with ``dL/dlogits[b] = p[b] - onehot(y)``);
    a Swin window op's weight has the (B·W, ...) layout of its output, an image's W
    windows consecutive.
    """
    backward: Callable[[FloatArray], dict[str, FloatArray]]
    if isinstance(model.config, SwinConfig):
        logits, taps = swin_forward_tapped(model, calib_images)
        def backward(gl: FloatArray) -> dict[str, FloatArray]:
            return swin_backward(model, taps, gl)
    else:
        logits, cache = vit_forward_cached(model, np.asarray(calib_images, dtype=np.float64))
        def backward(gl: FloatArray) -> dict[str, FloatArray]:
            return vit_backward(model, cache, gl)
    z = logits - logits.max(axis=-1, keepdims=True)
    prob = np.exp(z)
    prob /= prob.sum(axis=-1, keepdims=True)
    w: dict[str, FloatArray] = {}
    for y in range(logits.shape[-1]):
        gl = prob.copy()
        gl[:, y] -= 1.0
        py = prob[:, y]
        for op, g in backward(gl).items():
            # Swin's window ops are batched over B·W windows, an image's W consecutive
            pb = np.repeat(py, g.shape[0] // py.shape[0])
            term = pb.reshape((-1,) + (1,) * (g.ndim - 1)) * (g * g)
            w[op] = term if op not in w else w[op] + term
    return w


def balance_images(w: npt.ArrayLike) -> FloatArray:
    """Per-image normalisation of a non-negative weight tensor ``w`` of shape (B, ...):
    ``w[b] / Σ w[b]`` (sum over all elements of image ``b``), so that every image's weights
    sum to 1 (up to float64 rounding). An image whose weights are all zero (e.g. an
    op that does not reach the logits for it, or a prediction so confident that its Fisher
    underflows) gets the uniform weight ``1 / w[b].size`` over its elements instead of 0/0.
    The result is invariant to scaling any image's weights by a positive factor. Computed as
    ``v = w[b] / max(w[b])`` then ``v / Σ v`` (the same value, without underflow for tiny
    weights). Float64. Raises SpecError for a negative, NaN or infinite weight or a tensor
    without an image axis.
    """
    a = np.asarray(w, dtype=np.float64)
    if a.ndim < 1 or a.shape[0] == 0 or a[0].size == 0:
        raise SpecError(f"balance_images: need a (B, ...) weight with B, elements >= 1, got "
                        f"shape {a.shape}")
    if not np.all(np.isfinite(a)) or np.any(a < 0):
        raise SpecError("balance_images: weights must be finite and >= 0")
    flat = a.reshape(a.shape[0], -1)
    peak = flat.max(axis=1, keepdims=True)
    zero = peak[:, 0] == 0.0
    v = flat / np.where(peak == 0.0, 1.0, peak)
    v[zero] = 1.0                      # all-zero image: uniform weight over its elements
    out: FloatArray = (v / v.sum(axis=1, keepdims=True)).reshape(a.shape)
    return out


def balanced_fisher_diagonal(model: Any, calib_images: npt.ArrayLike) -> dict[str, FloatArray]:
    """``{op name: u}``: refq's image-balanced Fisher weight (``loss="fisher_balanced"``),
    :func:`fisher_diagonal` with each image's weights normalised to sum 1 over that op's
    output (:func:`balance_images`; an all-zero image gets the uniform weight ``1 / size``).

    With ``u`` the metric ``mean(u ⊙ (O - Ô)²)`` is ``(1/M) · mean_b(Σ_j u[b, j] (O - Ô)²[b, j])``
    (``M`` elements per image): the MEAN over images of each image's Fisher-weighted squared
    output error, each image's second-order KL estimate ``½ Δᵀ diag(w_b) Δ`` divided by its own
    scale ``Σ_j w_b[j]``, hence scale-free per image. This is refq's policy, not PTQ4ViT's:
    the paper's KL gradient is identically zero at the FP model (issue #23), its second-order
    term (:func:`fisher_diagonal`) weights images by their own uncertainty, and on a confident
    model (bundled deit_digits, FP 97.5 %) one uncertain image of the 8 search images carried
    95–100 % of an op's weight, so the search fitted that image and clipped scales that broke
    the others (docs/results-gradients.md, Session 13). Balancing keeps the Fisher's choice of
    WHICH elements of an image matter and drops its choice of which images matter. Cost as
    :func:`fisher_diagonal`. Float64.
    """
    b = int(np.asarray(calib_images).shape[0])
    # per image: a Swin window op's (B·W, ...) weight is balanced over all W windows of it
    return {op: balance_images(v.reshape(b, -1)).reshape(v.shape)
            for op, v in fisher_diagonal(model, calib_images).items()}


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
        raise SpecError(f"layer_output_grads: unknown loss {loss!r} (use 'ce' or 'kl'; "
                        "'fisher' is a weight, see fisher_diagonal)")
    if isinstance(model.config, SwinConfig):
        _, grads = swin_op_output_grads(model, x, lg)
    else:
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
    :func:`layer_output_grads`; ``loss="fisher"``: the weight is ``sqrt(w)`` of
    :func:`fisher_diagonal` (metric ``mean(w ⊙ (O - Ô)²)``; ``labels``/``pred`` must be None);
    ``loss="fisher_balanced"``: the same with :func:`balanced_fisher_diagonal`.
    Raises SpecError for an unknown loss, an op without a gradient or a shape it cannot match.
    """
    if loss in ("fisher", "fisher_balanced"):
        if labels is not None or pred is not None:
            raise SpecError(f"hessian metric: loss={loss!r} takes no labels/pred (its labels "
                            "are drawn from the FP model's own softmax)")
        fw = (fisher_diagonal if loss == "fisher" else balanced_fisher_diagonal)(
            model, calib_images)
        grads = {k: np.sqrt(v) for k, v in fw.items()}
    else:
        grads = layer_output_grads(model, calib_images, labels=labels, loss=loss, pred=pred)

    def metric_for(op: str, shape: tuple[int, ...] | None = None) -> WeightedMSE:
        if op not in grads:
            raise SpecError(f"hessian metric: no gradient for op {op!r}; have {sorted(grads)}")
        return weighted_mse(_match_shape(grads[op], op, shape))

    return metric_for


def _match_shape(g: FloatArray, op: str, shape: tuple[int, ...] | None) -> FloatArray:
    """``g`` laid out as the scored output ``shape``: a matmul scored per head,
    (B, H, N, d), whose op output is the merged (B, N, H·d) is re-laid out; SpecError for
    any other mismatch."""
    if shape is None or tuple(shape) == g.shape:
        return g
    if len(shape) == 4 and g.ndim == 3 and g.shape == (shape[0], shape[2], shape[1] * shape[3]):
        out: FloatArray = g.reshape(shape[0], shape[2], shape[1], shape[3]).transpose(0, 2, 1, 3)
        return out
    raise SpecError(f"hessian metric: gradient of {op!r} has shape {g.shape}, "
                    f"the scored output {tuple(shape)}")


@dataclass(frozen=True)
class SequentialState:
    """The partially quantized forward (and backward) of one sequential calibration step.

    ``logits`` (B, K) of the partially quantized model; ``taps``: every tap tensor of its
    forward (after fake quantization where a quantizer sits), i.e. the inputs the next op's
    search sees; ``kl``: ``mean_b KL(softmax(pred_fp[b]) || softmax(logits[b]))``;
    ``grads``: ``{op name: dL/d(op output)}`` with ``L`` that KL (None when not asked).
    """

    logits: FloatArray
    taps: dict[str, FloatArray]
    kl: float
    grads: dict[str, FloatArray] | None


def sequential_state(
    model: Any,
    calib_images: npt.ArrayLike,
    weights: Mapping[str, Quantizer],
    activations: Mapping[str, Quantizer],
    pred_fp: npt.ArrayLike,
    grads: bool = True,
) -> SequentialState:
    """One step of PTQ4ViT's sequential calibration (the official ``sequential=True``).

    Runs ``calib_images`` through ``model`` with the quantizers chosen so far
    (:func:`refq.calib.fakequant.fake_quantized_model`: ``weights`` keyed by parameter
    name, ``activations`` by tap name) and, if ``grads``, back-propagates
    ``L = mean_b KL(softmax(pred_fp) || softmax(pred))`` (the official
    ``F.kl_div(log_softmax(pred), softmax(pred_fp), reduction="batchmean")``,
    ``dL/dpred = (softmax(pred) - softmax(pred_fp)) / B``) to every op output through
    :func:`refq.nn.grad_vit.vit_backward` (Swin: :func:`refq.nn.grad_swin.swin_backward`)
    at the partially quantized activations (:func:`refq.nn.grad_vit.vit_forward_tapped`,
    :func:`refq.nn.grad_swin.swin_forward_tapped`; ``pred_fp`` = the float model's logits
    on the same images, same order).

    Exact vs approximate: the backward treats fake quantization as the identity, so
    ``grads[op]`` is the exact gradient of the KL (float64) for every op whose output reaches
    the logits through NO fake-quantized tap or weight — in sequential calibration the
    current op and every later one, since only EARLIER ops are quantized. Gradients of
    earlier ops (upstream of a quantizer) are straight-through estimates and are not used.
    Cost: one forward and one backward on the images (≈ 3 forward-pass equivalents; the
    backward is skipped when ``grads`` is False: 1). Float64 (SpecError for a float32
    model or a logits shape mismatch).
    """
    model_q, tap = fake_quantized_model(model, weights, activations)
    swin = isinstance(model.config, SwinConfig)
    if swin:
        logits, taps = swin_forward_tapped(model_q, calib_images, tap)
    else:
        logits, cache, taps = vit_forward_tapped(
            model_q, np.asarray(calib_images, dtype=np.float64), tap)
    pf = np.asarray(pred_fp, dtype=np.float64)
    if pf.shape != logits.shape:
        raise SpecError(f"sequential_state: pred_fp shape {pf.shape} != logits {logits.shape}")
    kl, gl = kl_logits(pf, logits)
    g = None
    if grads:
        g = swin_backward(model_q, taps, gl) if swin else vit_backward(model_q, cache, gl)
    return SequentialState(logits, taps, kl, g)


def sequential_op_metric(state: SequentialState, op: str,
                         shape: tuple[int, ...] | None = None) -> WeightedMSE:
    """The Hessian-guided metric ``weighted_mse(dL/dO)`` of ``op`` from a
    :func:`sequential_state` (``shape`` as in :func:`hessian_metric_factory`, for the
    per-head attn@v layout). Raises SpecError when the state has no gradients, none for
    ``op``, or the gradient is identically zero — nothing upstream of ``op`` changes the
    logits (e.g. no quantizer chosen yet: PTQ4ViT issue #23), where every candidate would
    score 0 and the search would pick an arbitrary one."""
    if state.grads is None or op not in state.grads:
        raise SpecError(f"sequential metric: no gradient for op {op!r}")
    g = state.grads[op]
    if not np.any(g):
        raise SpecError(f"sequential metric: the KL gradient of {op!r} is identically zero "
                        "(nothing upstream of it is quantized; PTQ4ViT issue #23)")
    return weighted_mse(_match_shape(g, op, shape))


__all__ = ["HESSIAN_LOSSES", "SequentialState", "balance_images", "balanced_fisher_diagonal",
           "fisher_diagonal", "hessian_metric_factory", "layer_output_grads",
           "sequential_op_metric", "sequential_state"]
