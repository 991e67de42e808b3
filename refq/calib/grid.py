"""The generic candidate search behind every quantizer-shape search of refq.calib.

``grid_search(x, make, grid)`` builds ``make(p)`` for each candidate ``p`` in order, scores
``metric(target, output(q.fake_quant(x)))`` (``output`` maps the fake-quantized tensor to
what is compared, the identity by default; ``target = output(x)``) and keeps the lowest
loss, the FIRST candidate on ties. Candidates whose ``make`` raises SpecError (an
unrepresentable combination) are skipped and recorded as None.

Two speed-ups that leave every loss and the winner unchanged:

- ``dedupe=True``: candidates whose quantizers are equal (same ``to_dict()``) are scored
  once; the later ones reuse the first one's loss.
- ``candidate_fq(p, x)``: the fake-quantized tensor of candidate ``p`` computed WITHOUT
  building its quantizer (it must equal ``make(p).fake_quant(x)`` element for element, and
  ``make`` must succeed for every candidate); ``make`` then runs for the winner only.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import numpy as np
import numpy.typing as npt

from refq.calib._common import FloatArray, as_float, first_argmin
from refq.calib.metrics import Metric, get_metric
from refq.errors import SpecError

P = TypeVar("P")
Q = TypeVar("Q")


class GridResult(Generic[P, Q]):
    """What :func:`grid_search` found: ``best`` (the fitted object), ``param``, ``index``,
    ``loss`` and ``losses`` (one per candidate, None where skipped)."""

    def __init__(self, best: Q, param: P, index: int, loss: float,
                 losses: list[float | None]) -> None:
        self.best, self.param, self.index, self.loss, self.losses = (
            best, param, index, loss, losses)

    def record(self) -> dict[str, Any]:
        """JSON-safe summary (the parameter must itself be JSON-safe)."""
        return {"param": self.param, "index": self.index, "loss": self.loss,
                "losses": self.losses}


def grid_search(
    x: npt.ArrayLike,
    make: Callable[[P], Q],
    grid: Sequence[P],
    *,
    metric: str | Metric = "mse",
    output: Callable[[FloatArray], FloatArray] | None = None,
    fake_quant: Callable[[Q, FloatArray], FloatArray] | None = None,
    dedupe: bool = False,
    candidate_fq: Callable[[P, FloatArray], FloatArray] | None = None,
) -> GridResult[P, Q]:
    """Lowest-loss candidate of ``grid`` (first on ties); see the module docstring.

    ``fake_quant(q, x)`` defaults to ``q.fake_quant(x)``. SpecError if the grid is empty or
    every candidate was skipped.
    """
    xa = as_float(x)
    m = get_metric(metric)
    if len(grid) == 0:
        raise SpecError("grid_search: empty candidate grid")
    target = xa if output is None else output(xa)
    losses: list[float | None] = []
    made: list[Q | None] = []
    if candidate_fq is not None:
        scored: list[float] = []
        for p in grid:
            y = candidate_fq(p, xa)
            scored.append(float(m(target, y if output is None else output(y))))
        i = first_argmin(np.array(scored))
        return GridResult(make(grid[i]), grid[i], i, scored[i], list[float | None](scored))
    seen: dict[str, float] = {}
    for p in grid:
        try:
            q = make(p)
        except SpecError:
            losses.append(None)
            made.append(None)
            continue
        key = json.dumps(q.to_dict(), sort_keys=True) if dedupe else ""  # type: ignore[attr-defined]
        if dedupe and key in seen:
            losses.append(seen[key])
            made.append(q)
            continue
        y = fake_quant(q, xa) if fake_quant is not None else q.fake_quant(xa)  # type: ignore[attr-defined]
        if output is not None:
            y = output(y)
        loss = float(m(target, y))
        losses.append(loss)
        made.append(q)
        if dedupe:
            seen[key] = loss
    scores = np.array([np.inf if v is None else v for v in losses])
    if not np.isfinite(scores).any():
        raise SpecError("grid_search: no candidate could be built or scored")
    i = first_argmin(scores)
    best = made[i]
    assert best is not None
    return GridResult(best, grid[i], i, float(scores[i]), losses)


__all__ = ["GridResult", "grid_search"]
