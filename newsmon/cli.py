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

from newsmon.cli_options import ConfigOption  # noqa: E402
from newsmon.errors import NewsmonError  # noqa: E402
from newsmon.settings import load_settings  # noqa: E402

app = typer.Typer(help="newsmon: stated positions and aid pledges per actor over time, with evidence.",
                  no_args_is_help=True, add_completion=False, pretty_exceptions_enable=False)


class Format(str, Enum):
    table = "table"
    csv = "csv"
    json = "json"


def fail(message: str, code: int = 2) -> None:
    typer.echo(f"newsmon: {message}", err=True)
    raise typer.Exit(code)


@app.command()
def ingest(config: ConfigOption = None,
           shard: Annotated[Optional[str], typer.Option(
               help="i/n: poll only the feeds of shard i of n (stable hash of the feed URL), for n workers "
                    "sharing one warehouse", show_default=False)] = None,
           ) -> None:
    """Run the pipeline once: poll feeds, fetch, extract, mine, detect changes, send due alerts.

    Example: newsmon ingest --config config/newsmon.toml
    """
    from flows.report import summary_line

    settings = load_settings(config)  # validate before Prefect starts, so a bad value is one line
    if shard is not None:
        from tasks.shard import parse_shard

        parse_shard(shard)  # ConfigError (one line) before the run starts
    from flows.ingest import ingest as ingest_flow

    result = ingest_flow(config=str(settings.source), **({"shard": shard} if shard else {}))
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
    wh = Warehouse.from_settings(settings.warehouse)
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


class MineFormat(str, Enum):
    table = "table"
    jsonl = "jsonl"


@app.command()
def mine(source: Annotated[str, typer.Argument(help="a file of JSON lines, or - for standard input")] = "-",
         config: ConfigOption = None,
         format: Annotated[MineFormat, typer.Option("--format", "-f", help="table (with the evidence) or jsonl "
                                                                          "(one claim a line)")] = MineFormat.table,
         ) -> None:
    """Mine passages without a warehouse: try a config edit on a sentence before a backfill.

    Reads JSON lines {"id", "text", "published_at"?} and prints every claim found (positions,
    aid, meetings) with its evidence; --format jsonl writes one JSON object per claim
    (the records of ../shared/eval/CONTRACT.md). Pipe a line in with - for standard input:
    echo '{"id": "1", "text": "Hungary vetoed the EU aid package."}' | newsmon mine -

    Example: newsmon mine passages.jsonl
    """
    from tasks.mine import Miner, passage_claims, read_passages

    settings = load_settings(config)
    if source == "-":
        stream, name = sys.stdin, "<stdin>"
    else:
        try:
            stream, name = open(source, encoding="utf-8"), source
        except OSError as exc:
            fail(f"cannot read {source}: {exc.strerror or exc}")
    miner = Miner.from_settings(settings.nlp)
    claims = passage_claims(miner, read_passages(stream, name))
    if format is MineFormat.jsonl:
        for claim in claims:
            typer.echo(json.dumps(claim, ensure_ascii=False))
        return
    columns = ["id", "type", "who", "what", "value", "evidence"]
    rows = []
    for c in claims:
        if c["type"] == "position":
            rows.append((c["id"], "position", f"{c['actor']} ({c['actor_group']})", c["topic"], c["stance"], c["evidence"]))
        elif c["type"] == "aid":
            prev = f" (was {c['previous_amount']:,.0f})" if c["previous_amount"] else ""
            rows.append((c["id"], "aid", c["donor"], f"-> {c['recipient']} {c['kind']}",
                         f"{c['amount']:,.0f} {c['currency']}{prev}", c["evidence"]))
        else:
            rows.append((c["id"], "meeting", c["actor_group"], "", "", c["evidence"]))
    typer.echo(render_table(columns, rows, max_width=0 if len(rows) < 2 else 90))


from newsmon.alerts_cli import alerts_app  # noqa: E402

app.add_typer(alerts_app, name="alerts", help="List, send and resend alert emails.")


# -- backfill, serve ----------------------------------------------------------------
from pathlib import Path  # noqa: E402


def parse_day(option: str, value: str | None) -> dt.date | None:
    if value is None:
        return None
    try:
        return dt.date.fromisoformat(value.strip())
    except ValueError:
        fail(f"{option}: {value!r} is not a date; write it as YYYY-MM-DD, e.g. 2025-12-01")


class StageProgress:
    """The backfill's progress on stderr: a bar over its stages with elapsed time and ETA,
    and each stage's counts as it finishes."""

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("{task.description:<9}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("stages"), TimeElapsedColumn(), TextColumn("ETA"), TimeRemainingColumn(),
                                 console=Console(stderr=True))
        self.task = None

    def __enter__(self) -> StageProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, event) -> None:
        from flows.report import summary_line

        if self.task is None:
            self.task = self.progress.add_task("backfill", total=event.total)
        if event.counts is None:
            self.progress.update(self.task, description=event.stage)
        else:
            self.progress.console.print(f"  {event.index}/{event.total} {summary_line({event.stage: event.counts})}",
                                        soft_wrap=True)
            self.progress.update(self.task, completed=event.index)


@app.command()
def backfill(since: Annotated[str, typer.Option(help="first day of the window, YYYY-MM-DD (UTC)",
                                                 show_default=False)],
             until: Annotated[Optional[str], typer.Option(
                 help="last day of the window, inclusive, YYYY-MM-DD (default: no end)", show_default=False)] = None,
             config: ConfigOption = None,
             feed: Annotated[Optional[list[str]], typer.Option(
                 "--feed", help="only poll and fetch this feed (repeat for more; default: every feed)",
                 show_default=False)] = None,
             url: Annotated[Optional[list[str]], typer.Option(
                 "--url", help="also fetch and process this article URL, whatever its date (repeatable)",
                 show_default=False)] = None,
             urls_file: Annotated[Optional[Path], typer.Option(
                 help="a file of article URLs to fetch and process, one a line (# comments)",
                 show_default=False)] = None,
             remine: Annotated[bool, typer.Option(
                 "--remine", help="offline: poll and download nothing, only extract and mine the stored pages "
                                  "of the window again")] = False,
             ) -> None:
    """Catch a window of days up and re-mine it; re-running it changes nothing.

    Polls the feeds (backoff ignored) and fetches their entries of the window not stored yet.

    Then re-extracts and re-mines every stored page of the window (the new claims replace the
    old ones atomically), detects changes and sends the alerts that are due.

    With --remine it works offline: nothing is polled or downloaded.

    Example: newsmon backfill --since 2025-12-01 --until 2025-12-07 --remine
    """
    from flows.report import summary_line

    start, end = parse_day("--since", since), parse_day("--until", until)
    settings = load_settings(config)  # validate before Prefect starts, so a bad value is one line
    if urls_file is not None and not urls_file.is_file():
        fail(f"--urls-file: no such file: {urls_file}")
    # The progress bar stands in for Prefect's per-task log lines on the console;
    # warnings still show, and the API still receives every log line.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from flows.backfill import backfill as backfill_flow, backfill_window, progress_listener, read_urls_file

    backfill_window(start, end)  # ConfigError (one line) before the run starts
    if urls_file is not None:
        read_urls_file(urls_file)
    for u in url or []:
        if not u.startswith(("http://", "https://")):
            fail(f"--url: not an http(s) URL: {u!r}")
    with StageProgress() as bar, progress_listener(bar):
        result = backfill_flow(since=start, until=end, feeds=feed or None, urls=url or None,
                               urls_file=str(urls_file.resolve()) if urls_file else None, remine=remine,
                               config=str(settings.source))
    typer.echo(f"backfill done: {summary_line(result)}")


@app.command()
def serve(config: ConfigOption = None) -> None:
    """Serve the deployments ingest/scheduled and backfill/ad-hoc until Ctrl-C or SIGTERM.

    The Prefect API is PREFECT_API_URL's, else a local `prefect server start` (http://127.0.0.1:4200/api).

    ingest/scheduled runs on the config's schedule.cron (default every 15 minutes); backfill/ad-hoc has none.

    Both take this config file as their `config` parameter; their flow runs run in this process.

    Example: newsmon serve --config config/newsmon.toml
    """
    settings = load_settings(config)
    from flows.serve import serve_deployments

    def announce(api_url: str) -> None:
        typer.echo(f"newsmon serve: ingest/scheduled ({settings.schedule.cron}, {settings.schedule.timezone}) and "
                   f"backfill/ad-hoc on {api_url} with config {settings.source}; Ctrl-C to stop", err=True)

    serve_deployments(settings, announce)
    typer.echo("newsmon serve: stopped", err=True)


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
