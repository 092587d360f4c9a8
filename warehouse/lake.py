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
- **Object storage.** `data_path` may be an S3 prefix ("s3://bucket/newsmon/"; AWS or an
  S3-compatible store through `s3_endpoint`). Every process then also loads `httpfs` (from its
  wheel too) and creates a temporary S3 secret scoped to that prefix, with the key id and secret
  taken from the standard environment (AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, optionally
  AWS_SESSION_TOKEN) at connect time: never from the config file, never kept in LakeConfig
  (which Prefect hashes with the task inputs). A LIST of a key under the prefix checks the
  endpoint, the bucket and the credentials before the catalog is attached, so a worker that
  cannot reach the store fails at once with one line, not at its first large write.
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
           "is_lake", "lake_files", "connect_object_store", "s3_secret_sql", "LAKE", "LOCK_DB"]

#: The name the lake is attached under (and made the default database).
LAKE = "lake"
#: The catalog database attached a second time (as plain PostgreSQL) for the writer lock.
LOCK_DB = "_newsmon_pg"
#: The advisory lock key of the writer lock (a stable 63-bit number).
LOCK_KEY = int.from_bytes(hashlib.sha256(b"newsmon-warehouse-writer").digest()[:8], "big") >> 1

_EXTENSIONS = {"ducklake": "duckdb_extension_ducklake", "postgres_scanner": "duckdb_extension_postgres_scanner",
               "httpfs": "duckdb_extension_httpfs"}
#: What every lake needs; httpfs only with an object-store data_path (loading it costs time).
_LAKE_EXTENSIONS = ("ducklake", "postgres_scanner")
#: The object stores newsmon configures (httpfs reaches others, but they need other secrets).
OBJECT_STORE_SCHEMES = ("s3://",)
#: The temporary secret holding the lake's object-store credentials.
SECRET = "newsmon_lake_s3"
#: The environment variables the credentials come from (the AWS CLI's and SDKs' own names).
ENV_KEY_ID, ENV_SECRET, ENV_TOKEN = "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"


@dataclasses.dataclass(frozen=True)
class LakeConfig:
    """Where the lake lives: `catalog` as DuckLake takes it ("postgres:dbname=… host=…"), `data_path` a
    directory or object-storage prefix ending in "/", and how to reach an object store (nothing
    secret: the credentials come from the environment when a connection is opened)."""
    catalog: str
    data_path: str
    s3_endpoint: str | None = None     # "host[:port]" of an S3-compatible store; None: AWS
    s3_region: str | None = None       # None: DuckDB's default (us-east-1)
    s3_url_style: str | None = None    # "path" | "vhost"; None: DuckDB's default (vhost)
    s3_use_ssl: bool = True

    @property
    def postgres_dsn(self) -> str:
        """The libpq connection string of the catalog database."""
        return self.catalog.removeprefix("postgres:")

    @property
    def remote(self) -> bool:
        """Whether the data files live in an object store (else in a directory)."""
        return "://" in self.data_path


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


def load_extensions(con: duckdb.DuckDBPyConnection, names: tuple[str, ...] = _LAKE_EXTENSIONS) -> None:
    """LOAD the extensions from their files (offline; never INSTALL from the network)."""
    con.execute("SET autoinstall_known_extensions = false")
    for name in names:
        con.execute(f"LOAD {_quote(str(extension_path(name)))}")


def s3_secret_sql(lake: LakeConfig, environ: dict[str, str] | None = None) -> str:
    """The CREATE TEMPORARY SECRET statement giving DuckDB the lake's S3 credentials, scoped to
    `data_path` (DuckDB sends them for nothing else); WarehouseError when the environment lacks them."""
    import os

    env = os.environ if environ is None else environ
    missing = [k for k in (ENV_KEY_ID, ENV_SECRET) if not env.get(k)]
    if missing:
        raise WarehouseError(f"the lake's data path {lake.data_path} is in object storage and {' and '.join(missing)} "
                             f"{'is' if len(missing) == 1 else 'are'} not set: export {ENV_KEY_ID} and {ENV_SECRET} "
                             f"(and {ENV_TOKEN} for temporary credentials) in the environment of every newsmon "
                             "process; credentials never go in the config file")
    options = {"TYPE": "s3", "PROVIDER": "config", "KEY_ID": _quote(env[ENV_KEY_ID]),
               "SECRET": _quote(env[ENV_SECRET]), "SCOPE": _quote(lake.data_path),
               "USE_SSL": "true" if lake.s3_use_ssl else "false"}
    if env.get(ENV_TOKEN):
        options["SESSION_TOKEN"] = _quote(env[ENV_TOKEN])
    if lake.s3_endpoint:
        options["ENDPOINT"] = _quote(lake.s3_endpoint)
    if lake.s3_region:
        options["REGION"] = _quote(lake.s3_region)
    if lake.s3_url_style:
        options["URL_STYLE"] = _quote(lake.s3_url_style)
    return f"CREATE OR REPLACE TEMPORARY SECRET {SECRET} (" + ", ".join(f"{k} {v}" for k, v in options.items()) + ")"


def connect_object_store(con: duckdb.DuckDBPyConnection, lake: LakeConfig) -> None:
    """Load httpfs, create the lake's S3 secret and check that the store answers (a LIST of one
    key prefix under data_path: cheap however many files the lake holds).

    WarehouseError, one line naming what to check, when the credentials are missing or the
    endpoint, the bucket or the credentials do not work.
    """
    if not lake.data_path.startswith(OBJECT_STORE_SCHEMES):
        raise WarehouseError(f"data_path {lake.data_path!r}: only S3 object storage (s3://bucket/prefix/, AWS or "
                             "S3-compatible through s3_endpoint) or a directory can hold the lake")
    secret = s3_secret_sql(lake)
    try:
        load_extensions(con, ("httpfs",))
        con.execute(secret)
        con.execute(f"SELECT count(*) FROM glob({_quote(lake.data_path + '.newsmon-probe*')})").fetchone()
    except duckdb.Error as exc:
        where = f"endpoint {lake.s3_endpoint}" if lake.s3_endpoint else "AWS S3"
        raise WarehouseError(
            f"cannot reach the lake's object store at {lake.data_path} ({where}): {_one_line(exc)}; check "
            f"[warehouse] data_path (the bucket must exist), s3_endpoint, s3_region, s3_url_style, s3_use_ssl and "
            f"the credentials in {ENV_KEY_ID}/{ENV_SECRET}") from None


def _one_line(exc: BaseException) -> str:
    # DuckDB's first line says what failed; the rest is the statement (the secret's, here) and a caret
    return (str(exc).splitlines() or [type(exc).__name__])[0]


def open_lake(lake: LakeConfig, *, read_only: bool = False, host: str = ":memory:",
              lock_timeout: float = 120.0, host_read_only: bool | None = None) -> duckdb.DuckDBPyConnection:
    """A DuckDB connection (`host`: a file or in memory) with the lake attached as LAKE and in use.

    A `read_only` lake opens a `host` file read-only too, unless `host_read_only` is False
    (the search index is written to the host file while the lake is only read).

    A writer attaches the catalog database as LOCK_DB too (for `writer_lock`). The first
    ATTACH of an empty catalog creates DuckLake's metadata tables, and two processes doing
    that at once collide, so on an empty catalog the lake is attached holding the lock.
    """
    if host_read_only is None:
        host_read_only = read_only
    con = duckdb.connect(host, read_only=host_read_only and host != ":memory:")
    if lake.remote:  # before the catalog: a store that cannot be used is named as such, not as PostgreSQL
        try:
            connect_object_store(con, lake)
        except BaseException:
            con.close()
            raise
    try:
        load_extensions(con)
        options = f"DATA_PATH {_quote(lake.data_path)}" + (", READ_ONLY" if read_only else "")
        attach = f"ATTACH {_quote('ducklake:' + lake.catalog)} AS {LAKE} ({options})"
        if read_only:
            con.execute(attach)
            if lake.remote:  # see lake_files: the reader's files are those of one snapshot
                (snapshot,) = con.execute(f"SELECT id FROM {LAKE}.current_snapshot()").fetchone()
                con.execute(f"DETACH {LAKE}")
                con.execute(attach[:-1] + f", SNAPSHOT_VERSION {int(snapshot)})")
        else:
            if not lake.remote:
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
                             f"{_one_line(exc)}; check [warehouse] catalog and that PostgreSQL "
                             "is up") from exc
    return con


def lake_files(con: duckdb.DuckDBPyConnection) -> list[str]:
    """Every data and delete file of every table of the attached lake, as DuckLake opens them.

    For a reader of a lake in object storage, whose file access is limited to these exact paths:
    DuckDB checks `allowed_directories` against a path as written and httpfs then resolves "..",
    so "s3://bucket/lake/../../other/x.parquet" would pass a prefix check on the lake and read
    another bucket (local paths are resolved before the check). An exact list cannot be walked
    out of. A read-only `open_lake` on object storage pins the snapshot it attached, so the list
    stays complete while writers commit new files.
    """
    tables = con.execute("SELECT schema_name, table_name FROM duckdb_tables() WHERE database_name = ?",
                         [LAKE]).fetchall()
    files: set[str] = set()
    for schema, table in tables:
        rows = con.execute(f"SELECT data_file, delete_file FROM ducklake_list_files({_quote(LAKE)}, ?, schema => ?)",
                           [table, schema]).fetchall()
        files.update(f for row in rows for f in row if f)
    return sorted(files)


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
