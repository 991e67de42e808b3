"""The refq exception hierarchy.

Every error refq raises on bad input is a :class:`RefqError`, so callers can catch one
type; the subclass says which contract was broken.
"""

from __future__ import annotations


class RefqError(Exception):
    """Base class of every error refq raises on purpose."""


class SpecError(RefqError, ValueError):
    """An argument, parameter or specification is malformed (wrong dtype, unknown name,
    out-of-convention multiplier or shift, bad version, ...)."""


class RangeError(RefqError, OverflowError):
    """An integer value lies outside its declared format, or an exact result cannot be
    represented in the declared width."""


class GoldenError(RefqError):
    """A golden case or manifest is missing, tampered with, or does not match."""


class OutputError(RefqError):
    """An output cannot be written: it exists (and replacing it was not asked for), another
    writer holds it, or its folder cannot be created."""


class BackendError(RefqError):
    """A cross-check backend is unavailable or failed to run a case."""


class DistError(RefqError):
    """Distributed work cannot run: Dask is not installed, a cluster cannot be started or
    reached, a task was lost, or a results database is not one refq wrote."""


__all__ = ["BackendError", "DistError", "GoldenError", "OutputError", "RangeError", "RefqError",
           "SpecError"]
