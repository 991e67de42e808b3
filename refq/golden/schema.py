"""The declared schemas of a golden set: each case's ``meta.json`` and the set's
``MANIFEST.json``.

A case's ``meta.json`` is an envelope (case name, kind, seed, versions, the tensor table:
file, shape, format, role and layout of each tensor) plus what its kind needs to re-run it:
a kernel case names its variant (``op`` and ``variant``, one branch per variant of the
registry :mod:`refq.ops.registry`) and holds that variant's params (their schema derived
from the params type, the binding field fixed); a program or block case holds its program
(:func:`refq.program.schema.program_schema` without the constant hashes: its constants are
the case's ``param`` tensors). Other keys (``formula``, ``*_scale``, ``scope``, ``block``,
``note``) are information for people: any JSON, depth-bounded. Every byte of a committed
set is also covered by the manifest's sha256 and by ``refq golden verify``, which
re-computes each case and compares ``meta.json`` byte for byte.
"""

from __future__ import annotations

import re
from typing import Literal

from refq.files.schema import (
    INT64_MAX,
    Arr,
    Bool,
    Const,
    Int,
    IntConst,
    Json,
    Map,
    Node,
    Obj,
    Str,
    Tagged,
)
from refq.ops._common import params_schema
from refq.ops.registry import generation, variants
from refq.program.schema import SHA256, program_schema

GOLDEN_FORMAT = 1
"""Version of the on-disk layout (meta.json schema, MANIFEST.json schema, .npy spelling)."""
Role = Literal["input", "param", "intermediate", "output"]
ROLES: tuple[str, ...] = ("input", "param", "intermediate", "output")
KINDS: tuple[str, ...] = ("kernel", "block", "program")
"""The kinds refq re-computes (other kinds — an adapter's own cases — are read as data)."""
KIND_PATTERN = r"[a-z][a-z0-9_]*"
CASE_PATTERN = r"[a-z0-9][a-z0-9_.\-]*"
TENSOR_PATTERN = r"[A-Za-z0-9][A-Za-z0-9_.\-@]*"
NAME_RE = re.compile(f"^{CASE_PATTERN}$")
TENSOR_RE = re.compile(f"^{TENSOR_PATTERN}$")

CASE_NAME = Str(pattern=CASE_PATTERN, max_len=256, what="a case name (a-z 0-9 _ . -)")
TENSOR_NAME = Str(pattern=TENSOR_PATTERN, max_len=256,
                  what="a tensor name (A-Z a-z 0-9 _ . - @, not starting with . - _ @)")
FORMAT = Obj({"bits": Int(1, 64), "signed": Bool()}, title="integer format",
             doc="bits 2..64 signed (two's complement) or 1..64 unsigned")
TENSOR_ENTRY = Obj({
    "file": Str(pattern=TENSOR_PATTERN + r"\.npy", max_len=260, what="<tensor name>.npy"),
    "shape": Arr(Int(0, 1 << 40), hi=32),
    "format": FORMAT,
    "role": Str(enum=ROLES),
    "layout": Str(pattern=r"[a-z0-9][a-z0-9 ()_\-]*", max_len=64),
}, title="golden tensor")
INFO = Json(doc="information for people (formula, scales, scope, ...)")


def _envelope(kind: str) -> dict[str, Node]:
    return {
        "case": CASE_NAME,
        "kind": Const(kind),
        "seed": Int(0, INT64_MAX),
        "refq_version": Str(max_len=64),
        "golden_format": IntConst(GOLDEN_FORMAT),
        "tensors": Map(TENSOR_ENTRY, keys=TENSOR_NAME),
    }


_CACHE: dict[tuple[str, int], dict[str, Node]] = {}


def _kernel_branches() -> dict[str, Node]:
    hit = _CACHE.get(("kernel", generation()))
    if hit is not None:
        return hit
    out: dict[str, Node] = {}
    for v in variants():
        bind = (v.binds, v.name) if v.binds is not None else None
        out[v.key] = Obj({**_envelope("kernel"), "op": Const(v.family), "variant": Const(v.name),
                          "params": params_schema(v.params_type, bind)},
                         extra=INFO, title=f"kernel case of {v.key}")
    _CACHE[("kernel", generation())] = out
    return out


def _kinds() -> dict[str, Node]:
    hit = _CACHE.get(("kinds", generation()))
    if hit is not None:
        return hit
    program = Obj({**_envelope("program"), "program": program_schema(with_hashes=False)},
                  extra=INFO, title="program case")
    block = Obj({**_envelope("block"), "program": program_schema(with_hashes=False)},
                extra=INFO, title="block case")
    kernel = Tagged(("op", "variant"), _kernel_branches, what="kernel variant (op.variant)")
    _CACHE[("kinds", generation())] = out = {"kernel": kernel, "block": block,
                                             "program": program}
    return out


OTHER = Obj({**_envelope("other"), "kind": Str(pattern=KIND_PATTERN, max_len=64)},
            {"op": Str(max_len=256), "variant": Str(max_len=256), "params": Json(obj=True)},
            extra=INFO, title="a case of another kind",
            doc="cases of other kinds (e.g. a cross-check adapter's own, kind 'onnx'): the "
            "envelope; their op, variant and params are the adapter's")
META = Tagged("kind", _kinds, what="case kind", default=OTHER)
"""A case's meta.json."""

MANIFEST_SCHEMA = Obj({
    "golden_format": IntConst(GOLDEN_FORMAT),
    "generated_by": Str(max_len=64),
    "cases": Map(Str(pattern=KIND_PATTERN, max_len=64), keys=CASE_NAME,
                 doc="case name -> kind"),
    "files": Map(SHA256, keys=Str(pattern=f"{CASE_PATTERN}/{TENSOR_PATTERN}|{TENSOR_PATTERN}",
                                  max_len=520, what="a file of the set (case/file)"),
                 doc="every file of the set but MANIFEST.json and README.md -> sha256"),
}, title="golden MANIFEST.json")


__all__ = ["CASE_NAME", "FORMAT", "GOLDEN_FORMAT", "KINDS", "MANIFEST_SCHEMA", "META", "NAME_RE",
           "ROLES", "TENSOR_ENTRY", "TENSOR_NAME", "TENSOR_RE", "Role"]
