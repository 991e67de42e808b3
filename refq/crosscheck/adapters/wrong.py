"""Deliberately wrong backends — negative controls proving the suite catches real bugs.

``wrong-rounding``: requantizes with half_up where the case says half_even/half_away (and
rounds dyadic ties up). ``no-saturation``: returns requantized values without clamping them
to the output format (as an engine that forgot its saturation would).
"""

from __future__ import annotations

import dataclasses

import numpy as np

from refq.crosscheck.backend import Outputs
from refq.golden.case import Case
from refq.golden.kernels import params_of
from refq.intmath import IntFormat
from refq.ops import RequantParams, requantize


class WrongRoundingBackend:
    name = "wrong-rounding"

    def supports(self, case: Case) -> bool:
        return case.meta.get("op") == "requantize" and case.meta.get("variant") == "dyadic"

    def run(self, case: Case) -> Outputs:
        p = params_of(case)
        assert isinstance(p, RequantParams)
        wrong = dataclasses.replace(p, rounding="half_up")
        return {"y": requantize(case.tensors["x"].values.astype(np.int64), wrong)}


class NoSaturationBackend:
    name = "no-saturation"

    def supports(self, case: Case) -> bool:
        return case.meta.get("op") == "requantize"

    def run(self, case: Case) -> Outputs:
        p = params_of(case)
        assert isinstance(p, RequantParams)
        wide = dataclasses.replace(p, out_format=IntFormat(48, True))
        return {"y": requantize(case.tensors["x"].values.astype(np.int64), wide)}
