"""Read-only SQL for analysts (`newsmon sql`).

The connection is opened read-only, and every statement is checked before it
runs: only queries pass (SELECT, VALUES, EXPLAIN, DESCRIBE/SHOW/SUMMARIZE, which
DuckDB parses as SELECT). COPY, ATTACH, EXPORT, SET, INSTALL and friends are
refused, because a read-only file does not stop them from writing elsewhere.
The connection also runs with external access disabled (no file, network or
extension access besides the warehouse itself), because a statement-type check
alone lets `EXPLAIN ANALYZE COPY ... TO 'file'` through: it is an EXPLAIN, and runs.
"""
from __future__ import annotations

import duckdb

from newsmon.errors import WarehouseError
from warehouse.db import Warehouse

ALLOWED = {duckdb.StatementType.SELECT, duckdb.StatementType.EXPLAIN}


def run_readonly(wh: Warehouse, sql: str) -> tuple[list[str], list[tuple]]:
    """Columns and rows of the last statement of `sql`; raises WarehouseError for anything that writes."""
    with wh.analyst_connection() as con:
        con.execute("SET enable_external_access = false")  # cannot be turned back on by the query
        try:
            statements = con.extract_statements(sql)
        except duckdb.Error as exc:
            raise WarehouseError(f"SQL error: {exc}".splitlines()[0]) from None
        if not statements:
            raise WarehouseError("no SQL statement given")
        for st in statements:
            if st.type not in ALLOWED:
                raise WarehouseError(f"refused: {st.type.name} statements are not allowed; "
                                     "`newsmon sql` only reads (SELECT, DESCRIBE, SHOW, SUMMARIZE, EXPLAIN)")
        try:
            for st in statements[:-1]:
                con.execute(st)
            cur = con.execute(statements[-1])
            columns = [d[0] for d in cur.description] if cur.description else []
            return columns, cur.fetchall() if columns else []
        except duckdb.Error as exc:
            raise WarehouseError(f"SQL error: {exc}".splitlines()[0]) from None
