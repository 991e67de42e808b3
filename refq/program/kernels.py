"""The kernel choice of a lowering: one variant per kernel family, by profile or by name.

A choice maps each family that lowering picks a variant for (:data:`FAMILIES`) to a variant
name of the registry (:mod:`refq.ops.registry`). Named profiles (:data:`PROFILES`):

``refq``    softmax.refq, gelu.lut, layernorm.refq, add.ivit, requantize.dyadic (the default)
``ibert``   I-BERT: i-exp softmax, i-GELU, I-BERT LayerNorm
``ivit``    I-ViT: Shiftmax, ShiftGELU, I-LayerNorm, dyadic add
``tflite``  TFLite: the gemmlowp int8 softmax, TFLite (double-rounding) requantization of the
            GEMM accumulators

A choice is written as a profile (``"ibert"``), as ``family=variant`` items
(``"softmax=shiftmax,gelu=shiftgelu"``, the others from ``refq``), or both
(``"ivit,softmax=refq"``: the profile, then the items). The variants a lowering can use are
derived from the registry: those whose declaration has a ``meta["lower"]`` pointer (the
function that places the variant at its tap, :mod:`refq.program.lower_kernels`).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from refq.errors import SpecError
from refq.ops.registry import Variant, did_you_mean, find, names

FAMILIES: tuple[str, ...] = ("softmax", "gelu", "layernorm", "add", "requantize")
"""Families whose variant a lowering chooses (linear and matmul have one variant each)."""

PROFILES: dict[str, dict[str, str]] = {
    "refq": {"softmax": "refq", "gelu": "lut", "layernorm": "refq", "add": "ivit",
             "requantize": "dyadic"},
    "ibert": {"softmax": "ibert", "gelu": "ibert", "layernorm": "ibert", "add": "ivit",
              "requantize": "dyadic"},
    "ivit": {"softmax": "shiftmax", "gelu": "shiftgelu", "layernorm": "ivit", "add": "ivit",
             "requantize": "dyadic"},
    "tflite": {"softmax": "tflite", "gelu": "lut", "layernorm": "refq", "add": "ivit",
               "requantize": "double"},
}
DEFAULT = "refq"
FALLBACKS: dict[str, dict[str, str]] = {
    "tflite": {"requantize": "dyadic"},
}
"""Per profile, the variant a family falls back to at a tap where the profile's variant
cannot sit — recorded in the program's notes. TFLite accumulates in int32: a GEMM of wider
operands (non-uniform quantizers decoded to 16-bit levels) has an int48 accumulator, which
TFLite requantization cannot take, so it stays dyadic there. A family chosen by an explicit
``family=variant`` item never falls back: where that variant cannot sit, lowering raises."""


def lowerable(family: str) -> tuple[str, ...]:
    """The variants of ``family`` that lowering can place (a ``meta["lower"]`` pointer)."""
    return tuple(n for n in names(family) if "lower" in find(family, n).meta)


def _check(family: str, name: str, where: str) -> None:
    if family not in FAMILIES:
        raise SpecError(f"{where}: kernel family {family!r} is not chosen by lowering"
                        f"{did_you_mean(family, list(FAMILIES))} (families: "
                        f"{', '.join(FAMILIES)})")
    v = find(family, name)  # SpecError for an unknown variant, with close names
    if "lower" not in v.meta:
        raise SpecError(f"{where}: variant {v.key} is not lowered ({v.meta.get('lower.why', '')}"
                        f"lowerable: {', '.join(lowerable(family))})")


def parse(kernels: str | Mapping[str, str] | None) -> tuple[str | None, dict[str, str]]:
    """(profile or None, explicit family → variant items) of a choice as given."""
    if kernels is None:
        return None, {}
    if isinstance(kernels, Mapping):
        return None, {str(k): str(v) for k, v in kernels.items()}
    if not isinstance(kernels, str):
        raise SpecError(f"kernels: expected a profile or 'family=variant,...', got {kernels!r}")
    profile: str | None = None
    items: dict[str, str] = {}
    for part in (p.strip() for p in kernels.split(",")):
        if not part:
            continue
        if "=" in part:
            fam, _, var = (s.strip() for s in part.partition("="))
            if fam in items:
                raise SpecError(f"kernels: family {fam!r} chosen twice")
            items[fam] = var
        elif profile is None and not items:
            if part not in PROFILES:
                raise SpecError(f"kernels: unknown profile {part!r}"
                                f"{did_you_mean(part, list(PROFILES))} (profiles: "
                                f"{', '.join(PROFILES)}; or family=variant items)")
            profile = part
        else:
            raise SpecError(f"kernels: {part!r}: a profile comes first, once; then "
                            "family=variant items")
    return profile, items


def choose(kernels: str | Mapping[str, str] | None = None,
           spec_kernels: Mapping[str, str] | None = None) -> dict[str, str]:
    """The variant per family (every family of :data:`FAMILIES`): the ``refq`` profile,
    then the spec's own ``kernels``, then the profile and items of ``kernels``. SpecError
    for an unknown profile, family or variant, or a variant that is not lowered."""
    profile, items = parse(kernels)
    out = dict(PROFILES[DEFAULT])
    for where, part in (("spec.kernels", dict(spec_kernels or {})),
                        ("kernels", dict(PROFILES[profile]) if profile else {}),
                        ("kernels", items)):
        for fam, var in part.items():
            _check(fam, var, where)
            out[fam] = var
    return out


def fallbacks(kernels: str | Mapping[str, str] | None) -> dict[str, str]:
    """The fallback variant per family of a choice (:data:`FALLBACKS` of its profile, minus
    the families its explicit items name)."""
    profile, items = parse(kernels)
    if profile is None:
        return {}
    return {f: v for f, v in FALLBACKS.get(profile, {}).items() if f not in items}


def variant(choice: Mapping[str, str], family: str) -> Variant:
    return find(family, choice[family])


def recorded(choice: Mapping[str, str]) -> dict[str, str]:
    """The families whose choice differs from the ``refq`` profile (what a program's
    ``meta["kernels"]`` records; empty for the default)."""
    return {f: v for f, v in sorted(choice.items()) if PROFILES[DEFAULT][f] != v}


def profile_of(kernels: Any) -> str | None:
    return parse(kernels)[0] if isinstance(kernels, str) else None


__all__ = ["DEFAULT", "FALLBACKS", "FAMILIES", "PROFILES", "choose", "fallbacks", "lowerable",
           "parse", "profile_of", "recorded", "variant"]
