"""``index.json``: what a hex or binary export of one golden case holds, file by file.

Written by :func:`refq.golden.export.export` into every exported case folder; read back (and
validated: unknown or missing keys, wrong types, files that are not there) by
:func:`read_index`. Layout::

    {
      "index_format": 1,
      "case": "block.deit_digits.minmax.w8a8.encoder", "kind": "block", "export": "hex",
      "files": [                       # every exported file, tensors then parameters
        {"file": "params/06.blocks.0.attn.q.multiplier.hex", "what": "parameter",
         "name": "multiplier", "role": "param", "op": 6,
         "source": "program.ops[6].params.multiplier",
         "shape": [64], "format": "uint32", "bits": 32, "signed": false, "elements": 64,
         "layout": "row-major (C order)", "width_rule": "fitted to the values ...",
         "readmemh": {"width": 32, "depth": 64, "hex_digits": 8,
                      "declaration": "reg [31:0] mem [0:63];"}},       # hex exports
        ...                            # "binary": {"dtype": "<u4", "bytes": 256} in bin ones
      ],
      "ops": [                         # program order (one entry for a kernel case)
        {"index": 6, "key": "requantize.dyadic", "kind": "kernel", "name": "blocks.0.attn.q",
         "inputs": [...], "outputs": [...],
         "params": {"multiplier": "params/06.blocks.0.attn.q.multiplier.hex", ...},
         "attributes": {"family": "dyadic", "rounding": "half_even", "out_format": "uint8"}}
      ]
    }

A tensor's ``source`` is its ``.npy`` file in the golden case; a parameter's is the JSON path
of its value in the case's ``meta.json``. ``readmemh.declaration`` is the Verilog memory
that ``$readmemh`` fills exactly (``depth`` words of ``width`` bits; declare it ``signed``
when ``signed`` is true to get the values, not their two's-complement bit patterns).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from refq.errors import GoldenError
from refq.golden.hexfile import digits
from refq.golden.paramfiles import OpParams
from refq.golden.tensorfmt import storage_dtype
from refq.intmath import IntFormat

INDEX = "index.json"
INDEX_FORMAT = 1
_MAX_BYTES = 64 << 20

_TOP = {"index_format": int, "case": str, "kind": str, "export": str, "files": list, "ops": list}
_FILE = {
    "file": str, "what": str, "name": str, "role": str, "op": (int, type(None)),
    "source": str, "shape": list, "format": str, "bits": int, "signed": bool,
    "elements": int, "layout": str, "width_rule": str,
}
_GEOMETRY = {"hex": ("readmemh", {"width": int, "depth": int, "hex_digits": int,
                                  "declaration": str}),
             "bin": ("binary", {"dtype": str, "bytes": int})}
_OP = {"index": (int, type(None)), "key": str, "kind": str, "name": str, "inputs": list,
       "outputs": list, "params": dict, "attributes": dict}


def file_entry(
    file: str, what: str, name: str, role: str, op: int | None, source: str,
    shape: tuple[int, ...], fmt: IntFormat, layout: str, rule: str, export: str,
) -> dict[str, Any]:
    """One ``files`` entry (see the module docstring)."""
    n = 1
    for d in shape:
        n *= d
    entry: dict[str, Any] = {
        "file": file, "what": what, "name": name, "role": role, "op": op, "source": source,
        "shape": list(shape), "format": fmt.name, "bits": fmt.bits, "signed": fmt.signed,
        "elements": n, "layout": layout, "width_rule": rule,
    }
    if export == "hex":
        entry["readmemh"] = {
            "width": fmt.bits, "depth": n, "hex_digits": digits(fmt),
            "declaration": f"reg {'signed ' if fmt.signed else ''}[{fmt.bits - 1}:0] "
                           f"mem [0:{max(n, 1) - 1}];",
        }
    else:
        dtype = storage_dtype(fmt).newbyteorder("<")
        entry["binary"] = {"dtype": dtype.str, "bytes": n * dtype.itemsize}
    return entry


def op_entry(op: OpParams, ext: str) -> dict[str, Any]:
    return {
        "index": op.index, "key": op.key, "kind": op.kind, "name": op.name,
        "inputs": list(op.inputs), "outputs": list(op.outputs),
        "params": {f.field: f"{f.stem}.{ext}" for f in op.files},
        "attributes": dict(op.attributes),
    }


def write_index(folder: Path, index: dict[str, Any]) -> None:
    (folder / INDEX).write_text(json.dumps(index, indent=1, sort_keys=True) + "\n")


def _check(obj: Any, spec: dict[str, Any], where: str) -> None:
    if not isinstance(obj, dict):
        raise GoldenError(f"{where}: expected an object")
    if set(obj) != set(spec):
        extra, missing = sorted(set(obj) - set(spec)), sorted(set(spec) - set(obj))
        raise GoldenError(f"{where}: unknown keys {extra}, missing keys {missing}")
    for key, types in spec.items():
        value = obj[key]
        bad_bool = isinstance(value, bool) and types in (int, (int, type(None)))
        if bad_bool or not isinstance(value, types):
            raise GoldenError(f"{where}.{key}: {value!r} has the wrong type")


def read_index(folder: Path) -> dict[str, Any]:
    """Read and validate ``folder/index.json``; every listed file must exist in ``folder``."""
    path = Path(folder) / INDEX
    if not path.is_file():
        raise GoldenError(f"{path}: missing (not a regular file)")
    if path.stat().st_size > _MAX_BYTES:
        raise GoldenError(f"{path}: larger than {_MAX_BYTES} bytes")
    try:
        index = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise GoldenError(f"{path}: not valid JSON ({exc})") from None
    _check(index, _TOP, str(path))
    if index["index_format"] != INDEX_FORMAT:
        raise GoldenError(f"{path}: index_format {index['index_format']}, expected "
                          f"{INDEX_FORMAT}")
    if index["export"] not in _GEOMETRY:
        raise GoldenError(f"{path}: export {index['export']!r} is not one of {list(_GEOMETRY)}")
    geo_key, geo_spec = _GEOMETRY[index["export"]]
    root = Path(folder).resolve()
    for i, entry in enumerate(index["files"]):
        where = f"{path}: files[{i}]"
        _check(entry, {**_FILE, geo_key: dict}, where)
        _check(entry[geo_key], geo_spec, f"{where}.{geo_key}")
        fmt = IntFormat.from_dict({"bits": entry["bits"], "signed": entry["signed"]})
        if fmt.name != entry["format"]:
            raise GoldenError(f"{where}: format {entry['format']!r} is not {fmt.name}")
        target = (root / entry["file"]).resolve()
        if root not in target.parents or not target.is_file():
            raise GoldenError(f"{where}: file {entry['file']!r} is not in {folder}")
    listed = {entry["file"] for entry in index["files"]}
    for i, op in enumerate(index["ops"]):
        _check(op, _OP, f"{path}: ops[{i}]")
        unlisted = sorted(set(op["params"].values()) - listed)
        if unlisted:
            raise GoldenError(f"{path}: ops[{i}] names parameter files not in files: "
                              f"{unlisted[:3]}")
    return dict(index)


__all__ = ["INDEX", "INDEX_FORMAT", "file_entry", "op_entry", "read_index", "write_index"]
