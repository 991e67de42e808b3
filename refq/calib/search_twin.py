"""Searches of PTQ4ViT's twin uniform quantizers (refq.quant.TwinUniformQuantizer).

- Post-softmax: split s = 2^-m, m = 0..19 (the code's candidate list), lowest loss wins,
  first (largest split) on ties. PTQ4ViT scores it on the attn@v OUTPUT (pass ``output``,
  or use :func:`refq.calib.ptq4vit_search_matmul` with ``softmax=True``); scored on the
  tensor itself (``output=None``, MSE) it is a data-only fit.
- Post-GELU: Δ- fixed = 0.16997124254703522/2^(b-1); Δ+ over the PTQ4ViT grid
  (α + i(β-α)/n)·Δ+0, i = 0..n-1, Δ+0 = max(x)/(2^(b-1) - 0.5) (``mode="code"``), or, with
  ``mode="paper"``, over Δ+ = 2^k·Δ- for k = 0..max_k (the paper's power-of-two ratio).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, check_bits
from refq.calib.grid import GridResult, grid_search
from refq.calib.metrics import Metric
from refq.calib.ptq4vit_grid import ALPHA, BETA, N_CANDIDATES, ptq4vit_candidates
from refq.errors import SpecError
from refq.quant.twin import TwinUniformQuantizer

SPLITS = 20


@lru_cache(maxsize=256)
def softmax_twin_quantizer(m: int, bits: int, mode: str = "code") -> TwinUniformQuantizer:
    """TwinUniformQuantizer(bits, "softmax", m=m, mode=mode) (cached: it is immutable)."""
    return TwinUniformQuantizer(bits, "softmax", m=m, mode=mode)  # type: ignore[arg-type]


def gelu_twin_quantizer(delta_pos: float, bits: int, mode: str = "code") -> TwinUniformQuantizer:
    """TwinUniformQuantizer(bits, "gelu", delta_pos=Δ+, mode=mode), Δ- at its default."""
    return TwinUniformQuantizer(bits, "gelu", delta_pos=float(delta_pos),
                                mode=mode)  # type: ignore[arg-type]


def twin_split_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    mode: str = "code",
    splits: int = SPLITS,
    metric: str | Metric = "mse",
    output: Callable[[FloatArray], FloatArray] | None = None,
) -> tuple[TwinUniformQuantizer, dict[str, Any]]:
    """Best post-softmax split m ∈ 0..splits-1 (module docstring). Record: ``m``,
    ``split``, ``index``, ``loss``, ``losses``, ``mode``."""
    b = check_bits(bits)
    if not 1 <= splits <= 20:
        raise SpecError(f"splits must lie in 1..20, got {splits}")
    res = grid_search(as_float(x), lambda m: softmax_twin_quantizer(m, b, mode),
                      list(range(splits)), metric=metric, output=output)
    rec = res.record()
    rec.update(m=res.param, split=2.0 ** -res.param, mode=mode)
    del rec["param"]
    return res.best, rec


def gelu_twin_search(
    x: npt.ArrayLike,
    bits: int,
    *,
    mode: str = "code",
    metric: str | Metric = "mse",
    output: Callable[[FloatArray], FloatArray] | None = None,
    alpha: float = ALPHA,
    beta: float = BETA,
    n: int = N_CANDIDATES,
    max_k: int = 16,
) -> tuple[TwinUniformQuantizer, dict[str, Any]]:
    """Best post-GELU Δ+ (module docstring). Record: ``delta_pos``, ``delta_neg``,
    ``index``, ``loss``, ``losses``, ``mode`` (+ ``k`` in paper mode)."""
    xa = as_float(x)
    b = check_bits(bits)
    res: GridResult[Any, TwinUniformQuantizer]
    if mode == "code":
        d0 = float(xa.max()) / (2.0 ** (b - 1) - 0.5)
        if d0 <= 0:
            raise SpecError("gelu_twin_search: max(x) <= 0")
        grid = [float(v) for v in ptq4vit_candidates(d0, alpha, beta, n)]
        res = grid_search(xa, lambda d: gelu_twin_quantizer(d, b, "code"), grid,
                          metric=metric, output=output)
        extra: dict[str, Any] = {}
    elif mode == "paper":
        def make(k: int) -> TwinUniformQuantizer:
            return TwinUniformQuantizer.gelu_paper(b, k)

        ks: list[int] = list(range(max_k + 1))
        res = grid_search(xa, make, ks, metric=metric, output=output)
        extra = {"k": res.param}
    else:
        raise SpecError(f"mode must be 'code' or 'paper', got {mode!r}")
    q = res.best
    rec = res.record()
    del rec["param"]
    rec.update(delta_pos=q.delta_pos, delta_neg=q.delta_neg, mode=mode, **extra)
    return q, rec


__all__ = ["SPLITS", "gelu_twin_quantizer", "gelu_twin_search", "softmax_twin_quantizer",
           "twin_split_search"]
