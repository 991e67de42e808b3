"""The kernel table (compatibility face of :mod:`refq.ops.registry`).

``KERNELS`` (key → :class:`~refq.ops.registry.Variant`, read from the registry on every
access) and :func:`kernel` keep working; new code uses :func:`refq.ops.lookup` and
:func:`refq.ops.variants`. ``Kernel`` is :class:`~refq.ops.registry.Variant` (whose ``op``
and ``variant`` attributes are deprecated aliases of ``family`` and ``name``).
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping

from refq.errors import SpecError
from refq.ops.registry import Variant, lookup, variants

Kernel = Variant


class _Kernels(Mapping[str, Variant]):
    """Every registered variant by ``family.name`` key, read live from the registry."""

    def __getitem__(self, key: str) -> Variant:
        try:
            return lookup(key)
        except SpecError:
            raise KeyError(key) from None

    def __iter__(self) -> Iterator[str]:
        return iter([v.key for v in variants()])

    def __len__(self) -> int:
        return len(variants())

    def __repr__(self) -> str:
        return f"KERNELS({list(self)})"


KERNELS: Mapping[str, Variant] = _Kernels()


def kernel(key: str) -> Variant:
    """The variant of ``family.variant`` key, or SpecError naming the close keys."""
    return lookup(key)


__all__ = ["KERNELS", "Kernel", "kernel"]
