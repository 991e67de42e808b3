"""Declared schemas of refq's JSON files: one tree of nodes per format that both checks a
parsed document (every error names the JSON path and what was expected) and publishes
itself as JSON Schema (draft 2020-12) for other tools.

A node never fills in a default: a missing key is an error unless the node declares it
optional (and then its absence means something the format states, never a guessed value);
an unknown key is an error naming the close known keys. Integers are bounded (int64 unless
narrower bounds are declared), numbers are finite, free-form JSON is depth-bounded.

The formats themselves are declared where their data lives (``refq.program.schema``,
``refq.quant.spec``, ``refq.nn.configs``, ``refq.golden``, ``refq.crosscheck.known``) and
derived from the code's own declarations (params dataclasses, the variant registry, the
quantizer registry, the config dataclasses); :mod:`refq.schemas` collects and publishes
them. Imports nothing of refq but errors.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Callable, Mapping
from typing import Any

from refq.errors import RefqError, SpecError

Where = tuple[str | int, ...]
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INT = {int}
FLOAT_MAX = 1.7976931348623157e308
"""The largest finite float64: numbers beyond it (as JSON integers) are refused."""
JSON_DEPTH = 64
"""Deepest nesting of free-form JSON (notes, meta) any reader accepts."""

_IDENT = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


def jpath(where: Where) -> str:
    """``$.ops[3].params`` (keys that are not identifiers bracketed and quoted)."""
    out = "$"
    for p in where:
        if isinstance(p, int):
            out += f"[{p}]"
        elif _IDENT.match(p):
            out += f".{p}"
        else:
            out += "[" + repr(p) + "]"
    return out


class Invalid(Exception):
    """A document fails its schema at ``where`` (raised by nodes; readers turn it into their
    RefqError subclass naming the file with :func:`validate`)."""

    def __init__(self, where: Where, message: str) -> None:
        super().__init__(f"at {jpath(where)}: {message}")
        self.where = where
        self.message = message


def did_you_mean(name: str, known: list[str] | tuple[str, ...] | set[str]) -> str:
    close = difflib.get_close_matches(str(name), sorted(str(k) for k in known), n=3)
    return f"; did you mean {', '.join(repr(c) for c in close)}?" if close else ""


def near_miss(a: str, b: str) -> bool:
    """``a`` is ``b`` with one character changed, added, dropped, swapped with its
    neighbour or of another case (the misspellings of a known key that an open object —
    one allowing other keys — still refuses)."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if a.lower() == b.lower():
        return True
    if len(a) == len(b):
        diff = [i for i, (x, y) in enumerate(zip(a, b, strict=True)) if x != y]
        return len(diff) == 1 or (len(diff) == 2 and diff[1] == diff[0] + 1
                                  and a[diff[0]] == b[diff[1]] and a[diff[1]] == b[diff[0]])
    short, long_ = (a, b) if len(a) < len(b) else (b, a)
    return any(long_[:i] + long_[i + 1:] == short for i in range(len(long_)))


def _got(v: Any) -> str:
    if v is None:
        return "null"
    if isinstance(v, bool):
        return "a boolean"
    if isinstance(v, int):
        return f"the integer {v}" if abs(v) < 10**30 else "a huge integer"
    if isinstance(v, float):
        return f"the number {v!r}"
    if isinstance(v, str):
        return f"the string {v[:60]!r}" + ("..." if len(v) > 60 else "")
    if isinstance(v, list):
        return f"an array of {len(v)}"
    if isinstance(v, dict):
        return "an object"
    return type(v).__name__


class Node:
    """A schema node: :meth:`check` a parsed JSON value, :meth:`json` its JSON Schema."""

    expected = "a value"

    def check(self, v: Any, where: Where) -> None:  # pragma: no cover - abstract
        raise NotImplementedError

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:  # pragma: no cover - abstract
        raise NotImplementedError

    def fail(self, v: Any, where: Where) -> Invalid:
        return Invalid(where, f"expected {self.expected}, got {_got(v)}")


class Int(Node):
    """An integer (not a boolean) in [lo, hi]; int64 unless narrower bounds are given."""

    def __init__(self, lo: int | None = INT64_MIN, hi: int | None = INT64_MAX,
                 doc: str = "") -> None:
        self.lo = INT64_MIN if lo is None else lo
        self.hi = INT64_MAX if hi is None else hi
        self.doc = doc
        self.expected = f"an integer in [{self.lo}, {self.hi}]"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not int or not self.lo <= v <= self.hi:
            raise self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        return _doc({"type": "integer", "minimum": self.lo, "maximum": self.hi}, self.doc)


class Num(Node):
    """A finite number (integer or float, not a boolean) in [lo, hi] (``open`` excludes
    ``lo``)."""

    def __init__(self, lo: float | None = None, hi: float | None = None, open_lo: bool = False,
                 doc: str = "") -> None:
        self.lo, self.hi, self.open_lo, self.doc = lo, hi, open_lo, doc
        rng = ("" if lo is None and hi is None else
               f" in {'(' if open_lo else '['}{'-inf' if lo is None else lo}, "
               f"{'inf' if hi is None else hi}]")
        self.expected = f"a finite number{rng}"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is float:
            if not math.isfinite(v):
                raise self.fail(v, where)
        elif type(v) is not int or not -FLOAT_MAX <= v <= FLOAT_MAX:  # float(v) is finite
            raise self.fail(v, where)
        if self.lo is not None and (v <= self.lo if self.open_lo else v < self.lo):
            raise self.fail(v, where)
        if self.hi is not None and v > self.hi:
            raise self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "number"}
        out["exclusiveMinimum" if self.open_lo else "minimum"] = (
            -FLOAT_MAX if self.lo is None else self.lo)
        out["maximum"] = FLOAT_MAX if self.hi is None else self.hi
        return _doc(out, self.doc)


class Bool(Node):
    expected = "true or false"

    def __init__(self, doc: str = "") -> None:
        self.doc = doc

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not bool:
            raise self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        return _doc({"type": "boolean"}, self.doc)


class Null(Node):
    expected = "null"

    def check(self, v: Any, where: Where) -> None:
        if v is not None:
            raise self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        return {"type": "null"}


class Str(Node):
    """A string: any (up to ``max_len``), one of ``enum``, or matching ``pattern`` (a
    regular expression written for both Python and JSON Schema: ASCII classes only)."""

    def __init__(self, enum: tuple[str, ...] | None = None, pattern: str | None = None,
                 max_len: int = 1 << 16, doc: str = "", what: str = "") -> None:
        self.enum, self.pattern, self.max_len, self.doc = enum, pattern, max_len, doc
        self._re = re.compile(pattern) if pattern else None
        if what:
            self.expected = what
        elif enum is not None:
            shown = ", ".join(repr(e) for e in enum[:12]) + (", ..." if len(enum) > 12 else "")
            self.expected = f"one of {shown}" if len(enum) != 1 else repr(enum[0])
        elif pattern:
            self.expected = f"a string matching {pattern}"
        else:
            self.expected = "a string"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not str or len(v) > self.max_len:
            raise self.fail(v, where)
        if self.enum is not None and v not in self.enum:
            raise Invalid(where, f"expected {self.expected}, got {_got(v)}"
                          f"{did_you_mean(v, self.enum)}")
        if self._re is not None and not self._re.fullmatch(v):
            raise self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        if self.enum is not None:
            out: dict[str, Any] = ({"const": self.enum[0]} if len(self.enum) == 1
                                   else {"enum": list(self.enum)})
            return _doc({"type": "string", **out}, self.doc)
        out = {"type": "string", "maxLength": self.max_len}
        if self.pattern:
            out["pattern"] = "^(?:" + self.pattern + ")$"
        return _doc(out, self.doc)


def Const(value: str, doc: str = "") -> Str:
    return Str(enum=(value,), doc=doc)


class IntConst(Node):
    def __init__(self, value: int, doc: str = "") -> None:
        self.value, self.doc = value, doc
        self.expected = f"the integer {value}"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not int or v != self.value:
            raise self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        return _doc({"type": "integer", "const": self.value}, self.doc)


class Arr(Node):
    """An array of ``items`` with ``lo``..``hi`` elements."""

    def __init__(self, items: Node, lo: int = 0, hi: int | None = None, doc: str = "") -> None:
        self.items, self.lo, self.hi, self.doc = items, lo, hi, doc
        n = f"{lo}.." + ("" if hi is None else str(hi))
        self.expected = f"an array ({n} elements) of {items.expected}"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not list or len(v) < self.lo or (self.hi is not None and len(v) > self.hi):
            raise self.fail(v, where)
        it = self.items
        if (type(it) is Int and v and set(map(type, v)) == _INT  # fast path (tables)
                and it.lo <= min(v) and max(v) <= it.hi):
            return
        for i, e in enumerate(v):
            it.check(e, (*where, i))

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "array", "items": self.items.json(defs)}
        if self.lo:
            out["minItems"] = self.lo
        if self.hi is not None:
            out["maxItems"] = self.hi
        return _doc(out, self.doc)


class Nested(Node):
    """A ``leaf`` or an array of nested ones, at most ``depth`` levels (the nested-list
    form of an N-d array); rectangularity is the reader's semantic check."""

    def __init__(self, leaf: Node, depth: int = 8, name: str = "", doc: str = "") -> None:
        self.leaf, self.depth, self.doc = leaf, depth, doc
        self.name = name or "nested_" + type(leaf).__name__.lower()
        self.expected = f"{leaf.expected} or nested arrays of them"

    def check(self, v: Any, where: Where, level: int = 0) -> None:
        if type(v) is list:
            if level >= self.depth:
                raise Invalid(where, f"arrays nested deeper than {self.depth}")
            leaf = self.leaf
            if (type(leaf) is Num and leaf.lo is None and leaf.hi is None and v  # fast path
                    and all((type(e) is float and math.isfinite(e)) or type(e) is int
                            for e in v)
                    and all(abs(e) <= FLOAT_MAX for e in v if type(e) is int)):
                return
            for i, e in enumerate(v):
                self.check(e, (*where, i), level + 1)
            return
        self.leaf.check(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        if self.name not in defs:
            defs[self.name] = {}
            defs[self.name] = {"anyOf": [self.leaf.json(defs), {
                "type": "array", "items": {"$ref": f"#/$defs/{self.name}"}}]}
        return _doc({"$ref": f"#/$defs/{self.name}"}, self.doc)


class Obj(Node):
    """An object with exactly the ``required`` keys, any of the ``optional`` ones, and —
    only when ``extra`` is given — further keys whose values match ``extra``."""

    def __init__(self, required: Mapping[str, Node], optional: Mapping[str, Node] | None = None,
                 extra: Node | None = None, title: str = "", doc: str = "") -> None:
        self.required, self.optional = dict(required), dict(optional or {})
        self.extra, self.title, self.doc = extra, title, doc
        self.expected = f"an object ({title})" if title else "an object"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not dict:
            raise self.fail(v, where)
        req, opt = self.required, self.optional
        for k in req:
            if k not in v:
                raise Invalid(where, f"missing key {k!r} (expected {req[k].expected})")
        for k, e in v.items():
            node = req.get(k) or opt.get(k)
            if node is None:
                known = [*req, *opt]
                if self.extra is None:
                    raise Invalid(where, f"unknown key {k!r}{did_you_mean(k, known)}"
                                  f" (known keys: {', '.join(sorted(known))})")
                near = [n for n in known if near_miss(k, n)]
                if near:  # other keys are allowed here, but not a misspelled known one
                    raise Invalid(where, f"unknown key {k!r}: a misspelling of {near[0]!r}?")
                node = self.extra
            node.check(e, (*where, k))

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        props = {k: n.json(defs) for k, n in {**self.required, **self.optional}.items()}
        out: dict[str, Any] = {"type": "object", "properties": props,
                               "required": sorted(self.required)}
        out["additionalProperties"] = False if self.extra is None else self.extra.json(defs)
        if self.title:
            out["title"] = self.title
        return _doc(out, self.doc)


class Map(Node):
    """An object used as a mapping: any key matching ``keys``, every value ``values``."""

    def __init__(self, values: Node, keys: Str | None = None, lo: int = 0, doc: str = "") -> None:
        self.values, self.keys, self.lo, self.doc = values, keys or Str(max_len=1024), lo, doc
        self.expected = f"an object mapping names to {values.expected}"

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not dict or len(v) < self.lo:
            raise self.fail(v, where)
        keys, values = self.keys, self.values
        for k, e in v.items():
            try:
                keys.check(k, where)
            except Invalid as exc:
                raise Invalid(where, f"key {k!r}: {exc.message}") from None
            values.check(e, (*where, k))

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {"type": "object", "additionalProperties": self.values.json(defs),
                               "propertyNames": self.keys.json(defs)}
        if self.lo:
            out["minProperties"] = self.lo
        return _doc(out, self.doc)


class AnyOf(Node):
    """One of several nodes (tried in order; the error names every option)."""

    def __init__(self, *options: Node, doc: str = "") -> None:
        self.options, self.doc = options, doc
        self.expected = " or ".join(o.expected for o in options)

    def check(self, v: Any, where: Where) -> None:
        deepest: Invalid | None = None
        for o in self.options:
            try:
                o.check(v, where)
                return
            except Invalid as exc:
                if len(exc.where) > len(where) and (deepest is None
                                                    or len(exc.where) > len(deepest.where)):
                    deepest = exc
        raise deepest or self.fail(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        return _doc({"anyOf": [o.json(defs) for o in self.options]}, self.doc)


def Optional(node: Node) -> AnyOf:
    """``node`` or null."""
    return AnyOf(node, Null())


class Tagged(Node):
    """An object whose key ``tag`` (or keys: their values joined by ".") selects its schema
    among ``branches`` (each an Obj that states the tag itself); an unknown tag names the
    close known ones."""

    def __init__(self, tag: str | tuple[str, ...], branches: Callable[[], Mapping[str, Node]],
                 what: str = "", doc: str = "", default: Node | None = None) -> None:
        self.tags = (tag,) if isinstance(tag, str) else tag
        self._branches, self.doc, self.default = branches, doc, default
        self.what = what or " + ".join(self.tags)
        self.expected = f"an object selected by its {' and '.join(map(repr, self.tags))}"

    @property
    def branches(self) -> Mapping[str, Node]:
        return self._branches()

    def check(self, v: Any, where: Where) -> None:
        if type(v) is not dict:
            raise self.fail(v, where)
        for t in self.tags:
            if t not in v:
                raise Invalid(where, f"missing key {t!r} (the {self.what})")
        values = [v[t] for t in self.tags]
        branches = self.branches
        tag = ".".join(values) if all(type(x) is str for x in values) else None
        node = branches.get(tag) if tag is not None else None
        if node is None and self.default is not None and tag is not None:
            near = [k for k in branches if near_miss(tag, k)]
            if near:
                raise Invalid((*where, self.tags[-1]), f"{self.what} {tag!r}: a misspelling "
                              f"of {near[0]!r}?")
            node = self.default
        if node is None:
            shown = repr(tag) if tag is not None else _got(values[0])
            raise Invalid((*where, self.tags[-1]), f"unknown {self.what} {shown}"
                          f"{did_you_mean(str(tag), list(branches))}")
        node.check(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        """A known tag (``enum``, or one of the known combinations), then each branch under
        ``if`` its tag ``then`` its schema (validators check one branch, not all)."""
        branches = sorted(self.branches.items())

        def consts(key: str) -> dict[str, Any]:
            return {t: {"const": part} for t, part in zip(self.tags, key.split(".", len(
                self.tags) - 1), strict=True)}

        out: dict[str, Any] = {"type": "object", "required": list(self.tags)}
        known: list[dict[str, Any]] = [{"properties": consts(k)} for k, _ in branches]
        if self.default is None:
            if len(self.tags) == 1:
                out["properties"] = {self.tags[0]: {"enum": [k for k, _ in branches]}}
            else:
                out["anyOf"] = known
        out["allOf"] = [{"if": {"properties": consts(k), "required": list(self.tags)},
                         "then": b.json(defs)} for k, b in branches]
        if self.default is not None:
            out["allOf"].append({"if": {"not": {"anyOf": known}},
                                 "then": self.default.json(defs)})
        return _doc(out, self.doc)


class Json(Node):
    """Free-form JSON (informational records: notes, meta — read back and written, never
    computed with): finite numbers, nesting at most ``depth`` levels."""

    expected = "JSON data"

    def __init__(self, depth: int = JSON_DEPTH, obj: bool = False, doc: str = "") -> None:
        self.depth, self.obj, self.doc = depth, obj, doc
        if obj:
            self.expected = "a JSON object"

    def check(self, v: Any, where: Where) -> None:
        if self.obj and type(v) is not dict:
            raise self.fail(v, where)
        self._walk(v, where, 0)

    def _walk(self, v: Any, where: Where, level: int) -> None:
        t = type(v)
        if t is float and not math.isfinite(v):
            raise Invalid(where, f"expected a finite number, got {v!r}")
        if t is list or t is dict:
            if level >= self.depth:
                raise Invalid(where, f"nested deeper than {self.depth} levels")
            items = v.items() if t is dict else enumerate(v)
            for k, e in items:
                if type(e) in (list, dict, float):
                    self._walk(e, (*where, k), level + 1)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        """Any JSON (the depth bound is not expressible in JSON Schema)."""
        return _doc({"type": "object"} if self.obj else {}, self.doc)


class Ref(Node):
    """A named node, published once under ``$defs`` and referenced."""

    def __init__(self, name: str, node: Node) -> None:
        self.name, self.node = name, node
        self.expected = node.expected

    def check(self, v: Any, where: Where) -> None:
        self.node.check(v, where)

    def json(self, defs: dict[str, Any]) -> dict[str, Any]:
        if self.name not in defs:
            defs[self.name] = {}
            defs[self.name] = self.node.json(defs)
        return {"$ref": f"#/$defs/{self.name}"}


def same(a: Any, b: Any) -> bool:
    """``a == b`` with JSON types kept apart (``1``, ``1.0`` and ``True`` differ): the
    canonical-form comparison."""
    if type(a) is not type(b):
        return False
    if type(a) is dict:
        return a.keys() == b.keys() and all(same(a[k], b[k]) for k in a)
    if type(a) is list:
        return len(a) == len(b) and all(same(x, y) for x, y in zip(a, b, strict=True))
    return bool(a == b)


def first_difference(got: Any, want: Any, where: Where = ()) -> str:
    """Where a document read (``got``) differs from what the object parsed from it writes
    back (``want``): the message of the canonical-form check (nothing filled in or
    normalised silently)."""
    if isinstance(got, dict) and isinstance(want, dict):
        for k in want:
            if k not in got:
                return (f"at {jpath((*where, k))}: missing (the parsed value writes it: "
                        f"{_short(want[k])}; nothing is filled in on read)")
        for k in got:
            if k not in want:
                return f"at {jpath((*where, k))}: must be absent here (it is {_short(got[k])})"
            if not same(got[k], want[k]):
                return first_difference(got[k], want[k], (*where, k))
    if isinstance(got, list) and isinstance(want, list) and len(got) == len(want):
        for i, (a, b) in enumerate(zip(got, want, strict=True)):
            if not same(a, b):
                return first_difference(a, b, (*where, i))
    return (f"at {jpath(where)}: {_short(got)} is not in canonical form (the parsed value "
            f"writes {_short(want)})")


def _short(v: Any) -> str:
    text = repr(v)
    return text if len(text) <= 80 else text[:77] + "..."


def _doc(out: dict[str, Any], doc: str) -> dict[str, Any]:
    if doc:
        out["description"] = doc
    return out


def document(node: Node, name: str, title: str, description: str) -> dict[str, Any]:
    """The JSON Schema document of a file format (draft 2020-12)."""
    defs: dict[str, Any] = {}
    body = node.json(defs)
    out: dict[str, Any] = {
        "$schema": "https://json-schema.org/draft/2020-12/schema",
        "$id": f"https://refq.invalid/schemas/{name}.schema.json",
        "title": title,
        "description": description,
        **body,
    }
    if defs:
        out["$defs"] = dict(sorted(defs.items()))
    return out


def validate(node: Node, value: Any, file: object, error: type[RefqError] = SpecError,
             where: Where = ()) -> None:
    """Check ``value`` against ``node``; ``error`` naming ``file``, the JSON path and what
    was expected otherwise."""
    try:
        node.check(value, where)
    except Invalid as exc:
        raise error(f"{file}: {exc}") from None


__all__ = [
    "INT64_MAX",
    "INT64_MIN",
    "JSON_DEPTH",
    "AnyOf",
    "Arr",
    "Bool",
    "Const",
    "Int",
    "IntConst",
    "Invalid",
    "Json",
    "Map",
    "Nested",
    "Node",
    "Null",
    "Num",
    "Obj",
    "Optional",
    "Ref",
    "Str",
    "Tagged",
    "did_you_mean",
    "document",
    "first_difference",
    "jpath",
    "near_miss",
    "same",
    "validate",
]
