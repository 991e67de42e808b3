"""Every integer parameter of a case is exported as its own file with an index.

The expected parameters are found here by an independent walk of meta.json (every integer
leaf of every op's params), and their values are read back from the files by refq's readers
AND by Icarus Verilog's ``$readmemh`` (a testbench generated from index.json alone)."""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refq.errors import GoldenError
from refq.files import read_npy
from refq.golden import export
from refq.golden.binfile import read_bin
from refq.golden.cheader import c_ident, read_header_array
from refq.golden.hexfile import read_hex
from refq.golden.index import read_index
from refq.golden.paramfiles import case_params, param_format
from refq.intmath import IntFormat

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "tools" / "rtl"))
from params_tb import run_params_tb, sums  # type: ignore[import-not-found]  # tools/rtl

GOLDEN = Path(__file__).resolve().parents[2] / "golden"
BLOCK = "block.deit_digits.minmax.w8a8.encoder"
HAVE_ICARUS = shutil.which("iverilog") is not None and shutil.which("vvp") is not None


def int_leaves(tree: Any, path: str) -> dict[str, Any]:
    """JSON path → value of every integer or list-of-integers leaf (bools excluded)."""
    out: dict[str, Any] = {}
    if isinstance(tree, dict):
        for k, v in tree.items():
            out.update(int_leaves(v, f"{path}.{k}"))
    elif (isinstance(tree, int) and not isinstance(tree, bool)) or (
        isinstance(tree, list) and tree and all(type(e) is int for e in tree)
    ):
        out[path] = tree
    return out


def resolve(meta: dict[str, Any], source: str) -> Any:
    """The value at a JSON path such as ``program.ops[6].params.multiplier``."""
    node: Any = meta
    for part in re.findall(r"[^.\[\]]+|\[\d+\]", source):
        node = node[int(part[1:-1])] if part.startswith("[") else node[part]
    return node


def expected_params(meta: dict[str, Any]) -> dict[str, Any]:
    if "program" in meta:
        out: dict[str, Any] = {}
        for i, op in enumerate(meta["program"]["ops"]):
            out.update(int_leaves(op["params"], f"program.ops[{i}].params"))
        return out
    return int_leaves(meta.get("params", {}), "params")


@pytest.fixture(scope="module")
def exports(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("export")
    only = f"{BLOCK},requantize.tflite_double.*,softmax.refq.*,gelu.lut.*,linear.gemm.*"
    for fmt in ("hex", "bin", "c"):
        export(GOLDEN, fmt, root / fmt, only=only)  # type: ignore[arg-type]
    return root


def cases_of(exports: Path) -> list[str]:
    return sorted(p.name for p in (exports / "hex").iterdir())


def test_every_parameter_and_tensor_is_a_file_listed_in_the_index(exports: Path) -> None:
    names = cases_of(exports)
    plain = [n for n in names if ".corners." not in n]  # the globs also match corner cases
    assert BLOCK in names and len(plain) == 1 + 6 + 1 + 1 + 2
    for name in names:
        meta = json.loads((GOLDEN / name / "meta.json").read_text())
        for fmt in ("hex", "bin"):
            index = read_index(exports / fmt / name)
            params = {f["source"]: f for f in index["files"] if f["what"] == "parameter"}
            assert set(params) == set(expected_params(meta)), name
            tensors = {f["name"] for f in index["files"] if f["what"] == "tensor"}
            assert tensors == set(meta["tensors"])
            on_disk = {p.relative_to(exports / fmt / name).as_posix()
                       for p in (exports / fmt / name).rglob(f"*.{fmt}")}
            assert on_disk == {f["file"] for f in index["files"]}
            for f in params.values():
                assert f["elements"] == np.asarray(resolve(meta, f["source"])).size


def test_parameter_files_hold_the_meta_json_values(exports: Path) -> None:
    for name in cases_of(exports):
        meta = json.loads((GOLDEN / name / "meta.json").read_text())
        header = exports / "c" / f"{name}.h"
        for fmt in ("hex", "bin"):
            folder = exports / fmt / name
            for f in read_index(folder)["files"]:
                shape = tuple(f["shape"])
                ifmt = IntFormat(f["bits"], f["signed"])
                got = (read_hex if fmt == "hex" else read_bin)(folder / f["file"], shape, ifmt)
                if f["what"] == "parameter":
                    want = np.asarray(resolve(meta, f["source"]), dtype=np.int64)
                else:
                    want = read_npy(GOLDEN / name / f["source"]).astype(np.int64)
                np.testing.assert_array_equal(got, want, strict=True)
                if fmt == "hex" and f["what"] == "parameter":
                    c_name = f["file"].removesuffix(".hex")
                    c_got = read_header_array(header, name, c_name, shape)
                    np.testing.assert_array_equal(c_got, want, strict=True)


def test_block_index_keeps_the_program_op_order(exports: Path) -> None:
    meta = json.loads((GOLDEN / BLOCK / "meta.json").read_text())
    index = read_index(exports / "hex" / BLOCK)
    ops = meta["program"]["ops"]
    assert [(o["index"], o["key"], o["name"]) for o in index["ops"]] == [
        (i, op["key"], op["name"]) for i, op in enumerate(ops)
    ]
    for entry, op in zip(index["ops"], ops, strict=True):
        assert entry["inputs"] == op["inputs"] and entry["outputs"] == op["outputs"]
        ints = int_leaves(op["params"], "")
        assert set(entry["params"]) == {k[1:] for k in ints}
        rest = {k: v for k, v in op["params"].items() if f".{k}" not in ints}
        assert entry["attributes"] == rest  # strings and nulls: rounding, formats, requant


def test_tflite_parameters_keep_the_tensor_files_widths(exports: Path) -> None:
    """The requantize.tflite_double cases already carried multiplier/shift/zero point as
    one-element tensors (int32, int8, int32): the parameter files agree line for line."""
    for name in cases_of(exports):
        if not name.startswith("requantize.tflite_double"):
            continue
        folder = exports / "hex" / name

        def body(p: Path) -> list[str]:
            return [ln for ln in p.read_text().splitlines() if not ln.startswith("//")]

        assert body(folder / "params/multiplier.hex") == body(folder / "multiplier.hex")
        assert body(folder / "params/shift.hex") == body(folder / "shift.hex")
        index = {f["file"]: f for f in read_index(folder)["files"]}
        assert index["params/multiplier.hex"]["format"] == "int32"
        assert index["params/shift.hex"]["format"] == "int8"
        assert index["params/out_zero_point.hex"]["format"] == "int8"  # zero point of int8 y
        assert index["params/shift.hex"]["readmemh"]["declaration"] == (
            "reg signed [7:0] mem [0:0];"
        )


def test_declared_formats_refuse_values_outside_them() -> None:
    meta = {"op": "gelu", "variant": "lut",
            "params": {"in_format": "int8", "out_format": "int8", "table": [0, 128]}}
    with pytest.raises(GoldenError, match="outside its declared format int8"):
        case_params(meta)
    fmt, rule = param_format("requantize.dyadic", "multiplier", {"family": "dyadic"},
                             np.array([2**31 - 1]))
    assert fmt == IntFormat(32, False) and rule.startswith("fitted")
    fmt, rule = param_format("requantize.double", "multiplier", {"family": "double"},
                             np.array([2**30]))
    assert fmt == IntFormat(32, True) and rule.startswith("declared")
    with pytest.raises(GoldenError, match="neither an integer parameter"):
        case_params({"op": "x", "variant": "y", "params": {"scale": 0.5}})


@pytest.mark.parametrize(
    "mutate,needle",
    [
        (lambda d: d.pop("ops"), "missing keys"),
        (lambda d: d.update(extra=1), "unknown keys"),
        (lambda d: d["files"][0].update(bits="8"), "wrong type"),
        (lambda d: d["files"][0].update(file="../escape.hex"), "is not in"),
        (lambda d: d["files"][0].update(format="int3"), "is not"),
        (lambda d: d.update(index_format=2), "index_format"),
        (lambda d: d["ops"][0]["params"].update(table="params/nothing.hex"), "not in files"),
    ],
)
def test_index_reader_refuses_malformed_indexes(
    exports: Path, tmp_path: Path, mutate: Any, needle: str
) -> None:
    folder = tmp_path / "case"
    shutil.copytree(exports / "hex" / "softmax.refq.rows16x37", folder)
    index = json.loads((folder / "index.json").read_text())
    mutate(index)
    (folder / "index.json").write_text(json.dumps(index))
    with pytest.raises(GoldenError, match=needle):
        read_index(folder)


def test_export_only_matching_nothing_is_an_error(tmp_path: Path) -> None:
    with pytest.raises(GoldenError, match="matches no case"):
        export(GOLDEN, "hex", tmp_path / "x", only="softmx.*")
    assert not (tmp_path / "x").exists()


def _expected_sums(name: str, folder: Path) -> dict[str, tuple[int, int]]:
    """Σv and Σ(i+1)v of every listed file, from the golden case (not from the export)."""
    meta = json.loads((GOLDEN / name / "meta.json").read_text())
    out = {}
    for f in read_index(folder)["files"]:
        if f["what"] == "parameter":
            values = np.asarray(resolve(meta, f["source"]), dtype=np.int64).ravel()
        else:
            values = read_npy(GOLDEN / name / f["source"]).astype(np.int64).ravel()
        out[f["file"]] = sums(int(v) for v in values)
    return out


needs_icarus = pytest.mark.skipif(
    not HAVE_ICARUS and os.environ.get("CI") != "true",
    reason="Icarus Verilog not installed (CI installs it)",
)


@pytest.mark.rtl
@needs_icarus
def test_readmemh_testbench_loads_every_parameter_of_an_encoder_block(
    exports: Path, tmp_path: Path
) -> None:
    folder = exports / "hex" / BLOCK
    index = read_index(folder)
    expected = _expected_sums(BLOCK, folder)
    ok, lines = run_params_tb(folder, expected, verilog=tmp_path / "tb.v")
    assert ok, "\n".join(lines)
    loaded = [ln for ln in lines if ln.startswith("REFQ-FILE")]
    assert len(loaded) == len(index["files"]) == len(expected)
    n_params = sum(f["what"] == "parameter" for f in index["files"])
    assert n_params >= 90  # LayerNorm, requantizers, softmax table and log2e, GELU LUT, adds
    assert lines[-1] == f"REFQ-PARAMS PASS {len(index['files'])}"
    tb = (tmp_path / "tb.v").read_text()
    assert tb.count("$readmemh(") == len(index["files"])

    # negative controls: one changed word, one missing word
    bad = tmp_path / "bad"
    shutil.copytree(folder, bad)
    table = next(f["file"] for f in index["files"]
                 if f["what"] == "parameter" and f["source"].endswith(".table")
                 and f["elements"] == 256)
    text = (bad / table).read_text().splitlines()
    text[-1] = format(int(text[-1], 16) ^ 1, f"0{len(text[-1])}x")
    (bad / table).write_text("\n".join(text) + "\n")
    shift = next(f["file"] for f in index["files"] if f["file"].endswith(".q.shift.hex"))
    (bad / shift).write_text("\n".join((bad / shift).read_text().splitlines()[:-1]) + "\n")
    ok, lines = run_params_tb(bad, expected)
    assert not ok
    assert f"REFQ-MISMATCH {table}" in lines and f"REFQ-MISMATCH {shift}" in lines
    assert lines[-1] == f"REFQ-PARAMS FAIL 2 of {len(index['files'])}"


def test_c_identifiers_of_parameters_are_unique(exports: Path) -> None:
    header = (exports / "c" / f"{BLOCK}.h").read_text()
    sizes = re.findall(r"#define (\w+)_SIZE ", header)
    assert len(sizes) == len(set(sizes)) > 150
    assert f"{c_ident(BLOCK).upper()}_PARAMS_06_BLOCKS_0_ATTN_Q_MULTIPLIER" in sizes
