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

The public interface is every view and macro of the main schema (the files of
warehouse/views and the search macros); base tables are the pipeline's own business.
"""
from __future__ import annotations

import contextlib
from collections.abc import Iterator

import duckdb

from newsmon.errors import WarehouseError
from warehouse.db import Warehouse

__all__ = ["run_readonly", "readonly_connection", "check_query", "sql_error", "public_views", "public_columns",
           "public_macros"]

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}

_WHY = {
    "INSTALL": "`newsmon sql` installs no extensions (there is no network, and an extension runs code); "
               "full-text search is already loaded: SELECT * FROM search_articles('words')",
    "LOAD": "`newsmon sql` loads no extensions itself (an extension runs code); "
            "full-text search is already loaded: SELECT * FROM search_articles('words')",
    "COPY": "`newsmon sql` only reads; write a view to a file with `newsmon export VIEW --format csv --out FILE`",
    "EXPORT": "`newsmon sql` only reads; write a view to a file with `newsmon export VIEW --format parquet --out FILE`",
}


def sql_error(exc: duckdb.Error) -> WarehouseError:
    """DuckDB's message on one line, its hints kept ("Did you mean ...", candidate bindings),
    the LINE/caret excerpt of the query left out."""
    lines = [ln.strip() for ln in str(exc).splitlines()]
    kept = []
    for ln in lines:
        if ln.startswith("LINE ") or not ln or set(ln) <= {"^", " "}:
            continue
        kept.append(ln)
    return WarehouseError("SQL error: " + " ".join(kept))


def check_query(con: duckdb.DuckDBPyConnection, sql: str) -> list:
    """The statements of `sql`, if every one only reads; WarehouseError naming what is refused and why."""
    try:
        statements = con.extract_statements(sql)
    except duckdb.Error as exc:
        raise sql_error(exc) from None
    if not statements:
        raise WarehouseError("no SQL statement given")
    for st in statements:
        if st.type not in ALLOWED:
            name = st.type.name
            if name == "LOAD":  # DuckDB parses INSTALL and LOAD as one statement type
                name = "INSTALL" if st.query.lstrip().upper().startswith(("INSTALL", "FORCE")) else "LOAD"
            why = _WHY.get(name, "`newsmon sql` only reads (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
            raise WarehouseError(f"refused: {name} statements are not allowed; {why}")
    return statements


@contextlib.contextmanager
def readonly_connection(wh: Warehouse, *, allowed_paths: list[str] | None = None, fts: bool = True,
                        ) -> Iterator[duckdb.DuckDBPyConnection]:
    """A read-only connection, fts loaded (unless not `fts`), external access off (but for `allowed_paths`)."""
    from warehouse.search import load_fts

    with wh.connect(read_only=True) as con:
        if fts:
            try:
                load_fts(con)
            except (WarehouseError, duckdb.Error):
                pass  # search_articles then fails with its own message; every other query works
        if allowed_paths:
            con.execute("SET allowed_paths = ?", [allowed_paths])
        con.execute("SET enable_external_access = false")  # cannot be turned back on by the query
        con.execute("SET lock_configuration = true")
        yield con


def run_readonly(wh: Warehouse, sql: str) -> tuple[list[str], list[tuple]]:
    """Columns and rows of the last statement of `sql`; raises WarehouseError for anything that writes."""
    from warehouse.search import needs_search

    with readonly_connection(wh, fts=needs_search(sql)) as con:  # loading fts costs ~0.2 s: only for searches
        statements = check_query(con, sql)
        try:
            for st in statements[:-1]:
                con.execute(st)
            cur = con.execute(statements[-1])
            columns = [d[0] for d in cur.description] if cur.description else []
            return columns, cur.fetchall() if columns else []
        except duckdb.Error as exc:
            raise sql_error(exc) from None


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
    return con.execute("""
        SELECT column_name, data_type, comment FROM duckdb_columns()
        WHERE schema_name = 'main' AND table_name = ? AND database_name = current_database()
        ORDER BY column_index""", [view]).fetchall()


def public_macros(con: duckdb.DuckDBPyConnection) -> list[tuple[str, str, list[str], str | None]]:
    """(name, macro | table_macro, parameters, comment) of the documented macros."""
    return con.execute("""
        SELECT DISTINCT function_name, function_type, parameters, comment FROM duckdb_functions()
        WHERE schema_name = 'main' AND database_name = current_database() AND NOT internal
          AND function_type IN ('macro', 'table_macro') AND comment IS NOT NULL
        ORDER BY function_name""").fetchall()
