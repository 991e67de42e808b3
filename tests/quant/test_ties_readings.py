"""refq's readings of the papers without public code — TSPTQ-ViT's V-2SF and DopQ-ViT's
TanQ (O-2SF is in test_ties_uniform.py) — on every constructed tie, against the documented
definitions (docs/quantizers.md) written independently in tests/quant/tiecases.py:
V-2SF's X = round(x/s) region test and round(x/(s·2^k)) large code with exact ``Fraction``
rounding; TanQ's code = #{T_q ≤ x} with T_q recomputed from the documented formula, probed
at every threshold and its float neighbours. Default: 4 bits; ``-m slow``: 2..8 and 16.
"""

from __future__ import annotations

import pytest

from tests.quant.tie_env import TORCH_MARKS

pytestmark = TORCH_MARKS


@pytest.mark.parametrize("family", ["v2sf", "tan"])
def test_every_tie_at_4_bits(family: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert assert_no_mismatch(family, (4,), "float64") > 10


@pytest.mark.slow
@pytest.mark.parametrize("family", ["v2sf", "tan"])
def test_every_tie_2_to_8_and_16_bits(family: str) -> None:
    from tests.quant.tiecases import assert_no_mismatch

    assert_no_mismatch(family, (2, 3, 5, 6, 7, 8, 16) if family == "v2sf" else
                       (2, 3, 5, 6, 7, 8, 12), "float64")
