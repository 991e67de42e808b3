"""Hypothesis-driven mutants of files refq wrote, for every reader (tests/fuzz/subjects.py),
judged by the oracle "a RefqError naming the file, or an output byte-identical to the
original" (legitimate value edits of formats without a checksum excepted: oracle.py).

A bounded run per reader in the default suite (a few seconds each); thousands per reader
behind ``-m slow``; ``tools/fuzz_readers.py`` runs the same mutants in forked children with
time and memory limits and prints the table.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.fuzz.mutate import DataChooser
from tests.fuzz.oracle import Prepared, judge, make_mutant, prepare, run_reader
from tests.fuzz.subjects import SUBJECTS

OK = ("refq", "same", "legit")
_PREPARED: dict[str, Prepared] = {}


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def _prepared(name: str, base: Path) -> Prepared:
    if name not in _PREPARED:
        _PREPARED[name] = prepare(SUBJECTS[name], base / f"s{len(_PREPARED)}")
    return _PREPARED[name]


def _check(p: Prepared, work: Path, data: st.DataObject) -> None:
    m = make_mutant(p, work, DataChooser(data))
    status, detail = judge(p, m, run_reader(p, m.folder, timeout=30))
    assert status in OK, f"{p.subject.name}: {m.label}: {status}\n{detail}"


@pytest.mark.parametrize("name", sorted(SUBJECTS))
@settings(max_examples=12, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_mutants_are_refused_or_read_identically(name: str, base: Path,
                                                 data: st.DataObject) -> None:
    p = _prepared(name, base)
    _check(p, base / f"work-{sorted(SUBJECTS).index(name)}", data)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(SUBJECTS))
@settings(max_examples=1500, deadline=None, suppress_health_check=list(HealthCheck))
@given(data=st.data())
def test_thousands_of_mutants(name: str, base: Path, data: st.DataObject) -> None:
    p = _prepared(name, base)
    _check(p, base / f"work-slow-{sorted(SUBJECTS).index(name)}", data)
