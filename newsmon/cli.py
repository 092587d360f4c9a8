"""The `newsmon` command line: thin commands over the flows and the warehouse.

Library errors become one clean line on stderr and exit code 2 here, and only here.
"""
from __future__ import annotations

import os

# Quiet Prefect's ephemeral server before Prefect is imported: no analytics calls,
# no error spam when the temporary server shuts down at exit.
os.environ.setdefault("PREFECT_SERVER_ANALYTICS_ENABLED", "false")
os.environ.setdefault("PREFECT_SERVER_LOGGING_LEVEL", "CRITICAL")
os.environ.setdefault("PREFECT_LOGGING_TO_API_BATCH_INTERVAL", "0.3")

import csv  # noqa: E402
import datetime as dt  # noqa: E402
import json  # noqa: E402
import sys  # noqa: E402
from enum import Enum  # noqa: E402
from typing import Annotated, Optional  # noqa: E402

import typer  # noqa: E402

from newsmon.errors import NewsmonError  # noqa: E402
from newsmon.settings import load_settings  # noqa: E402

app = typer.Typer(help="newsmon: stated positions and aid pledges per actor over time, with evidence.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)

ConfigOption = Annotated[Optional[str], typer.Option(
    "--config", "-c", help="TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)",
    show_default=False)]


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"newsmon: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def ingest(config: ConfigOption = None) -> None:
    """Run the pipeline once: poll feeds, fetch, extract, mine, detect changes, send due alerts.

    Example: newsmon ingest --config config/newsmon.toml
    """
    from flows.report import summary_line

    settings = load_settings(config)  # validate before Prefect starts, so a bad value is one line
    from flows.ingest import ingest as ingest_flow

    result = ingest_flow(config=str(settings.source))
    typer.echo(f"ingest done: {summary_line(result)}")


@app.command()
def sql(query: Annotated[str, typer.Argument(help="one or more read-only statements (SELECT, DESCRIBE, ...)")],
        config: ConfigOption = None,
        format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
        max_width: Annotated[int, typer.Option(help="cut table cells to this many characters (0: never)")] = 60,
        ) -> None:
    """Query the warehouse read-only and print the result.

    Example: newsmon sql "SELECT actor_group, topic, stance, published_at FROM positions ORDER BY published_at"
    """
    from warehouse import Warehouse
    from warehouse.readonly import run_readonly

    settings = load_settings(config)
    wh = Warehouse(settings.warehouse.path, settings.warehouse.lock_timeout_seconds)
    columns, rows = run_readonly(wh, query)
    if format is Format.json:
        typer.echo(json.dumps([dict(zip(columns, r)) for r in rows], default=str, ensure_ascii=False, indent=1))
    elif format is Format.csv:
        w = csv.writer(sys.stdout)
        w.writerow(columns)
        w.writerows(rows)
    else:
        typer.echo(render_table(columns, rows, max_width))


def render_table(columns: list[str], rows: list[tuple], max_width: int = 60) -> str:
    def cell(v) -> str:
        s = "" if v is None else (v.isoformat(sep=" ") if isinstance(v, dt.datetime) else str(v))
        s = s.replace("\n", " ")
        return s if not max_width or len(s) <= max_width else s[: max_width - 1] + "…"

    body = [[cell(v) for v in r] for r in rows]
    widths = [max([len(c)] + [len(r[i]) for r in body]) for i, c in enumerate(columns)]
    line = lambda vals: " | ".join(v.ljust(w) for v, w in zip(vals, widths)).rstrip()
    out = [line(columns), "-+-".join("-" * w for w in widths)] + [line(r) for r in body]
    out.append(f"({len(rows)} row{'s' if len(rows) != 1 else ''})")
    return "\n".join(out)


from newsmon.alerts_cli import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts", help="List, send and resend alert emails.")


def main() -> None:
    try:
        app()
    except NewsmonError as exc:
        typer.echo(f"newsmon: {exc}", err=True)
        sys.exit(2)
    except KeyboardInterrupt:
        typer.echo("newsmon: interrupted", err=True)
        sys.exit(130)


if __name__ == "__main__":
    main()
