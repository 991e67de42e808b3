"""The calibration-search speed-ups give exactly the results of the plain search.

Oracle: the unaccelerated path (build every candidate quantizer, ``q.fake_quant``, score) —
``grid_search`` without ``dedupe`` / ``candidate_fq`` — on real calibration tensors of the
bundled model (post-softmax, post-GELU, LayerNorm inputs) and on values with exact ties.
"""
from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from refq.calib import o2sf_search, ptq4vit_search_matmul, v2sf_search
from refq.calib.grid import grid_search
from refq.calib.metrics import mse
from refq.calib.search_tsptq import CLIP_FRACTIONS, TAUS, v2sf_formula_fake_quant
from refq.nn import load_bundled
from refq.quant.two_scale import OutlierTwoScaleQuantizer, ValueTwoScaleQuantizer


@pytest.fixture(scope="module")
def taps() -> dict[str, Any]:
    m, d = load_bundled()
    ci, _ = d.split("calib")
    names = ["blocks.0.attn.softmax", "blocks.1.mlp.gelu", "blocks.0.add1", "embed",
             "blocks.0.attn.q", "blocks.0.attn.k", "blocks.0.attn.v"]
    _, t = m.forward_with_taps(d.normalize(ci[:2]), names=names)
    return {k: np.asarray(v, dtype=np.float64) for k, v in t.items()}


@pytest.mark.parametrize("bits", [3, 4, 6, 8])
def test_v2sf_formula_equals_table_quantizer(taps: dict[str, Any], bits: int) -> None:
    x = np.concatenate([taps["blocks.0.attn.softmax"].ravel()[:4000],
                        taps["blocks.1.mlp.gelu"].ravel()[:4000]])
    xmax = float(x.max())
    for k in (1, 2, 5, 8):
        for f in CLIP_FRACTIONS[::3]:
            q = ValueTwoScaleQuantizer.from_max(xmax * f, bits, k)
            # exact ties of both regions, the region threshold and its neighbours
            s = q.scale
            edge = np.array([(q.M + 0.5) * s, np.nextafter((q.M + 0.5) * s, 0), 0.5 * s,
                             2.5 * s, (q.M + 0.5) * s * q.ratio, -s, 0.0, 3 * xmax])
            v = np.concatenate([x, edge])
            np.testing.assert_array_equal(v2sf_formula_fake_quant(v, xmax * f, bits, k),
                                          q.fake_quant(v), strict=True)


@pytest.mark.parametrize("tap", ["blocks.0.attn.softmax", "blocks.1.mlp.gelu"])
def test_v2sf_search_equals_plain_grid(taps: dict[str, Any], tap: str) -> None:
    x = taps[tap]
    q, rec = v2sf_search(x, 4)
    xmax = float(x.max())
    grid = [(k, xmax * float(f)) for k in range(1, 9) for f in CLIP_FRACTIONS]
    plain = grid_search(x, lambda p: ValueTwoScaleQuantizer.from_max(p[1], 4, p[0]), grid,
                        metric=mse)
    assert rec["losses"] == plain.losses
    assert rec["index"] == plain.index
    assert q.to_dict() == plain.best.to_dict()


@pytest.mark.parametrize("tap", ["blocks.0.add1", "embed"])
def test_o2sf_dedupe_equals_plain_grid(taps: dict[str, Any], tap: str) -> None:
    x = taps[tap]
    q, rec = o2sf_search(x, 4)
    grid = [(float(t), k) for t in TAUS for k in [None, *range(1, 9)]]
    plain = grid_search(x, lambda p: OutlierTwoScaleQuantizer.from_calibration(
        x, 4, axis=-1, tau=p[0], k=p[1]), grid, metric=mse)
    assert rec["losses"] == plain.losses
    assert rec["index"] == plain.index
    assert q.to_dict() == plain.best.to_dict()


def test_ptq4vit_twin_split_scores_reused_per_round(taps: dict[str, Any]) -> None:
    """The post-softmax split is scored with B unquantized, so each round's A step must
    report the loss an independent recomputation gives."""
    from refq.calib.metrics import cosine_distance
    from refq.calib.search_twin import softmax_twin_quantizer

    a, v = taps["blocks.0.attn.softmax"], taps["blocks.0.attn.v"]
    _, _, rec = ptq4vit_search_matmul(a, v, a_bits=4, b_bits=4, softmax=True, n=5, rounds=2)
    ref = a @ v
    direct = [cosine_distance(ref, softmax_twin_quantizer(k, 4).fake_quant(a) @ v)
              for k in range(20)]
    best = int(np.argmin(direct))
    assert [h["a_index"] for h in rec["history"]] == [best, best]
    assert [h["a_loss"] for h in rec["history"]] == [direct[best], direct[best]]
