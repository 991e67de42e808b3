"""Golden cases as TOSA conformance-test folders (``refq golden export DIR --format tosa``).

One folder per case, named after the case::

    <case>/desc.json          tosa-tools' test descriptor: tosa_file, ifm_name, ifm_file,
                              ofm_name, ofm_file, expected_failure, the TOSA profile and
                              extensions the graph needs, and meta.compliance (mode EXACT for
                              every output) — validated against tosa-tools' own schema
    <case>/<case>.tosa        the TOSA 1.x flatbuffer (constants embedded)
    <case>/<case>.mlir        the same graph as generic-form TOSA MLIR (tosa-opt)
    <case>/<input>.npy        the inputs, in the graph's element types
    <case>/expected_<o>.npy   refq's outputs (a 64-bit output: expected_<o>_hi/_lo.npy)
    <case>/refq.json          refq's record: case, refq version, expected_result_file (the
                              expected_*.npy in ofm order), each output's refq format, the
                              assumptions of the export

tosa-tools 2026.8.0's runner validates desc.json strictly (``additionalProperties: false``)
and rejects an ``expected_result_file`` key there — although its own convert2conformance
writes one — so refq's expected results are named in refq.json. ``tosa_verif_run_tests -t
<folders>`` runs every folder on the reference model (graph status VALID, and tosa_verify
EXACT against its compliance run); ``--sut-module refq.interop.tosa.refq_sut`` makes refq's
expected results the system under test, so tosa_verify compares refq with the reference
model output by output.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from pathlib import Path
from typing import Any

import numpy as np

from refq._version import __version__
from refq.errors import GoldenError
from refq.files import json_bytes, npy_bytes
from refq.golden.case import Case, read_case
from refq.interop.tosa.export import Exported, export_kernel, export_program
from refq.interop.tosa.graph import NUMPY, ExportError

DTYPE_NAMES = {"int8": "INT8", "int16": "INT16", "int32": "INT32", "bool": "BOOL"}


def export_case(case: Case) -> tuple[Exported, dict[str, Any], dict[str, Any]]:
    """(the case's graph with its outputs only, its inputs, refq's expected outputs)."""
    if "program" in case.meta:
        from refq.golden.cases_program import program_of
        from refq.program.run import run

        program, inputs = program_of(case)
        batch = next(iter(inputs.values())).shape[0] if inputs else 1
        ex = export_program(program, batch=batch, keep="outputs")
        expected = run(program, inputs, keep="outputs")
    else:
        from refq.golden.kernels import kernel_of, params_of, recompute

        k = kernel_of(case)
        inputs = {n: case.tensors[n].values.astype(np.int64) for n in k.inputs}
        ex = export_kernel(k.key, params_of(case), {n: v.shape for n, v in inputs.items()},
                           name=case.name)
        expected = recompute(case)
    return ex, dict(inputs), dict(expected)


def _words(value: np.ndarray[Any, Any]) -> tuple[np.ndarray[Any, Any], np.ndarray[Any, Any]]:
    v = value.astype(np.int64)
    hi = (v >> np.int64(32)).astype(np.int32)
    lo = (v & np.int64(0xFFFFFFFF)).astype(np.uint32).view(np.int32)
    return hi, lo


def _file_stem(name: str) -> str:
    return name.replace(":", "_").replace("@", "_at_")


def write_case(case: Case, folder: Path) -> list[Path]:
    """Write ``case`` as a conformance-test folder (module docstring); returns the files."""
    from refq.interop.tosa.mlir import to_mlir

    ex, inputs, expected = export_case(case)
    folder.mkdir(parents=True)
    files: list[Path] = []

    def put(name: str, data: bytes) -> str:
        path = folder / name
        path.write_bytes(data)
        files.append(path)
        return name

    tosa_file = put(f"{case.name}.tosa", ex.graph)
    put(f"{case.name}.mlir", to_mlir(ex.graph).encode())
    ifm_file = [put(f"{_file_stem(a.name)}.npy", npy_bytes(arr))
                for a, arr in zip(ex.inputs, ex.feed(inputs), strict=True)]
    ofm_name: list[str] = []
    ofm_file: list[str] = []
    exp_files: list[str] = []
    tensors: dict[str, Any] = {}
    outputs = []
    for m in ex.outputs:
        value = np.asarray(expected[m.name])
        parts = list(zip(m.tosa, _words(value), strict=True)) if m.wide else [
            (m.tosa[0], value.astype(NUMPY[m.dtype]))]
        dtype = "int32" if m.wide else m.dtype
        for tname, arr in parts:
            stem = _file_stem(tname)
            ofm_name.append(tname)
            ofm_file.append(f"result_{stem}.npy")
            exp_files.append(put(f"expected_{stem}.npy", npy_bytes(arr)))
            tensors[tname] = {"mode": "EXACT", "data_type": DTYPE_NAMES[dtype],
                              "shape": [int(d) for d in arr.shape]}
        outputs.append({"name": m.name, "tosa": list(m.tosa), "format": m.fmt.name,
                        "shape": list(m.shape)})
    desc = {
        "tosa_file": tosa_file,
        "ifm_name": [a.name for a in ex.inputs],
        "ifm_file": ifm_file,
        "ofm_name": ofm_name,
        "ofm_file": ofm_file,
        "expected_failure": False,
        "test_requirements": {"profiles_supported": ["tosa-pro-int"],
                              "extensions_required": extensions(ex)},
        "meta": {"compliance": {"version": "0.1", "tensors": tensors}},
    }
    _validate(desc, folder)
    put("desc.json", json_bytes(desc))
    put("refq.json", json_bytes({
        "case": case.name,
        "refq_version": __version__,
        "expected_result_file": exp_files,
        "outputs": outputs,
        "assumptions": ex.assumptions,
        "op_counts": ex.op_counts,
    }))
    return files


def extensions(ex: Exported) -> list[str]:
    """The TOSA extensions the graph relies on (besides PRO-INT)."""
    ops = ex.op_counts
    out = []
    if ops.get("WHILE_LOOP"):
        out.append("tosa-ext-controlflow")
    if ex.uses.get("double_round"):
        out.append("tosa-ext-doubleround")
    if ex.uses.get("int16"):
        out.append("tosa-ext-int16")
    return out


def _validate(desc: dict[str, Any], folder: Path) -> None:
    try:
        import schemavalidation.schemavalidation as sch
    except ImportError:  # tosa-tools without its schemas: nothing to check against
        return
    try:
        sch.TestDescSchemaValidator().validate_config(desc)
    except Exception as exc:
        raise GoldenError(f"{folder}: desc.json fails tosa-tools' schema: {exc}") from None


def export_golden(root: Path, out: Path, force: bool = False,
                  only: Iterable[str] | None = None) -> int:
    """Every case of the golden set ``root`` (or those matching the globs ``only``) as
    conformance-test folders in ``out`` (written atomically); returns the files written.
    The set's hashes are checked first: a tampered set is refused."""
    import fnmatch

    from refq.files.atomic import atomic_folder
    from refq.golden.manifest import check_files, read_manifest

    root = Path(root)
    manifest = read_manifest(root)
    problems = check_files(root, manifest)
    if problems:
        raise GoldenError(f"{root} fails its manifest: {problems[0]}")
    names = sorted(manifest["cases"])
    if only is not None:
        pats = list(only)
        names = [n for n in names if any(fnmatch.fnmatchcase(n, p) for p in pats)]
        if not names:
            raise GoldenError(f"no case of {root} matches {pats}")
    count = 0
    refused: dict[str, str] = {}
    with atomic_folder(Path(out), force=force) as tmp:
        for name in names:
            try:  # write_case exports before it creates the folder
                count += len(write_case(read_case(root / name), tmp / name))
            except ExportError as exc:  # no exact TOSA form: named in refused.json
                refused[name] = str(exc)
        if refused:
            (tmp / REFUSED).write_bytes(json_bytes({"refused": refused}))
            count += 1
    return count


REFUSED = "refused.json"
"""The file of an exported set naming each case the export refused, with the reason (the
ExportError's message); absent when every case exported."""


def refused_cases(out: Path) -> dict[str, str]:
    """The refused cases of an exported set (``refused.json``; {} when absent)."""
    path = Path(out) / REFUSED
    if not path.exists():
        return {}
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GoldenError(f"{path}: unreadable ({exc})") from None
    got = data.get("refused") if isinstance(data, dict) else None
    if not isinstance(got, dict) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in got.items()):
        raise GoldenError(f"{path}: expected {{\"refused\": {{case: reason}}}}")
    return dict(got)


def read_refq(folder: Path) -> dict[str, Any]:
    """A folder's refq.json (validated: the keys this module writes)."""
    path = folder / "refq.json"
    try:
        data = json.loads(path.read_text())
    except (OSError, json.JSONDecodeError) as exc:
        raise GoldenError(f"{path}: unreadable ({exc})") from None
    need = {"case", "refq_version", "expected_result_file", "outputs", "assumptions",
            "op_counts"}
    if not isinstance(data, dict) or set(data) != need:
        raise GoldenError(f"{path}: expected exactly the keys {sorted(need)}")
    files = data["expected_result_file"]
    if not isinstance(files, list) or not all(isinstance(f, str) and "/" not in f
                                              and f.endswith(".npy") for f in files):
        raise GoldenError(f"{path}: expected_result_file must list .npy names in the folder")
    return data


__all__ = ["export_case", "export_golden", "extensions", "read_refq", "write_case"]
