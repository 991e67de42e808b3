"""The declared schema of a QuantSpec: ``spec.json`` (the folder form, with the manifest of
``params.npz``) and the one-document form of :meth:`QuantSpec.to_dict`.

Derived from the code's declarations: a quantizer's entry from its class in the registry
:data:`refq.quant.base.QUANTIZERS` (its ``kind`` and its declared ``FIELDS`` when the class
declares them; otherwise the entry's keys are checked by the class's own ``from_dict``), the
bit widths from :func:`refq.quant.base.check_bits`'s range, the array dtypes from the
dtypes refq's ``.npy`` writer accepts. Every quantizer read must also be in canonical form
(it writes back exactly the entry read), so nothing is defaulted or normalised silently.

Semantic checks a schema cannot state are made where the facts are known: the array
manifest against ``params.npz`` (:meth:`QuantSpec.load`), quantizer parameters by each
quantizer's ``from_dict``, weight and activation names against the model they are applied
to (:meth:`QuantSpec.check_model`), kernel choices by the lowering.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from refq.files.npy import REAL_DTYPES
from refq.files.schema import (
    Arr,
    Const,
    Int,
    IntConst,
    Json,
    Map,
    Nested,
    Node,
    Num,
    Obj,
    Str,
    Tagged,
    first_difference,
)
from refq.quant.base import QUANTIZERS, VERSION, Quantizer

SPEC_VERSION = 2
DTYPE_NAMES: tuple[str, ...] = tuple(sorted({np.dtype(t).name for t in REAL_DTYPES.values()}))
"""dtypes of spec parameters (what refq's .npy writer writes)."""
SHA256 = Str(pattern="[0-9a-f]{64}", what="a sha256 (64 lower-case hex digits)")
NAME = Str(max_len=1024, what="a parameter or tap name")


def quantizer_schema(cls: type[Quantizer]) -> Obj:
    """A quantizer entry: ``kind`` and ``version``, then the class's declared FIELDS
    (name → node; optional ones in ``FIELDS_OPTIONAL``) or, for a class that declares none,
    any keys (its ``from_dict`` checks them)."""
    head: dict[str, Node] = {"kind": Const(cls.kind), "version": IntConst(VERSION)}
    fields: dict[str, Node] | None = getattr(cls, "FIELDS", None)
    doc = (cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " ")
    if fields is None:
        return Obj(head, extra=Json(), title=f"quantizer {cls.kind}", doc=doc)
    optional: dict[str, Node] = getattr(cls, "FIELDS_OPTIONAL", {})
    return Obj({**head, **fields}, optional, title=f"quantizer {cls.kind}", doc=doc)


def _branches() -> dict[str, Obj]:
    return {kind: quantizer_schema(cls) for kind, cls in sorted(QUANTIZERS.items())}


QUANTIZER = Tagged("kind", _branches, what="quantizer kind")


def spec_schema(form: str) -> Obj:
    """``form`` "folder": spec.json, whose ``params`` lists the arrays of params.npz
    (dtype, shape, sha256); "document": the one-document form, ``params`` holding the
    data as nested lists."""
    shape = Arr(Int(0, 1 << 40), hi=32)
    if form == "folder":
        entry = Obj({"dtype": Str(enum=DTYPE_NAMES), "shape": shape, "sha256": SHA256},
                    title="params.npz array", doc="sha256 of the array's canonical .npy bytes")
    elif form == "document":
        entry = Obj({"dtype": Str(enum=DTYPE_NAMES), "shape": shape,
                     "data": Nested(Num(), depth=33, name="nested_numbers")}, title="array")
    else:
        raise ValueError(form)
    return Obj({
        "kind": Const("quant_spec"),
        "version": IntConst(SPEC_VERSION),
        "method": Str(max_len=256),
        "model": Str(max_len=1024),
        "w_bits": Int(2, 16),
        "a_bits": Int(2, 16),
        "weights": Map(QUANTIZER, keys=NAME, doc="weight parameter name -> quantizer"),
        "activations": Map(QUANTIZER, keys=NAME, doc="tap name -> quantizer"),
        "kernels": Map(Str(max_len=64), keys=Str(max_len=64),
                       doc="op family -> kernel variant name (checked by the lowering)"),
        "notes": Json(obj=True, doc="a record for people (calibration settings, ...)"),
        "params": Map(entry, keys=NAME, doc="replacement model parameters"),
    }, title="refq QuantSpec" + (" (spec.json)" if form == "folder" else " (document)"))


def canonical_error(got: Any, want: Any) -> str | None:
    """None when ``got == want``, else where they differ."""
    return None if got == want else first_difference(got, want)


__all__ = ["DTYPE_NAMES", "QUANTIZER", "SPEC_VERSION", "canonical_error", "first_difference",
           "quantizer_schema", "spec_schema"]
