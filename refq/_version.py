"""The refq version, recorded in every golden case and program file."""

__version__ = "0.1.0"
