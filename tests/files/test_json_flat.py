"""``json_bytes_flat_arrays``: the same JSON value as ``json_bytes``, arrays without objects
or arrays inside on one line."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from refq.files import json_bytes, json_bytes_flat_arrays

scalars = st.one_of(st.none(), st.booleans(), st.integers(-(2**70), 2**70),
                    st.floats(allow_nan=False, allow_infinity=False), st.text(max_size=5))
values = st.recursive(scalars, lambda c: st.one_of(
    st.lists(c, max_size=4), st.dictionaries(st.text(max_size=4), c, max_size=4)), max_leaves=20)


@settings(max_examples=200, deadline=None)
@given(values)
@example({"a": [1, -2, 3], "b": [{"c": []}, {}], "d": {}, "e": [[1], []], "f": "é"})
@example([])
def test_same_value_and_flat_scalar_arrays(obj: Any) -> None:
    flat = json_bytes_flat_arrays(obj)
    assert json.loads(flat) == json.loads(json_bytes(obj))
    assert flat.endswith(b"\n") and flat.isascii()
    # re-indenting the flat form gives the canonical indented bytes
    assert json_bytes(json.loads(flat)) == json_bytes(obj)


def test_layout() -> None:
    got = json_bytes_flat_arrays({"t": [0, -1, 2], "o": [{"k": [1.5, None]}]}).decode()
    assert got == '{\n  "o": [\n    {\n      "k": [1.5,null]\n    }\n  ],\n  "t": [0,-1,2]\n}\n'
    # no scalar array: identical to json_bytes
    obj = {"a": {"b": "x", "c": [{"d": 1}]}}
    assert json_bytes_flat_arrays(obj) == json_bytes(obj)


def test_refuses_what_json_refuses() -> None:
    with pytest.raises(ValueError):
        json_bytes_flat_arrays([float("nan")])
    with pytest.raises(TypeError):
        json_bytes_flat_arrays({"a": [object()]})
