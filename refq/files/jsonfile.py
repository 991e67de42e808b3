"""Canonical JSON bytes, file hashes, and the strict JSON reader every refq reader uses.

:func:`load_json` reads a regular file of bounded size (:mod:`refq.files.safe`) and parses
strict JSON: UTF-8 (refq writes ASCII), no ``NaN``/``Infinity``, no number that overflows
to infinity, no key twice in one object, integers of at most 4300 digits (Python's own
limit), nesting bounded (Python's recursion limit here; the format's schema bounds it
further). Every error names the file and, for syntax errors, the line and column.
"""

from __future__ import annotations

import hashlib
import json
import math
from pathlib import Path
from typing import Any

from refq.errors import RefqError, SpecError
from refq.files.safe import MiB, read_bytes

JSON_LIMIT = 256 * MiB
"""Largest JSON file any refq reader accepts (a format may cap lower)."""


def json_bytes(obj: Any) -> bytes:
    """Canonical JSON: sorted keys, 2-space indent, ASCII, trailing newline."""
    return (json.dumps(obj, sort_keys=True, indent=2, ensure_ascii=True, allow_nan=False)
            + "\n").encode()


def json_bytes_flat_arrays(obj: Any) -> bytes:
    """:func:`json_bytes` except that an array holding no object or array is written on
    one line, without spaces (``[1,-2,3]``): the same JSON value, parsed identically,
    without a line per number of a long table (golden case ``meta.json``: GELU tables,
    thresholds, per-channel multipliers)."""
    def dump(o: Any, ind: str) -> str:
        if isinstance(o, dict):
            if not o:
                return "{}"
            inner = ind + "  "
            items = [f"{inner}{_scalar(k)}: {dump(o[k], inner)}" for k in sorted(o)]
            return "{\n" + ",\n".join(items) + "\n" + ind + "}"
        if isinstance(o, (list, tuple)):
            if all(not isinstance(v, (dict, list, tuple)) for v in o):
                return "[" + ",".join(_scalar(v) for v in o) + "]"
            inner = ind + "  "
            return "[\n" + ",\n".join(inner + dump(v, inner) for v in o) + "\n" + ind + "]"
        return _scalar(o)

    return (dump(obj, "") + "\n").encode()


def _scalar(v: Any) -> str:
    if not isinstance(v, (str, int, float, bool)) and v is not None:
        raise TypeError(f"Object of type {type(v).__name__} is not JSON serializable")
    return json.dumps(v, ensure_ascii=True, allow_nan=False)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


class _Bad(ValueError):
    pass


def _no_constant(name: str) -> Any:
    raise _Bad(f"{name} is not a JSON number (refq writes finite numbers only)")


def _finite(text: str) -> float:
    v = float(text)
    if not math.isfinite(v):
        raise _Bad(f"number {text[:40]} overflows to infinity")
    return v


def _object(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    d = dict(pairs)
    if len(d) != len(pairs):
        seen: set[str] = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))  # type: ignore[func-returns-value]
        raise _Bad(f"key {dup!r} appears twice in one object")
    return d


def parse_json(raw: bytes, where: object, error: type[RefqError] = SpecError) -> Any:
    """Strict JSON from ``raw`` (module docstring); ``error`` naming ``where`` otherwise."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw.count(b"\n", 0, exc.start) + 1
        col = exc.start - (raw.rfind(b"\n", 0, exc.start) + 1) + 1
        raise error(f"{where}:{line}:{col}: not UTF-8 (byte 0x{raw[exc.start]:02x})") from None
    try:
        return json.loads(text, parse_constant=_no_constant, parse_float=_finite,
                          object_pairs_hook=_object)
    except json.JSONDecodeError as exc:
        raise error(f"{where}:{exc.lineno}:{exc.colno}: not valid JSON ({exc.msg})") from None
    except RecursionError:
        raise error(f"{where}: JSON nested too deeply") from None
    except ValueError as exc:  # _Bad, or an integer beyond Python's digit limit
        raise error(f"{where}: not valid JSON for refq ({exc})") from None


def load_json(path: Path | str, limit: int = JSON_LIMIT, root: Path | None = None,
              error: type[RefqError] = SpecError, what: str = "JSON file") -> Any:
    """Read and strictly parse the JSON file ``path`` (module docstring)."""
    return parse_json(read_bytes(path, limit, root, error, what), path, error)


__all__ = ["JSON_LIMIT", "json_bytes", "json_bytes_flat_arrays", "load_json", "parse_json",
           "sha256_bytes", "sha256_file"]
