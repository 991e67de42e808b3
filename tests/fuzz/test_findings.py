"""Regression tests of findings 1-8 of the reader audit (finding 9, the writers, is pinned
in test_writers.py): each malformed input is refused with a RefqError (SpecError,
GoldenError, BackendError) naming the file and place, or a clear error and a non-zero exit
from the command line — never a different answer, a raw exception or a hang."""

from __future__ import annotations

import json
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from refq.cli import main
from refq.errors import BackendError, GoldenError, RefqError, SpecError
from refq.files import json_bytes
from refq.golden import generate
from refq.golden.case import read_case
from refq.golden.cases_program import program_of
from refq.golden.cheader import read_header_array, write_header
from refq.golden.hexfile import read_hex, write_hex
from refq.golden.specs import SPEC_DIR, block0_model, calib_images
from refq.intmath import IntFormat
from refq.ops import RequantParams
from refq.ops.table import kernel
from refq.program import load, lower, run, save
from refq.quant import QuantSpec

REPO = Path(__file__).resolve().parents[2]
BLOCK = REPO / "golden" / "block.deit_digits.minmax.w8a8.encoder"


@pytest.fixture(scope="module")
def program_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    prog, _ = program_of(read_case(BLOCK))
    out = tmp_path_factory.mktemp("p") / "prog"
    save(prog, out)
    return out


def _edit_program(src: Path, dst: Path, edit: Any) -> Path:
    shutil.copytree(src, dst)
    d = json.loads((dst / "program.json").read_text())
    edit(d)
    (dst / "program.json").write_bytes(json_bytes(d))
    return dst


def _op(d: dict[str, Any], key: str) -> dict[str, Any]:
    return next(o for o in d["ops"] if o["key"] == key)


# ----------------------------------------------------------------------------- finding 1


@pytest.mark.parametrize("edit", ["empty params", "no out_format", "no rounding"])
def test_1_requantize_params_are_never_defaulted(program_dir: Path, tmp_path: Path,
                                                 edit: str) -> None:
    def change(d: dict[str, Any]) -> None:
        p = _op(d, "requantize.dyadic")["params"]
        if edit == "empty params":
            p.clear()
        elif edit == "no out_format":
            del p["out_format"]
        else:
            p["rounding"] = "half_away"  # then dropped: the default half_even must not fill in
            del p["rounding"]

    bad = _edit_program(program_dir, tmp_path / "p", change)
    with pytest.raises(SpecError, match=r"program\.json: at \$\.ops\[[0-9]+\]\.params"):
        load(bad)


def test_1_a_key_binds_its_variant(program_dir: Path, tmp_path: Path) -> None:
    def rekey(d: dict[str, Any]) -> None:
        _op(d, "requantize.dyadic")["key"] = "requantize.single"

    bad = _edit_program(program_dir, tmp_path / "p", rekey)
    with pytest.raises(SpecError, match=r"at \$\.ops\[[0-9]+\]\.params\.family: expected 'single'"):
        load(bad)
    double = RequantParams(family="double", multiplier=(1 << 30,), shift=(0,))
    with pytest.raises(SpecError, match="params say family 'double'"):
        kernel("requantize.single")(np.array([5]), double)


def test_1_the_unedited_program_loads_and_runs(program_dir: Path) -> None:
    prog, inputs = program_of(read_case(BLOCK))
    out = run(load(program_dir), inputs, keep="outputs")
    want = run(prog, inputs, keep="outputs")
    for k in want:
        np.testing.assert_array_equal(out[k], want[k], strict=True)


# ----------------------------------------------------------------------------- finding 2, 3


@pytest.fixture()
def spec_dir(tmp_path: Path) -> Path:
    shutil.copytree(SPEC_DIR / "ias.w8a8", tmp_path / "spec")
    return tmp_path / "spec"


def test_2_a_spec_without_its_params_is_refused(spec_dir: Path) -> None:
    (spec_dir / "params.npz").unlink()
    with pytest.raises(SpecError, match=r"params\.npz: missing"):
        QuantSpec.load(spec_dir)


def test_2_a_params_npz_missing_an_array_is_refused(spec_dir: Path) -> None:
    with np.load(spec_dir / "params.npz") as z:
        arrays = {k[:-4] if k.endswith(".npy") else k: z[k] for k in z.files}
    arrays.pop(sorted(arrays)[0])
    from refq.files.npz import npz_bytes

    (spec_dir / "params.npz").write_bytes(npz_bytes(arrays))
    with pytest.raises(SpecError, match=r"params\.npz: listed arrays missing"):
        QuantSpec.load(spec_dir)


def test_2_a_modified_array_is_refused(spec_dir: Path) -> None:
    spec = QuantSpec.load(spec_dir)
    name = sorted(spec.params)[0]
    spec.params[name] = spec.params[name] + 1e-9
    from refq.files.npz import npz_bytes

    (spec_dir / "params.npz").write_bytes(npz_bytes(spec.params))
    with pytest.raises(SpecError, match=r"sha256 differs from spec\.json"):
        QuantSpec.load(spec_dir)


def test_3_a_misspelled_tap_is_refused(spec_dir: Path) -> None:
    d = json.loads((spec_dir / "spec.json").read_text())
    d["activations"]["blocks.0.attn.softmaxx"] = d["activations"].pop("blocks.0.attn.softmax")
    (spec_dir / "spec.json").write_text(json.dumps(d, indent=1, sort_keys=True))
    spec = QuantSpec.load(spec_dir)
    model = block0_model()
    with pytest.raises(SpecError, match=r"'blocks\.0\.attn\.softmaxx' is not a tap.*did you mean "
                       r"'blocks\.0\.attn\.softmax'"):
        spec.check_model(model)
    with pytest.raises(SpecError, match="softmaxx"):
        lower(model, spec, calib_images()[:2])
    from refq.calib.fakequant import fake_quantized_model

    with pytest.raises(SpecError, match=r"no tap 'blocks\.0\.attn\.softmaxx'"):
        fake_quantized_model(model, spec.weights, spec.activations, spec.params)


# ----------------------------------------------------------------------------- finding 4


@pytest.mark.parametrize(("key", "value"), [
    ("ln_eps", float("nan")), ("ln_eps", 0.0), ("ln_eps", -1e-6), ("patch_size", 0),
    ("depth", 4.5), ("mean", "x"), ("depth", 4294967300), ("embed_dim", True),
])
def test_4_model_config_values_are_checked(key: str, value: Any) -> None:
    from refq.nn.bundled import bundled_info
    from refq.nn.configs import config_from_dict

    d = dict(bundled_info()["config"], **{key: value})
    t0 = time.perf_counter()
    with pytest.raises(SpecError, match=rf"at \$\.{key}: expected"):
        config_from_dict(d)
    assert time.perf_counter() - t0 < 1.0  # refused, not built


def test_4_nan_in_a_config_file_is_refused(tmp_path: Path) -> None:
    from refq.files import load_json

    (tmp_path / "c.json").write_text('{"ln_eps": NaN}')
    with pytest.raises(SpecError, match=r"c\.json: not valid JSON for refq \(NaN"):
        load_json(tmp_path / "c.json")


# ----------------------------------------------------------------------------- finding 5


def test_5_a_check_selection_matching_nothing_fails(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--backend", "reference", "--ops", "softmx.refq"]) == 2
    assert "softmx.refq" in capsys.readouterr().err


def test_5_zero_examples_is_a_clear_error(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", "--backend", "reference", "--ops", "softmax.refq",
                 "--examples", "0"]) == 2
    err = capsys.readouterr().err
    assert "--examples" in err and "Traceback" not in err


# ----------------------------------------------------------------------------- finding 6


def _header(tmp_path: Path, values: list[int], bits: int = 16) -> tuple[Path, str]:
    path = tmp_path / "c.h"
    write_header(path, "c", {}, {"x": (np.array(values), IntFormat(bits))})
    return path, path.read_text()


@pytest.mark.parametrize(("old", "new", "why"), [
    ("-3,", "- 3,", "not a literal refq writes"),
    (" 56,", " 070,", "not a literal refq writes"),
    ("-32768,", "(-INT64_C(9223372036854775807) - 1),", "outside int16_t"),
    ("-32768,", "123456789012345678901,", "not a literal refq writes"),
    (" 56,", " 0x38,", "not a literal refq writes"),
    (" 56,", " /* */ 56,", "not a literal refq writes"),
    (" 56,", " 7*8,", "not a literal refq writes"),
])
def test_6_c_header_reads_refqs_literals_only(tmp_path: Path, old: str, new: str,
                                              why: str) -> None:
    path, text = _header(tmp_path, [-3, 56, 70, -32768])
    assert list(read_header_array(path, "c", "x", (4,))) == [-3, 56, 70, -32768]
    path.write_text(text.replace(old, new, 1))
    with pytest.raises(GoldenError, match=rf"c\.h:[0-9]+:[0-9]+: .*{why}"):
        read_header_array(path, "c", "x", (4,))


@pytest.mark.parametrize(("line", "why"), [
    ("+01", "lower-case hex digits"), ("\u0661", "not printable ASCII"), ("0x1", "hex digits"),
    ("1", "hex digits"), ("0A", "lower-case hex digits"), (" 01", "hex digits"),
])
def test_6_hex_reads_the_declared_digits_only(tmp_path: Path, line: str, why: str) -> None:
    path = tmp_path / "x.hex"
    write_hex(path, "x", np.array([1, 2]), IntFormat(8))
    text = path.read_text()
    path.write_bytes(text.replace("\n01\n", f"\n{line}\n").encode())
    with pytest.raises(GoldenError, match=rf"x\.hex:[0-9]+:[0-9]+: .*{why}"):
        read_hex(path, (2,), IntFormat(8))
    path.write_bytes(text.encode().replace(b"\n01\n", b"\n\xff1\n"))
    with pytest.raises(GoldenError, match=r"x\.hex:4:1: byte 0xff is not printable ASCII"):
        read_hex(path, (2,), IntFormat(8))


# ----------------------------------------------------------------------------- finding 7


def test_7_non_utf8_spec_json(spec_dir: Path) -> None:
    raw = (spec_dir / "spec.json").read_bytes()
    (spec_dir / "spec.json").write_bytes(raw[:100] + b"\xff" + raw[100:])
    with pytest.raises(SpecError, match=r"spec\.json:[0-9]+:[0-9]+: not UTF-8"):
        QuantSpec.load(spec_dir)


def test_7_truncated_params_npz(spec_dir: Path) -> None:
    raw = (spec_dir / "params.npz").read_bytes()
    for cut in (10, len(raw) // 2, len(raw) - 5):
        (spec_dir / "params.npz").write_bytes(raw[:cut])
        with pytest.raises(SpecError, match=r"params\.npz"):
            QuantSpec.load(spec_dir)


def test_7_movement_params_of_the_wrong_type(program_dir: Path, tmp_path: Path) -> None:
    def perm(d: dict[str, Any]) -> None:
        _op(d, "transpose")["params"]["perm"] = "abc"

    with pytest.raises(SpecError, match=r"at \$\.ops\[[0-9]+\]\.params\.perm: expected an array"):
        load(_edit_program(program_dir, tmp_path / "a", perm))

    def repeated(d: dict[str, Any]) -> None:
        p = _op(d, "transpose")["params"]
        p["perm"] = [0] * len(p["perm"])

    with pytest.raises(SpecError, match="is not a permutation"):
        load(_edit_program(program_dir, tmp_path / "b", repeated))


def test_7_a_hand_built_movement_op_numpy_cannot_take_is_a_spec_error(tmp_path: Path) -> None:
    from refq.program import Op, Program

    p = Program("hand")
    p.declare("x", (2, 3), IntFormat(8), "input")
    p.declare("y", (3, 2), IntFormat(8))
    p.add(Op("move", "transpose", ("x",), ("y",), {"perm": [5, 0]}, "t"))
    p.outputs = ["y"]
    with pytest.raises(SpecError, match=r"op transpose \(t\): .*axis 5"):
        run(p, {"x": np.zeros((2, 3), np.int64)})
    save(p, tmp_path / "prog")
    with pytest.raises(SpecError, match=r"prog.program\.json: at \$\.ops\[0\]"):
        load(tmp_path / "prog")


DEEP = "[" * 100_000 + "]" * 100_000


def test_7_deep_nesting_in_every_json_reader(program_dir: Path, spec_dir: Path,
                                              tmp_path: Path) -> None:
    from refq.crosscheck.known import load_known
    from refq.golden.manifest import read_manifest
    from refq.nn.checkpoints import read_checkpoint

    readers: list[tuple[Path, Any, type[RefqError]]] = []
    p = tmp_path / "p"
    shutil.copytree(program_dir, p)
    readers.append((p / "program.json", lambda: load(p), SpecError))
    readers.append((spec_dir / "spec.json", lambda: QuantSpec.load(spec_dir), SpecError))
    g = tmp_path / "g"
    generate(g, "requantize.dyadic.int32_int8.b3_c1_floor", progress=False)
    case = g / "requantize.dyadic.int32_int8.b3_c1_floor"
    readers.append((case / "meta.json", lambda: read_case(case), GoldenError))
    readers.append((g / "MANIFEST.json", lambda: read_manifest(g), GoldenError))
    (tmp_path / "known.json").write_text("{}")
    readers.append((tmp_path / "known.json", lambda: load_known(tmp_path / "known.json"),
                    BackendError))
    hf = tmp_path / "hf"
    hf.mkdir()
    (hf / "model.safetensors").write_bytes(b"")
    readers.append((hf / "config.json", lambda: read_checkpoint(hf), SpecError))
    for path, read, error in readers:
        path.write_text(f'{{"a": {DEEP}}}')
        with pytest.raises(error, match=rf"{path.name}.*nested too deeply"):
            read()


@pytest.mark.parametrize("cmd", ["verify", "diff", "export"])
def test_7_golden_commands_on_a_missing_path_or_a_file(tmp_path: Path, cmd: str,
                                                       capsys: pytest.CaptureFixture[str]
                                                       ) -> None:
    f = tmp_path / "a-file"
    f.write_text("x")
    for path, what in ((tmp_path / "missing", "no such"), (f, "a file, not a")):
        argv = {"verify": ["golden", "verify", str(path)],
                "diff": ["golden", "diff", str(path), str(path)],
                "export": ["golden", "export", str(path), "--format", "hex",
                           "--out", str(tmp_path / "o")]}[cmd]
        assert main(argv) == 2
        err = capsys.readouterr().err
        assert what in err and "Traceback" not in err


# ----------------------------------------------------------------------------- finding 8


def _fifo_in_place(path: Path) -> None:
    path.unlink()
    os.mkfifo(path)


def test_8_fifos_and_devices_are_refused_at_once(program_dir: Path, spec_dir: Path,
                                                 tmp_path: Path) -> None:
    p = tmp_path / "p"
    shutil.copytree(program_dir, p)
    _fifo_in_place(p / "program.json")
    cases: list[tuple[Any, str]] = [(lambda: load(p), r"program\.json: a FIFO")]
    s1 = tmp_path / "s1"
    shutil.copytree(spec_dir, s1)
    _fifo_in_place(s1 / "spec.json")
    cases.append((lambda: QuantSpec.load(s1), r"spec\.json: a FIFO"))
    s2 = tmp_path / "s2"
    shutil.copytree(spec_dir, s2)
    _fifo_in_place(s2 / "params.npz")
    cases.append((lambda: QuantSpec.load(s2), r"params\.npz: a FIFO"))
    s3 = tmp_path / "s3"
    shutil.copytree(spec_dir, s3)
    (s3 / "spec.json").unlink()
    (s3 / "spec.json").symlink_to("/dev/zero")
    cases.append((lambda: QuantSpec.load(s3), r"spec\.json: a link leading outside"))
    for read, match in cases:
        t0 = time.perf_counter()
        with pytest.raises(SpecError, match=match):
            read()
        assert time.perf_counter() - t0 < 2.0


def test_8_a_device_given_by_name_is_refused(tmp_path: Path) -> None:
    from refq.crosscheck.known import load_known

    with pytest.raises(BackendError, match="/dev/zero: a character device"):
        load_known(Path("/dev/zero"))
