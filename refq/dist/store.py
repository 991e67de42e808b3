"""The SQLite result store of a sweep (the standard library's sqlite3, WAL journal).

Schema ``refq-sweep/1`` (one file; every write is one transaction, so a row is there
whole or not at all — an interrupted sweep leaves only finished rows)::

    meta   key TEXT PRIMARY KEY, value TEXT            schema = "refq-sweep/1"
    cells  cell TEXT PRIMARY KEY                        sha256 of config (hex)
           config TEXT     canonical JSON: everything the result depends on
           prep TEXT       the prep (calibration/quantization) it needs, or NULL
           model, data, method, mode TEXT; w_bits, a_bits, seed INTEGER  (display)
           shards, images INTEGER                       how many shards / images in all
           created TEXT                                 ISO time, UTC
    preps  prep TEXT PRIMARY KEY                        sha256 of its config (hex)
           config TEXT
           spec_sha256 TEXT    sha256 of the QuantSpec (NULL: the recipe refused)
           recipe_error TEXT   the recipe's refusal, or NULL
           lowered INTEGER     1 if lowering was run; program_sha256 / lowering_error
           program_sha256 TEXT, lowering_error TEXT
           cpu_s, wall_s REAL; worker, refq_version, finished TEXT
    rows   cell TEXT, shard INTEGER                     PRIMARY KEY (cell, shard)
           first, count INTEGER                         images [first, first + count)
           correct INTEGER     top-1 hits (NULL when status = 'error')
           status TEXT ('ok' | 'error'), error TEXT
           spec_sha256, program_sha256 TEXT             what the shard ran
           refq_version TEXT; cpu_s, wall_s REAL; worker, finished TEXT

A cell's result is computed from its rows; a cell is complete when it has a row for every
shard. A row is written once: a second write of the same (cell, shard) with the same
result is ignored, with a different one raises DistError (a non-deterministic task).
"""

from __future__ import annotations

import json
import sqlite3
import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from refq.errors import DistError

SCHEMA = "refq-sweep/1"

_TABLES = """
CREATE TABLE IF NOT EXISTS meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS cells (
    cell TEXT PRIMARY KEY, config TEXT NOT NULL, prep TEXT,
    model TEXT NOT NULL, data TEXT NOT NULL, method TEXT NOT NULL, mode TEXT NOT NULL,
    w_bits INTEGER, a_bits INTEGER, seed INTEGER NOT NULL,
    shards INTEGER NOT NULL CHECK (shards >= 1), images INTEGER NOT NULL CHECK (images >= 1),
    created TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS preps (
    prep TEXT PRIMARY KEY, config TEXT NOT NULL,
    spec_sha256 TEXT, recipe_error TEXT,
    lowered INTEGER NOT NULL CHECK (lowered IN (0, 1)),
    program_sha256 TEXT, lowering_error TEXT,
    cpu_s REAL NOT NULL, wall_s REAL NOT NULL, worker TEXT NOT NULL,
    refq_version TEXT NOT NULL, finished TEXT NOT NULL,
    CHECK ((spec_sha256 IS NULL) <> (recipe_error IS NULL)));
CREATE TABLE IF NOT EXISTS rows (
    cell TEXT NOT NULL REFERENCES cells(cell), shard INTEGER NOT NULL CHECK (shard >= 0),
    first INTEGER NOT NULL CHECK (first >= 0), count INTEGER NOT NULL CHECK (count >= 1),
    correct INTEGER, status TEXT NOT NULL CHECK (status IN ('ok', 'error')), error TEXT,
    spec_sha256 TEXT, program_sha256 TEXT, refq_version TEXT NOT NULL,
    cpu_s REAL NOT NULL, wall_s REAL NOT NULL, worker TEXT NOT NULL, finished TEXT NOT NULL,
    PRIMARY KEY (cell, shard),
    CHECK ((status = 'ok' AND correct IS NOT NULL AND correct BETWEEN 0 AND count
            AND error IS NULL)
        OR (status = 'error' AND correct IS NULL AND error IS NOT NULL)));
"""

CELL_FIELDS = ("cell", "config", "prep", "model", "data", "method", "mode", "w_bits",
               "a_bits", "seed", "shards", "images")
PREP_FIELDS = ("prep", "config", "spec_sha256", "recipe_error", "lowered", "program_sha256",
               "lowering_error", "cpu_s", "wall_s", "worker", "refq_version")
ROW_FIELDS = ("cell", "shard", "first", "count", "correct", "status", "error", "spec_sha256",
              "program_sha256", "refq_version", "cpu_s", "wall_s", "worker")
_RESULT = ("first", "count", "correct", "status", "error", "spec_sha256", "program_sha256")


def now() -> str:
    """The current UTC time, ISO 8601 to the second."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())


def canonical(obj: Any) -> str:
    """Canonical JSON (sorted keys, no spaces): the text a configuration hash is taken of."""
    return json.dumps(obj, sort_keys=True, separators=(",", ":"), allow_nan=False)


@dataclass(frozen=True)
class CellTotal:
    """A cell's rows summed: shards with a row, images, hits (ok rows), errors, CPU s."""

    cell: str
    rows: int
    images: int
    correct: int
    errors: tuple[str, ...]
    cpu_s: float
    wall_s: float
    spec_sha256: tuple[str, ...]
    program_sha256: tuple[str, ...]


class Store:
    """An open results database (see the module docstring). Use as a context manager."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        if self.path.exists() and not self.path.is_file():
            raise DistError(f"results {self.path}: not a regular file")
        try:
            self.db = sqlite3.connect(self.path, timeout=30.0, isolation_level=None)
            self.db.row_factory = sqlite3.Row
            self.db.execute("PRAGMA journal_mode=WAL")
            self.db.execute("PRAGMA synchronous=FULL")
            self.db.execute("PRAGMA foreign_keys=ON")
            self._check_schema()
        except sqlite3.DatabaseError as e:
            raise DistError(f"results {self.path}: not a refq sweep database ({e})") from None

    def _check_schema(self) -> None:
        tables = {r[0] for r in self.db.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        if not tables:
            with self.transaction() as db:
                for statement in _TABLES.split(";"):
                    if statement.strip():
                        db.execute(statement)
                db.execute("INSERT INTO meta VALUES ('schema', ?)", (SCHEMA,))
            return
        if "meta" not in tables:
            raise DistError(f"results {self.path}: not a refq sweep database (no meta table; "
                            f"tables {sorted(tables)})")
        row = self.db.execute("SELECT value FROM meta WHERE key = 'schema'").fetchone()
        if row is None or row[0] != SCHEMA:
            raise DistError(f"results {self.path}: schema {row[0] if row else None!r}, this "
                            f"refq reads {SCHEMA!r}")
        missing = {"cells", "preps", "rows"} - tables
        if missing:
            raise DistError(f"results {self.path}: tables {sorted(missing)} missing")

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """One atomic write: BEGIN IMMEDIATE … COMMIT, rolled back on any exception."""
        self.db.execute("BEGIN IMMEDIATE")
        try:
            yield self.db
        except BaseException:
            self.db.execute("ROLLBACK")
            raise
        self.db.execute("COMMIT")

    def close(self) -> None:
        self.db.close()

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # ------------------------------------------------------------------ writes
    def add_cells(self, cells: list[Mapping[str, Any]]) -> None:
        """Record cells (ignored if present with the same config; DistError if a cell hash
        is present with another config — which a sha256 collision alone could cause)."""
        with self.transaction() as db:
            for c in cells:
                old = db.execute("SELECT config FROM cells WHERE cell = ?",
                                 (c["cell"],)).fetchone()
                if old is not None:
                    if old[0] != c["config"]:
                        raise DistError(f"results {self.path}: cell {c['cell']} is stored "
                                        "with another configuration")
                    continue
                db.execute(f"INSERT INTO cells ({', '.join(CELL_FIELDS)}, created) VALUES "
                           f"({', '.join('?' * len(CELL_FIELDS))}, ?)",
                           [c[k] for k in CELL_FIELDS] + [now()])

    def put_prep(self, prep: Mapping[str, Any]) -> None:
        """Record (or, once lowered, complete) a prep row. DistError if it disagrees with
        the stored one (another spec or program for the same configuration)."""
        with self.transaction() as db:
            old = db.execute("SELECT * FROM preps WHERE prep = ?", (prep["prep"],)).fetchone()
            if old is not None:
                for k in ("spec_sha256", "recipe_error"):
                    if old[k] != prep[k]:
                        raise DistError(_nondeterministic("prep", prep["prep"], k, old[k],
                                                          prep[k]))
                if old["lowered"]:
                    for k in ("program_sha256", "lowering_error"):
                        if prep["lowered"] and old[k] != prep[k]:
                            raise DistError(_nondeterministic("prep", prep["prep"], k, old[k],
                                                              prep[k]))
                    return
                if not prep["lowered"]:
                    return
                db.execute("DELETE FROM preps WHERE prep = ?", (prep["prep"],))
            db.execute(f"INSERT INTO preps ({', '.join(PREP_FIELDS)}, finished) VALUES "
                       f"({', '.join('?' * len(PREP_FIELDS))}, ?)",
                       [prep[k] for k in PREP_FIELDS] + [now()])

    def put_row(self, row: Mapping[str, Any]) -> bool:
        """Write one (cell, shard) row; False if the same result was already there."""
        with self.transaction() as db:
            old = db.execute("SELECT * FROM rows WHERE cell = ? AND shard = ?",
                             (row["cell"], row["shard"])).fetchone()
            if old is not None:
                for k in _RESULT:
                    if old[k] != row[k]:
                        raise DistError(_nondeterministic(
                            "row", f"{row['cell']}/{row['shard']}", k, old[k], row[k]))
                return False
            db.execute(f"INSERT INTO rows ({', '.join(ROW_FIELDS)}, finished) VALUES "
                       f"({', '.join('?' * len(ROW_FIELDS))}, ?)",
                       [row[k] for k in ROW_FIELDS] + [now()])
            return True

    # ------------------------------------------------------------------ reads
    def done_shards(self, cell: str) -> set[int]:
        """Shards of ``cell`` that have a row."""
        return {r[0] for r in self.db.execute("SELECT shard FROM rows WHERE cell = ?",
                                              (cell,))}

    def prep(self, prep: str) -> dict[str, Any] | None:
        """The stored prep row, or None."""
        r = self.db.execute("SELECT * FROM preps WHERE prep = ?", (prep,)).fetchone()
        return dict(r) if r is not None else None

    def cells(self, only: list[str] | None = None) -> list[dict[str, Any]]:
        """Stored cells (all, or those listed), in creation order."""
        rows = [dict(r) for r in self.db.execute("SELECT * FROM cells ORDER BY rowid")]
        if only is None:
            return rows
        keep = set(only)
        return [r for r in rows if r["cell"] in keep]

    def totals(self) -> dict[str, CellTotal]:
        """Every cell's rows summed (cells without rows are absent)."""
        distinct: dict[str, dict[str, set[str]]] = {}
        for col in ("error", "spec_sha256", "program_sha256"):
            for cell, v in self.db.execute(
                    f"SELECT DISTINCT cell, {col} FROM rows WHERE {col} IS NOT NULL"):
                distinct.setdefault(cell, {}).setdefault(col, set()).add(v)
        q = ("SELECT cell, COUNT(*) AS n, SUM(count) AS images, "
             "SUM(CASE WHEN status = 'ok' THEN correct ELSE 0 END) AS correct, "
             "SUM(cpu_s) AS cpu, SUM(wall_s) AS wall FROM rows GROUP BY cell")
        out: dict[str, CellTotal] = {}
        for r in self.db.execute(q):
            d = distinct.get(r["cell"], {})
            out[r["cell"]] = CellTotal(
                r["cell"], int(r["n"]), int(r["images"]), int(r["correct"]),
                tuple(sorted(d.get("error", ()))),
                float(r["cpu"]), float(r["wall"]),
                tuple(sorted(d.get("spec_sha256", ()))),
                tuple(sorted(d.get("program_sha256", ()))))
        return out

    def integrity(self) -> str:
        """SQLite's ``PRAGMA integrity_check`` ("ok" when the file is sound)."""
        return str(self.db.execute("PRAGMA integrity_check").fetchone()[0])


def _nondeterministic(what: str, key: str, field: str, old: Any, new: Any) -> str:
    return (f"{what} {key}: {field} was {old!r}, now {new!r} — the same configuration gave "
            "another result (a non-deterministic task or a changed environment); rows are "
            "never mixed: use a new --results file")


__all__ = ["CELL_FIELDS", "PREP_FIELDS", "ROW_FIELDS", "SCHEMA", "CellTotal", "Store",
           "canonical", "now"]
