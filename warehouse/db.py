"""Open, migrate and load the DuckDB warehouse.

DuckDB lets one process hold the file read-write, and a second process cannot open
it at all (not even read-only) meanwhile; the error comes at once. So newsmon never
keeps the file open: every read and every write transaction opens it, does one
short piece of work and closes it, and an open that meets a lock is retried with
backoff until `lock_timeout` runs out. A `newsmon sql` during a run, or two
overlapping runs, therefore wait for each other instead of failing.

With `[warehouse] backend = "ducklake"` the same tables live in a DuckLake whose
catalog is in PostgreSQL (see `warehouse/lake.py`): connections are cursors of one
in-memory DuckDB per process with the lake attached, write transactions hold a
PostgreSQL advisory lock instead of the file lock, and `newsmon sql` attaches the
lake read-only. The migrations, views and statements are the same on both.
"""
from __future__ import annotations

import contextlib
import hashlib
import os
import random
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from newsmon.errors import WarehouseError
from warehouse.lake import LAKE, LakeConfig, adapt_ddl, adapt_view_sql, is_lake, open_lake, table_keys, writer_lock

__all__ = ["Warehouse", "is_lock_error", "host_database", "fetch_dicts", "insert_rows", "table_schema", "BOOKKEEPING"]

HERE = Path(__file__).resolve().parent
MIGRATIONS = HERE / "migrations"
VIEWS = HERE / "views"
_MIGRATION_NAME = re.compile(r"^(\d{4})_[a-z0-9_]+\.sql$")
#: The tables migrate() keeps its own records in.
BOOKKEEPING = """
CREATE TABLE IF NOT EXISTS schema_migrations (
    version INTEGER PRIMARY KEY, name VARCHAR NOT NULL, applied_at TIMESTAMPTZ NOT NULL DEFAULT now());
CREATE TABLE IF NOT EXISTS schema_views (name VARCHAR PRIMARY KEY, sha256 VARCHAR NOT NULL);
"""


def is_lock_error(exc: BaseException) -> bool:
    text = str(exc)
    return isinstance(exc, duckdb.IOException) and ("lock" in text.lower() or "Conflicting" in text)


def host_database(con: duckdb.DuckDBPyConnection, path: Path) -> str:
    """The name under which `con` has the DuckDB file `path` open (duckdb names it after the file)."""
    row = con.execute("SELECT database_name FROM duckdb_databases() WHERE path = ?", [str(path)]).fetchone()
    if row is None:
        raise WarehouseError(f"{path} is not open on this connection")
    return '"' + row[0].replace('"', '""') + '"'


class Warehouse:
    """A DuckDB file (or a DuckLake, given `lake`) with newsmon's schema. Cheap to create.

    On the DuckDB file it holds no connection. On a lake it keeps one in-memory DuckDB
    with the lake attached per process (attaching costs a catalog round trip), and hands
    out a cursor of it per `connect()`.
    """

    def __init__(self, path: str | Path, lock_timeout: float = 120.0, memory_limit: str | None = None, *,
                 lake: LakeConfig | None = None):
        self.path = Path(path)
        self.lock_timeout = lock_timeout
        self.memory_limit = memory_limit  # DuckDB's memory_limit ("512MB"); None: DuckDB's default
        self.lake = lake
        self._base: duckdb.DuckDBPyConnection | None = None
        self._base_pid: int | None = None
        self._base_lock = threading.Lock()

    @classmethod
    def from_settings(cls, ws) -> Warehouse:
        """The warehouse a `[warehouse]` section (newsmon.settings.WarehouseSettings) names."""
        lake = LakeConfig(ws.catalog, ws.data_path, s3_endpoint=ws.s3_endpoint, s3_region=ws.s3_region,
                          s3_url_style=ws.s3_url_style, s3_use_ssl=ws.s3_use_ssl) if ws.backend == "ducklake" else None
        return cls(ws.path, ws.lock_timeout_seconds, ws.memory_limit, lake=lake)

    def __getstate__(self) -> dict[str, Any]:  # Prefect hashes task inputs: no connection, no lock
        return {"path": self.path, "lock_timeout": self.lock_timeout, "memory_limit": self.memory_limit,
                "lake": self.lake}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["path"], state["lock_timeout"], state.get("memory_limit"), lake=state["lake"])

    def close(self) -> None:
        """Drop the lake connection of this process (the DuckDB file has none)."""
        with self._base_lock:
            if self._base is not None and self._base_pid == os.getpid():
                self._base.close()
            self._base = None

    def _lake_cursor(self) -> duckdb.DuckDBPyConnection:
        """A connection of its own (a cursor) to this process's DuckDB with the lake attached."""
        with self._base_lock:
            if self._base is None or self._base_pid != os.getpid():  # never share a DuckDB across fork
                self._base = open_lake(self.lake, lock_timeout=self.lock_timeout)
                self._base_pid = os.getpid()
            return self._base.cursor()

    # -- connections -------------------------------------------------------------
    @contextlib.contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """A short-lived connection; waits (with backoff) while another process holds the file."""
        if self.lake is not None:
            cur = self._lake_cursor()
            try:
                cur.execute(f"USE {LAKE}")
                yield cur
            finally:
                cur.close()
            return
        if read_only and not self.path.exists():
            raise WarehouseError(f"no warehouse at {self.path}: run `newsmon ingest` first")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        con = self._open_file(lambda: duckdb.connect(
            str(self.path), read_only=read_only,
            config={"memory_limit": self.memory_limit} if self.memory_limit else {}))
        try:
            yield con
        finally:
            con.close()

    def _open_file(self, opener: Callable[[], duckdb.DuckDBPyConnection]) -> duckdb.DuckDBPyConnection:
        """`opener()` (which opens the file `path`), retried with backoff while another process holds the file."""
        deadline = time.monotonic() + self.lock_timeout
        delay = 0.05
        while True:
            try:
                return opener()
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

    @contextlib.contextmanager
    def local_connection(self, read_only: bool = False, attach_lake: bool = True
                         ) -> Iterator[duckdb.DuckDBPyConnection]:
        """On a lake: the local DuckDB file `path` (the default database; created if missing unless
        `read_only`) with the lake attached read-only as LAKE (unless not `attach_lake`: attaching
        costs ~1 s). The search index lives in this file (warehouse/search.py): DuckLake cannot
        hold it. Waits while another process holds the file."""
        if self.lake is None:
            raise WarehouseError("local_connection is for the DuckLake backend")
        if not read_only:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        if attach_lake:
            con = self._open_file(lambda: open_lake(self.lake, read_only=True, host=str(self.path),
                                                    host_read_only=read_only, lock_timeout=self.lock_timeout))
        else:
            con = self._open_file(lambda: duckdb.connect(str(self.path), read_only=read_only))
        try:
            con.execute(f"USE {host_database(con, self.path)}")
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def analyst_connection(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A read-only connection for `newsmon sql`, with no file or network access beyond the warehouse.

        On a lake: the local DuckDB file `path` (opened read-only when it exists, so an
        analyst's own tables stay reachable under its name) with the lake attached
        read-only and in use. External access is still on: the caller
        (`warehouse.readonly.readonly_connection`) loads what it needs, allows the lake's
        data path, then turns access off and locks the configuration.
        """
        if self.lake is None:
            with self.connect(read_only=True) as con:
                yield con
            return
        host = str(self.path) if self.path.exists() else ":memory:"
        # the file is held read-write for a moment while a search rebuilds its index there: wait for it
        con = self._open_file(lambda: open_lake(self.lake, read_only=True, host=host))
        try:
            yield con
        finally:
            con.close()

    @contextlib.contextmanager
    def _writer(self) -> Iterator[None]:
        """Serialise writers across processes: the lake's advisory lock (the DuckDB file locks itself)."""
        if self.lake is None:
            yield
            return
        with writer_lock(self._lake_cursor(), self.lock_timeout):
            yield

    @contextlib.contextmanager
    def transaction(self) -> Iterator[duckdb.DuckDBPyConnection]:
        """A write transaction: everything inside commits together or not at all."""
        with self._writer(), self.connect() as con:
            con.execute("BEGIN TRANSACTION")
            try:
                yield con
            except BaseException:
                con.execute("ROLLBACK")
                raise
            try:
                con.execute("COMMIT")
            except duckdb.TransactionException as exc:
                # DuckLake retries a commit that lost a race by itself; what reaches here is a
                # real conflict with a writer outside newsmon's lock (e.g. lake maintenance).
                raise WarehouseError(f"the warehouse transaction conflicted with another writer and was rolled "
                                     f"back: {str(exc).splitlines()[-1]}; the stage is idempotent, run it again"
                                     ) from exc

    def read(self, sql: str, params: Sequence[Any] | None = None) -> list[dict[str, Any]]:
        """Rows of a read-only query as dicts."""
        with self.connect(read_only=True) as con:
            return fetch_dicts(con, sql, params)

    # -- schema ------------------------------------------------------------------
    def migrate(self) -> list[str]:
        """Apply pending migrations (each commits with its record), then (re)create changed views."""
        applied = []
        ddl = adapt_ddl if self.lake is not None else (lambda sql: sql)
        view_sql = adapt_view_sql if self.lake is not None else (lambda sql: sql)
        with self._writer(), self.connect() as con:
            con.execute(ddl(BOOKKEEPING))
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
                    con.execute(ddl(path.read_text()))
                    con.execute("INSERT INTO schema_migrations (version, name) VALUES (?, ?)", [version, path.name])
                except (duckdb.Error, WarehouseError) as exc:
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
                        con.execute(view_sql(p.read_text()))
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
    lake = on_conflict != "error" and is_lake(con)
    if lake:
        keys = _keys_for(table, names)
        rows = _last_per_key(rows, keys) if on_conflict == "replace" else _first_per_key(rows, keys)
    batch = pa.Table.from_pylist([{n: r.get(n) for n in names} for r in rows], schema=schema)
    cols = ", ".join(f'"{n}"' for n in names)
    if lake:
        # No constraints on a lake: the key is kept here (callers hold the writer lock).
        on = " AND ".join(f't."{k}" = b."{k}"' for k in keys)
        if on_conflict == "ignore":
            sql = (f"INSERT INTO {table} ({cols}) SELECT {cols} FROM _newsmon_batch b "
                   f"WHERE NOT EXISTS (SELECT 1 FROM {table} t WHERE {on})")
        else:
            rest = [n for n in names if n not in keys]
            update = ("UPDATE SET " + ", ".join(f'"{n}" = b."{n}"' for n in rest)) if rest else "DO NOTHING"
            values = ", ".join(f'b."{n}"' for n in names)
            sql = (f"MERGE INTO {table} t USING _newsmon_batch b ON {on} WHEN MATCHED THEN {update} "
                   f"WHEN NOT MATCHED THEN INSERT ({cols}) VALUES ({values})")
    else:
        verb = {"error": "INSERT", "ignore": "INSERT OR IGNORE", "replace": "INSERT OR REPLACE"}[on_conflict]
        sql = f"{verb} INTO {table} ({cols}) SELECT {cols} FROM _newsmon_batch"
    con.register("_newsmon_batch", batch)
    try:
        con.execute(sql)
    finally:
        con.unregister("_newsmon_batch")
    return len(rows)


def _keys_for(table: str, names: Sequence[str]) -> tuple[str, ...]:
    keys = table_keys().get(table)
    if not keys:
        raise WarehouseError(f"table {table} declares no PRIMARY KEY in the migrations, so on_conflict has "
                             "nothing to compare on the DuckLake backend")
    missing = [k for k in keys if k not in names]
    if missing:
        raise WarehouseError(f"rows for {table} lack its key column(s) {', '.join(missing)}")
    return keys


def _first_per_key(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    seen: dict[tuple, dict[str, Any]] = {}
    for r in rows:
        seen.setdefault(tuple(r[k] for k in keys), r)
    return list(seen.values())


def _last_per_key(rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> list[dict[str, Any]]:
    return list({tuple(r[k] for k in keys): r for r in rows}.values())
