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

from pathlib import Path
from typing import Any

import numpy as np
import numpy.typing as npt

from refq.errors import GoldenError
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
) -> None:
    shape = tuple(int(d) for d in np.shape(values))
    header = [
        f"// refq golden tensor {name}",
        f"// shape {shape}, {fmt.name}, width {fmt.bits} bits, "
        f"{'signed, two' + chr(39) + 's complement' if fmt.signed else 'unsigned'}, {layout}",
        f"// elements {int(np.prod(shape, dtype=np.int64))}, one per line, "
        f"{digits(fmt)} hex digits, no 0x prefix",
    ]
    path.write_text("\n".join(header + hex_lines(values, fmt)) + "\n")


def read_hex(path: Path, shape: tuple[int, ...], fmt: IntFormat) -> npt.NDArray[np.int64]:
    """Read a hex file back into an int64 array of ``shape`` (sign-extending if signed)."""
    out = []
    for lineno, line in enumerate(path.read_text().splitlines(), 1):
        text = line.split("//", 1)[0].strip()
        if not text:
            continue
        if len(text) != digits(fmt):
            raise GoldenError(f"{path}:{lineno}: {text!r} is not {digits(fmt)} hex digits")
        try:
            v = int(text, 16)
        except ValueError:
            raise GoldenError(f"{path}:{lineno}: {text!r} is not hexadecimal") from None
        if v >> fmt.bits:
            raise GoldenError(f"{path}:{lineno}: {text!r} exceeds {fmt.bits} bits")
        if fmt.signed and v >> (fmt.bits - 1):
            v -= 1 << fmt.bits
        out.append(v)
    count = int(np.prod(shape, dtype=np.int64))
    if len(out) != count:
        raise GoldenError(f"{path}: {len(out)} elements, expected {count} for shape {shape}")
    return np.array(out, dtype=np.int64).reshape(shape)


__all__ = ["read_hex", "write_hex"]
