"""File plumbing shared by programs and golden sets: canonical JSON, deterministic
pickle-free .npy, sha256, and atomic folder creation. Imports nothing of refq but errors."""

from refq.files.atomic import atomic_folder
from refq.files.jsonfile import json_bytes, sha256_file
from refq.files.npy import npy_bytes, parse_npy, read_npy

__all__ = ["atomic_folder", "json_bytes", "npy_bytes", "parse_npy", "read_npy", "sha256_file"]
