"""IntFormat, check_range, saturate and wrap."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import example, given
from hypothesis import strategies as st

from refq.errors import RangeError, SpecError
from refq.intmath import (
    INT8,
    INT16,
    UINT4,
    UINT8,
    IntFormat,
    check_bounds,
    check_range,
    saturate,
    wrap,
)

formats = st.builds(IntFormat, st.integers(2, 63), st.booleans())


@given(fmt=formats)
def test_bounds(fmt: IntFormat) -> None:
    if fmt.signed:
        assert (fmt.min, fmt.max) == (-(2 ** (fmt.bits - 1)), 2 ** (fmt.bits - 1) - 1)
        assert fmt.narrow_min == -fmt.max
    else:
        assert (fmt.min, fmt.max, fmt.narrow_min) == (0, 2**fmt.bits - 1, 0)
    assert IntFormat.parse(fmt.name) == fmt
    assert IntFormat.from_dict(fmt.to_dict()) == fmt


@given(fmt=formats, x=st.integers(-(2**63), 2**63 - 1))
@example(fmt=INT8, x=-129)
@example(fmt=INT8, x=128)
@example(fmt=INT8, x=-128)
@example(fmt=UINT4, x=16)
@example(fmt=UINT4, x=-1)
def test_saturate_and_wrap_oracle(fmt: IntFormat, x: int) -> None:
    assert int(saturate(x, fmt)) == min(max(x, fmt.min), fmt.max)
    m = 2**fmt.bits
    w = x % m
    if fmt.signed and w >= m // 2:
        w -= m
    assert int(wrap(x, fmt)) == w
    inside = fmt.min <= x <= fmt.max
    if inside:
        assert int(check_range(x, fmt)) == x
    else:
        with pytest.raises(RangeError):
            check_range(x, fmt)


def test_saturate_narrow() -> None:
    got = saturate(np.array([-128, -127, 127]), INT8, narrow=True)
    np.testing.assert_array_equal(got, np.array([-127, -127, 127]), strict=True)


def test_check_range_message_names_tensor_index_and_value() -> None:
    x = np.zeros((2, 3), dtype=np.int64)
    x[1, 2] = 200
    x[1, 1] = -300
    with pytest.raises(RangeError) as info:
        check_range(x, INT8, "acc", op="linear")
    msg = str(info.value)
    assert "linear" in msg and "'acc'" in msg and "(1, 1)" in msg and "-300" in msg
    assert "2 element(s)" in msg


@pytest.mark.parametrize(
    "call",
    [
        lambda: IntFormat(1, True),
        lambda: IntFormat(65, False),
        lambda: IntFormat(0, False),
        lambda: IntFormat(8.0, True),  # type: ignore[arg-type]
        lambda: IntFormat(8, "yes"),  # type: ignore[arg-type]
        lambda: IntFormat.parse("int"),
        lambda: IntFormat.parse("float32"),
        lambda: IntFormat.from_dict({"bits": 8}),
        lambda: check_range(np.array([1.0]), INT8),
        lambda: saturate(np.array([True]), INT8),
        lambda: wrap(np.array(["a"]), INT8),
    ],
)
def test_bad_formats_and_inputs(call: object) -> None:
    with pytest.raises(SpecError):
        call()  # type: ignore[operator]


def test_checked_arrays_skip_only_noted_arrays_within_the_scope() -> None:
    """A noted array is trusted for any range containing its noted format — only the same
    object, only inside the scope (the note here is deliberately false to make the skip
    visible; refq.program.run only notes arrays it has checked or proven)."""
    from refq.intmath.formats import checked_arrays

    arr = np.array([1, 1000], dtype=np.int64)
    with pytest.raises(RangeError):
        check_bounds(arr, INT8, "arr")
    with checked_arrays() as checked:
        checked.note(arr, INT8)
        check_bounds(arr, INT8, "arr")  # trusted: not scanned
        check_bounds(arr, INT16, "arr")  # a wider range contains the note
        with pytest.raises(RangeError):
            check_bounds(arr, UINT8, "arr")  # [0, 255] does not contain int8
        with pytest.raises(RangeError):
            check_bounds(arr[:], INT8, "view")  # another object: scanned
        with pytest.raises(RangeError):
            check_bounds(arr, INT8, "arr", narrow=True)  # narrow -127 > -128
        with checked_arrays(), pytest.raises(RangeError):
            check_bounds(arr, INT8, "arr")  # a new scope starts empty
        check_bounds(arr, INT8, "arr")  # the outer scope is back
    with pytest.raises(RangeError):
        check_bounds(arr, INT8, "arr")


def test_checked_arrays_do_not_keep_arrays_alive() -> None:
    """Notes are weak: a dropped array frees its memory and its entry (run() drops dead
    intermediates to bound peak memory), and a new array is never covered by an old note."""
    import gc
    import weakref

    from refq.intmath.formats import checked_arrays

    with checked_arrays() as checked:
        arr = np.zeros(1000, dtype=np.int64)
        alive = weakref.ref(arr)
        checked.note(arr, INT8)
        assert len(checked) == 1
        del arr
        gc.collect()
        assert alive() is None and len(checked) == 0
        fresh = np.full(1000, 1000, dtype=np.int64)
        with pytest.raises(RangeError):
            check_bounds(fresh, INT8, "fresh")
