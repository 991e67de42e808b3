"""The SQLite result store (refq.dist.store): schema checked on open, rows written once,
a disagreeing second result refused, malformed rows refused by the schema."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest

from refq.dist.store import SCHEMA, Store
from refq.errors import DistError

CELL = {"cell": "c1", "config": '{"a":1}', "prep": "p1", "model": "m", "data": "d",
        "method": "minmax", "mode": "integer", "w_bits": 8, "a_bits": 8, "seed": 0,
        "shards": 2, "images": 30}
PREP = {"prep": "p1", "config": "{}", "spec_sha256": "s", "recipe_error": None,
        "lowered": 0, "program_sha256": None, "lowering_error": None, "cpu_s": 1.0,
        "wall_s": 1.0, "worker": "w", "refq_version": "0"}


def row(shard: int, correct: int | None = 7, **kw: Any) -> dict[str, Any]:
    r = {"cell": "c1", "shard": shard, "first": 20 * shard, "count": 20 if shard == 0 else 10,
         "correct": correct, "status": "ok", "error": None, "spec_sha256": "s",
         "program_sha256": "p", "refq_version": "0", "cpu_s": 0.5, "wall_s": 0.6,
         "worker": "w"}
    return {**r, **kw}


def test_rows_once_and_totals(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as st:
        st.add_cells([CELL])
        st.add_cells([CELL])  # same config: ignored
        with pytest.raises(DistError, match="another configuration"):
            st.add_cells([{**CELL, "config": '{"a":2}'}])
        assert st.put_row(row(0)) is True
        assert st.put_row(row(0)) is False  # the same result again: no second row
        with pytest.raises(DistError, match="correct was 7, now 8"):
            st.put_row(row(0, correct=8))
        assert st.done_shards("c1") == {0}
        st.put_row(row(1, correct=None, status="error", error="integer: RangeError: x"))
        t = st.totals()["c1"]
        assert (t.rows, t.images, t.correct, t.errors) == (2, 30, 7, ("integer: RangeError: x",))
        assert t.program_sha256 == ("p",)
        assert st.integrity() == "ok"
    with sqlite3.connect(tmp_path / "r.sqlite") as con:
        assert con.execute("SELECT COUNT(*) FROM rows").fetchone()[0] == 2
        assert con.execute("SELECT value FROM meta").fetchone()[0] == SCHEMA


def test_schema_rejects_malformed_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as st:
        st.add_cells([CELL])
        for bad in (row(0, correct=21), row(0, correct=None), row(0, status="maybe"),
                    row(0, status="error", error=None, correct=None), row(-1),
                    row(0, cell="nosuch")):
            with pytest.raises(sqlite3.IntegrityError):
                st.put_row(bad)
        assert st.done_shards("c1") == set()


def test_prep_rows(tmp_path: Path) -> None:
    with Store(tmp_path / "r.sqlite") as st:
        st.put_prep(PREP)
        st.put_prep({**PREP, "lowered": 1, "program_sha256": "p"})  # completes it
        assert st.prep("p1")["program_sha256"] == "p"  # type: ignore[index]
        st.put_prep(PREP)  # not lowered this time: keeps the lowered row
        assert st.prep("p1")["lowered"] == 1  # type: ignore[index]
        with pytest.raises(DistError, match="spec_sha256 was 's', now 't'"):
            st.put_prep({**PREP, "spec_sha256": "t"})
        with pytest.raises(DistError, match="program_sha256"):
            st.put_prep({**PREP, "lowered": 1, "program_sha256": "q"})
        with pytest.raises(sqlite3.IntegrityError):  # a spec or a refusal, not both
            st.put_prep({**PREP, "prep": "p2", "recipe_error": "recipe: no"})


def test_foreign_files_refused(tmp_path: Path) -> None:
    other = tmp_path / "other.sqlite"
    with sqlite3.connect(other) as con:
        con.execute("CREATE TABLE t (x)")
    with pytest.raises(DistError, match="no meta table"):
        Store(other)
    wrong = tmp_path / "wrong.sqlite"
    with sqlite3.connect(wrong) as con:
        con.execute("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT)")
        con.execute("INSERT INTO meta VALUES ('schema', 'refq-sweep/0')")
    with pytest.raises(DistError, match="schema 'refq-sweep/0'"):
        Store(wrong)
    with pytest.raises(DistError, match="not a regular file"):
        Store(tmp_path)
