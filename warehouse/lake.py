"""The DuckLake backend: newsmon's tables in a lake whose catalog lives in PostgreSQL.

With `[warehouse] backend = "ducklake"` every process opens an in-memory DuckDB,
loads the `ducklake` and `postgres_scanner` extensions from their PyPI wheels
(offline: no INSTALL), and attaches

    ATTACH 'ducklake:postgres:dbname=… host=…' AS lake (DATA_PATH 'DIR/')

so several processes on several machines share one warehouse. What differs from
the DuckDB file, and how newsmon bridges it:

- **No PRIMARY KEY / UNIQUE constraints, indexes or sequences** in DuckLake. The
  migrations keep declaring their keys (the DuckDB file still enforces them);
  `adapt_ddl` strips them for the lake, and `table_keys` reads them from the
  migration files so that `insert_rows(on_conflict="ignore"|"replace")` keeps
  uniqueness in the writer (anti-join insert, MERGE) instead of a constraint.
  `INSERT OR IGNORE/REPLACE` and `ON CONFLICT` need a constraint, so they are not
  used by the statements that run on both backends.
- **Concurrent writers.** DuckLake commits optimistically: two transactions that
  update or delete the same rows conflict and one fails, but two that each
  check "not there yet" and insert the same key both commit (appends never
  conflict), which would duplicate rows. So every newsmon write transaction
  holds a PostgreSQL advisory lock (`writer_lock`) taken on the catalog
  database: writes are serialised exactly as the DuckDB file lock serialises
  them, while reads, fetching, extraction and mining run in parallel. A process
  that dies loses its connection and PostgreSQL frees the lock.
- **Reads never wait**: a reader sees the last committed snapshot.
"""
from __future__ import annotations

import contextlib
import dataclasses
import functools
import hashlib
import importlib
import random
import re
import time
from collections.abc import Iterator
from pathlib import Path

import duckdb

from newsmon.errors import WarehouseError

__all__ = ["LakeConfig", "adapt_ddl", "adapt_view_sql", "view_column_comments", "macro_comments", "table_keys", "load_extensions", "open_lake", "writer_lock",
           "is_lake", "LAKE", "LOCK_DB"]

#: The name the lake is attached under (and made the default database).
LAKE = "lake"
#: The catalog database attached a second time (as plain PostgreSQL) for the writer lock.
LOCK_DB = "_newsmon_pg"
#: The advisory lock key of the writer lock (a stable 63-bit number).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"newsmon-warehouse-writer").digest()[:8], "big") >> 1

_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "postgres_scanner": "duckdb_extension_postgres_scanner"}


@dataclasses.dataclass(frozen=True)
class LakeConfig:
    """Where the lake lives: `catalog` as DuckLake takes it ("postgres:dbname=… host=…"), `data_path` a
    directory or object-storage prefix ending in "/"."""
    catalog: str
    data_path: str

    @property
    def postgres_dsn(self) -> str:
        """The libpq connection string of the catalog database."""
        return self.catalog.removeprefix("postgres:")


def _quote(s: str) -> str:
    return "'" + s.replace("'", "''") + "'"


# -- extensions -------------------------------------------------------------------
def extension_path(name: str) -> Path:
    """The extension file shipped in its PyPI package for the installed duckdb version."""
    package = _EXTENSIONS[name]
    wanted = f"{package.replace('_', '-')}=={duckdb.__version__}"
    try:
        module = importlib.import_module(package)
    except ImportError:
        raise WarehouseError(f"the DuckLake backend needs the Python package {wanted}; "
                             f"pip install it (see requirements.lock)") from None
    path = Path(module.__file__).parent / "extensions" / f"v{duckdb.__version__}" / f"{name}.duckdb_extension"
    if not path.is_file():
        raise WarehouseError(f"{path} is missing: the installed {package} does not match duckdb "
                             f"{duckdb.__version__}; pip install {wanted}")
    return path


def load_extensions(con: duckdb.DuckDBPyConnection) -> None:
    """LOAD the two extensions from their files (offline; never INSTALL from the network)."""
    con.execute("SET autoinstall_known_extensions = false")
    for name in _EXTENSIONS:
        con.execute(f"LOAD {_quote(str(extension_path(name)))}")


def open_lake(lake: LakeConfig, *, read_only: bool = False, host: str = ":memory:",
              lock_timeout: float = 120.0) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (`host`: a file or in memory) with the lake attached as LAKE and in use.

    A writer attaches the catalog database as LOCK_DB too (for `writer_lock`). The first
    ATTACH of an empty catalog creates DuckLake's metadata tables, and two processes doing
    that at once collide, so on an empty catalog the lake is attached holding the lock.
    """
    con = duckdb.connect(host, read_only=read_only and host != ":memory:")
    try:
        load_extensions(con)
        options = f"DATA_PATH {_quote(lake.data_path)}" + (", READ_ONLY" if read_only else "")
        attach = f"ATTACH {_quote('ducklake:' + lake.catalog)} AS {LAKE} ({options})"
        if read_only:
            con.execute(attach)
        else:
            if "://" not in lake.data_path:
                Path(lake.data_path).mkdir(parents=True, exist_ok=True)
            con.execute(f"ATTACH {_quote(lake.postgres_dsn)} AS {LOCK_DB} (TYPE postgres)")
            exists = "SELECT count(*) > 0 FROM pg_catalog.pg_tables WHERE tablename = 'ducklake_metadata'"
            (created,) = con.execute(f"SELECT * FROM postgres_query({_quote(LOCK_DB)}, {_quote(exists)})").fetchone()
            if created:  # the usual case: attaching never waits for a writer
                con.execute(attach)
            else:
                with writer_lock(con.cursor(), lock_timeout):
                    con.execute(attach)
        con.execute(f"USE {LAKE}")
    except (duckdb.Error, WarehouseError) as exc:
        con.close()
        raise WarehouseError(f"cannot attach the DuckLake catalog {lake.catalog!r} (data {lake.data_path}): "
                             f"{str(exc).splitlines()[0]}; check [warehouse] catalog and that PostgreSQL "
                             "is up") from exc
    return con


def is_lake(con: duckdb.DuckDBPyConnection) -> bool:
    """Whether the connection's current database is a DuckLake."""
    row = con.execute("SELECT type FROM duckdb_databases() WHERE database_name = current_database()").fetchone()
    return bool(row) and row[0] == "ducklake"


@contextlib.contextmanager
def writer_lock(cur: duckdb.DuckDBPyConnection, timeout: float) -> Iterator[None]:
    """Hold the PostgreSQL advisory lock LOCK_KEY while the block runs (waits with backoff up to `timeout`).

    `cur` is a connection of its own (a cursor of the lake's connection; closed here). The
    lock is scoped to a transaction held open on it: it ends with that transaction, or with
    the connection when the process dies, so a killed writer never leaves the lake locked.
    """
    deadline = time.monotonic() + timeout
    delay = 0.02
    try:
        while True:
            cur.execute("BEGIN TRANSACTION")
            (ok,) = cur.execute(f"SELECT * FROM postgres_query({_quote(LOCK_DB)}, "
                                f"'SELECT pg_try_advisory_xact_lock({LOCK_KEY})')").fetchone()
            if ok:
                break
            cur.execute("ROLLBACK")
            if time.monotonic() >= deadline:
                raise WarehouseError(
                    f"another newsmon process kept writing to the lake for {timeout:.0f}s (PostgreSQL advisory "
                    f"lock {LOCK_KEY}); wait for it or raise warehouse.lock_timeout_seconds")
            time.sleep(delay * (0.5 + random.random()))
            delay = min(delay * 2, 1.0)
        yield
    finally:
        with contextlib.suppress(duckdb.Error):
            cur.execute("ROLLBACK")
        cur.close()


# -- DDL ----------------------------------------------------------------------------
_CREATE = re.compile(r"CREATE\s+TABLE\s+(?:IF\s+NOT\s+EXISTS\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*\(", re.I)
_COLUMN_PK = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\b[^,]*?\bPRIMARY\s+KEY\b", re.I)
_TABLE_PK = re.compile(r",\s*PRIMARY\s+KEY\s*\(([^)]*)\)", re.I)
_UNSUPPORTED = re.compile(r"\b(CREATE\s+(?:UNIQUE\s+)?INDEX|CREATE\s+SEQUENCE|UNIQUE|nextval)\b", re.I)


def _strip_comments(sql: str) -> str:
    return re.sub(r"--[^\n]*", "", sql)


def _table_bodies(sql: str) -> Iterator[tuple[str, int, int]]:
    """(table, start, end) of the parenthesised body of each CREATE TABLE (comments already stripped)."""
    for m in _CREATE.finditer(sql):
        depth, i = 1, m.end()
        while depth and i < len(sql):
            depth += {"(": 1, ")": -1}.get(sql[i], 0)
            i += 1
        yield m.group(1).lower(), m.end(), i - 1


def _keys_of(body: str) -> tuple[str, ...]:
    m = _TABLE_PK.search(body)
    if m:
        return tuple(c.strip().strip('"').lower() for c in m.group(1).split(","))
    cols = []
    for line in body.split(","):
        cm = _COLUMN_PK.match(line)
        if cm:
            cols.append(cm.group(1).lower())
    return tuple(cols)


def adapt_ddl(sql: str) -> str:
    """The migration `sql` as DuckLake takes it: PRIMARY KEY constraints dropped (their columns stay NOT NULL).

    Raises WarehouseError for what DuckLake cannot hold and newsmon cannot emulate
    (UNIQUE constraints, indexes, sequences), naming it, so that a new migration
    fails loudly on the lake rather than silently losing a guarantee.
    """
    sql = _strip_comments(sql)
    bad = _UNSUPPORTED.search(sql)
    if bad:
        raise WarehouseError(f"DuckLake cannot hold {bad.group(1).upper()!r}: keep uniqueness in the writer "
                             "(a PRIMARY KEY in the migration, loaded with insert_rows(on_conflict=...))")
    out, last = [], 0
    for _table, start, end in _table_bodies(sql):
        body = sql[start:end]
        body = _TABLE_PK.sub("", body)
        body = re.sub(r"\bNOT\s+NULL\s+PRIMARY\s+KEY\b|\bPRIMARY\s+KEY\s+NOT\s+NULL\b|\bPRIMARY\s+KEY\b",
                      "NOT NULL", body, flags=re.I)
        out += [sql[last:start], body]
        last = end
    out.append(sql[last:])
    return "".join(out)


#: `COMMENT ON COLUMN view.column IS '...';` (a view file's column documentation).
_COLUMN_COMMENT = re.compile(r"COMMENT\s+ON\s+COLUMN\s+(\w+)\.(\w+)\s+IS\s+'((?:[^']|'')*)'\s*;", re.I)


#: `COMMENT ON MACRO [TABLE] name IS '...';` (a macro's documentation).
_MACRO_COMMENT = re.compile(r"COMMENT\s+ON\s+MACRO\s+(?:TABLE\s+)?(\w+)\s+IS\s+'((?:[^']|'')*)'\s*;", re.I)


def adapt_view_sql(sql: str) -> str:
    """A view file as DuckLake takes it: without its `COMMENT ON COLUMN` and `COMMENT ON MACRO` statements.

    DuckLake keeps a view's own comment but not comments on a view's columns ("Cannot
    comment on columns ... it is not a table") nor on macros ("Unsupported catalog type
    for SET COMMENT"); `view_column_comments` and `macro_comments` read them from the
    file instead, so `newsmon views` documents the same columns and macros on both backends.
    """
    return _MACRO_COMMENT.sub("", _COLUMN_COMMENT.sub("", sql))


def macro_comments(sql: str) -> dict[str, str]:
    """{macro: comment} of the `COMMENT ON MACRO` statements of a view file."""
    return {m.group(1): m.group(2).replace("''", "'") for m in _MACRO_COMMENT.finditer(sql)}


def view_column_comments(sql: str) -> dict[tuple[str, str], str]:
    """{(view, column): comment} of the `COMMENT ON COLUMN` statements of a view file."""
    return {(m.group(1), m.group(2)): m.group(3).replace("''", "'") for m in _COLUMN_COMMENT.finditer(sql)}


def keys_in(sql: str) -> dict[str, tuple[str, ...]]:
    """{table: primary key columns} declared by the CREATE TABLE statements of `sql`."""
    sql = _strip_comments(sql)
    return {table: keys for table, s, e in _table_bodies(sql) if (keys := _keys_of(sql[s:e]))}


@functools.cache
def table_keys() -> dict[str, tuple[str, ...]]:
    """{table: primary key columns} of every table the migrations (and db.py's bookkeeping) declare."""
    from warehouse.db import BOOKKEEPING, MIGRATIONS

    keys = keys_in(BOOKKEEPING)
    for path in sorted(MIGRATIONS.glob("*.sql")):
        keys.update(keys_in(path.read_text()))
    return keys
