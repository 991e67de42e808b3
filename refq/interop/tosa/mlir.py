"""TOSA flatbuffer → TOSA MLIR text with tosa-tools' ``tosa-opt``.

``tosa-opt --tosa-deserialize=tosa-flatbuffer-filename=F --mlir-print-op-generic`` prints the
graph in MLIR's generic operation form, which other MLIR versions (IREE's, for one) parse
even where their pretty-printed syntax of an op differs. Graph inputs and outputs keep their
TOSA names as ``tosa.tensor_name`` argument/result attributes.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

from refq.errors import BackendError

TIMEOUT_S = 600


def tosa_opt() -> str:
    """Path of tosa-tools' ``tosa-opt`` (next to the running Python first, then PATH)."""
    here = Path(sys.executable).with_name("tosa-opt")
    if here.is_file() and os.access(here, os.X_OK):
        return str(here)
    found = shutil.which("tosa-opt")
    if found is None:
        raise BackendError("tosa-opt not found: pip install 'refq[tosa]' (tosa-tools)")
    return found


def to_mlir(graph: bytes) -> str:
    """The generic-form MLIR text of the serialized TOSA ``graph``."""
    with tempfile.TemporaryDirectory(prefix="refq-tosa-") as tmp:
        fb = Path(tmp) / "graph.tosa"
        fb.write_bytes(graph)
        empty = Path(tmp) / "empty.mlir"
        empty.write_text("")
        cmd = [tosa_opt(), f"--tosa-deserialize=tosa-flatbuffer-filename={fb}",
               "--mlir-print-op-generic", str(empty)]
        try:
            proc = subprocess.run(cmd, capture_output=True, text=True, timeout=TIMEOUT_S,
                                  check=False)
        except subprocess.TimeoutExpired:
            raise BackendError(f"tosa-opt timed out after {TIMEOUT_S} s") from None
    if proc.returncode != 0 or "func.func" not in proc.stdout:
        raise BackendError(f"tosa-opt failed ({proc.returncode}): {proc.stderr.strip()[:500]}")
    return proc.stdout


_HEAD = '"builtin.module"() ({\n'
_MAIN = 'sym_name = "main"'


def merge(texts: list[str], names: list[str]) -> str:
    """One MLIR module holding the ``main`` function of each of ``texts`` (generic form, as
    :func:`to_mlir` prints them) renamed to ``names[i]`` — so a compiler sees many small
    graphs in one invocation. Values are function-local, so only the symbol names change."""
    if len(texts) != len(names) or len(set(names)) != len(names):
        raise BackendError("mlir.merge: one distinct name per module")
    bodies, tail = [], ""
    for text, name in zip(texts, names, strict=True):
        if not text.startswith(_HEAD) or text.count(_MAIN) != 1:
            raise BackendError("mlir.merge: expected tosa-opt's generic module with one main")
        end = text.rstrip().rfind("\n}) ")
        if end < 0:
            raise BackendError("mlir.merge: module end not found")
        bodies.append(text[len(_HEAD):end + 1].replace(_MAIN, f'sym_name = "{name}"'))
        tail = text[end + 1:]
    return _HEAD + "".join(bodies) + tail


__all__ = ["merge", "to_mlir", "tosa_opt"]
