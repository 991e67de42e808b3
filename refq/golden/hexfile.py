"""``$readmemh`` hex files: one element per line, fixed width, masked two's complement.

Layout of a file written for tensor ``x`` of shape (2, 3) and format int8::

    // refq golden tensor x
    // shape (2, 3), int8, width 8 bits, signed, two's complement, row-major (C order)
    // elements 6, one per line, 2 hex digits, no 0x prefix
    00
    7f
    80
    ...

Verilog's ``$readmemh`` skips ``//`` comments. Each element is written as
``value mod 2^bits`` in ``ceil(bits / 4)`` lower-case hex digits.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
from refq.files.safe import read_bytes
from refq.intmath import IntFormat


def digits(fmt: IntFormat) -> int:
    return -(-fmt.bits // 4)


def hex_lines(values: npt.NDArray[np.integer[Any]], fmt: IntFormat) -> list[str]:
    mask = (1 << fmt.bits) - 1
    width = digits(fmt)
    return [format(int(v) & mask, f"0{width}x") for v in np.asarray(values).ravel()]


def write_hex(
    path: Path,
    name: str,
    values: npt.NDArray[np.integer[Any]],
    fmt: IntFormat,
    layout: str = "row-major (C order)",
    what: str = "tensor",
    note: str = "",
) -> None:
    """Write ``values`` as ``$readmemh`` lines under a three-line header (module docstring);
    ``what`` is "tensor" or "parameter", ``note`` (e.g. where a parameter comes from) is
    appended to the first header line."""
    shape = tuple(int(d) for d in np.shape(values))
    header = [
        f"// refq golden {what} {name}" + (f" ({note})" if note else ""),
        f"// shape {shape}, {fmt.name}, width {fmt.bits} bits, "
        f"{'signed, two' + chr(39) + 's complement' if fmt.signed else 'unsigned'}, {layout}",
        f"// elements {int(np.prod(shape, dtype=np.int64))}, one per line, "
        f"{digits(fmt)} hex digits, no 0x prefix",
    ]
    path.write_text("\n".join(header + hex_lines(values, fmt)) + "\n")


_NOT_TEXT = re.compile(rb"[^\n\x20-\x7e]")
HEX_LIMIT = 1 << 32
"""Largest hex file read (bytes)."""


def ascii_text(raw: bytes, path: Path) -> str:
    """``raw`` as text if it is printable ASCII lines, each ended by ``\n`` (the last
    too); GoldenError naming the file, line and column otherwise."""
    bad = _NOT_TEXT.search(raw)
    if bad is not None:
        i = bad.start()
        line = raw.count(b"\n", 0, i) + 1
        col = i - (raw.rfind(b"\n", 0, i) + 1) + 1
        raise GoldenError(f"{path}:{line}:{col}: byte 0x{raw[i]:02x} is not printable ASCII")
    if not raw.endswith(b"\n"):
        line = raw.count(b"\n") + 1
        raise GoldenError(f"{path}:{line}:1: the last line has no newline (truncated?)")
    return raw.decode("ascii")


_HEADER1 = re.compile(r"// refq golden (tensor|parameter) [A-Za-z0-9_.@\-/]+( \(.{1,400}\))?")
_LAYOUT = re.compile(r"[A-Za-z0-9][A-Za-z0-9 ()_\-]{0,80}")


def read_hex(path: Path, shape: tuple[int, ...], fmt: IntFormat,
             limit: int = HEX_LIMIT) -> npt.NDArray[np.int64]:
    """Read a hex file written by :func:`write_hex` back into an int64 array of ``shape``
    (sign-extending if signed). Exactly the written grammar is accepted: printable ASCII,
    the three header lines (shape and format must be the ones given), then one element
    per line of exactly ``ceil(bits / 4)`` lower-case hex digits (no sign, no prefix, no
    blanks); GoldenError naming the file, line and column otherwise."""
    text = ascii_text(read_bytes(path, limit, None, GoldenError, "hex file"), path)
    lines = text[:-1].split("\n")
    count = int(np.prod(shape, dtype=np.int64))
    want2 = (f"// shape {tuple(shape)}, {fmt.name}, width {fmt.bits} bits, "
             f"{'signed, two' + chr(39) + 's complement' if fmt.signed else 'unsigned'}, ")
    want3 = f"// elements {count}, one per line, {digits(fmt)} hex digits, no 0x prefix"
    if len(lines) < 3:
        raise GoldenError(f"{path}:{len(lines) + 1}:1: expected the three header lines")
    if not _HEADER1.fullmatch(lines[0]):
        raise GoldenError(f"{path}:1:1: expected '// refq golden tensor <name>'")
    for no, line, want in ((2, lines[1], want2), (3, lines[2], want3)):
        body = line[: len(want)] if no == 2 else line
        if body != want or (no == 2 and not _LAYOUT.fullmatch(line[len(want):])):
            col = next((i + 1 for i, (a, b) in enumerate(zip(line, want, strict=False))
                        if a != b), min(len(line), len(want)) + 1)
            raise GoldenError(f"{path}:{no}:{col}: header line {no} must read {want!r}"
                              + ("<layout>" if no == 2 else ""))
    data = lines[3:]
    if len(data) != count:
        raise GoldenError(f"{path}: {len(data)} elements, expected {count} for shape {shape}")
    width = digits(fmt)
    joined = "".join(data)
    if len(joined) != width * count or not _HEX.fullmatch(joined):
        for no, line in enumerate(data, 4):
            if len(line) != width or not _HEX.fullmatch(line):
                col = next((i + 1 for i, c in enumerate(line) if c not in _DIGITS), width + 1)
                raise GoldenError(f"{path}:{no}:{min(col, len(line) + 1)}: {line[:40]!r} is not "
                                  f"{width} lower-case hex digits")
    raw = np.frombuffer(joined.encode("ascii"), dtype=np.uint8).reshape(count, width)
    nibbles = np.where(raw >= ord("a"), raw - (ord("a") - 10), raw - ord("0")).astype(np.uint64)
    values = np.zeros(count, dtype=np.uint64)
    for k in range(width):
        values = (values << np.uint64(4)) | nibbles[:, k]
    over = values >> np.uint64(fmt.bits) if fmt.bits < 64 else np.zeros_like(values)
    if over.any():
        i = int(np.flatnonzero(over)[0])
        raise GoldenError(f"{path}:{i + 4}:1: {data[i]!r} exceeds {fmt.bits} bits")
    if fmt.bits == 64:
        out = values.view(np.int64)
        if not fmt.signed and (out < 0).any():
            raise GoldenError(f"{path}: uint64 values beyond int64 cannot be read into int64")
    elif fmt.signed:  # sign extension: (v xor 2^(b-1)) - 2^(b-1)
        sign = 1 << (fmt.bits - 1)
        out = (values ^ np.uint64(sign)).astype(np.int64) - np.int64(sign)
    else:
        out = values.astype(np.int64)
    return np.asarray(out, dtype=np.int64).reshape(shape)


_DIGITS = frozenset("0123456789abcdef")
_HEX = re.compile(r"[0-9a-f]*")


__all__ = ["HEX_LIMIT", "ascii_text", "digits", "read_hex", "write_hex"]
