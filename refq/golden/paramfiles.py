"""Every integer parameter of a golden case as its own array, for testbench exports.

A kernel case keeps its kernel's parameters in ``meta.json`` → ``params``; a program or
block case keeps each op's parameters in ``meta.json`` → ``program.ops[i].params``. Every
integer leaf there — scalar or list: multipliers, shifts, zero points, LUTs, exp tables,
``log2e_multiplier``/``log2e_shift``, dyadic b/c, declared widths (``acc_bits``), movement
attributes (``offset``, ``perm``) — becomes one :class:`ParamFile`; strings, ``null`` and
booleans (rounding names, families, formats) are op attributes, listed in the export index
but not written as files. Tensors of role ``param`` (weights, biases, decision thresholds,
decode tables) are already tensors and are exported as such.

Each parameter gets a format (:func:`param_format`): the format the kernel contract declares
for it where there is one, else the narrowest 8/16/32/64-bit integer holding its values:

* a zero point ``X_zero_point`` has the format of the tensor it offsets (``X_format``;
  ``zero_point`` → ``in_format``), the range the kernel validates it against;
* the TFLite requantization families (``double``, ``single``): ``multiplier`` int32 (Q0.31,
  0 or in [2^30, 2^31)), ``shift`` int8 ([-31, 30]), ``in_zero_point`` int32 — TFLite's own
  types, and those of the one-element tensors the ``requantize.tflite_*`` cases carry;
  ``softmax.tflite``: ``input_multiplier`` int32, ``input_left_shift`` int32, ``diff_min``
  int32 (TFLite's SoftmaxParams);
* LUTs: ``gelu.lut`` ``table`` → its ``out_format``; ``softmax.refq`` ``table`` → uint16
  (entries in [0, 2^15]).

Values that do not fit the chosen format are a GoldenError (never a wrapped value).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from refq.errors import GoldenError, SpecError
from refq.intmath import IntArray, IntFormat

INT8 = IntFormat(8, True)
INT32 = IntFormat(32, True)
UINT16 = IntFormat(16, False)


@dataclass(frozen=True)
class ParamFile:
    """One integer parameter: values (shape () for a scalar), format and provenance."""

    stem: str
    """File name without extension, relative to the case folder (``params/...``)."""
    field: str
    """The parameter's name in its op's params (``multiplier``, ``requant.shift``)."""
    values: IntArray
    fmt: IntFormat
    source: str
    """JSON path of the value in the case's meta.json, e.g. ``program.ops[6].params.shift``."""
    op_key: str
    """The kernel or movement op (``requantize.dyadic``, ``lookup``)."""
    rule: str
    """Why this format: the declaration it comes from, or ``fitted to the values``."""
    op_index: int | None = None
    """Position of the op in the program (program and block cases), else None."""


def _format_of(params: Mapping[str, Any], field: str) -> IntFormat | None:
    text = params.get(field)
    if not isinstance(text, str):
        return None
    try:
        return IntFormat.parse(text)
    except SpecError:
        return None


def _tflite_family(op_key: str, params: Mapping[str, Any]) -> bool:
    return op_key.startswith("requantize.") and params.get("family") in ("double", "single")


_Rule = Callable[[str, Mapping[str, Any]], IntFormat | None]

# (op key glob, field, format from (op key, sibling params), why) — first match wins
_DECLARED: list[tuple[str, str, _Rule, str]] = [
    ("requantize.*", "multiplier",
     lambda k, p: INT32 if _tflite_family(k, p) else None, "TFLite Q0.31 multiplier, int32"),
    ("requantize.*", "shift",
     lambda k, p: INT8 if _tflite_family(k, p) else None, "TFLite shift in [-31, 30], int8"),
    ("requantize.*", "in_zero_point",
     lambda k, p: INT32 if _tflite_family(k, p) else None, "TFLite input offset, int32"),
    ("softmax.tflite", "input_multiplier", lambda k, p: INT32, "TFLite SoftmaxParams, int32"),
    ("softmax.tflite", "input_left_shift", lambda k, p: INT32, "TFLite SoftmaxParams, int32"),
    ("softmax.tflite", "diff_min", lambda k, p: INT32, "TFLite SoftmaxParams, int32"),
    ("gelu.lut", "table", lambda k, p: _format_of(p, "out_format"), "LUT entries in out_format"),
    ("softmax.refq", "table", lambda k, p: UINT16, "exp table entries in [0, 2^15], uint16"),
]
_ZERO_POINT = re.compile(r"^(?:(?P<prefix>[a-z]+)_)?zero_point$")


def _fitted(values: IntArray) -> IntFormat:
    lo, hi = (int(values.min()), int(values.max())) if values.size else (0, 0)
    for bits in (8, 16, 32, 64):
        fmt = IntFormat(bits, lo < 0)
        if fmt.min <= lo and hi <= fmt.max:
            return fmt
    raise GoldenError(f"parameter values [{lo}, {hi}] do not fit 64 bits")


def param_format(
    op_key: str, field: str, params: Mapping[str, Any], values: IntArray
) -> tuple[IntFormat, str]:
    """(format, rule) of parameter ``field`` of op ``op_key`` whose sibling parameters are
    ``params`` (see the module docstring)."""
    import fnmatch

    fmt: IntFormat | None = None
    rule = ""
    for pattern, name, declare, why in _DECLARED:
        if name == field and fnmatch.fnmatchcase(op_key, pattern):
            fmt = declare(op_key, params)
            if fmt is not None:
                rule = f"declared: {why}"
                break
    m = _ZERO_POINT.match(field)
    if fmt is None and m:
        prefix = m.group("prefix")
        sibling = "in_format" if prefix is None else f"{prefix}_format"
        fmt = _format_of(params, sibling)
        rule = f"declared: zero point of {sibling}" if fmt is not None else ""
    if fmt is None:
        return _fitted(values), "fitted to the values (narrowest 8/16/32/64-bit integer)"
    if values.size and (int(values.min()) < fmt.min or int(values.max()) > fmt.max):
        raise GoldenError(
            f"{op_key} parameter {field}: values [{int(values.min())}, {int(values.max())}] "
            f"outside its declared format {fmt.name} ({rule})"
        )
    return fmt, rule


def _is_int(v: Any) -> bool:
    return isinstance(v, int) and not isinstance(v, bool)


def _leaves(
    params: Mapping[str, Any], path: str, op_key: str
) -> tuple[list[tuple[str, str, IntArray, Mapping[str, Any], str]], dict[str, Any]]:
    """(integer leaves as (field path, JSON path, values, sibling params, op key),
    attributes) of one params dict; a nested dict (``requant``) is walked with its own
    siblings and its own op key (``requantize.<family>``)."""
    ints: list[tuple[str, str, IntArray, Mapping[str, Any], str]] = []
    attrs: dict[str, Any] = {}
    for field in sorted(params):
        v = params[field]
        where = f"{path}.{field}"
        if isinstance(v, dict):
            sub_key = f"requantize.{v.get('family')}" if field == "requant" else op_key
            sub_ints, sub_attrs = _leaves(v, where, sub_key)
            ints += [(f"{field}.{f}", w, a, s, k) for f, w, a, s, k in sub_ints]
            attrs.update({f"{field}.{k}": a for k, a in sub_attrs.items()})
        elif _is_int(v) or (isinstance(v, list) and v and all(_is_int(e) for e in v)):
            ints.append((field, where, np.array(v, dtype=np.int64), params, op_key))
        elif v is None or isinstance(v, (str, bool)):
            attrs[field] = v
        else:
            raise GoldenError(f"{where}: {type(v).__name__} is neither an integer parameter "
                              f"(int or non-empty list of ints) nor an attribute")
    return ints, attrs


def _safe(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.\-@]", "_", text)


@dataclass(frozen=True)
class OpParams:
    """The parameters of one op: its files and its non-integer attributes."""

    key: str
    name: str
    kind: str
    index: int | None
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    files: tuple[ParamFile, ...]
    attributes: dict[str, Any]


def _op_params(
    params: Mapping[str, Any], path: str, op_key: str, prefix: str, index: int | None
) -> tuple[list[ParamFile], dict[str, Any]]:
    ints, attrs = _leaves(params, path, op_key)
    files = []
    for field, where, values, siblings, key in ints:
        fmt, rule = param_format(key, field.rsplit(".", 1)[-1], siblings, values)
        files.append(ParamFile(f"params/{prefix}{_safe(field)}", field, values, fmt, where, key,
                               rule, index))
    return files, attrs


def case_params(meta: Mapping[str, Any]) -> list[OpParams]:
    """Every integer parameter of a case's meta.json, grouped by op (in program order)."""
    if "program" in meta:
        program = meta["program"]
        ops = program.get("ops") if isinstance(program, dict) else None
        if not isinstance(ops, list):
            raise GoldenError("meta.json: program.ops is not a list")
        width = len(str(max(len(ops) - 1, 0)))
        out = []
        for i, op in enumerate(ops):
            try:
                key, name, kind = str(op["key"]), str(op["name"]), str(op["kind"])
                params, inputs, outputs = op["params"], op["inputs"], op["outputs"]
            except (KeyError, TypeError) as exc:
                raise GoldenError(f"meta.json: program.ops[{i}] malformed ({exc})") from None
            if not isinstance(params, dict):
                raise GoldenError(f"meta.json: program.ops[{i}].params is not an object")
            prefix = f"{i:0{width}d}.{_safe(name or key)}."
            files, attrs = _op_params(params, f"program.ops[{i}].params", key, prefix, i)
            out.append(OpParams(key, name, kind, i, tuple(inputs), tuple(outputs),
                                tuple(files), attrs))
        return out
    if "params" in meta:
        if not isinstance(meta["params"], dict):
            raise GoldenError("meta.json: params is not an object")
        key = f"{meta.get('op')}.{meta.get('variant')}"
        files, attrs = _op_params(meta["params"], "params", key, "", None)
        return [OpParams(key, key, "kernel", None, (), (), tuple(files), attrs)]
    return []


__all__ = ["OpParams", "ParamFile", "case_params", "param_format"]
