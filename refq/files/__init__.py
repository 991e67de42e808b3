"""File plumbing shared by every refq reader and writer: canonical JSON and the strict JSON
reader, declared schemas, deterministic pickle-free .npy/.npz, bounded reads of regular
files, sha256, and atomic creation of output files and folders. Imports nothing of refq
but errors."""

from refq.files.atomic import atomic_file, atomic_folder, write_file
from refq.files.jsonfile import (
    json_bytes,
    json_bytes_flat_arrays,
    load_json,
    parse_json,
    sha256_bytes,
    sha256_file,
)
from refq.files.npy import npy_bytes, parse_npy, read_npy
from refq.files.safe import read_bytes, require_folder

__all__ = [
    "atomic_file",
    "atomic_folder",
    "json_bytes",
    "json_bytes_flat_arrays",
    "load_json",
    "npy_bytes",
    "parse_json",
    "parse_npy",
    "read_bytes",
    "read_npy",
    "require_folder",
    "sha256_bytes",
    "sha256_file",
    "write_file",
]
