"""What every recipe works with: the model's ops and what their taps are (from
:class:`refq.nn.base.OpInfo`), the calibration images, float-model taps, and the pieces
of the QuantSpec being built."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.nn.base import Model, OpInfo
from refq.quant import Quantizer, QuantSpec, UniformQuantizer

FloatArray = npt.NDArray[np.float64]


def f64(x: Any) -> FloatArray:
    return np.asarray(x, dtype=np.float64)


class Ctx:
    """Calibration context shared by the recipes: model, bits, images, spec pieces."""

    def __init__(self, model: Model, w_bits: int, a_bits: int, calib: npt.ArrayLike) -> None:
        self.model = model
        self.w_bits = w_bits
        self.a_bits = a_bits
        self.images = np.asarray(calib)
        if self.images.ndim != 4 or self.images.shape[0] < 1:
            raise SpecError(f"calib_images: expected (B, C, H, W) with B >= 1, "
                            f"got shape {self.images.shape}")
        self.ops: list[OpInfo] = list(model.ops())
        self.params: dict[str, FloatArray] = {k: f64(v) for k, v in model.params.items()}
        self.new_params: dict[str, FloatArray] = {}
        self.weights: dict[str, Quantizer] = {}
        self.acts: dict[str, Quantizer] = {}
        self.kernels: dict[str, str] = {}
        self.notes: dict[str, Any] = {"calib_images": int(self.images.shape[0])}

    # ------------------------------------------------------------------ images and taps
    def subset(self, count: int | None) -> npt.NDArray[Any]:
        """The first ``count`` calibration images (all of them for None)."""
        if count is not None and (isinstance(count, bool) or not isinstance(count, int)
                                  or count < 1):
            raise SpecError(f"image count must be a positive int or None, got {count!r}")
        return self.images if count is None else self.images[:count]

    def fp_taps(self, names: Iterable[str], images: npt.ArrayLike | None = None
                ) -> dict[str, FloatArray]:
        """Float-model tensors (float64) of the taps ``names`` on ``images`` (default all)."""
        want = sorted(set(names))
        _, taps = self.model.forward_with_taps(self.images if images is None else images,
                                               names=want)
        return {k: f64(v) for k, v in taps.items()}

    def param(self, name: str) -> FloatArray:
        return self.new_params.get(name, self.params[name])

    # ------------------------------------------------------------------ model structure
    def op_input_taps(self) -> list[str]:
        """Every input tap of every linear / matmul, sorted."""
        return sorted({t for op in self.ops for t in op.inputs})

    def ops_with_role(self, *roles: str) -> list[OpInfo]:
        return [op for op in self.ops if op.role in roles]

    def taps_of_kind(self, kind: str) -> list[str]:
        """Input taps whose :attr:`OpInfo.input_kinds` say ``kind`` (in op order)."""
        out: list[str] = []
        for op in self.ops:
            for t, k in zip(op.inputs, op.input_kinds, strict=False):
                if k == kind and t not in out:
                    out.append(t)
        return out

    def head_rows(self) -> dict[str, tuple[int, ...]]:
        """``{tap: rows}`` of the ops that read only some token rows of their input (a ViT
        head reads the class token; a distilled DeiT's two heads read rows 0 and 1)."""
        out: dict[str, tuple[int, ...]] = {}
        for op in self.ops:
            if op.row is not None:
                out[op.inputs[0]] = tuple(sorted({*out.get(op.inputs[0], ()), op.row}))
        return out

    def post_norm_folds(self, roles: tuple[str, ...] = ("qkv", "fc1")) -> list[tuple[str, str]]:
        """(LayerNorm prefix, next linear prefix) of the post-LayerNorm inputs that RepQ-ViT
        folds: the input tap of a ``roles`` op is the LayerNorm output, named as the
        LayerNorm's parameters."""
        return [(op.inputs[0], op.name) for op in self.ops
                if op.role in roles and op.input_kinds[:1] == ("post_norm",)]

    def layernorm_output_taps(self) -> list[str]:
        """Taps that are LayerNorm outputs, in forward order: a tap is named as the module
        that produced it (refq.nn's convention), so a tap with a 1-D ``.weight`` and
        ``.bias`` parameter of its own name is a LayerNorm's output."""
        out = []
        for t in self.model.tap_names():
            w, b = self.params.get(t + ".weight"), self.params.get(t + ".bias")
            if w is not None and b is not None and w.ndim == 1 and b.ndim == 1:
                out.append(t)
        return out

    def layernorm_input_taps(self) -> list[str]:
        """The tap feeding each LayerNorm: the tap called just before the LayerNorm's output
        in the forward (ViT: ``embed``, ``blocks.i.add1``, ``blocks.i.add2``; Swin also
        ``patch_embed``, ``patch_embed.norm`` and the patch-merging outputs)."""
        order = self.model.tap_names()
        pos = {t: i for i, t in enumerate(order)}
        out: list[str] = []
        for t in self.layernorm_output_taps():
            i = pos[t]
            if i == 0:
                raise SpecError(f"{t}: no tap before the LayerNorm output")
            src = order[i - 1]
            if src not in out:
                out.append(src)
        return out

    def residual_sum_taps(self) -> list[str]:
        """LayerNorm inputs that are residual sums (neither an op's nor a LayerNorm's
        output): ``embed``, ``blocks.i.add1``, ``blocks.i.add2`` and their Swin
        counterparts."""
        made = {op.output for op in self.ops} | set(self.layernorm_output_taps())
        return [t for t in self.layernorm_input_taps() if t not in made]

    def linear_input(self, x: FloatArray, op: OpInfo) -> FloatArray:
        """The part of input tensor ``x`` an op reads (its token row for a head)."""
        return x if op.row is None else x[:, op.row]

    # ------------------------------------------------------------------ spec
    def spec(self, method: str) -> QuantSpec:
        return QuantSpec(method=method, model=self.model.config.name, w_bits=self.w_bits,
                         a_bits=self.a_bits, weights=dict(self.weights),
                         activations=dict(self.acts), params=dict(self.new_params),
                         kernels=dict(self.kernels), notes=self.notes)


def minmax_weight(w: FloatArray, bits: int) -> UniformQuantizer:
    """Signed symmetric per-output-channel (axis 0) quantizer from the row min/max."""
    red = tuple(range(1, w.ndim))
    return UniformQuantizer.from_minmax(w.min(axis=red), w.max(axis=red), bits,
                                        symmetric=True, axis=0)


def minmax_act(x: FloatArray, bits: int) -> UniformQuantizer:
    """Unsigned asymmetric per-tensor quantizer from min/max."""
    return UniformQuantizer.from_minmax(float(x.min()), float(x.max()), bits)


__all__ = ["Ctx", "f64", "minmax_act", "minmax_weight"]
