"""Golden file formats: canonical .npy, hex, binary and C header all read back exactly."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from refq.errors import GoldenError
from refq.files.npy import npy_bytes, parse_npy
from refq.golden.binfile import read_bin, write_bin
from refq.golden.cheader import read_header_array, write_header
from refq.golden.hexfile import read_hex, write_hex
from refq.golden.tensorfmt import storage_dtype
from refq.intmath import IntFormat


@st.composite
def tensors(draw: st.DrawFn) -> tuple[np.ndarray, IntFormat]:
    fmt = draw(st.builds(IntFormat, st.integers(2, 64), st.booleans()))
    if not fmt.signed and fmt.bits == 64:
        fmt = IntFormat(63, False)
    shape = draw(hnp.array_shapes(min_dims=0, max_dims=3, min_side=0, max_side=4))
    values = draw(
        hnp.arrays(np.int64, shape, elements=st.integers(fmt.min, min(fmt.max, 2**63 - 1)))
    )
    return values, fmt


@given(t=tensors())
def test_npy_is_numpy_compatible_and_exact(t: tuple[np.ndarray, IntFormat]) -> None:
    values, fmt = t
    stored = values.astype(storage_dtype(fmt))
    raw = npy_bytes(stored)
    buf = io.BytesIO()
    np.save(buf, stored, allow_pickle=False)
    assert raw == buf.getvalue()  # same bytes as np.save of this NumPy
    back = parse_npy(raw, "t")
    np.testing.assert_array_equal(back, stored, strict=True)
    assert len(raw) % 64 == stored.nbytes % 64


@given(t=tensors())
def test_hex_bin_c_round_trip(
    tmp_path_factory: pytest.TempPathFactory, t: tuple[np.ndarray, IntFormat]
) -> None:
    values, fmt = t
    d = tmp_path_factory.mktemp("x")
    write_hex(d / "t.hex", "t", values, fmt)
    np.testing.assert_array_equal(read_hex(d / "t.hex", values.shape, fmt), values, strict=True)
    write_bin(d / "t.bin", values, fmt)
    np.testing.assert_array_equal(read_bin(d / "t.bin", values.shape, fmt), values, strict=True)
    write_header(d / "t.h", "case.x-1", {"p": {"shift": -3}}, {"t": (values, fmt)})
    got = read_header_array(d / "t.h", "case.x-1", "t", values.shape)
    np.testing.assert_array_equal(got, values, strict=True)


def test_hex_layout(tmp_path: Path) -> None:
    write_hex(tmp_path / "y.hex", "y", np.array([[-128, 127, -1]]), IntFormat(8))
    lines = (tmp_path / "y.hex").read_text().splitlines()
    assert lines[0].startswith("//") and "shape (1, 3)" in lines[1] and "signed" in lines[1]
    assert [ln for ln in lines if not ln.startswith("//")] == ["80", "7f", "ff"]
    write_hex(tmp_path / "u.hex", "u", np.array([5, 15]), IntFormat(4, False))
    assert (tmp_path / "u.hex").read_text().splitlines()[-2:] == ["5", "f"]


def test_c_header_compiles_with_a_c_compiler(tmp_path: Path) -> None:
    import shutil
    import subprocess

    cc = shutil.which("cc") or shutil.which("gcc")
    if cc is None:
        pytest.skip("no C compiler")
    values = np.array([-(2**31), 2**31 - 1, 0], dtype=np.int64)
    write_header(
        tmp_path / "c.h",
        "k.case",
        {"params": {"multiplier": 1 << 30, "shift": -5}},
        {"x": (values, IntFormat(32)), "w": (np.array([-(2**63)]), IntFormat(64))},
    )
    (tmp_path / "m.c").write_text(
        '#include "c.h"\n#include <stdio.h>\nint main(void){printf("%d %d %lld %d\\n",'
        " k_case_x[0], K_CASE_PARAMS_SHIFT, (long long)k_case_w[0], K_CASE_X_SIZE);return 0;}\n"
    )
    subprocess.run(
        [cc, "-Wall", "-Werror", "-o", str(tmp_path / "m"), str(tmp_path / "m.c")], check=True
    )
    out = subprocess.run([str(tmp_path / "m")], capture_output=True, text=True, check=True)
    assert out.stdout.split() == ["-2147483648", "-5", str(-(2**63)), "3"]


@pytest.mark.parametrize(
    "raw,needle",
    [
        (b"not a numpy file", "NPY"),
        (npy_bytes(np.arange(3, dtype=np.int8))[:-1], "bytes"),
        (npy_bytes(np.arange(3, dtype=np.int8)).replace(b"|i1", b"|O "), "dtype"),
        (
            npy_bytes(np.arange(3, dtype=np.int8)).replace(b"'<", b"'<").replace(b"|i1", b"<f8"),
            "dtype",
        ),
    ],
)
def test_npy_reader_refuses_bad_files(raw: bytes, needle: str) -> None:
    with pytest.raises(GoldenError, match=needle):
        parse_npy(raw, "bad.npy")


def test_pickled_object_array_is_never_loaded(tmp_path: Path) -> None:
    buf = io.BytesIO()
    np.save(buf, np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(GoldenError, match="dtype"):
        parse_npy(buf.getvalue(), "evil.npy")


def test_hex_reader_refuses_bad_lines(tmp_path: Path) -> None:
    write_hex(tmp_path / "g.hex", "x", np.array([0, 1]), IntFormat(8))
    good = (tmp_path / "g.hex").read_text()
    (tmp_path / "b.hex").write_text(good.replace("\n01\n", "\n0g\n"))
    with pytest.raises(GoldenError, match=r"b\.hex:5:2: .*lower-case hex digits"):
        read_hex(tmp_path / "b.hex", (2,), IntFormat(8))
    (tmp_path / "b.hex").write_text(good.replace("\n01\n", "\n"))
    with pytest.raises(GoldenError, match="expected 2"):
        read_hex(tmp_path / "b.hex", (2,), IntFormat(8))
