"""The Model base class: parameters, dtype, input checks, and the tap (hook) machinery.

Taps
----
Every model calls a *tap* at each named point of its forward pass, in execution order.
A caller-supplied hook ``tap(name, array) -> array | None`` sees the tensor and may REPLACE
it (same shape; the result is cast to the model's dtype and flows on), or return ``None`` to
leave it unchanged. This is how fake-quantizers and calibration observers plug in from the
outside: refq.nn knows nothing about them.

Tap names are dotted module paths, the same prefixes as the parameter names (timm naming),
and name the OUTPUT of the operation at that path. The input of every linear or matmul is
therefore the tap of the op that produced it; :meth:`Model.ops` lists, for each linear and
matmul, the tap names of its activation inputs and the name of its weight parameter.

ViT / DeiT (B batch, N = prefix tokens + patches, C width, H heads, d = C/H, K classes)::

    input                    (B, Cin, S, S)  the image as given (normalised, or pixels)
    patch_embed              (B, P, C)       patch-embedding output (a stride-p conv)
    embed                    (B, N, C)       [cls, (dist,)] + patches + pos_embed
    blocks.{i}.norm1         (B, N, C)       LayerNorm 1 = input of attn.qkv
    blocks.{i}.attn.qkv      (B, N, 3C)
    blocks.{i}.attn.q|k|v    (B, H, N, d)    per-head split (q unscaled)
    blocks.{i}.attn.q@k      (B, H, N, N)    (q @ k^T) * d^-0.5 = softmax input
    blocks.{i}.attn.softmax  (B, H, N, N)
    blocks.{i}.attn.attn@v   (B, N, C)       softmax @ v, heads merged = input of attn.proj
    blocks.{i}.attn.proj     (B, N, C)
    blocks.{i}.add1          (B, N, C)       residual after attention
    blocks.{i}.norm2         (B, N, C)       = input of mlp.fc1
    blocks.{i}.mlp.fc1       (B, N, 4C)
    blocks.{i}.mlp.gelu      (B, N, 4C)      = input of mlp.fc2
    blocks.{i}.mlp.fc2       (B, N, C)
    blocks.{i}.add2          (B, N, C)       residual after MLP = block output
    norm                     (B, N, C)       final LayerNorm (head input is row 0, head_dist row 1)
    head                     (B, K)          logits of the cls head (the output if not distilled)
    head_dist                (B, K)          distilled models only
    logits                   (B, K)          distilled models only: (head + head_dist) / 2

Swin: see :mod:`refq.nn.swin` (same block names under ``layers.{s}.blocks.{j}``, windowed
attention shapes, plus ``attn.logits``, ``layers.{s}.downsample.*``, ``patch_embed.norm``,
``pool``).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.configs import ModelConfig
from refq.nn.layers import FloatArray, TapFn

Params = dict[str, FloatArray]
"""Parameter name (timm naming) -> array in the model's dtype."""


TAP_KINDS: tuple[str, ...] = ("image", "post_norm", "post_softmax", "post_gelu", "query",
                               "key", "value", "heads_merged", "pooled")
"""What an op's input tap holds (:attr:`OpInfo.input_kinds`): the model input, a
LayerNorm output, attention probabilities, a GELU output, the per-head q / k / v, the
merged attention output, a pooled token."""


@dataclass(frozen=True)
class OpInfo:
    """One linear or matmul of a model: what a quantization recipe needs to know.

    ``inputs`` are tap names of the activation operands (for a linear, one; for a matmul,
    two: left then right, the right one transposed for q@k); ``weight`` is the parameter
    name of a linear's weight (None for an activation-activation matmul); ``output`` is the
    tap name of its output. ``role`` names the op within its model ("patch_embed", "qkv",
    "q@k", "attn@v", "proj", "fc1", "fc2", "reduction", "head"); ``input_kinds`` says what
    each input tap holds (one of :data:`TAP_KINDS` per input); ``row``: the op reads only
    token ``row`` of its input tap (a ViT head reads the class token, 0, or the
    distillation token, 1), None if it reads every token.
    """

    name: str
    kind: str
    inputs: tuple[str, ...]
    weight: str | None
    output: str
    role: str = ""
    input_kinds: tuple[str, ...] = ()
    row: int | None = None

    def __post_init__(self) -> None:
        if self.input_kinds and len(self.input_kinds) != len(self.inputs):
            raise SpecError(f"OpInfo {self.name}: {len(self.input_kinds)} input kinds for "
                            f"{len(self.inputs)} inputs")
        bad = [k for k in self.input_kinds if k not in TAP_KINDS]
        if bad:
            raise SpecError(f"OpInfo {self.name}: unknown input kinds {bad}")


class Tapper:
    """Calls the user hook at a tap, checks its answer, and optionally records tensors."""

    def __init__(
        self,
        hook: TapFn | None,
        dtype: np.dtype[Any],
        record: dict[str, FloatArray] | None = None,
        names: Collection[str] | None = None,
    ) -> None:
        self.hook = hook
        self.dtype = dtype
        self.record = record
        self.names = None if names is None else frozenset(names)

    def __call__(self, name: str, x: FloatArray) -> FloatArray:
        if self.hook is not None:
            r = self.hook(name, x)
            if r is not None:
                arr = np.asarray(r)
                if arr.shape != x.shape:
                    raise SpecError(
                        f"tap {name!r}: the hook returned shape {arr.shape}, expected {x.shape}"
                    )
                if arr.dtype.kind not in "fiub":
                    raise SpecError(f"tap {name!r}: the hook returned dtype {arr.dtype}")
                x = arr.astype(self.dtype, copy=False)
        if self.record is not None and (self.names is None or name in self.names):
            self.record[name] = x
        return x


class Model:
    """Base class of the NumPy float models (:class:`~refq.nn.vit.VisionTransformer`,
    :class:`~refq.nn.swin.SwinTransformer`).

    ``params`` use timm naming and are validated against :meth:`param_shapes` (SpecError
    naming ``source`` and the key on a missing, unexpected or mis-shaped entry) and cast to
    ``dtype`` (float64 or float32). ``pixel_input=True`` marks a model whose patch embedding
    has the input normalisation folded in (:meth:`fold_normalization`): it takes integer
    pixels 0..255.
    """

    config: ModelConfig

    def __init__(
        self,
        config: ModelConfig,
        params: Mapping[str, npt.ArrayLike],
        dtype: npt.DTypeLike = np.float64,
        *,
        pixel_input: bool = False,
        source: str = "<params>",
    ) -> None:
        dt = np.dtype(dtype)
        if dt not in (np.dtype(np.float64), np.dtype(np.float32)):
            raise SpecError(f"model dtype must be float64 or float32, got {dt}")
        self.config = config
        self.dtype: np.dtype[Any] = dt
        self.pixel_input = pixel_input
        self.params: Params = check_params(params, self.param_shapes(config), source, dt)

    # --- to be provided by subclasses -------------------------------------------------
    @staticmethod
    def param_shapes(config: Any) -> dict[str, tuple[int, ...]]:
        """Expected parameter names and shapes for ``config``."""
        raise NotImplementedError

    def tap_names(self) -> list[str]:
        """All tap names, in the order the forward pass calls them."""
        raise NotImplementedError

    def ops(self) -> list[OpInfo]:
        """Every linear and matmul, in execution order."""
        raise NotImplementedError

    def _forward(self, x: FloatArray, t: Tapper) -> FloatArray:
        raise NotImplementedError

    # --- public API ---------------------------------------------------------------------
    def forward(
        self, x: npt.ArrayLike, tap: TapFn | None = None, *, layout: str = "NCHW"
    ) -> FloatArray:
        """Logits (B, num_classes) for images ``x``.

        ``x``: (B, C, S, S) for layout "NCHW" or (B, S, S, C) for "NHWC"; a 3-D array is one
        image. Float input is the normalised image; a ``pixel_input`` model takes integer
        pixels 0..255 (any integer dtype). ``tap``: the hook, see the module docstring.
        """
        t = Tapper(tap, self.dtype)
        return self._forward(self._prepare(x, layout), t)

    __call__ = forward

    def forward_with_taps(
        self,
        x: npt.ArrayLike,
        tap: TapFn | None = None,
        *,
        names: Collection[str] | None = None,
        layout: str = "NCHW",
    ) -> tuple[FloatArray, dict[str, FloatArray]]:
        """Logits and a dict of tapped tensors (after any replacement by ``tap``), in
        execution order; ``names`` restricts what is kept (None: every tap)."""
        if names is not None:
            unknown = sorted(set(names) - set(self.tap_names()))
            if unknown:
                raise SpecError(f"unknown tap names {unknown[:5]} for {self.config.name}")
        record: dict[str, FloatArray] = {}
        t = Tapper(tap, self.dtype, record, names)
        logits = self._forward(self._prepare(x, layout), t)
        return logits, record

    def predict(
        self, x: npt.ArrayLike, batch_size: int = 128, *, layout: str = "NCHW"
    ) -> npt.NDArray[np.int64]:
        """Arg-max class of each image, computed in batches of ``batch_size``."""
        arr = np.asarray(x)
        if arr.ndim == 3:
            arr = arr[None]
        out = [
            np.argmax(self.forward(arr[i : i + batch_size], layout=layout), axis=-1)
            for i in range(0, arr.shape[0], batch_size)
        ]
        return np.concatenate(out).astype(np.int64) if out else np.zeros(0, np.int64)

    def with_params(self, params: Mapping[str, npt.ArrayLike], **kw: Any) -> Model:
        """A model of the same class, config and dtype with other parameters (e.g. fake-
        quantized weights). Keyword arguments override ``dtype`` / ``pixel_input``."""
        dtype = kw.pop("dtype", self.dtype)
        pixel_input = kw.pop("pixel_input", self.pixel_input)
        if kw:
            raise SpecError(f"with_params: unknown arguments {sorted(kw)}")
        return type(self)(self.config, params, dtype, pixel_input=pixel_input)

    def fold_normalization(self) -> Model:
        """A copy taking integer pixels 0..255: ``(x/255 - mean)/std`` (config mean/std) is
        folded into the patch-embedding weight and bias
        (:func:`refq.nn.pixels.fold_normalization`)."""
        from refq.nn.pixels import fold_normalization

        if self.pixel_input:
            raise SpecError(f"{self.config.name}: normalisation is already folded")
        p = dict(self.params)
        w, b = fold_normalization(
            p["patch_embed.proj.weight"], p["patch_embed.proj.bias"],
            self.config.mean, self.config.std,
        )
        p["patch_embed.proj.weight"], p["patch_embed.proj.bias"] = w, b
        return self.with_params(p, pixel_input=True)

    # --- helpers ------------------------------------------------------------------------
    def _prepare(self, x: npt.ArrayLike, layout: str) -> FloatArray:
        cfg = self.config
        try:
            arr = np.asarray(x)
        except Exception as e:
            raise SpecError(f"{cfg.name}: input is not an array: {e}") from None
        if layout not in ("NCHW", "NHWC"):
            raise SpecError(f"layout must be 'NCHW' or 'NHWC', got {layout!r}")
        if arr.ndim == 3:
            arr = arr[None]
        if arr.ndim != 4:
            raise SpecError(f"{cfg.name}: expected a 4-D {layout} batch (or one 3-D image), "
                            f"got shape {arr.shape}")
        if layout == "NHWC":
            arr = arr.transpose(0, 3, 1, 2)
        want = (cfg.in_chans, cfg.img_size, cfg.img_size)
        if arr.shape[1:] != want:
            raise SpecError(f"{cfg.name}: expected images of shape (B, {want[0]}, {want[1]}, "
                            f"{want[2]}) in NCHW order, got {arr.shape} (layout {layout})")
        if self.pixel_input:
            if arr.dtype.kind not in "iu":
                raise SpecError(f"{cfg.name}: this model takes integer pixels (normalisation "
                                f"folded); got dtype {arr.dtype}")
            if arr.size and (arr.min() < 0 or arr.max() > 255):
                raise SpecError(f"{cfg.name}: pixels must lie in 0..255, got "
                                f"[{arr.min()}, {arr.max()}]")
        elif arr.dtype.kind not in "f":
            raise SpecError(f"{cfg.name}: expected a normalised float image, got dtype "
                            f"{arr.dtype} (use fold_normalization() for integer pixels)")
        return arr.astype(self.dtype, copy=False)


def check_params(
    params: Mapping[str, npt.ArrayLike],
    shapes: Mapping[str, tuple[int, ...]],
    source: str,
    dtype: np.dtype[Any],
) -> Params:
    """Validate ``params`` against ``shapes`` and cast to ``dtype``.

    Raises SpecError naming ``source`` and the offending keys on missing, unexpected or
    mis-shaped parameters, or non-numeric / non-finite values.
    """
    missing = [k for k in shapes if k not in params]
    unexpected = [k for k in params if k not in shapes]
    if missing or unexpected:
        parts = []
        if missing:
            parts.append(f"missing keys {missing[:8]}" + (" ..." if len(missing) > 8 else ""))
        if unexpected:
            parts.append(f"unexpected keys {unexpected[:8]}"
                         + (" ..." if len(unexpected) > 8 else ""))
        raise SpecError(f"{source}: " + "; ".join(parts))
    out: Params = {}
    for k, shape in shapes.items():
        arr = np.asarray(params[k])
        if arr.shape != tuple(shape):
            raise SpecError(f"{source}: key {k!r} has shape {arr.shape}, expected {tuple(shape)}")
        if arr.dtype.kind not in "fiu":
            raise SpecError(f"{source}: key {k!r} has non-numeric dtype {arr.dtype}")
        a = arr.astype(dtype, copy=False)
        if not np.all(np.isfinite(a)):
            raise SpecError(f"{source}: key {k!r} contains non-finite values")
        out[k] = a
    return out


__all__ = ["TAP_KINDS", "Model", "OpInfo", "Params", "Tapper", "check_params"]
