"""Recipe options declared as data: a frozen dataclass per recipe, validated on
construction (type, choices, ranges), built from a ``{key: value}`` mapping with unknown
keys refused — naming the valid keys and the nearest one ("did you mean") — before any
calibration work starts.

Field types: ``bool``, ``int``, ``float`` (an int is accepted and converted), ``str`` with
a ``Literal[...]`` annotation (its choices), and ``X | None``. Range checks live in a
subclass's :meth:`RecipeOptions.check`.
"""

from __future__ import annotations

import dataclasses
import difflib
import typing
from collections.abc import Mapping
from typing import Any, ClassVar, TypeVar

from refq.errors import SpecError

Opts = TypeVar("Opts", bound="RecipeOptions")


def did_you_mean(word: str, choices: typing.Iterable[str]) -> str:
    """`` (did you mean 'x'?)`` for the nearest choice, or an empty string."""
    near = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f" (did you mean {near[0]!r}?)" if near else ""


def _check_value(where: str, value: Any, hint: Any) -> Any:
    """``value`` checked against the annotation ``hint`` (and converted int -> float)."""
    origin = typing.get_origin(hint)
    args = typing.get_args(hint)
    if origin in (typing.Union, getattr(__import__("types"), "UnionType", None)):
        if value is None and type(None) in args:
            return None
        inner = [a for a in args if a is not type(None)]
        if len(inner) == 1:
            return _check_value(where, value, inner[0])
    if origin is typing.Literal:
        if value not in args:
            raise SpecError(f"{where} must be one of {list(args)}, got {value!r}"
                            + (did_you_mean(value, [str(a) for a in args])
                               if isinstance(value, str) else ""))
        return value
    if hint is bool:
        if not isinstance(value, bool):
            raise SpecError(f"{where} must be true or false, got {value!r}")
        return value
    if hint is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise SpecError(f"{where} must be an integer, got {value!r}")
        return value
    if hint is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise SpecError(f"{where} must be a number, got {value!r}")
        return float(value)
    if hint is str:
        if not isinstance(value, str):
            raise SpecError(f"{where} must be a string, got {value!r}")
        return value
    raise SpecError(f"{where}: unsupported option type {hint!r}")  # pragma: no cover


@dataclasses.dataclass(frozen=True)
class RecipeOptions:
    """Base of the per-recipe options (module docstring). ``METHOD`` names the recipe in
    messages; each field's default is the recipe's default (the official code's choice
    unless the field's docs say otherwise)."""

    METHOD: ClassVar[str] = "recipe"

    def __post_init__(self) -> None:
        hints = typing.get_type_hints(type(self))
        for f in dataclasses.fields(self):
            v = _check_value(f"{self.METHOD}.{f.name}", getattr(self, f.name), hints[f.name])
            object.__setattr__(self, f.name, v)
        self.check()

    def check(self) -> None:
        """Range checks of a subclass (SpecError)."""

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    @classmethod
    def from_mapping(cls: type[Opts], opts: Mapping[str, Any]) -> Opts:
        """The options of ``opts`` over the defaults; SpecError naming an unknown key, the
        valid keys and the nearest one."""
        keys = cls.keys()
        for k in opts:
            if k not in keys:
                valid = ", ".join(keys) if keys else "none"
                raise SpecError(f"method {cls.METHOD!r}: unknown option {k!r}"
                                f"{did_you_mean(k, keys)}; valid options: {valid}")
        return cls(**dict(opts))

    def as_dict(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


def positive(where: str, v: int | float | None) -> None:
    """SpecError unless ``v`` is None or > 0."""
    if v is not None and not v > 0:
        raise SpecError(f"{where} must be > 0, got {v!r}")


__all__ = ["RecipeOptions", "did_you_mean", "positive"]
