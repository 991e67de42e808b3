"""Export a verified golden set for testbenches: $readmemh hex, raw binary or C headers."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Literal

from refq.errors import GoldenError
from refq.files.atomic import atomic_folder
from refq.golden.binfile import write_bin
from refq.golden.case import read_case
from refq.golden.cheader import write_header
from refq.golden.hexfile import write_hex
from refq.golden.manifest import check_files, read_manifest

ExportFormat = Literal["hex", "bin", "c"]
FORMATS: tuple[str, ...] = ("hex", "bin", "c")


def export(root: Path, fmt: ExportFormat, out: Path, force: bool = False) -> int:
    """Write every case of the set ``root`` into ``out`` in ``fmt``; returns files written.

    hex: ``out/<case>/<tensor>.hex`` (+ meta.json); bin: ``out/<case>/<tensor>.bin``
    (+ meta.json, which holds shapes and formats); c: ``out/<case>.h``. The set's hashes are
    checked first: a tampered set is refused.
    """
    if fmt not in FORMATS:
        raise GoldenError(f"export format must be one of {FORMATS}, got {fmt!r}")
    root = Path(root)
    manifest = read_manifest(root)
    problems = check_files(root, manifest)
    if problems:
        raise GoldenError(f"{root} fails its manifest: {problems[0]}")
    count = 0
    with atomic_folder(Path(out), force=force) as tmp:
        for name in sorted(manifest["cases"]):
            case = read_case(root / name, root)
            if fmt == "c":
                params = {k: v for k, v in case.meta.items()}
                tensors = {t: (v.values, v.fmt) for t, v in case.tensors.items()}
                write_header(tmp / f"{name}.h", name, params, tensors)
                count += 1
                continue
            folder = tmp / name
            folder.mkdir()
            shutil.copyfile(root / name / "meta.json", folder / "meta.json")
            for t, v in sorted(case.tensors.items()):
                if fmt == "hex":
                    write_hex(folder / f"{t}.hex", t, v.values, v.fmt, f"{v.layout} (C order)")
                else:
                    write_bin(folder / f"{t}.bin", v.values, v.fmt)
                count += 1
    return count


__all__ = ["FORMATS", "ExportFormat", "export"]
