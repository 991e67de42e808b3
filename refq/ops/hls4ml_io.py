"""The declaration fields every hls4ml ap_fixed kernel (softmax.hls4ml_*, layernorm.hls4ml)
shares: its input is the raw codes of the params' ``in_type``, its output those of
``out_type`` (refq.intmath.apfixed.ApType formats)."""

from __future__ import annotations

from typing import Any

from refq.intmath import IntFormat


def _in_formats(p: Any) -> tuple[IntFormat, ...]:
    return (p.types["in_type"].fmt,)


def _out_format(p: Any) -> IntFormat:
    fmt: IntFormat = p.types["out_type"].fmt
    return fmt


def ap_types_io(accepts: str = "x: in_type raw codes") -> dict[str, Any]:
    """``accepts``, ``produces``, ``in_formats`` and ``out_format`` of a :class:`Variant`
    whose params hold ``types["in_type"]`` and ``types["out_type"]``."""
    return {"accepts": accepts, "produces": "out_type raw codes",
            "in_formats": _in_formats, "out_format": _out_format}


__all__ = ["ap_types_io"]
