"""Read-only SQL for analysts (`newsmon sql`), and the list of the public interface (`newsmon views`).

The connection is opened read-only, and every statement is checked before it
runs: only queries pass (SELECT, VALUES, EXPLAIN, DESCRIBE/SHOW/SUMMARIZE, which
DuckDB parses as SELECT). COPY, ATTACH, EXPORT, SET, INSTALL and friends are
refused, because a read-only file does not stop them from writing elsewhere.
The connection also runs with external access disabled (no file, network or
extension access besides the warehouse itself), because a statement-type check
alone lets `EXPLAIN ANALYZE COPY ... TO 'file'` through: it is an EXPLAIN, and runs.
The full-text search extension is loaded before that, from its package (see
warehouse/search.py), when the query names a search macro: `search_articles(...)` works.
On a DuckLake warehouse the lake is attached read-only first (`Warehouse.analyst_connection`)
and its data path stays readable (`allowed_directories`); nothing else does. The search index
and macros of a lake are in the local file (warehouse/search.py): a session that searches has
them after the lake in its search path. On object storage
the readable paths are the exact files of the snapshot the session attached (`lake_files`: a
directory prefix on an s3:// URL can be walked out of with "..").

The public interface is every view and macro of the main schema (the files of
warehouse/views and the search macros); base tables are the pipeline's own business.

`run_bounded` also bounds a session: a statement timeout (`[sql] timeout_seconds`) and
Ctrl-C both interrupt DuckDB itself (`con.interrupt()`; the query runs in a worker thread
so that the main thread stays free to notice either), DuckDB's memory is capped
(`[sql] memory_limit`), and at most `[sql] max_rows` rows are fetched. DuckDB's own error
text, hints included ("Did you mean ...?", "Candidate bindings: ..."), reaches the user.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
import threading
import time
from collections.abc import Iterator

import duckdb

from newsmon.errors import WarehouseError
from warehouse.db import Warehouse
from warehouse.lake import lake_files

__all__ = ["run_readonly", "run_bounded", "QueryResult", "readonly_connection", "check_query", "sql_error",
           "public_views", "public_columns", "public_macros"]

#: How long an interrupted query may take to stop before the session gives up on it.
INTERRUPT_GRACE_SECONDS = 10.0
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.I)

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

_EXTENSIONS = ("`newsmon sql` neither installs nor loads DuckDB extensions (an extension is code that can read "
               "and write files and reach the network, and this session may only read the warehouse); "
               "full-text search is already loaded: SELECT * FROM search_articles('words')")
_WHY = {
    "COPY": "`newsmon sql` only reads; write a view to a file with `newsmon export VIEW --format csv --out FILE`",
    "EXPORT": "`newsmon sql` only reads; write a view to a file with `newsmon export VIEW --format parquet --out FILE`",
}


def sql_error(exc: BaseException) -> WarehouseError:
    """DuckDB's message on one line, its hints ("Did you mean ...", candidate bindings) and the
    LINE excerpt kept, the caret line left out."""
    kept = [ln.strip() for ln in str(exc).splitlines() if ln.strip() and not set(ln.strip()) <= {"^"}]
    return WarehouseError("SQL error: " + " ".join(kept or [type(exc).__name__]))


def check_query(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """The statements of `sql`, if every one only reads; WarehouseError naming what is refused and why."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise sql_error(exc) from None
    if not statements:
        raise WarehouseError("no SQL statement given")
    for st in statements:
        if st.type == duckdb.StatementType.LOAD:   # DuckDB parses INSTALL and LOAD as one statement type
            words = " ".join(st.query.split()[:2]) or "INSTALL/LOAD"
            raise WarehouseError(f"refused: {words}: {_EXTENSIONS}")
        if st.type not in ALLOWED:
            name = st.type.name
            why = _WHY.get(name, "`newsmon sql` only reads (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
            raise WarehouseError(f"refused: {name} statements are not allowed; {why}")
    return statements


@contextlib.contextmanager
def readonly_connection(wh: Warehouse, *, allowed_paths: list[str] | None = None, fts: bool = True,
                        memory_limit: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, fts loaded (unless not `fts`), external access off (but for
    `allowed_paths`), DuckDB's memory capped at `memory_limit`, the configuration then locked."""
    from warehouse.search import load_fts, local_search_path

    if memory_limit is not None and not _MEMORY.match(memory_limit):
        raise WarehouseError(f"memory limit {memory_limit!r} is not a size such as \"2GB\" or \"512MiB\"")
    with wh.analyst_connection() as con:   # on a lake: the lake attached read-only, before access is locked
        if fts:
            try:
                load_fts(con)
            except (WarehouseError, duckdb.Error):
                pass  # search_articles then fails with its own message; every other query works
            if wh.lake is not None:  # the index and its macros are in the local file, after the lake
                path = local_search_path(con, wh.path)
                if path is not None:
                    con.execute("SET search_path = ?", [path])
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{memory_limit.strip()}'")
        con.execute("SET enable_progress_bar = false")
        paths = list(allowed_paths or [])
        if wh.lake is not None and wh.lake.remote:  # object storage: exactly the files of the pinned snapshot
            paths += lake_files(con)
        elif wh.lake is not None:  # the lake's data files stay readable (a directory: every file under it)
            con.execute("SET allowed_directories = ?", [[wh.lake.data_path]])
        if paths:
            con.execute("SET allowed_paths = ?", [paths])
        con.execute("SET enable_external_access = false")  # cannot be turned back on by the query
        con.execute("SET lock_configuration = true")
        yield con


@dataclasses.dataclass(frozen=True)
class QueryResult:
    columns: list[str]
    rows: list[tuple]
    truncated: bool = False   # more rows than max_rows: only the first max_rows are here


def run_readonly(wh: Warehouse, sql: str) -> tuple[list[str], list[tuple]]:
    """Columns and rows of the last statement of `sql`; raises WarehouseError for anything that writes."""
    result = run_bounded(wh, sql)
    return result.columns, result.rows


def run_bounded(wh: Warehouse, sql: str, *, timeout: float | None = None, memory_limit: str | None = None,
                max_rows: int | None = None) -> QueryResult:
    """`run_readonly` with bounds: stop after `timeout` seconds, cap DuckDB's memory, fetch at most `max_rows`.

    WarehouseError for a refused statement, an SQL error (DuckDB's message and hints) or
    the timeout; Ctrl-C interrupts the query and raises KeyboardInterrupt.
    """
    from warehouse.search import needs_search

    # loading fts costs ~0.2 s: only for searches
    with readonly_connection(wh, fts=needs_search(sql), memory_limit=memory_limit) as con:
        statements = check_query(con, sql)
        return _execute(con, statements, timeout, max_rows)


def _execute(con: duckdb.DuckDBPyConnection, statements: list, timeout: float | None,
             max_rows: int | None) -> QueryResult:
    box: dict[str, object] = {}
    # The worker's end is an Event, not Thread.is_alive(): a Ctrl-C that interrupts Thread.join()
    # can leave is_alive() False while the thread still runs (CPython before 3.13), and the
    # query then ran on while the connection's close waited for it.
    done = threading.Event()
    running = threading.Event()   # the worker's thread exists (set before its first statement)

    def work() -> None:
        running.set()
        try:
            for st in statements[:-1]:
                con.execute(st)
            cur = con.execute(statements[-1])
            columns = [d[0] for d in cur.description] if cur.description else []
            if not columns:
                box["result"] = QueryResult([], [])
            elif max_rows is None:
                box["result"] = QueryResult(columns, cur.fetchall())
            else:
                rows = cur.fetchmany(max_rows + 1)
                box["result"] = QueryResult(columns, rows[:max_rows], truncated=len(rows) > max_rows)
        except BaseException as exc:  # noqa: BLE001 - handed to the main thread
            box["error"] = exc
        finally:
            done.set()

    worker = threading.Thread(target=work, name="newsmon-sql", daemon=True)
    started = time.monotonic()
    stopped_by: str | None = None
    try:
        # inside the try: a Ctrl-C that lands while the thread starts must stop its query too (else
        # the query ran on, and closing the connection waited for it: a hang of hours)
        worker.start()
        while not done.wait(0.1):
            if timeout is not None and time.monotonic() - started >= timeout:
                stopped_by = "timeout"
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"
    if stopped_by:
        if running.is_set() or running.wait(1.0):   # a thread that never started runs nothing
            _stop(con, done)
        if stopped_by == "interrupt":
            raise KeyboardInterrupt
        raise WarehouseError(
            f"query stopped after {timeout:g}s (the limit: sql.timeout_seconds, or --timeout): narrow it (WHERE, "
            "LIMIT) or give it more time with --timeout SECONDS")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, duckdb.Error):
            raise sql_error(exc) from None
        raise exc  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]


def _stop(con: duckdb.DuckDBPyConnection, done: threading.Event) -> None:
    """Interrupt the worker's query until the worker is `done` (at most INTERRUPT_GRACE_SECONDS).

    One `con.interrupt()` is not enough: DuckDB forgets an interrupt that arrives before a
    statement has begun (between two statements, or while the worker thread has not yet been
    scheduled), and that statement would then run to its end, hours for a runaway query.
    """
    deadline = time.monotonic() + INTERRUPT_GRACE_SECONDS
    while not done.is_set() and time.monotonic() < deadline:
        con.interrupt()
        done.wait(0.05)


# -- the public interface ------------------------------------------------------------------
def public_views(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str | None, int]]:
    """(view, comment, number of columns) of every public view."""
    return con.execute("""
        SELECT v.view_name, v.comment, count(c.column_name)
        FROM duckdb_views() v LEFT JOIN duckdb_columns() c
          ON c.database_name = v.database_name AND c.schema_name = v.schema_name AND c.table_name = v.view_name
        WHERE NOT v.internal AND v.schema_name = 'main' AND v.database_name = current_database()
        GROUP BY ALL ORDER BY v.view_name""").fetchall()


def public_columns(con: duckdb.DuckDBPyConnection, view: str) -> list[tuple[str, str, str | None]]:
    """(column, type, comment) of a public view, in order; WarehouseError if it is not one."""
    names = [v for v, _, _ in public_views(con)]
    if view not in names:
        raise WarehouseError(f"no public view {view!r}; the views are: {', '.join(names)}")
    rows = con.execute("""
        SELECT column_name, data_type, comment FROM duckdb_columns()
        WHERE schema_name = 'main' AND table_name = ? AND database_name = current_database()
        ORDER BY column_index""", [view]).fetchall()
    if all(comment is None for _, _, comment in rows):  # a DuckLake keeps no comments on a view's columns
        from warehouse.db import VIEWS
        from warehouse.lake import view_column_comments

        files = {}
        for path in sorted(VIEWS.glob("*.sql")):
            files.update(view_column_comments(path.read_text()))
        rows = [(name, kind, files.get((view, name))) for name, kind, _ in rows]
    return rows


def public_macros(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str], str | None]]:
    """(name, macro | table_macro, parameters, comment) of the documented macros."""
    from warehouse.db import VIEWS
    from warehouse.lake import macro_comments

    files: dict[str, str] = {}   # a DuckLake keeps no comments on macros: the view files' text then
    for path in sorted(VIEWS.glob("*.sql")):
        files.update(macro_comments(path.read_text()))
    rows = con.execute("""
        SELECT DISTINCT function_name, function_type, parameters, comment FROM duckdb_functions()
        WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal
          AND function_type IN ('macro', 'table_macro')
        ORDER BY function_name""").fetchall()
    rows = [(name, kind, params, comment if comment is not None else files.get(name))
            for name, kind, params, comment in rows]
    return [row for row in rows if row[3] is not None]
