"""The ptq4vit recipe's ``metric`` option on the bundled model, tiny search budgets:
determinism of the Hessian-guided search and that the metric changes the search."""

from __future__ import annotations

import json
from typing import Any

import pytest

from refq.errors import SpecError


def test_ptq4vit_metric_option_deterministic() -> None:
    from refq.methods import quantize_model
    from refq.nn import load_bundled

    m, d = load_bundled()
    ci, _ = d.split("calib")
    x = d.normalize(ci[:2])

    def run(metric: str) -> Any:
        return quantize_model(m, "ptq4vit", 4, 4, x, seed=0, calib_sub=2, metric=metric,
                              n=6, rounds=1)

    h1, h2, c = run("hessian"), run("hessian"), run("cosine")
    b = [json.dumps(s.to_dict(), sort_keys=True).encode() for s in (h1, h2, c)]
    assert b[0] == b[1]
    assert h1.notes["metric"] == "hessian" and c.notes["metric"] == "cosine"
    # the weighted (gradient) metric picks different scales somewhere than cosine
    assert b[0] != b[2]
    with pytest.raises(SpecError):
        quantize_model(m, "ptq4vit", 4, 4, x, metric="kl", n=6, rounds=1)
