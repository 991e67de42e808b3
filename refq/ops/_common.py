"""Shared plumbing of the integer kernels: parameter containers and argument checks.

Parameter containers are frozen dataclasses of ints, tuples of ints, strings and
:class:`~refq.intmath.IntFormat` values. :class:`Params` gives them a uniform, JSON-able
``to_dict`` / ``from_dict`` (formats are written by name, ``"int8"``) and a validation hook.
"""

from __future__ import annotations

from dataclasses import fields
from functools import lru_cache
from types import UnionType
from typing import Any, ClassVar, TypeVar, Union, get_args, get_origin, get_type_hints

import numpy as np

from refq.errors import SpecError
from refq.files.schema import (
    AnyOf,
    Arr,
    Bool,
    Const,
    Int,
    Invalid,
    Node,
    Obj,
    Optional,
    Ref,
    Str,
    first_difference,
    same,
)
from refq.intmath import IntArray, IntFormat, as_int64, check_range

P = TypeVar("P", bound="Params")


def _is_int(v: Any) -> bool:
    return isinstance(v, (int, np.integer)) and not isinstance(v, (bool, np.bool_))


class Params:
    """Mixin for frozen parameter dataclasses: (de)serialisation and type checks.

    The JSON form (:meth:`to_dict`) has one key per field: formats by name (``"int8"``),
    tuples as lists, nested Params as objects. A field named in :attr:`OMIT_NONE` is left
    out when None (its absence means None); every other field is always written.
    :meth:`from_dict` is the strict inverse: the declared schema (:func:`params_schema`,
    derived from the field types) with no default filled in, then the dataclass's own
    checks, then the canonical-form check — the parsed params must write back exactly the
    dict read, so a value the constructor would fill in or normalise is an error, not a
    silent change.
    """

    OMIT_NONE: ClassVar[tuple[str, ...]] = ()
    """Fields written only when not None (their absence in a file means None)."""

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for f in fields(self):  # type: ignore[arg-type]
            v = getattr(self, f.name)
            if v is None and f.name in self.OMIT_NONE:
                continue
            if isinstance(v, IntFormat):
                out[f.name] = v.name
            elif isinstance(v, Params):
                out[f.name] = v.to_dict()
            elif isinstance(v, tuple):
                out[f.name] = [int(e) for e in v]
            else:
                out[f.name] = v
        return out

    @classmethod
    def from_dict(cls: type[P], d: Any) -> P:
        """Parse the JSON form (class docstring); SpecError naming the JSON path."""
        try:
            params_schema(cls).check(d, ())
        except Invalid as exc:
            raise SpecError(f"{cls.__name__}: {exc}") from None
        return cls.from_checked_dict(d)

    @classmethod
    def from_checked_dict(cls: type[P], d: dict[str, Any]) -> P:
        """:meth:`from_dict` of a dict already checked against :func:`params_schema` (e.g.
        as part of a program document): the dataclass's checks and the canonical form."""
        types = field_types(cls)
        kwargs = {name: _decode(types[name], v) for name, v in d.items()}
        try:
            obj = cls(**kwargs)
        except TypeError as e:  # pragma: no cover - the schema names every field
            raise SpecError(f"{cls.__name__}.from_dict: {e}") from None
        canonical = obj.to_dict()
        if not same(canonical, d):
            raise SpecError(f"{cls.__name__}: {first_difference(d, canonical)}")
        return obj


def field_types(cls: type) -> dict[str, Any]:
    """The resolved type of each dataclass field of ``cls`` (its annotations evaluated in
    its module, so a nested Params type is the class itself, not a string)."""
    cached = _FIELD_TYPES.get(cls)
    if cached is None:
        hints = get_type_hints(cls)
        cached = {f.name: hints[f.name] for f in fields(cls)}
        _FIELD_TYPES[cls] = cached
    return cached


_FIELD_TYPES: dict[type, dict[str, Any]] = {}


def _decode(tp: Any, v: Any) -> Any:
    """A JSON value as the field type ``tp`` holds it: a format name as IntFormat, a list as
    a tuple, a dict as the nested Params type (also inside ``X | None``); else as is."""
    options = get_args(tp) if get_origin(tp) in (Union, UnionType) else (tp,)
    for t in options:
        if t is IntFormat and isinstance(v, str):
            return IntFormat.parse(v)
        if (t is tuple or get_origin(t) is tuple) and isinstance(v, list):
            return tuple(v)
        if isinstance(t, type) and issubclass(t, Params) and isinstance(v, dict):
            return t.from_dict(v)
    return v


FORMAT_NAME = Str(pattern="u?int([2-9]|[1-5][0-9]|6[0-4])|uint1",
                  what="an integer format name (int2..int64, uint1..uint64)",
                  doc="an integer format: int<bits> (2..64, two's complement) or uint<bits> "
                  "(1..64)")
"""The name of an :class:`~refq.intmath.IntFormat` (``IntFormat.name``)."""


def field_schema(tp: Any) -> Node:
    """The schema of a params field of type ``tp`` (int, bool, str, IntFormat,
    tuple[int, ...], a nested Params type, or ``X | None`` of those)."""
    if get_origin(tp) in (Union, UnionType):
        opts = [t for t in get_args(tp) if t is not type(None)]
        node = AnyOf(*(field_schema(t) for t in opts)) if len(opts) > 1 else field_schema(opts[0])
        return Optional(node) if type(None) in get_args(tp) else node
    if tp is bool:
        return Bool()
    if tp is int:
        return Int()
    if tp is str:
        return Str(max_len=256)
    if tp is IntFormat:
        return FORMAT_NAME
    if get_origin(tp) is tuple and get_args(tp)[1:] == (Ellipsis,) and get_args(tp)[0] is int:
        return Arr(Int(), lo=1)
    if isinstance(tp, type) and issubclass(tp, Params):
        return params_schema(tp)
    raise SpecError(f"no schema for a params field of type {tp!r}")  # a new field type


def params_schema(cls: type[Params], bind: tuple[str, str] | None = None) -> Ref:
    """The declared schema of ``cls``'s JSON form, derived from its field types: every
    field required (those of ``OMIT_NONE`` optional, never null). ``bind`` = (field,
    value): that field must hold that value (a variant key binds its variant)."""
    key = (cls, bind)
    cached = _SCHEMAS.get(key)
    if cached is not None:
        return cached
    required: dict[str, Node] = {}
    optional: dict[str, Node] = {}
    for name, tp in field_types(cls).items():
        if name in cls.OMIT_NONE:
            args = tuple(t for t in get_args(tp) if t is not type(None))
            optional[name] = field_schema(args[0] if len(args) == 1 else tp)
        else:
            required[name] = field_schema(tp)
    if bind is not None:
        required[bind[0]] = Const(bind[1], doc="names the variant: must match the op key")
    node = Obj(required, optional, title=cls.__name__,
               doc=(cls.__doc__ or "").strip().split("\n\n")[0].replace("\n", " "))
    name = cls.__name__ + ("" if bind is None else f"_{bind[0]}_{bind[1]}")
    ref = Ref(name, node)
    _SCHEMAS[key] = ref
    return ref


_SCHEMAS: dict[tuple[type, tuple[str, str] | None], Ref] = {}


def need_int(v: Any, name: str, lo: int | None = None, hi: int | None = None) -> int:
    """Return ``v`` as a Python int, or raise SpecError (bool/float/out of [lo, hi])."""
    if not _is_int(v):
        raise SpecError(f"{name}: expected an int, got {v!r}")
    iv = int(v)
    if lo is not None and iv < lo:
        raise SpecError(f"{name}: {iv} < {lo}")
    if hi is not None and iv > hi:
        raise SpecError(f"{name}: {iv} > {hi}")
    return iv


def need_ints(v: Any, name: str, lo: int | None = None, hi: int | None = None) -> tuple[int, ...]:
    """Return a tuple of ints (a scalar becomes a 1-tuple), each checked like need_int."""
    if _is_int(v):
        return (need_int(v, name, lo, hi),)
    if not isinstance(v, (tuple, list)) or len(v) == 0:
        raise SpecError(f"{name}: expected an int or a non-empty tuple of ints, got {v!r}")
    if all(type(e) is int for e in v):  # fast path (tables): plain ints, bounds by min/max
        t = tuple(v)
        if (lo is None or min(t) >= lo) and (hi is None or max(t) <= hi):
            return t
    return tuple(need_int(e, f"{name}[{i}]", lo, hi) for i, e in enumerate(v))


def need_format(v: Any, name: str) -> IntFormat:
    if not isinstance(v, IntFormat):
        raise SpecError(f"{name}: expected an IntFormat, got {v!r}")
    return v


def need_shift_exp(p: Any) -> None:
    """The fields of I-ViT's shift-exp params (Shiftmax, ShiftGELU): x0_int = ⌊-1/S⌋ < 0
    in int32, n in 0..30 with n·x0_int in int32, out_bits in 2..31, in_format."""
    need_int(p.x0_int, "x0_int", -(2**31), -1)
    need_int(p.n, "n", 0, 30)
    need_int(p.out_bits, "out_bits", 2, 31)
    need_format(p.in_format, "in_format")
    if p.n * p.x0_int < -(2**31):
        raise SpecError(f"{type(p).__name__}: n·x0_int does not fit int32")


def need_choice(v: Any, name: str, choices: tuple[str, ...]) -> str:
    if v not in choices:
        raise SpecError(f"{name}: {v!r} is not one of {choices}")
    return str(v)


def int_input(x: Any, fmt: IntFormat, name: str, op: str, min_ndim: int = 0) -> IntArray:
    """Validate an integer input tensor: integer dtype (SpecError) within ``fmt`` (RangeError)."""
    arr = as_int64(x, name)
    if arr.ndim < min_ndim:
        raise SpecError(f"{op}: {name} needs at least {min_ndim} dimension(s), got {arr.shape}")
    return check_range(arr, fmt, name, op)


def per_channel(values: tuple[int, ...], channels: int, name: str, op: str) -> IntArray:
    """A per-tensor (length 1) or per-channel (length ``channels``) int vector as int64
    (read-only; converted once per distinct tuple)."""
    if len(values) not in (1, channels):
        raise SpecError(f"{op}: {name} has {len(values)} entries; expected 1 or {channels}")
    return _int_vector(tuple(values))


@lru_cache(maxsize=1024)
def _int_vector(values: tuple[int, ...]) -> IntArray:
    arr = np.asarray(values, dtype=np.int64)
    arr.setflags(write=False)
    return arr


@lru_cache(maxsize=256, typed=True)
def signed(bits: int) -> IntFormat:
    """IntFormat(bits, True), cached (formats are immutable values)."""
    return IntFormat(bits, True)


@lru_cache(maxsize=256, typed=True)
def unsigned(bits: int) -> IntFormat:
    """IntFormat(bits, False), cached (formats are immutable values)."""
    return IntFormat(bits, False)


__all__ = [
    "FORMAT_NAME",
    "Params",
    "field_schema",
    "field_types",
    "int_input",
    "need_choice",
    "need_format",
    "need_int",
    "need_ints",
    "params_schema",
    "per_channel",
    "signed",
    "unsigned",
]
