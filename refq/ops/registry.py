"""The variant registry: every integer kernel variant of :mod:`refq.ops`, declared once.

A *variant* is one integer algorithm of one kernel *family*: ``softmax.ibert`` is I-BERT's
integer softmax, ``requantize.double`` TFLite's double-rounding requantization. Its key is
``family.name``. Each variant is declared by a :class:`Variant` passed to :func:`declare` in
the module of its function, right after it, and carries everything the rest of refq needs:

- the function and its params type; the named inputs; the formats it accepts and produces
  (functions of the params, and a one-line text for people);
- its contract as data: declared intermediate widths (:class:`Width`), every rounding
  (:class:`RoundingStep`), what guarantees the output range (:data:`OutputRange`), the
  public source and the accuracy bound against the float function it approximates;
- a binding: the params field that names the variant, if any (``RequantParams.family``,
  ``AddParams.scheme``) — a key refuses params that name another variant;
- pointers (:class:`Ref`) to its real → integer parameter derivation (:mod:`refq.params`),
  the generators of its golden kernel cases (:mod:`refq.golden.cases_kernels`) and of its
  hypothesis cross-check strategy (:mod:`refq.crosscheck.strategies`).

Everything that lists variants is derived from this registry: the family dispatchers
(``softmax(..., variant=)``, ``gelu``, ``layernorm``, ``requantize``, ``add``) and their
``*_VARIANTS``, :data:`refq.ops.table.KERNELS`, the golden kernel cases, the cross-check
strategies, the interpreter's output-range rules (:mod:`refq.program.run`), ``refq kernels``
and the variant tables of docs/kernels.md.

Extension points (for facts added later, e.g. a TOSA lowering, coverage bins, an engine's
own variants): (1) a new optional field of :class:`Variant` with a default, documented
here; (2) the ``meta`` mapping, keys namespaced by the layer that reads them
(``"tosa.lowering"``, ``"coverage.bins"``), values plain data or :class:`Ref` pointers —
never imports of a later stage. A layer reads its own keys and ignores the others.

Coverage keys (read by :mod:`refq.golden.coverage`): ``"coverage.bins"`` — the variant's
coverage points as ``"kind:intermediate"`` strings (``"tie:x·b / 2^c"``, ``"clamp:out"``;
the kinds and the bins each expands to are listed in :mod:`refq.golden.coverage_bins`);
``"coverage.model"`` — a :class:`Ref` to the function that samples those intermediates from
one call's inputs, params and output; ``"coverage.unreachable"`` — bin → the reason no input
can hit it; ``"coverage.corners"`` — a :class:`Ref` to the directed corner-case generator.

Observers (:func:`observing`): while one is installed, every call through a
:class:`Variant` (dispatchers, :meth:`Variant.compute`, the interpreter) hands the observer
the variant, its arguments and its output *after* computing it; with none installed the
cost is one empty-list test per call. Observers must not modify what they are given (the
coverage recorder receives read-only views), so results are the same with and without.

refq.ops never follows a :class:`Ref`: pointers name functions in later stages (params,
golden, crosscheck) and are resolved by those stages when they run them.
"""

from __future__ import annotations

import contextlib
import difflib
import importlib
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field, fields
from typing import Any, Literal, get_args

import numpy as np
import numpy.typing as npt

from refq.errors import SpecError
from refq.intmath import IntArray, IntFormat
from refq.intmath.rounding import ROUNDINGS
from refq.ops._common import Params

OutputRange = Literal["saturated", "checked", "proven", "unchecked"]
"""How the output stays inside ``out_format(params)``: ``saturated`` (clamped into it: the
spec), ``checked`` (the kernel raises RangeError otherwise, or proves it cannot happen),
``proven`` (by construction, e.g. entries of a validated table), ``unchecked`` (no
guarantee: the interpreter checks every element)."""
OUTPUT_RANGES: tuple[str, ...] = get_args(OutputRange)

Kept = Literal["checked", "proven", "saturated"]
"""How a declared intermediate stays in its width (see :data:`OutputRange`)."""
KEPT: tuple[str, ...] = get_args(Kept)


@dataclass(frozen=True)
class Width:
    """A declared intermediate (or the output): its name in the kernel's formulas, its
    format as text (may name params fields: ``uint<out_bits>``) and how it is kept there."""

    name: str
    fmt: str
    kept: Kept = "checked"

    def __post_init__(self) -> None:
        if self.kept not in KEPT:
            raise SpecError(f"Width {self.name!r}: kept {self.kept!r} not in {KEPT}")


@dataclass(frozen=True)
class RoundingStep:
    """One rounding of a kernel: where it happens and which of the six named roundings it is
    (:data:`refq.intmath.rounding.ROUNDINGS`), or ``"params.<field>"`` when a params field
    names it (e.g. dyadic requantization's ``params.rounding``)."""

    stage: str
    rounding: str

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS and not self.rounding.startswith("params."):
            raise SpecError(
                f"RoundingStep {self.stage!r}: {self.rounding!r} is neither one of "
                f"{ROUNDINGS} nor 'params.<field>'"
            )


@dataclass(frozen=True)
class Ref:
    """A pointer to a function of a later stage and the keyword arguments to call it with.

    ``target`` is ``"module:attribute"`` (imported when first called, by the stage that
    calls it) or the callable itself (e.g. a test's own generator). Calling the Ref calls
    the target with the positional arguments given and ``args`` merged under the keywords
    given."""

    target: str | Callable[..., Any]
    args: Mapping[str, Any] = field(default_factory=dict)

    def resolve(self) -> Callable[..., Any]:
        t = self.target
        if callable(t):
            return t
        module, sep, attr = t.partition(":")
        if not sep or not module or not attr:
            raise SpecError(f"Ref {t!r}: expected 'module:attribute'")
        try:
            obj = getattr(importlib.import_module(module), attr)
        except (ImportError, AttributeError) as exc:
            raise SpecError(f"Ref {t!r} does not resolve: {exc}") from None
        if not callable(obj):
            raise SpecError(f"Ref {t!r}: {type(obj).__name__} is not callable")
        fn: Callable[..., Any] = obj
        return fn

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        return self.resolve()(*args, **{**self.args, **kwargs})

    @property
    def label(self) -> str:
        """``module:attribute`` (for a callable: its module and qualified name)."""
        t = self.target
        if isinstance(t, str):
            return t
        return f"{getattr(t, '__module__', '?')}:{getattr(t, '__qualname__', repr(t))}"


def _in_format(p: Any) -> tuple[IntFormat, ...]:
    return (p.in_format,)


@dataclass(frozen=True)
class Variant:
    """One kernel variant (module docstring): ``fn(*inputs, params) -> y``."""

    family: str
    name: str
    fn: Callable[..., IntArray]
    params_type: type[Params]
    title: str
    """One line: what the variant is."""
    accepts: str
    """The input formats, for people (``out_format``/``in_formats`` are the functions)."""
    produces: str
    """The output format and the real value of one output LSB, for people."""
    out_format: Callable[[Any], IntFormat]
    widths: tuple[Width, ...]
    roundings: tuple[RoundingStep, ...]
    output: OutputRange
    source: str
    accuracy: str | None
    """Bound against the float function it approximates (None: exact, or no float twin)."""
    inputs: tuple[str, ...] = ("x",)
    in_formats: Callable[[Any], tuple[IntFormat, ...]] = _in_format
    binds: str | None = None
    """The params field whose value must equal ``name`` (a key binds its variant)."""
    derive: Ref | None = None
    """Real → integer params (refq.params): ``derive(scale, **family keywords)``."""
    golden: tuple[Ref, ...] = ()
    """Generators of golden kernel cases: ``ref(variant)`` → refq.golden CaseEntry list."""
    strategy: Ref | None = None
    """Hypothesis strategy: ``ref(variant)`` → a strategy drawing kernel Cases."""
    meta: Mapping[str, Any] = field(default_factory=dict)
    """Extension point: namespaced per-variant facts of later stages (module docstring)."""

    def __post_init__(self) -> None:
        for part, what in ((self.family, "family"), (self.name, "name")):
            if not part or not part.replace("_", "").isalnum() or not part[0].isalpha():
                raise SpecError(f"variant {what} {part!r}: letters, digits and _ only")
        if self.output not in OUTPUT_RANGES:
            raise SpecError(f"variant {self.key}: output {self.output!r} not in {OUTPUT_RANGES}")
        if not (isinstance(self.params_type, type) and issubclass(self.params_type, Params)):
            raise SpecError(f"variant {self.key}: params_type must be a Params class")
        if self.binds is not None and self.binds not in {
            f.name for f in fields(self.params_type)  # type: ignore[arg-type]
        }:
            raise SpecError(
                f"variant {self.key}: binds {self.binds!r}, not a field of "
                f"{self.params_type.__name__}"
            )
        if not self.inputs:
            raise SpecError(f"variant {self.key}: no inputs")

    @property
    def key(self) -> str:
        return f"{self.family}.{self.name}"

    @property
    def builtin(self) -> bool:
        """Declared by refq itself (its function lives in refq.ops)."""
        return str(getattr(self.fn, "__module__", "")).startswith("refq.ops.")

    def check_params(self, params: Any) -> None:
        """SpecError unless ``params`` is this variant's params type and, for a binding
        variant, names this variant."""
        if type(params) is not self.params_type:
            raise SpecError(
                f"{self.family}: variant {self.name!r} needs {self.params_type.__name__}, "
                f"got {type(params).__name__}"
            )
        if self.binds is not None:
            named = getattr(params, self.binds)
            if named != self.name:
                raise SpecError(
                    f"kernel {self.key}: params say {self.binds} {named!r} "
                    f"({self.family}.{named}), not {self.name!r}"
                )

    def __call__(self, *args: Any, **kwargs: Any) -> IntArray:
        """``fn(*args, **kwargs)`` after :meth:`check_params` on the last positional one."""
        if not args:
            raise SpecError(f"kernel {self.key}: called without params")
        self.check_params(args[-1])
        y = self.fn(*args, **kwargs)
        if _OBSERVERS:
            for observer in tuple(_OBSERVERS):
                observer(self, args, kwargs, y)
        return y

    def compute(self, inputs: Mapping[str, npt.NDArray[np.integer[Any]]], params: Any) -> IntArray:
        """Run on named inputs (``self.inputs``) with ``params``."""
        return self(*(inputs[n] for n in self.inputs), params)

    @property
    def op(self) -> str:
        """Deprecated alias of :attr:`family` (the former ``Kernel.op``)."""
        return self.family

    @property
    def variant(self) -> str:
        """Deprecated alias of :attr:`name` (the former ``Kernel.variant``)."""
        return self.name


Observer = Callable[[Variant, tuple[Any, ...], dict[str, Any], IntArray], None]
"""``observer(variant, args, kwargs, y)``: told of one finished variant call."""
_OBSERVERS: list[Observer] = []


@contextlib.contextmanager
def observing(observer: Observer) -> Iterator[Observer]:
    """Install ``observer`` for the duration of the block (module docstring: Observers)."""
    _OBSERVERS.append(observer)
    try:
        yield observer
    finally:
        _OBSERVERS.remove(observer)


_VARIANTS: dict[str, Variant] = {}
_DISPATCH: dict[tuple[str, type], tuple[Variant, ...]] = {}
"""(family, params type) → its variants, for :func:`dispatch`; cleared on every change."""
_GENERATION = [0]


def generation() -> int:
    """A number that changes whenever a variant is declared or unregistered (for caches of
    things derived from the registry, e.g. the program schema)."""
    return _GENERATION[0]


def declare(v: Variant) -> Variant:
    """Register ``v`` (SpecError if its key is taken); returns it."""
    if not isinstance(v, Variant):
        raise SpecError(f"declare: expected a Variant, got {type(v).__name__}")
    if v.key in _VARIANTS:
        raise SpecError(f"variant {v.key} declared twice")
    _VARIANTS[v.key] = v
    _DISPATCH.clear()
    _GENERATION[0] += 1
    return v


def unregister(key: str) -> Variant:
    """Remove a variant registered from outside refq.ops (e.g. by a test); refq's own
    variants cannot be removed."""
    v = lookup(key)
    if v.builtin:
        raise SpecError(f"variant {key} is refq's own: it cannot be unregistered")
    _DISPATCH.clear()
    _GENERATION[0] += 1
    return _VARIANTS.pop(key)


def did_you_mean(name: str, known: list[str]) -> str:
    close = difflib.get_close_matches(name, known, n=3)
    return f"; did you mean {', '.join(close)}?" if close else ""


def lookup(key: str) -> Variant:
    """The variant of ``family.name`` key; SpecError naming the close keys otherwise."""
    v = _VARIANTS.get(key)
    if v is None:
        known = sorted(_VARIANTS)
        raise SpecError(f"unknown kernel variant {key!r}{did_you_mean(key, known)} "
                        f"(known: {', '.join(known)})")
    return v


def variants(family: str | None = None) -> tuple[Variant, ...]:
    """Every registered variant (of ``family``), sorted by key."""
    return tuple(v for k, v in sorted(_VARIANTS.items()) if family in (None, v.family))


def families() -> tuple[str, ...]:
    return tuple(sorted({v.family for v in _VARIANTS.values()}))


def names(family: str) -> tuple[str, ...]:
    """The variant names of ``family``, sorted."""
    return tuple(v.name for v in variants(family))


def find(family: str, name: str) -> Variant:
    """The variant ``name`` of ``family``; SpecError listing the family's variants."""
    v = _VARIANTS.get(f"{family}.{name}")
    if v is None:
        known = list(names(family))
        raise SpecError(f"{family}: unknown variant {name!r}{did_you_mean(str(name), known)} "
                        f"(expected one of {tuple(known)})")
    return v


def bound(family: str, params_type: type[Params], field_name: str) -> tuple[str, ...]:
    """The names of ``family``'s variants that take ``params_type`` and bind it by
    ``field_name``: the values that field may hold."""
    return tuple(v.name for v in variants(family)
                 if v.params_type is params_type and v.binds == field_name)


def dispatch(family: str, params: Any) -> Variant:
    """The variant of ``family`` that ``params`` names (through its binding field), or the
    only variant taking that params type."""
    ptype = type(params)
    matches = _DISPATCH.get((family, ptype))
    if matches is None:
        matches = tuple(v for v in variants(family) if v.params_type is ptype)
        _DISPATCH[(family, ptype)] = matches
    if len(matches) == 1 and matches[0].binds is None:
        return matches[0]
    bind = [v for v in matches if v.binds is not None]
    if bind:
        named = getattr(params, bind[0].binds or "")
        for v in bind:
            if v.name == named:
                return v
        raise SpecError(f"{family}: params name variant {named!r}; "
                        f"expected one of {tuple(v.name for v in bind)}")
    raise SpecError(f"{family}: no single variant takes {ptype.__name__} "
                    f"({len(matches)} do): name the variant")


__all__ = [
    "KEPT",
    "OUTPUT_RANGES",
    "Kept",
    "OutputRange",
    "Ref",
    "RoundingStep",
    "Variant",
    "Width",
    "bound",
    "declare",
    "did_you_mean",
    "dispatch",
    "families",
    "find",
    "generation",
    "lookup",
    "names",
    "observing",
    "unregister",
    "variants",
]
