"""`newsmon export`: a public view to a Parquet, CSV or JSON file through DuckDB's own writers.

The view's rows are selected on a read-only connection under the guard of `newsmon sql`
(warehouse/readonly.py): the optional filter goes into that SELECT, which must stay one
read-only statement; external access stays off except for the one file being written.
Lists stay lists in Parquet and JSON; CSV has no lists, so list and struct columns are
written as JSON text (`["Norway","Ukraine"]`), which any CSV reader returns intact and
json.loads reads back. The file is written beside the target and renamed into place, so
an export that fails leaves no partial file and an existing one untouched.
"""
from __future__ import annotations

import os
import re
import uuid
from pathlib import Path

import duckdb

from newsmon.errors import WarehouseError
from warehouse.db import Warehouse
from warehouse.readonly import check_query, public_columns, readonly_connection, sql_error

__all__ = ["FORMATS", "export_view", "export_select"]

FORMATS = {
    "parquet": "FORMAT parquet, COMPRESSION zstd",
    "csv": "FORMAT csv, HEADER true",
    "json": "FORMAT json, ARRAY true",
}
_NESTED = re.compile(r"\]$|^(STRUCT|MAP|UNION)\(")


def _ident(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def export_select(columns: list[tuple[str, str, str | None]], view: str, fmt: str, where: str | None) -> str:
    """The SELECT an export runs: nested columns as JSON text for CSV, the filter on lines of its own
    (a `--` comment in it cannot reach past it)."""
    items = []
    for name, dtype, _ in columns:
        if fmt == "csv" and _NESTED.search(dtype):
            items.append(f"CAST(to_json({_ident(name)}) AS VARCHAR) AS {_ident(name)}")
        else:
            items.append(_ident(name))
    sql = f"SELECT {', '.join(items)} FROM {_ident(view)}"
    if where is not None and where.strip():
        sql += f"\nWHERE (\n{where}\n)"
    return sql


def export_view(wh: Warehouse, view: str, fmt: str, out: str | os.PathLike, where: str | None = None) -> int:
    """Write public view `view` (rows matching `where`, an SQL expression) to `out`; returns the row count."""
    if fmt not in FORMATS:
        raise WarehouseError(f"unknown export format {fmt!r}; use one of {', '.join(FORMATS)}")
    out = Path(out).expanduser().resolve()
    if not out.parent.is_dir():
        raise WarehouseError(f"--out: no such directory: {out.parent}")
    if out.is_dir():
        raise WarehouseError(f"--out: {out} is a directory; name a file")
    tmp = out.with_name(f".{out.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with readonly_connection(wh, allowed_paths=[str(tmp)]) as con:
            columns = public_columns(con, view)
            sql = export_select(columns, view, fmt, where)
            statements = check_query(con, sql)
            if len(statements) != 1:
                raise WarehouseError("--where must be one SQL expression, not more statements")
            target = str(tmp).replace("'", "''")
            try:
                row = con.execute(f"COPY (\n{sql}\n) TO '{target}' ({FORMATS[fmt]})").fetchone()
            except duckdb.Error as exc:
                raise sql_error(exc) from None
        os.replace(tmp, out)
    finally:
        tmp.unlink(missing_ok=True)
    return int(row[0]) if row else 0
