"""The published JSON Schemas (docs/schemas): current with the code, valid JSON Schema,
satisfied by every committed golden, spec, known and bundled-model file, and in agreement
with refq's own readers — jsonschema (a maintained, independent validator) and the reader's
node tree accept and refuse the same documents, committed and mutated."""

from __future__ import annotations

import copy
import importlib.util
import json
import os
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from refq import schemas
from refq.files.schema import Invalid, Node

if importlib.util.find_spec("jsonschema") is None:
    if os.environ.get("CI", "").lower() in ("1", "true", "yes"):
        raise RuntimeError("CI=true: jsonschema (the test extra) must be installed")
    pytest.skip("jsonschema not installed", allow_module_level=True)

import jsonschema

REPO = Path(__file__).resolve().parents[2]
PUBLISHED = REPO / "docs" / "schemas"


def _committed() -> list[tuple[str, Path]]:
    """(format, file) of every committed file refq reads with a published schema."""
    out = [("golden-meta", p) for p in sorted((REPO / "golden").glob("*/meta.json"))]
    out.append(("golden-manifest", REPO / "golden" / "MANIFEST.json"))
    out += [("spec", p) for p in sorted((REPO / "refq" / "golden" / "specs").glob("*/spec.json"))]
    out += [("known", p) for p in sorted((REPO / "refq" / "crosscheck" / "known").glob("*.json"))]
    out += [("bundled-model", REPO / "refq" / "data" / f"{m}.json")
            for m in ("deit_digits", "swin_digits")]
    return out


def _node(name: str) -> Node:
    return next(f for f in schemas.FORMATS if f.name == name).node()


def _validator(name: str) -> Any:
    doc = json.loads((PUBLISHED / f"{name}.schema.json").read_text())
    return jsonschema.Draft202012Validator(doc)


_VALIDATORS: dict[str, Any] = {}


def validator(name: str) -> Any:
    if name not in _VALIDATORS:
        _VALIDATORS[name] = _validator(name)
    return _VALIDATORS[name]


def test_published_schemas_are_current() -> None:
    assert schemas.stale(PUBLISHED) == [], "run: python -m refq.schemas --write docs/schemas"


def test_published_schemas_are_valid_json_schema() -> None:
    for f in schemas.FORMATS:
        doc = json.loads((PUBLISHED / f"{f.name}.schema.json").read_text())
        jsonschema.Draft202012Validator.check_schema(doc)


def test_stale_schema_is_reported(tmp_path: Path) -> None:
    schemas.write(tmp_path)
    (tmp_path / "known.schema.json").write_text("{}\n")
    (tmp_path / "old.schema.json").write_text("{}\n")
    assert schemas.stale(tmp_path) == ["known.schema.json", "old.schema.json"]
    assert schemas.main(["--check", str(tmp_path)]) == 1


@pytest.mark.parametrize(("fmt", "path"), _committed(),
                         ids=[str(p.relative_to(REPO)) for _, p in _committed()])
def test_every_committed_file_validates(fmt: str, path: Path) -> None:
    doc = json.loads(path.read_text())
    errors = list(validator(fmt).iter_errors(doc))
    assert not errors, f"{path}: {errors[0].message[:300]} at {list(errors[0].absolute_path)}"
    _node(fmt).check(doc, ())


def test_committed_files_are_read_by_refq() -> None:
    from refq.crosscheck.known import load_known
    from refq.golden.case import read_meta
    from refq.golden.manifest import read_manifest
    from refq.nn.bundled import bundled_config
    from refq.quant import QuantSpec

    for fmt, path in _committed():
        if fmt == "golden-meta":
            read_meta(path.parent, REPO / "golden")
        elif fmt == "golden-manifest":
            read_manifest(path.parent)
        elif fmt == "spec":
            QuantSpec.load(path.parent)
        elif fmt == "known":
            load_known(path)
        else:
            bundled_config(path.stem)


def test_a_saved_program_validates(tmp_path: Path) -> None:
    from refq.golden.case import read_case
    from refq.golden.cases_program import program_of
    from refq.program import save

    prog, _ = program_of(read_case(REPO / "golden" / "block.deit_digits.minmax.w8a8.encoder"))
    save(prog, tmp_path / "p")
    doc = json.loads((tmp_path / "p" / "program.json").read_text())
    assert not list(validator("program").iter_errors(doc))
    _node("program").check(doc, ())


# ----------------------------------------------------------------------------- agreement

SAMPLES = {
    "golden-meta": REPO / "golden" / "requantize.dyadic.int32_int8.b3_c1_half_away" / "meta.json",
    "golden-manifest": REPO / "golden" / "MANIFEST.json",
    "spec": REPO / "refq" / "golden" / "specs" / "repq.w4a4" / "spec.json",
    "known": REPO / "refq" / "crosscheck" / "known" / "onnxruntime.json",
    "bundled-model": REPO / "refq" / "data" / "deit_digits.json",
    "program-in-case": REPO / "golden" / "block.deit_digits.minmax.w8a8.ivit.encoder"
    / "meta.json",
}
VALUES: tuple[Any, ...] = (None, True, 0, -1, 1, 2**63, 10**400, 0.5, 1e300, "", "x", "int8",
                           "half_even", [], [1], {}, {"x": 1})


def _paths(v: Any, where: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [where]
    if isinstance(v, dict):
        for k in v:
            out += _paths(v[k], (*where, k))
    elif isinstance(v, list):
        for i in sorted({0, len(v) - 1} & set(range(len(v)))):
            out += _paths(v[i], (*where, i))
    return out


def _accepts_node(node: Node, doc: Any) -> bool:
    try:
        node.check(doc, ())
    except Invalid:
        return False
    return True


@pytest.mark.parametrize("fmt", sorted(SAMPLES))
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_refq_and_jsonschema_agree_on_mutants(fmt: str, data: st.DataObject) -> None:
    """One edit (drop, rename, retype or replace a node) of a committed document: refq's
    node tree and the published schema accept or refuse it together."""
    base = json.loads(SAMPLES[fmt].read_text())
    name = fmt
    if fmt == "program-in-case":
        base, name = base, "golden-meta"
    doc = copy.deepcopy(base)
    paths = _paths(doc)
    where = data.draw(st.sampled_from(paths[1:]))
    parent: Any = doc
    for p in where[:-1]:
        parent = parent[p]
    key = where[-1]
    op = data.draw(st.sampled_from(["drop", "rename", "replace"]))
    if op == "drop" and isinstance(parent, dict):
        del parent[key]
    elif op == "rename" and isinstance(parent, dict):
        parent[str(key) + data.draw(st.sampled_from(["x", "_", "s"]))] = parent.pop(key)
    else:
        parent[key] = data.draw(st.sampled_from(VALUES))
    ours = _accepts_node(_node(name), doc)
    theirs = validator(name).is_valid(doc)
    assert ours == theirs, f"{fmt}: {op} at {where}: refq {ours}, jsonschema {theirs}"
