"""The CPU features of this machine, for known-disagreement conditions: an engine's int8
kernels often depend on the instruction set (e.g. 16-bit pair-sum saturation exists only on
CPUs without a dot-product instruction), so a known entry may say on which CPUs it holds.

Flags are the Linux ``/proc/cpuinfo`` names (``avx2``, ``avx512_vnni``, ``avx_vnni``,
``amx_int8``, ``asimddp`` …). Where they cannot be read (another OS), :func:`cpu_flags`
returns None and conditions are treated as unknown (see :func:`condition_holds`).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from refq.errors import BackendError

CONDITION_KEYS = ("cpu_has", "cpu_lacks")
"""``cpu_has``: every listed flag is present; ``cpu_lacks``: every listed flag is absent."""


@lru_cache(maxsize=1)
def cpu_flags(cpuinfo: str = "/proc/cpuinfo") -> frozenset[str] | None:
    """This machine's CPU flags (the first processor's ``flags`` / ``Features`` line), or None
    where /proc/cpuinfo is not readable."""
    try:
        text = Path(cpuinfo).read_text()
    except OSError:
        return None
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return None


def check_condition(when: Any, where: str) -> dict[str, tuple[str, ...]]:
    """A validated condition: a dict with keys among :data:`CONDITION_KEYS`, each a list of
    flag names (BackendError naming ``where`` otherwise)."""
    if not isinstance(when, Mapping):
        raise BackendError(f"{where}: 'when' must be an object, got {type(when).__name__}")
    unknown = set(when) - set(CONDITION_KEYS)
    if unknown:
        raise BackendError(f"{where}: unknown condition keys {sorted(unknown)}; "
                           f"expected {list(CONDITION_KEYS)}")
    out: dict[str, tuple[str, ...]] = {}
    for key, flags in when.items():
        if not isinstance(flags, list) or not flags or not all(
            isinstance(f, str) and f for f in flags
        ):
            raise BackendError(f"{where}: '{key}' must be a non-empty list of flag names")
        out[key] = tuple(flags)
    return out


def condition_holds(when: Mapping[str, Iterable[str]], flags: frozenset[str] | None) -> bool:
    """Whether ``when`` holds for CPU ``flags``; with unknown flags (None) every condition
    holds, so an entry is kept rather than silently dropped."""
    if flags is None:
        return True
    has = all(f in flags for f in when.get("cpu_has", ()))
    lacks = all(f not in flags for f in when.get("cpu_lacks", ()))
    return has and lacks


__all__ = ["CONDITION_KEYS", "check_condition", "condition_holds", "cpu_flags"]
