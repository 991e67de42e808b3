"""The declared schema of a program document (``program.json``, and the ``program`` of a
golden program/block case) and the checks a schema cannot state.

Derived, never written twice: a kernel op's schema comes from its variant in the registry
(:mod:`refq.ops.registry`: the key, the named inputs, the params type — every field from
:func:`refq.ops._common.params_schema` — and the binding field fixed to the variant's
name); a movement op's from its function's signature in :mod:`refq.program.movement`
(positional parameters are its inputs, keyword-only ones its params, with their types; the
return annotation says whether it has one output or several); a tensor declaration's from
:data:`refq.program.ir.TENSOR_SCHEMA`. A variant registered later (a test's toy, an engine's
own) is covered as soon as it is registered.

Semantic checks (:func:`program_from_dict`): every name declared, inputs exactly the
tensors of kind input, ``-1`` only as the batch dimension of inputs and values, each kernel
op's params parsed by its params type (its own range checks, then the canonical-form
check: no default filled in), movement params consistent with the declared input shapes
(axes in range, a permutation, sections dividing the axis), and the op graph
(:meth:`Program.validate`).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any, get_args, get_type_hints

from refq.errors import SpecError
from refq.files.schema import (
    Arr,
    Const,
    Int,
    IntConst,
    Json,
    Map,
    Node,
    Obj,
    Ref,
    Str,
    Tagged,
    validate,
)
from refq.ops._common import field_schema, params_schema
from refq.ops.registry import generation, lookup, variants
from refq.program.ir import PROGRAM_FORMAT, TENSOR_NAME, TENSOR_SCHEMA, Op, Program, TensorDecl
from refq.program.movement import MOVEMENT

SHA256 = Str(pattern="[0-9a-f]{64}", doc="sha256, 64 lower-case hex digits")


def _kernel_branch(key: str) -> Obj:
    v = lookup(key)
    bind = (v.binds, v.name) if v.binds is not None else None
    n = len(v.inputs)
    return Obj({
        "kind": Const("kernel"),
        "key": Const(v.key),
        "inputs": Arr(TENSOR_NAME, n, n, doc=f"the tensors bound to {list(v.inputs)}"),
        "outputs": Arr(TENSOR_NAME, 1, 1),
        "params": params_schema(v.params_type, bind),
        "name": Str(max_len=512, doc="the float model's tap this op realises (or empty)"),
    }, title=f"kernel {v.key}", doc=v.title)


def movement_signature(fn: Callable[..., Any]) -> tuple[int, dict[str, Any], bool]:
    """(number of inputs, keyword params → type, several outputs?) of a movement op."""
    sig = inspect.signature(fn)
    hints = get_type_hints(fn)
    inputs = sum(p.kind is p.POSITIONAL_OR_KEYWORD for p in sig.parameters.values())
    params = {p.name: hints[p.name] for p in sig.parameters.values() if p.kind is p.KEYWORD_ONLY}
    several = Ellipsis in get_args(hints["return"])
    return inputs, params, several


def _movement_branch(key: str) -> Obj:
    fn = MOVEMENT[key]
    n, params, several = movement_signature(fn)
    fields: dict[str, Node] = {}
    for name, tp in params.items():
        fields[name] = Arr(Int()) if getattr(tp, "__origin__", None) is list else field_schema(tp)
    doc = " ".join((fn.__doc__ or "").strip().split("\n\n")[0].split())
    return Obj({
        "kind": Const("move"),
        "key": Const(key),
        "inputs": Arr(TENSOR_NAME, n, n),
        "outputs": Arr(TENSOR_NAME, 1, None if several else 1),
        "params": Obj(fields, title=f"{key} params"),
        "name": Str(max_len=512),
    }, title=f"movement op {key}", doc=doc)


_BRANCHES: dict[int, dict[str, Obj]] = {}


def op_branches() -> dict[str, Obj]:
    """Every op key → its schema (rebuilt when the variant registry changes)."""
    gen = generation()
    hit = _BRANCHES.get(gen)
    if hit is None:
        hit = {v.key: _kernel_branch(v.key) for v in variants()}
        hit.update({k: _movement_branch(k) for k in sorted(MOVEMENT)})
        _BRANCHES.clear()
        _BRANCHES[gen] = hit
    return hit


OP = Tagged("key", op_branches, what="op key (a kernel variant family.name or a movement op)")


def program_schema(with_hashes: bool = True) -> Ref:
    """``program.json`` (``with_hashes``: the ``const_sha256`` table) or the ``program``
    of a golden program/block case (whose constants are the case's param tensors)."""
    fields: dict[str, Node] = {
        "program_format": IntConst(PROGRAM_FORMAT, doc="layout version of program files"),
        "refq_version": Str(max_len=64, doc="the refq that wrote the file (information)"),
        "name": Str(max_len=512),
        "meta": Json(obj=True, doc="information (method, model, bits, ...) copied into reports; "
                     "no computation reads it"),
        "inputs": Arr(TENSOR_NAME, doc="the tensors of kind input, in order"),
        "outputs": Arr(TENSOR_NAME, lo=1),
        "tensors": Map(TENSOR_SCHEMA, keys=TENSOR_NAME),
        "ops": Arr(OP),
    }
    if with_hashes:
        fields["const_sha256"] = Map(SHA256, keys=TENSOR_NAME,
                                     doc="sha256 of consts/<name>.npy for every const")
    node = Obj(fields, title="refq integer program")
    return Ref("program" if with_hashes else "program_in_case", node)


def _where(file: object, path: str) -> str:
    return f"{file}: at {path}"


def _shape(program: Program, name: str) -> tuple[int, ...]:
    return program.tensors[name].shape


def _check_movement(program: Program, i: int, op: Op, file: object) -> None:
    """Movement params against the declared input shapes (no NumPy error at run time)."""
    at = _where(file, f"$.ops[{i}].params")
    p = op.params
    shapes = [_shape(program, t) for t in op.inputs if t in program.tensors]
    ndim = len(shapes[0]) if shapes else 0
    if "axis" in p and not -ndim <= p["axis"] < ndim:
        raise SpecError(f"{at}.axis: {p['axis']} outside [{-ndim}, {ndim}) for the "
                        f"{ndim}-d input {op.inputs[0]!r}")
    if op.key == "transpose" and sorted(p["perm"]) != list(range(ndim)):
        raise SpecError(f"{at}.perm: {p['perm']} is not a permutation of 0..{ndim - 1}")
    if op.key == "split":
        if p["sections"] < 1 or p["sections"] != len(op.outputs):
            raise SpecError(f"{at}.sections: {p['sections']}, but the op has "
                            f"{len(op.outputs)} outputs")
        size = shapes[0][p["axis"]] if shapes else -1
        if size >= 0 and size % p["sections"]:
            raise SpecError(f"{at}.sections: {p['sections']} does not divide axis "
                            f"{p['axis']} of size {size}")
    if op.key == "patchify" and (p["patch"] < 1 or ndim != 4):
        raise SpecError(f"{at}.patch: needs a patch >= 1 and a 4-d input, got {p['patch']} "
                        f"and {ndim}-d")
    if op.key == "reshape":
        dims = p["shape"]
        if any(d < -1 for d in dims) or -1 in dims[1:] or (-1 in dims[:1] and ndim == 0):
            raise SpecError(f"{at}.shape: {dims}: dims >= 0, -1 only as the batch dimension")
        if shapes and -1 not in shapes[0] and -1 not in dims:
            n_in, n_out = _numel(shapes[0]), _numel(tuple(dims))
            if n_in != n_out:
                raise SpecError(f"{at}.shape: {dims} holds {n_out} elements, the input "
                                f"{n_in}")
    if op.key in ("mean_pool", "shift_left") and not 0 <= p["shift"] <= 62:
        raise SpecError(f"{at}.shift: {p['shift']} outside 0..62")
    if op.key == "select" and shapes and shapes[0][p["axis"]] >= 0:
        size = shapes[0][p["axis"]]
        if not -size <= p["index"] < size:
            raise SpecError(f"{at}.index: {p['index']} outside an axis of size {size}")


def _numel(shape: tuple[int, ...]) -> int:
    n = 1
    for d in shape:
        n *= d
    return n


def program_from_dict(d: Any, file: object, with_hashes: bool = True,
                      checked: bool = False) -> Program:
    """A Program (without its constants' values) from a document checked against
    :func:`program_schema` (``checked``: already done, e.g. as part of a golden case) and
    the semantic checks (module docstring); SpecError naming ``file`` and the JSON path."""
    if not checked:
        validate(program_schema(with_hashes), d, file)
    tensors = {}
    for name, t in d["tensors"].items():
        try:
            tensors[name] = TensorDecl.from_checked_dict(name, t)
        except SpecError as exc:
            raise SpecError(f"{_where(file, f'$.tensors[{name!r}]')}: {exc}") from None
    declared_inputs = [n for n, t in tensors.items() if t.kind == "input"]
    if sorted(d["inputs"]) != sorted(declared_inputs) or len(set(d["inputs"])) != len(
            d["inputs"]):
        raise SpecError(f"{_where(file, '$.inputs')}: {d['inputs']} must list each tensor of "
                        f"kind input once ({declared_inputs})")
    for key in ("outputs",):
        for j, t in enumerate(d[key]):
            if t not in tensors:
                raise SpecError(f"{_where(file, f'$.{key}[{j}]')}: {t!r} is not declared")
        if len(set(d[key])) != len(d[key]):
            raise SpecError(f"{_where(file, f'$.{key}')}: a tensor is listed twice")
    ops = [Op(o["kind"], o["key"], tuple(o["inputs"]), tuple(o["outputs"]), o["params"],
              o["name"]) for o in d["ops"]]
    program = Program(d["name"], tensors, {}, ops, list(d["inputs"]), list(d["outputs"]),
                      d["meta"])
    for i, op in enumerate(ops):
        for j, t in enumerate((*op.inputs, *op.outputs)):
            if t not in tensors:
                part = "inputs" if j < len(op.inputs) else "outputs"
                k = j if j < len(op.inputs) else j - len(op.inputs)
                raise SpecError(f"{_where(file, f'$.ops[{i}].{part}[{k}]')}: tensor {t!r} is "
                                "not declared")
        if op.kind == "kernel":
            try:
                parsed = lookup(op.key).params_type.from_checked_dict(op.params)
            except SpecError as exc:
                raise SpecError(f"{_where(file, f'$.ops[{i}].params')}: {exc}") from None
            lookup(op.key).check_params(parsed)
        else:
            _check_movement(program, i, op, file)
    return program


def check_program(program: Program, file: object) -> None:
    """:meth:`Program.validate` with ``file`` named in its error."""
    try:
        program.validate()
    except SpecError as exc:
        raise SpecError(f"{file}: {exc}") from None


__all__ = ["OP", "SHA256", "check_program", "movement_signature", "op_branches",
           "program_from_dict", "program_schema"]
