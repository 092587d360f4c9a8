"""Read-only SQL for analysts (`newsmon sql`).

The connection is opened read-only, and every statement is checked before it
runs: only queries pass (SELECT, VALUES, EXPLAIN, DESCRIBE/SHOW/SUMMARIZE, which
DuckDB parses as SELECT). COPY, ATTACH, EXPORT, SET, INSTALL and friends are
refused, because a read-only file does not stop them from writing elsewhere.
The connection also runs with external access disabled (no file, network or
extension access besides the warehouse itself), because a statement-type check
alone lets `EXPLAIN ANALYZE COPY ... TO 'file'` through: it is an EXPLAIN, and runs.

`run_bounded` also bounds a session: a statement timeout (`[sql] timeout_seconds`) and
Ctrl-C both interrupt DuckDB itself (`con.interrupt()`; the query runs in a worker thread
so that the main thread stays free to notice either), DuckDB's memory is capped
(`[sql] memory_limit`), and at most `[sql] max_rows` rows are fetched. DuckDB's own error
text, hints included ("Did you mean ...?", "Candidate bindings: ..."), reaches the user.
"""
from __future__ import annotations

import dataclasses
import re
import threading
import time

import duckdb

from newsmon.errors import WarehouseError
from warehouse.db import Warehouse

#: How long an interrupted query may take to stop before the session gives up on it.
INTERRUPT_GRACE_SECONDS = 10.0
_MEMORY = re.compile(r"^\s*\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)\s*$", re.I)

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


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
    if memory_limit is not None and not _MEMORY.match(memory_limit):
        raise WarehouseError(f"memory limit {memory_limit!r} is not a size such as \"2GB\" or \"512MiB\"")
    with wh.connect(read_only=True) as con:
        if memory_limit is not None:
            con.execute(f"SET memory_limit = '{memory_limit.strip()}'")
        con.execute("SET enable_progress_bar = false")
        con.execute("SET enable_external_access = false")  # cannot be turned back on by the query
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise WarehouseError(sql_error(exc)) from None
        if not statements:
            raise WarehouseError("no SQL statement given")
        for st in statements:
            if st.type == duckdb.StatementType.LOAD:
                words = " ".join(st.query.split()[:2]) or "INSTALL/LOAD"
                raise WarehouseError(
                    f"refused: {words}: `newsmon sql` neither installs nor loads DuckDB extensions (an extension "
                    "is code that can read and write files and reach the network, and this session may only "
                    "read the warehouse); the extensions newsmon uses are loaded by newsmon itself")
            if st.type not in ALLOWED:
                raise WarehouseError(f"refused: {st.type.name} statements are not allowed; "
                                     "`newsmon sql` only reads (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
        return _execute(con, statements, timeout, max_rows)


def sql_error(exc: BaseException) -> str:
    """DuckDB's message with its hints and the LINE pointer, blank lines dropped."""
    lines = [line.rstrip() for line in str(exc).splitlines() if line.strip()]
    return "SQL error: " + "\n".join(lines or [type(exc).__name__])


def _execute(con: duckdb.DuckDBPyConnection, statements: list, timeout: float | None,
             max_rows: int | None) -> QueryResult:
    box: dict[str, object] = {}

    def work() -> None:
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

    worker = threading.Thread(target=work, name="newsmon-sql", daemon=True)
    started = time.monotonic()
    worker.start()
    stopped_by: str | None = None
    try:
        while worker.is_alive():
            worker.join(0.1)
            if timeout is not None and worker.is_alive() and time.monotonic() - started >= timeout:
                stopped_by = "timeout"
                con.interrupt()
                break
    except KeyboardInterrupt:
        stopped_by = "interrupt"
        con.interrupt()
    if stopped_by:
        worker.join(INTERRUPT_GRACE_SECONDS)
        if stopped_by == "interrupt":
            raise KeyboardInterrupt
        raise WarehouseError(
            f"query stopped after {timeout:g}s (the limit: sql.timeout_seconds, or --timeout): narrow it (WHERE, "
            "LIMIT) or give it more time with --timeout SECONDS")
    if "error" in box:
        exc = box["error"]
        if isinstance(exc, duckdb.Error):
            raise WarehouseError(sql_error(exc)) from None
        raise exc  # type: ignore[misc]
    return box["result"]  # type: ignore[return-value]
