"""Open, migrate and load the DuckDB warehouse.

DuckDB lets one process hold the file read-write, and a second process cannot open
it at all (not even read-only) meanwhile; the error comes at once. So newsmon never
keeps the file open: every read and every write transaction opens it, does one
short piece of work and closes it, and an open that meets a lock is retried with
backoff until `lock_timeout` runs out. A `newsmon sql` during a run, or two
overlapping runs, therefore wait for each other instead of failing.
"""
from __future__ import annotations

import contextlib
import hashlib
import random
import re
import time
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from newsmon.errors import WarehouseError

__all__ = ["Warehouse", "is_lock_error", "fetch_dicts", "insert_rows", "table_schema"]

HERE = Path(__file__).resolve().parent
MIGRATIONS = HERE / "migrations"
VIEWS = HERE / "views"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("lock" in text.lower() or "Conflicting" in text)


class Warehouse:
    """A DuckDB file with newsmon's schema. Cheap to create; holds no connection."""

    def __init__(self, path: str | Path, lock_timeout: float = 120.0, memory_limit: str | None = None):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit  # DuckDB's memory_limit ("512MB"); None: DuckDB's default

    # -- connections -------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits (with backoff) while another process holds the file."""
        if read_only and not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path}: run `newsmon ingest` first")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                con = duckdb.connect(str(self.path), read_only=read_only,
                                     config={"memory_limit": self.memory_limit} if self.memory_limit else {})
                break
            except duckdb.Error as exc:
                if not is_lock_error(exc):
                    raise WarehouseError(f"cannot open warehouse {self.path}: {exc}") from exc
                if time.monotonic() >= deadline:
                    raise WarehouseError(
                        f"warehouse {self.path} stayed locked by another process for {self.lock_timeout:.0f}s; "
                        "wait for the running ingest/backfill to finish or raise warehouse.lock_timeout_seconds"
                    ) from exc
                time.sleep(delay * (0.5 + random.random()))
                delay = min(delay * 2, 2.0)
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: everything inside commits together or not at all."""
        with self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            con.execute("COMMIT")

    def read(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts."""
        with self.connect(read_only=True) as con:
            return fetch_dicts(con, sql, params)

    # -- schema ------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (each commits with its record), then (re)create changed views."""
        applied = []
        with self.connect() as con:
            con.execute(
                "CREATE TABLE IF NOT EXISTS schema_migrations ("
                " version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now())"
            )
            con.execute("CREATE TABLE IF NOT EXISTS schema_views (name VARCHAR PRIMARY KEY, sha256 VARCHAR NOT NULL)")
            done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
            self._refuse_newer_schema(con, done)
            self._check_tables(con, done)
            for path in sorted(MIGRATIONS.glob("*.sql")):
                m = _MIGRATION_NAME.match(path.name)
                if not m:
                    raise WarehouseError(f"migration file {path.name} is not named NNNN_name.sql")
                version = int(m.group(1))
                if version in done:
                    continue
                con.execute("BEGIN TRANSACTION")
                try:
                    con.execute(path.read_text())
                    con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, path.name])
                except duckdb.Error as exc:
                    con.execute("ROLLBACK")
                    raise WarehouseError(f"migration {path.name} failed: {exc}") from exc
                con.execute("COMMIT")
                applied.append(path.name)
            known = dict(con.execute("SELECT name, sha256 FROM schema_views").fetchall())
            # Views are re-created in file order (a view may read an earlier one) when any changed.
            files = sorted(VIEWS.glob("*.sql"))
            digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in files}
            if applied or digests != known:
                con.execute("BEGIN TRANSACTION")
                for p in files:
                    try:
                        con.execute(p.read_text())
                    except duckdb.Error as exc:
                        con.execute("ROLLBACK")
                        raise WarehouseError(f"warehouse {self.path}: view {p.name} cannot be created: "
                                             f"{str(exc).splitlines()[0]}") from None
                con.execute("DELETE FROM schema_views")
                con.executemany("INSERT INTO schema_views VALUES (?, ?)", list(digests.items()))
                con.execute("COMMIT")
        return applied

    # -- schema checks (before anything is written) ------------------------------------
    def _refuse_newer_schema(self, con: duckdb.DuckDBPyConnection, done: set[int]) -> None:
        """WarehouseError when the file records a migration this code does not have (a newer newsmon's)."""
        latest = latest_known_version()
        newest = max(done, default=0)
        if newest > latest:
            name = con.execute("SELECT name FROM schema_migrations WHERE version = ?", [newest]).fetchone()
            raise WarehouseError(
                f"warehouse {self.path} has schema version {newest} ({name[0] if name else '?'}), newer than this "
                f"newsmon knows (up to version {latest}): it was written by a newer newsmon. Nothing was written; "
                "upgrade newsmon, or point warehouse.path at another file")

    def _check_tables(self, con: duckdb.DuckDBPyConnection, done: set[int]) -> None:
        """WarehouseError naming the tables the applied migrations made that are gone (renamed or dropped by hand)."""
        present = {n for (n,) in con.execute(
            "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database() "
            "AND schema_name = current_schema()").fetchall()}
        missing = sorted(expected_tables(done) - present)
        if missing:
            raise WarehouseError(
                f"warehouse {self.path} lacks the table(s) {', '.join(missing)} that its schema needs (renamed or "
                "dropped outside newsmon?); nothing was written. Restore them (or the file from a backup), or point "
                "warehouse.path at a new file and run `newsmon backfill` to rebuild")


def latest_known_version() -> int:
    """The highest migration number this code has."""
    versions = [int(m.group(1)) for p in MIGRATIONS.glob("*.sql") if (m := _MIGRATION_NAME.match(p.name))]
    return max(versions, default=0)


_CREATE_TABLE = re.compile(r"\bCREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.I)
_DROP_TABLE = re.compile(r"\bDROP\s+TABLE\s+(?:IF\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)", re.I)
_RENAME_TABLE = re.compile(r"\bALTER\s+TABLE\s+([A-Za-z_][A-Za-z0-9_]*)\s+RENAME\s+TO\s+([A-Za-z_][A-Za-z0-9_]*)",
                           re.I)


def expected_tables(versions: set[int] | None = None) -> set[str]:
    """The tables the migrations (those numbered in `versions`, default all) leave behind: created, minus
    dropped, renames followed, in file order."""
    tables = {"schema_migrations", "schema_views"}
    for path in sorted(MIGRATIONS.glob("*.sql")):
        m = _MIGRATION_NAME.match(path.name)
        if versions is not None and (not m or int(m.group(1)) not in versions):
            continue
        text = re.sub(r"--[^\n]*", "", path.read_text())
        events = [(m.start(), "create", m.group(1)) for m in _CREATE_TABLE.finditer(text)]
        events += [(m.start(), "drop", m.group(1)) for m in _DROP_TABLE.finditer(text)]
        events += [(m.start(), "rename", (m.group(1), m.group(2))) for m in _RENAME_TABLE.finditer(text)]
        for _, kind, name in sorted(events, key=lambda e: e[0]):
            if kind == "create":
                tables.add(name.lower())
            elif kind == "drop":
                tables.discard(name.lower())
            else:
                tables.discard(name[0].lower())
                tables.add(name[1].lower())
    return tables


def fetch_dicts(con: duckdb.DuckDBPyConnection, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
    cur = con.execute(sql, params or [])
    cols = [d[0] for d in cur.description]
    return [dict(zip(cols, row)) for row in cur.fetchall()]


def table_schema(con: duckdb.DuckDBPyConnection, table: str) -> pa.Schema:
    """The Arrow schema of a table, so that a batch of NULLs still loads with the right types."""
    if not re.fullmatch(r"[a-z_][a-z0-9_]*", table):
        raise ValueError(f"bad table name {table!r}")
    return con.execute(f"SELECT * FROM {table} LIMIT 0").to_arrow_table().schema


def insert_rows(con: duckdb.DuckDBPyConnection, table: str, rows: Sequence[dict[str, Any]], *,
                on_conflict: str = "error") -> int:
    """Load a batch with one INSERT from an Arrow table (never row by row).

    The columns are the keys of the first row (the others take their defaults).
    `on_conflict`: "error", "ignore" (keep the stored row) or "replace" (overwrite it).
    """
    if not rows:
        return 0
    full = table_schema(con, table)
    names = list(rows[0])
    schema = pa.schema([full.field(n) for n in names])
    batch = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema)
    verb = {"error": "INSERT", "ignore": "INSERT OR IGNORE", "replace": "INSERT OR REPLACE"}[on_conflict]
    cols = ", ".join(f'"{n}"' for n in names)
    con.register("_newsmon_batch", batch)
    try:
        con.execute(f"{verb} INTO {table} ({cols}) SELECT {cols} FROM _newsmon_batch")
    finally:
        con.unregister("_newsmon_batch")
    return len(rows)
