"""The six published PTQ recipes of refq.methods (see /work/shared/METHODS.md).

Common conventions (all recipes):

* Calibration activations are collected once with ``model.forward_with_taps`` on the given
  calibration images (FP model, no quantizer applied upstream) — except ``ptq4vit`` with
  ``sequential=True``, whose searches see the partially quantized model's activations.
  Searches run on the first ``calib_sub`` images (default 8) of those tensors to keep
  calibration fast.
* Activation quantizers are keyed by TAP name (the output of the producing op = the input
  of the consuming linear / matmul, see :meth:`refq.nn.base.Model.ops`).
* "minmax weight" = signed symmetric per-output-channel (axis 0) UniformQuantizer from the
  row min/max; "minmax activation" = asymmetric per-tensor UniformQuantizer from min/max.
* The patch-embedding conv (op ``patch_embed.proj``) always has a per-output-channel
  min-max weight; its input (the image) is quantized per-tensor min-max except in ptq4vit
  (PTQ4ViT leaves it unquantized).
* Rounding is half_even throughout (the quantizers' default).

Per recipe, which quantizer sits on which tensor:

``ptq4vit`` (PTQ4ViT, twin uniform + Hessian-guided search)
    linear weights (qkv, proj, fc1, fc2, head): signed symmetric per-tensor UniformQuantizer,
    qkv per q/k/v row block (``weight_blocks=3``); linear inputs per-tensor signed uniform;
    both searched jointly by :func:`refq.calib.ptq4vit_search` (3 alternating rounds, 100
    candidates). fc2 input (post-GELU): twin uniform (``post_gelu=True``). q@k and attn@v
    operands: per-head signed uniform (:func:`refq.calib.ptq4vit_search_matmul`), the
    post-softmax operand a twin uniform (``softmax=True``, mode "code"). Input image not
    quantized. Options:

    - ``metric`` (default ``"hessian"``, the paper's): the layer-output metric of every
      search. "hessian": PTQ4ViT's Hessian-guided ``mean((dL/dO ⊙ (O - Ô))²)`` via
      :func:`refq.calib.hessian.hessian_metric_factory`, with refq's policy for the paper's
      degenerate gradient (PTQ4ViT issue #23): L = cross-entropy of the FP model against its
      own argmax, gradients w.r.t. every op output on the same calibration subset as the
      search (one forward + backward, about 3-4 forward-pass equivalents on ``calib_sub``
      images). "cosine": cosine distance of the layer outputs (no gradients); "mse".
    - ``hessian_loss`` (default ``"ce"``, the policy above): ``"kl"`` takes instead the
      gradient of KL(softmax(FP) || softmax(min-max fake-quant model)) w.r.t. the quantized
      logits, back-propagated through the FP network (the FP Jacobian standing in for the
      quantized one; one extra fake-quant forward). ``"fisher"``: the second-order term of
      PTQ4ViT's own KL at the FP model, the diagonal Fisher information in each op's output
      space, ``w = Σ_y p_y (∂(-log p_y)/∂O)²`` with y drawn from the FP softmax
      (:func:`refq.calib.hessian.fisher_diagonal`); metric ``mean(w ⊙ (O - Ô)²)``; one
      forward and one backward per class on the ``calib_sub`` images. ``"fisher_balanced"``
      (refq's policy, not the paper's): the same Fisher weight normalised per image so that
      every image carries the same total weight
      (:func:`refq.calib.hessian.balanced_fisher_diagonal`; on a confident model the plain
      Fisher puts almost all weight on one uncertain search image); same cost. Default
      (None): ``"ce"``, or ``"kl"`` when ``sequential``.
    - ``sequential`` (default ``False``): the official code's ``sequential=True``
      calibration (hahnyuan/PTQ4ViT utils/quant_calib.py): ops are searched in execution
      order (qkv, q@k, attn@v, proj, fc1, fc2 per block, head) and each op's search sees the
      calibration subset run through the PARTIALLY quantized model (the min-max
      patch-embedding weight and every op searched so far fake-quantized, the rest float):
      its inputs are that model's taps and its target is the float op on them, for every
      ``metric``; with ``metric="hessian"`` the gradient is that of the official loss
      KL(softmax(FP) || softmax(partially quantized model)) (``hessian_loss="kl"``, the only
      one allowed) w.r.t. the op output, exact in float64
      (:func:`refq.calib.hessian.sequential_state`). Cost per searched op: one forward on
      the ``calib_sub`` images, plus one backward for the Hessian metric. Not the paper
      authors' default (their example runs ``sequential=False``, whose KL gradient is
      identically zero, PTQ4ViT issue #23).
    - ``n`` (default 100 candidates) and ``rounds`` (default 3 alternating rounds) shrink
      the search.

``repq`` (RepQ-ViT)
    post-LayerNorm activations (norm1 -> qkv, norm2 -> fc1): per-channel asymmetric min-max
    UniformQuantizer, then reparameterized to a per-tensor one
    (:func:`refq.calib.reparameterize_quantizer`, ``choice="mean"``; new LayerNorm and
    linear parameters go into ``spec.params``); post-softmax: log√2 quantizer
    (:func:`refq.calib.log2_init`, base "sqrt2", percentile-MSE scale); weights per-channel
    (axis 0) percentile-MSE uniform (:func:`refq.calib.percentile_mse_init`, kind "weight")
    of the (reparameterized) weights; every other activation per-tensor min-max.

``dopq`` (DopQ-ViT)
    as ``repq`` but the reparameterization picks the MEDIAN channel scale (MOSF,
    ``choice="median"``) and post-softmax uses TanQ (:func:`refq.calib.tanq_shape_search`).

``ias`` (I&S-ViT)
    every activation per-tensor and every weight per-channel (axis 0) percentile-MSE uniform
    (:func:`refq.calib.percentile_mse_init`); post-softmax SULQ
    (:func:`refq.calib.sulq_eta_search`); post-LN per-channel percentile-MSE then
    reparameterized (``choice="mean"``, RepQ-ViT's unrounded zero point). Options:

    - ``sos`` (default ``False``; the paper's full method is ``sos=True``, off by default
      because it costs minutes): I&S-ViT's three-stage smooth optimization
      (:func:`refq.calib.sos.sos_reconstruct`) on ALL calibration images: (1) post-LN
      quantizers stay per-channel, block weights/biases learned with FP weights; (2) lossless
      channel→layer fold (mean scale, zero point rounded to an integer); (3) per-channel
      percentile-MSE weight quantizers re-initialised on the learned weights, blocks
      reconstructed again with quantized weights, inputs from the quantized model and FP
      targets. The fold and the weight quantizers of the result replace the no-SOS ones.
    - ``sos_iters`` (default 1000, the paper's; it uses 200 at W6A6): Adam iterations per
      block per stage; ``sos_lr`` (default 4e-5, the paper's; cosine schedule to 0);
      ``sos_batch`` (default 64, the paper's). Mini-batches drawn with the recipe ``seed``.

``fqvit`` (FQ-ViT)
    LayerNorm inputs (``embed``, ``blocks.i.add1``, ``blocks.i.add2``): PTF
    (:func:`refq.calib.ptf_alpha_search`, channel axis -1); post-softmax: Log2Quantizer base
    2 with scale 1 (LIS, ``min(a_bits, 4)`` bits, uint4 style); weights per-channel min-max;
    every other linear/matmul input per-tensor min-max.

``tsptq`` (TSPTQ-ViT, fully quantized)
    post-softmax and post-GELU: V-2SF (:func:`refq.calib.v2sf_search`); LayerNorm inputs
    (same taps as fqvit): O-2SF (:func:`refq.calib.o2sf_search`, axis -1); softmax input
    (``attn.q@k``) and GELU input (``mlp.fc1``) per-tensor min-max uniform; weights
    per-channel min-max; every other linear/matmul input per-tensor min-max.
"""
from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.calib import (
    log2_init,
    o2sf_search,
    percentile_mse_init,
    ptf_alpha_search,
    ptq4vit_search,
    ptq4vit_search_matmul,
    reparameterize_quantizer,
    sulq_eta_search,
    tanq_shape_search,
    v2sf_search,
)
from refq.errors import SpecError
from refq.nn.base import Model, OpInfo
from refq.quant import Quantizer, QuantSpec, UniformQuantizer

FloatArray = npt.NDArray[np.float64]
CALIB_SUB = 8
"""Calibration images used by the searches (the first ones of ``calib_images``)."""

OPTIONS: dict[str, frozenset[str]] = {
    m: frozenset({"calib_sub", *keys}) for m, keys in {
        "ptq4vit": ("metric", "n", "rounds", "hessian_loss", "sequential"),
        "tsptq": (), "dopq": ("choice",), "ias": ("sos", "sos_iters", "sos_lr", "sos_batch"),
        "repq": (), "fqvit": (),
    }.items()
}
"""The options each recipe takes (keyword arguments of :func:`run_recipe`'s ``opts``)."""


def _f64(x: Any) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


def _minmax_weight(w: FloatArray, bits: int) -> UniformQuantizer:
    red = tuple(range(1, w.ndim))
    return UniformQuantizer.from_minmax(w.min(axis=red), w.max(axis=red), bits,
                                        symmetric=True, axis=0)


def _minmax_act(x: FloatArray, bits: int) -> UniformQuantizer:
    return UniformQuantizer.from_minmax(float(x.min()), float(x.max()), bits)


class _Ctx:
    """Calibration context shared by the recipes: taps, parameters, spec pieces."""

    def __init__(self, model: Model, w_bits: int, a_bits: int, calib: npt.ArrayLike,
                 calib_sub: int, extra_taps: tuple[str, ...] = ()) -> None:
        self.model = model
        self.w_bits = w_bits
        self.a_bits = a_bits
        self.images = np.asarray(calib)
        if self.images.ndim != 4 or self.images.shape[0] < 1:
            raise SpecError(f"calib_images: expected (B, C, H, W) with B >= 1, "
                            f"got shape {self.images.shape}")
        if not isinstance(calib_sub, int) or calib_sub < 1:
            raise SpecError(f"calib_sub must be a positive int, got {calib_sub!r}")
        self.sub = min(calib_sub, self.images.shape[0])
        self.ops: list[OpInfo] = list(model.ops())
        self.act_taps = sorted({t for op in self.ops for t in op.inputs} | set(extra_taps))
        _, taps = model.forward_with_taps(self.images, names=self.act_taps)
        self.taps = {k: _f64(v) for k, v in taps.items()}
        self.params: dict[str, FloatArray] = {k: _f64(v) for k, v in model.params.items()}
        self.new_params: dict[str, FloatArray] = {}
        self.weights: dict[str, Quantizer] = {}
        self.acts: dict[str, Quantizer] = {}
        self.notes: dict[str, Any] = {"calib_images": int(self.images.shape[0]),
                                      "calib_sub": self.sub}

    def x(self, tap: str) -> FloatArray:
        """Calibration tensor of ``tap`` on the search subset."""
        return self.taps[tap][: self.sub]

    def param(self, name: str) -> FloatArray:
        return self.new_params.get(name, self.params[name])

    def minmax_all(self, skip_input: bool = False) -> None:
        """Default quantizers: min-max weights (per channel) and activations (per tensor)."""
        for op in self.ops:
            if op.weight is not None:
                self.weights[op.weight] = _minmax_weight(self.param(op.weight), self.w_bits)
        for t in self.act_taps:
            if skip_input and t == "input":
                continue
            self.acts[t] = _minmax_act(self.taps[t], self.a_bits)

    def spec(self, method: str) -> QuantSpec:
        return QuantSpec(method=method, model=self.model.config.name, w_bits=self.w_bits,
                         a_bits=self.a_bits, weights=dict(self.weights),
                         activations=dict(self.acts), params=dict(self.new_params),
                         notes=self.notes)


def _blocks(ctx: _Ctx) -> list[str]:
    return sorted({op.name.rsplit(".attn.", 1)[0] for op in ctx.ops if ".attn.qkv" in op.name})


def _ln_input_taps(ctx: _Ctx) -> list[str]:
    """Tap names of the LayerNorm inputs of a ViT: embed, blocks.i.add1, blocks.i.add2."""
    out = ["embed"] if "embed" in ctx.taps else []
    for b in _blocks(ctx):
        out += [f"{b}.add1", f"{b}.add2"]
    return out


def _softmax_taps(ctx: _Ctx) -> list[str]:
    return [op.inputs[0] for op in ctx.ops
            if op.kind == "matmul" and op.inputs[0].endswith("attn.softmax")]


def _linear_input(src: Callable[[str], Any], op: OpInfo) -> FloatArray:
    """The input a linear op sees, from the tap getter ``src``: its input tap, or for a head
    (head, head_dist) the class (distillation) token row of it."""
    x: FloatArray = src(op.inputs[0])
    if op.name == "head" or op.name.endswith("head_dist"):
        row = 1 if op.name.endswith("head_dist") else 0
        x = x[:, row]
    return x


# --------------------------------------------------------------------------- ptq4vit

PTQ4VIT_METRICS = ("hessian", "cosine", "mse")
"""Layer-output metrics of the ptq4vit recipe (``metric`` option; "hessian" is the paper's)."""


def ptq4vit(ctx: _Ctx, metric: str = "hessian", n: int = 100, rounds: int = 3,
            hessian_loss: str | None = None, sequential: bool = False) -> QuantSpec:
    if metric not in PTQ4VIT_METRICS:
        raise SpecError(f"ptq4vit: metric must be one of {PTQ4VIT_METRICS}, got {metric!r}")
    if not isinstance(sequential, bool):
        raise SpecError(f"ptq4vit: sequential must be a bool, got {sequential!r}")
    loss = hessian_loss if hessian_loss is not None else ("kl" if sequential else "ce")
    if loss not in ("ce", "kl", "fisher", "fisher_balanced"):
        raise SpecError(f"ptq4vit: hessian_loss must be 'ce', 'kl', 'fisher' or "
                        f"'fisher_balanced', got {loss!r}")
    if sequential and loss != "kl":
        raise SpecError(f"ptq4vit: sequential=True uses the official KL gradient at the "
                        f"partially quantized model (hessian_loss='kl'), got {loss!r}")
    ctx.minmax_all(skip_input=True)
    metric_for: Callable[..., Any] | None = None
    xs = ctx.images[: ctx.sub]
    if metric == "hessian" and not sequential:
        from refq.calib.hessian import hessian_metric_factory
        pred = None
        if loss == "kl":  # KL(FP || min-max fake-quant model) on the same images
            from refq.methods import fake_quant
            mq, tap = fake_quant(ctx.model, ctx.spec("ptq4vit"))
            pred = mq.forward(xs, tap=tap)
        metric_for = hessian_metric_factory(ctx.model, xs, labels=None, loss=loss, pred=pred)
    if metric == "hessian":
        ctx.notes["hessian_loss"] = loss
    seq_w: dict[str, Quantizer] = {}
    seq_a: dict[str, Quantizer] = {}
    pred_fp: FloatArray | None = None
    kls: list[float] = []
    if sequential:
        from refq.calib.hessian import sequential_op_metric, sequential_state
        pred_fp = _f64(ctx.model.forward(xs))
        # the patch-embedding conv is not searched: its min-max weight is quantized from the
        # start (its input, the image, is not quantized)
        pe = next((op.weight for op in ctx.ops if op.name == "patch_embed.proj"), None)
        if pe is not None:
            seq_w[pe] = ctx.weights[pe]
    records: dict[str, Any] = {}
    for op in ctx.ops:
        if op.name == "patch_embed.proj":
            continue
        st = None
        if sequential:
            assert pred_fp is not None
            st = sequential_state(ctx.model, xs, seq_w, seq_a, pred_fp,
                                  grads=metric == "hessian")
            kls.append(st.kl)
        src: Callable[[str], Any] = ctx.x if st is None else st.taps.__getitem__
        if op.kind == "linear":
            assert op.weight is not None
            bname = op.weight[: -len("weight")] + "bias"
            bias = ctx.params.get(bname)
            m: Any = metric
            if metric == "hessian":
                m = (sequential_op_metric(st, op.name) if st is not None
                     else metric_for(op.name) if metric_for is not None else None)
            wq, xq, rec = ptq4vit_search(
                _linear_input(src, op), ctx.param(op.weight), bias, w_bits=ctx.w_bits,
                a_bits=ctx.a_bits, metric=m, n=n, rounds=rounds,
                weight_blocks=3 if op.name.endswith("attn.qkv") else 1,
                post_gelu=op.inputs[0].endswith("mlp.gelu"))
            ctx.weights[op.weight] = wq
            ctx.acts[op.inputs[0]] = xq
            seq_w[op.weight] = wq
            seq_a[op.inputs[0]] = xq
        else:
            a = src(op.inputs[0])
            b = src(op.inputs[1])
            softmax = op.inputs[0].endswith("softmax")
            if not softmax:  # q @ k^T: the right operand is k transposed
                b = np.swapaxes(b, -1, -2)
            out_shape = (*a.shape[:-1], b.shape[-1])
            m = metric
            if metric == "hessian":
                m = (sequential_op_metric(st, op.name, out_shape) if st is not None
                     else metric_for(op.name, out_shape) if metric_for is not None else None)
            aq, bq, rec = ptq4vit_search_matmul(a, b, a_bits=ctx.a_bits, b_bits=ctx.a_bits,
                                                metric=m,
                                                softmax=softmax, n=n, rounds=rounds)
            ctx.acts[op.inputs[0]] = aq
            ctx.acts[op.inputs[1]] = bq
            seq_a[op.inputs[0]] = aq
            seq_a[op.inputs[1]] = bq
        records[op.name] = {k: v for k, v in rec.items() if isinstance(v, (int, float, str))}
    ctx.notes.update(metric=metric, candidates=n, rounds=rounds)
    if sequential:
        ctx.notes["sequential"] = True
        ctx.notes["sequential_kl"] = [round(v, 12) for v in kls]
    return ctx.spec("ptq4vit")


# --------------------------------------------------------------------------- repq / dopq / ias

def _post_ln_pairs(ctx: _Ctx) -> list[tuple[str, str]]:
    """(LayerNorm prefix, next linear prefix) of every block."""
    out = []
    for b in _blocks(ctx):
        out += [(f"{b}.norm1", f"{b}.attn.qkv"), (f"{b}.norm2", f"{b}.mlp.fc1")]
    return out


def _reparam_post_ln(ctx: _Ctx, make: Callable[[FloatArray], UniformQuantizer], choice: str,
                     fold: bool = True) -> None:
    """Per-channel quantizer on each post-LN tap; if ``fold``, reparameterize it to a
    per-tensor one (new LayerNorm + next-linear parameters into ctx.new_params)."""
    for norm, lin in _post_ln_pairs(ctx):
        qc = make(ctx.x(norm))
        if not fold:
            ctx.acts[norm] = qc
            continue
        keys = [f"{norm}.weight", f"{norm}.bias", f"{lin}.weight", f"{lin}.bias"]
        sub = {k: ctx.param(k) for k in keys if k in ctx.params}
        newp, ql, _ = reparameterize_quantizer(sub, norm, lin, qc, choice=choice)
        ctx.new_params.update({k: _f64(v) for k, v in newp.items()})
        ctx.acts[norm] = ql


def _channel_minmax(x: FloatArray, bits: int) -> UniformQuantizer:
    flat = x.reshape(-1, x.shape[-1])
    return UniformQuantizer.from_minmax(flat.min(axis=0), flat.max(axis=0), bits, axis=-1)


def _pct_weights(ctx: _Ctx) -> None:
    for op in ctx.ops:
        if op.weight is not None:
            w = ctx.param(op.weight)
            q, _ = percentile_mse_init(w.reshape(w.shape[0], -1), ctx.w_bits, kind="weight",
                                       axis=0)
            if w.ndim != 2:
                q = _minmax_weight(w, ctx.w_bits)
            ctx.weights[op.weight] = q


def repq(ctx: _Ctx, choice: str = "mean", method: str = "repq") -> QuantSpec:
    ctx.minmax_all()
    _reparam_post_ln(ctx, lambda x: _channel_minmax(x, ctx.a_bits), choice)
    _pct_weights(ctx)
    for t in _softmax_taps(ctx):
        if method == "dopq":
            ctx.acts[t], _ = tanq_shape_search(ctx.x(t), ctx.a_bits)
        else:
            ctx.acts[t], _ = log2_init(ctx.x(t), ctx.a_bits, base="sqrt2")
    ctx.notes["reparam_choice"] = choice
    return ctx.spec(method)


def dopq(ctx: _Ctx, choice: str = "median") -> QuantSpec:
    return repq(ctx, choice=choice, method="dopq")


def _pct_weight_init(ctx: _Ctx) -> Callable[[dict[str, Any]], dict[str, Any]]:
    """SOS stage-3 hook: per-channel percentile-MSE weight quantizers of the block linears
    on the learned, reparameterized weights (the other weights keep theirs)."""
    def init(params: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for op in ctx.ops:
            if op.weight is not None and op.weight.startswith("blocks."):
                w = params[op.weight]
                out[op.weight], _ = percentile_mse_init(w, ctx.w_bits, kind="weight", axis=0)
        return out
    return init


def ias(ctx: _Ctx, sos: bool = False, sos_iters: int = 1000, sos_lr: float = 4e-5,
        sos_batch: int = 64, seed: int = 0) -> QuantSpec:
    if not isinstance(sos, bool):
        raise SpecError(f"ias: sos must be a bool, got {sos!r}")
    for name, v, lo in (("sos_iters", sos_iters, 0), ("sos_batch", sos_batch, 1)):
        if not isinstance(v, int) or isinstance(v, bool) or v < lo:
            raise SpecError(f"ias: {name} must be an int >= {lo}, got {v!r}")
    if not isinstance(sos_lr, (int, float)) or isinstance(sos_lr, bool) or not sos_lr > 0:
        raise SpecError(f"ias: sos_lr must be a number > 0, got {sos_lr!r}")
    for t in ctx.act_taps:
        ctx.acts[t], _ = percentile_mse_init(ctx.x(t), ctx.a_bits)
    _reparam_post_ln(ctx, lambda x: percentile_mse_init(
        x.reshape(-1, x.shape[-1]), ctx.a_bits, axis=-1)[0], "mean", fold=not sos)
    _pct_weights(ctx)
    for t in _softmax_taps(ctx):
        ctx.acts[t], _ = sulq_eta_search(ctx.x(t), ctx.a_bits)
    ctx.notes["sos"] = sos
    spec = ctx.spec("ias")
    if sos:
        from refq.calib.sos import sos_reconstruct
        spec = sos_reconstruct(ctx.model, spec, ctx.images, iters=sos_iters, lr=float(sos_lr),
                               batch=sos_batch, seed=seed, weight_init=_pct_weight_init(ctx))
    return spec


# --------------------------------------------------------------------------- fqvit / tsptq

def fqvit(ctx: _Ctx) -> QuantSpec:
    ctx.minmax_all()
    for t in _ln_input_taps(ctx):
        ctx.acts[t], _ = ptf_alpha_search(ctx.x(t), ctx.a_bits, axis=-1)
    for t in _softmax_taps(ctx):
        ctx.acts[t], _ = log2_init(ctx.x(t), min(ctx.a_bits, 4), base="2", scale=1.0)
    return ctx.spec("fqvit")


def tsptq(ctx: _Ctx) -> QuantSpec:
    ctx.minmax_all()
    for t in _ln_input_taps(ctx):
        ctx.acts[t], _ = o2sf_search(ctx.x(t), ctx.a_bits, axis=-1)
    for t in _softmax_taps(ctx):
        ctx.acts[t], _ = v2sf_search(ctx.x(t), ctx.a_bits)
    for op in ctx.ops:
        if op.inputs and op.inputs[0].endswith("mlp.gelu"):
            ctx.acts[op.inputs[0]], _ = v2sf_search(ctx.x(op.inputs[0]), ctx.a_bits)
    for b in _blocks(ctx):
        for t in (f"{b}.attn.q@k", f"{b}.mlp.fc1"):
            ctx.acts[t] = _minmax_act(ctx.taps[t], ctx.a_bits)
    return ctx.spec("tsptq")


def run_recipe(model: Model, method: str, w_bits: int, a_bits: int,
               calib_images: npt.ArrayLike, seed: int, opts: dict[str, Any]) -> QuantSpec:
    """Dispatch to the recipe ``method`` with its options (SpecError on unknown ones)."""
    allowed = OPTIONS[method] - {"calib_sub"}
    opts = dict(opts)
    calib_sub = opts.pop("calib_sub", CALIB_SUB)
    bad = sorted(set(opts) - allowed)
    if bad:
        raise SpecError(f"method {method!r}: unknown options {bad}")
    extra: tuple[str, ...] = ()
    if method in ("fqvit", "tsptq"):
        depth = len({op.name.split(".")[1] for op in model.ops() if op.name.startswith("blocks.")})
        extra = ("embed", *(f"blocks.{i}.{a}" for i in range(depth)
                               for a in ("add1", "add2", "attn.q@k", "mlp.fc1")))
    ctx = _Ctx(model, w_bits, a_bits, calib_images, calib_sub, extra)
    if method == "ptq4vit":
        return ptq4vit(ctx, **opts)
    if method == "repq":
        return repq(ctx)
    if method == "dopq":
        return dopq(ctx, **opts)
    if method == "ias":
        return ias(ctx, seed=seed, **opts)
    if method == "fqvit":
        return fqvit(ctx)
    return tsptq(ctx)
