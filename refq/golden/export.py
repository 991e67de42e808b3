"""Export a verified golden set for testbenches: $readmemh hex, raw binary or C headers."""

from __future__ import annotations

import fnmatch
import shutil
from pathlib import Path
from typing import Any, Literal

from refq.errors import GoldenError
from refq.files.atomic import atomic_folder
from refq.golden.binfile import write_bin
from refq.golden.case import Case, read_case
from refq.golden.cheader import write_header
from refq.golden.hexfile import write_hex
from refq.golden.index import INDEX_FORMAT, file_entry, op_entry, write_index
from refq.golden.manifest import check_files, read_manifest
from refq.golden.paramfiles import OpParams, case_params

ExportFormat = Literal["hex", "bin", "c"]
FORMATS: tuple[str, ...] = ("hex", "bin", "c")
TENSOR_RULE = "declared: the tensor's IntFormat"


def export(
    root: Path, fmt: ExportFormat, out: Path, force: bool = False, only: str | None = None
) -> int:
    """Write every case of the set ``root`` (or those matching ``only``, comma-separated
    globs) into ``out`` in ``fmt``; returns the number of data files written.

    hex: ``out/<case>/<tensor>.hex`` and ``out/<case>/params/<parameter>.hex`` — every
    integer parameter of the case (:mod:`refq.golden.paramfiles`) — plus ``meta.json`` and
    ``index.json`` (:mod:`refq.golden.index`: every file with its shape, format and
    ``$readmemh`` geometry, and the op order); bin: the same with ``.bin`` files (raw
    little-endian, storage dtype in the index); c: ``out/<case>.h`` with every tensor and
    every parameter as an array. The set's hashes are checked first: a tampered set is
    refused.
    """
    if fmt not in FORMATS:
        raise GoldenError(f"export format must be one of {FORMATS}, got {fmt!r}")
    root = Path(root)
    manifest = read_manifest(root)
    problems = check_files(root, manifest)
    if problems:
        raise GoldenError(f"{root} fails its manifest: {problems[0]}")
    names = sorted(manifest["cases"])
    if only is not None:
        patterns = [p.strip() for p in only.split(",") if p.strip()]
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in patterns)]
        if not names:
            raise GoldenError(f"--only {only!r} matches no case of {root}")
    count = 0
    with atomic_folder(Path(out), force=force) as tmp:
        for name in names:
            case = read_case(root / name, root)
            ops = case_params(case.meta)
            if fmt == "c":
                arrays = [(f.stem, f.values, f.fmt, f"parameter {f.source} ({f.op_key}; "
                           f"{f.rule})") for op in ops for f in op.files]
                tensors = {t: (v.values, v.fmt) for t, v in case.tensors.items()}
                write_header(tmp / f"{name}.h", name, dict(case.meta), tensors, arrays)
                count += 1
                continue
            folder = tmp / name
            folder.mkdir()
            shutil.copyfile(root / name / "meta.json", folder / "meta.json")
            count += _write_case(case, ops, folder, fmt)
    return count


def _write_case(case: Case, ops: list[OpParams], folder: Path, fmt: str) -> int:
    files: list[dict[str, Any]] = []
    for t, v in sorted(case.tensors.items()):
        layout = f"{v.layout} (C order)"
        if fmt == "hex":
            write_hex(folder / f"{t}.hex", t, v.values, v.fmt, layout)
        else:
            write_bin(folder / f"{t}.bin", v.values, v.fmt)
        shape = tuple(int(d) for d in v.values.shape)
        files.append(file_entry(f"{t}.{fmt}", "tensor", t, v.role, None, f"{t}.npy", shape,
                                v.fmt, layout, TENSOR_RULE, fmt))
    for op in ops:
        for f in op.files:
            path = folder / f"{f.stem}.{fmt}"
            path.parent.mkdir(exist_ok=True)
            layout = "scalar" if f.values.ndim == 0 else "row-major (C order)"
            if fmt == "hex":
                write_hex(path, f.stem.removeprefix("params/"), f.values, f.fmt, layout,
                          what="parameter", note=f"{f.source}, {f.op_key}")
            else:
                write_bin(path, f.values, f.fmt)
            shape = tuple(int(d) for d in f.values.shape)
            files.append(file_entry(f"{f.stem}.{fmt}", "parameter", f.field, "param",
                                    f.op_index, f.source, shape, f.fmt, layout, f.rule, fmt))
    entries = [op_entry(op, fmt) for op in ops]
    if "program" not in case.meta:  # a kernel case: its op reads the inputs, writes y
        for e in entries:
            e["inputs"] = sorted(t for t, v in case.tensors.items() if v.role == "input")
            e["outputs"] = sorted(t for t, v in case.tensors.items() if v.role == "output")
    write_index(folder, {"index_format": INDEX_FORMAT, "case": case.name, "kind": case.kind,
                         "export": fmt, "files": files, "ops": entries})
    return len(files)


__all__ = ["FORMATS", "ExportFormat", "export"]
