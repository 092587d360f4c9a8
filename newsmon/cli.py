"""The `newsmon` command line: thin commands over the flows and the warehouse.

Library errors become one clean line on stderr and exit code 2 here, and only here.
"""
from __future__ import annotations

import os

# Quiet Prefect before it is imported: no analytics calls, no error spam from a server
# shutting down at exit. (Runs without PREFECT_API_URL start no Prefect server at all.)
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

    Without a Prefect API (PREFECT_API_URL unset) it runs in this process, with no Prefect server;
    with one, as the Prefect flow `ingest`. Exit 0 when the run completed (bad feeds or pages are
    listed, not fatal), 1 when a stage failed or no feed could be polled, 2 on a usage, config,
    warehouse or Prefect API error.

    Example: newsmon ingest --config config/newsmon.toml
    """
    settings = load_settings(config)  # validate before anything starts, so a bad value is one line
    if shard is not None:
        from tasks.shard import parse_shard

        parse_shard(shard)  # ConfigError (one line) before the run starts
    source = str(settings.source)

    def plain() -> dict:
        from flows.pipelines import run_ingest  # no Prefect imported on this path

        return run_ingest(source, shard)

    def as_flow():
        from flows.ingest import ingest as ingest_flow

        return ingest_flow(config=source, **({"shard": shard} if shard else {}), return_state=True)

    result, failure = execute_run(plain, as_flow)
    report_run("ingest", result, failure)


def execute_run(plain, as_flow) -> tuple[dict, str | None]:
    """Run a pipeline plainly (no Prefect API configured) or as a flow; (counts, why it failed or None).

    A Prefect API that does not answer is one `newsmon:` line and exit 2, never a traceback.
    """
    from flows.runtime import (RunFailed, check_prefect_api, is_orchestrator_error, orchestrator_message,
                               prefect_api_url)

    url = prefect_api_url()
    try:
        if url is None:
            _terminate_cleanly()
            return plain(), None
        check_prefect_api(url)
        state = as_flow()
        if state.is_completed():
            return state.result(), None
        outcome = state.result(raise_on_failure=False)
        if isinstance(outcome, BaseException):
            raise outcome
        raise RunFailed(f"the flow run ended {state.name}: {state.message or 'no message'}")
    except RunFailed as exc:
        return exc.result, str(exc)
    except NewsmonError:
        raise
    except Exception as exc:
        if is_orchestrator_error(exc):
            fail(orchestrator_message(exc, url))
        raise


def _terminate_cleanly() -> None:
    """SIGTERM ends a plain run like Ctrl-C: the run is recorded as interrupted, the exit code is 143."""
    import signal

    def stop(signum, frame):
        typer.echo("newsmon: terminated (SIGTERM); the next run finishes this one's work", err=True)
        raise SystemExit(128 + signum)

    signal.signal(signal.SIGTERM, stop)


def report_run(what: str, result: dict, failure: str | None) -> None:
    """The run's summary and partial failures on stdout; a failed run also one `newsmon:` line and exit 1."""
    from flows.report import summary_line
    from flows.runtime import run_problems

    typer.echo(f"{what} {'failed' if failure else 'done'}: {summary_line(result)}")
    for problem in run_problems(result):
        typer.echo(f"  problem: {problem}")
    if failure:
        fail(f"{what} failed: {failure}", code=1)


@app.command()
def sql(query: Annotated[str, typer.Argument(help="one or more read-only statements (SELECT, DESCRIBE, ...)")],
        config: ConfigOption = None,
        format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
        max_width: Annotated[int, typer.Option(help="cut table cells to this many characters (0: never)")] = 60,
        timeout: Annotated[Optional[float], typer.Option(
            help="interrupt the query after this many seconds (default: sql.timeout_seconds of the config)",
            min=0.001, show_default=False)] = None,
        ) -> None:
    """Query the warehouse read-only and print the result.

    A query runs at most sql.timeout_seconds (or --timeout) and within sql.memory_limit; Ctrl-C
    interrupts it; at most sql.max_rows rows are printed.

    Example: newsmon sql "SELECT actor_group, topic, stance, published_at FROM positions ORDER BY published_at"
    """
    from newsmon.reading import needs_search, open_for_reading
    from warehouse.readonly import run_bounded

    settings = load_settings(config)
    wh = open_for_reading(settings, search_index=needs_search(query))
    try:
        bounded = run_bounded(wh, query, timeout=timeout or settings.sql.timeout_seconds,
                              memory_limit=settings.sql.memory_limit, max_rows=settings.sql.max_rows)
    except KeyboardInterrupt:
        fail("interrupted: the query was stopped (Ctrl-C)", code=130)
    columns, rows = bounded.columns, bounded.rows
    if bounded.truncated:
        typer.echo(f"newsmon: only the first {len(rows)} rows (sql.max_rows); add a LIMIT or narrow the query",
                   err=True)
    if format is Format.json:
        typer.echo(json.dumps([dict(zip(columns, r)) for r in rows], default=str, ensure_ascii=False, indent=1))
    elif format is Format.csv:
        write_csv(columns, rows)
    else:
        typer.echo(render_table(columns, rows, max_width))


def csv_cell(v):
    """A CSV cell: lists and structs as compact JSON text (["Norway","Ukraine"]), as `newsmon export`
    writes them (DuckDB's to_json), not Python reprs."""
    if isinstance(v, (list, tuple, dict)):
        return json.dumps(v, default=str, ensure_ascii=False, separators=(",", ":"))
    return v


def write_csv(columns: list[str], rows: list[tuple]) -> None:
    w = csv.writer(sys.stdout)
    w.writerow(columns)
    w.writerows([csv_cell(v) for v in r] for r in rows)


def table_text(v, nested: bool = False) -> str:
    """A value as a table shows it: lists as their items joined by commas (Norway, Ukraine), structs as
    key: value pairs, times in ISO form; never a Python repr. NULL is empty at the top, NULL inside."""
    if v is None:
        return "NULL" if nested else ""
    if isinstance(v, dt.datetime):
        return v.isoformat(sep=" ")
    if isinstance(v, (list, tuple)):
        text = ", ".join(table_text(x, True) for x in v)
        return f"[{text}]" if nested else text
    if isinstance(v, dict):
        text = ", ".join(f"{k}: {table_text(x, True)}" for k, x in v.items())
        return "{" + text + "}"
    return str(v)


def render_table(columns: list[str], rows: list[tuple], max_width: int = 60) -> str:
    def cell(v) -> str:
        s = table_text(v).replace("\n", " ")
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


class BackfillProgress:
    """The backfill's progress on stderr: for each stage that works item by item, a bar counting its
    items (feeds polled, pages fetched, articles extracted, articles mined) with the elapsed time and
    an ETA; and each stage's counts as it finishes."""

    LABELS = {"feeds": "polling", "pages": "fetching", "articles": "extracting", "claims": "mining"}

    def __init__(self) -> None:
        from rich.console import Console
        from rich.progress import (BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn,
                                   TimeRemainingColumn)

        self.progress = Progress(TextColumn("{task.description:<10}"), BarColumn(), MofNCompleteColumn(),
                                 TextColumn("{task.fields[unit]:<8}"), TimeElapsedColumn(), TextColumn("ETA"),
                                 TimeRemainingColumn(), console=Console(stderr=True))
        self.bars: dict[str, tuple[object, int]] = {}   # stage -> (its bar, items of its earlier calls)

    def __enter__(self) -> BackfillProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc) -> None:
        self.progress.stop()

    def __call__(self, event) -> None:
        from flows.progress import ItemsEvent
        from flows.report import summary_line

        if isinstance(event, ItemsEvent):
            self.items(event)
        elif event.counts is not None:
            self.progress.console.print(f"  {event.index}/{event.total} {summary_line({event.stage: event.counts})}",
                                        soft_wrap=True)

    def items(self, event) -> None:
        if event.stage not in self.bars:
            bar = self.progress.add_task(self.LABELS.get(event.stage, event.stage), total=event.total,
                                         unit=event.unit)
            self.bars[event.stage] = (bar, 0)
        bar, before = self.bars[event.stage]
        task = self.progress.tasks[[t.id for t in self.progress.tasks].index(bar)]
        if event.done == 0 and task.completed and task.completed >= (task.total or 0):
            before = int(task.completed)   # a second call of the stage (the URLs given): count on
            self.bars[event.stage] = (bar, before)
        self.progress.update(bar, total=before + event.total, completed=before + event.done)


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
             window_days: Annotated[int, typer.Option(
                 help="fetch, extract and mine the window this many days at a time (a Prefect task run each "
                      "under a flow run; days with nothing to do are skipped); 0: all at once",
                 min=0, max=3660)] = 7,
             ) -> None:
    """Catch a window of days up and re-mine it; re-running it changes nothing.

    Without a Prefect API (PREFECT_API_URL unset) it runs in this process; with one, as the flow
    `backfill`. Exit codes as for `newsmon ingest`.

    Polls the feeds (backoff ignored) and fetches their entries of the window not stored yet.

    Then re-extracts and re-mines every stored page of the window (the new claims replace the
    old ones atomically), detects changes and sends the alerts that are due.

    With --remine it works offline: nothing is polled or downloaded.

    Example: newsmon backfill --since 2025-12-01 --until 2025-12-07 --remine
    """
    start, end = parse_day("--since", since), parse_day("--until", until)
    settings = load_settings(config)  # validate before Prefect starts, so a bad value is one line
    if urls_file is not None and not urls_file.is_file():
        fail(f"--urls-file: no such file: {urls_file}")
    # The progress bar stands in for Prefect's per-task log lines on the console;
    # warnings still show, and the API still receives every log line.
    os.environ.setdefault("PREFECT_LOGGING_HANDLERS_CONSOLE_LEVEL", "WARNING")
    from flows.backfill import (backfill as backfill_flow, backfill_window, check_feeds, progress_listener,
                                read_urls_file, run_backfill)

    backfill_window(start, end)  # ConfigError (one line) before the run starts
    check_feeds(settings, feed or None)
    if urls_file is not None:
        read_urls_file(urls_file)
    for u in url or []:
        if not u.startswith(("http://", "https://")):
            fail(f"--url: not an http(s) URL: {u!r}")
    options = dict(since=start, until=end, feeds=feed or None, urls=url or None,
                   urls_file=str(urls_file.resolve()) if urls_file else None, remine=remine,
                   config=str(settings.source), window_days=window_days)
    with BackfillProgress() as bar, progress_listener(bar):
        result, failure = execute_run(lambda: run_backfill(**options),
                                      lambda: backfill_flow(**options, return_state=True))
    report_run("backfill", result, failure)


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


@app.command()
def deploy(config: ConfigOption = None,
           pool: Annotated[str, typer.Option(help="the Prefect process work pool (created if missing)")] = "newsmon",
           shards: Annotated[int, typer.Option(
               help="split the feeds into this many shards: one scheduled ingest deployment per shard "
                    "(stable hash of the feed URL), whichever worker is free runs each", min=1, max=64)] = 1,
           ) -> None:
    """Register the deployments on a Prefect work pool, for `prefect worker start --pool POOL` on any machine.

    Creates the process work pool if missing and registers ingest/scheduled (the config's schedule.cron),
    or with --shards N the deployments ingest/scheduled-1-of-N ... N-of-N (each on that schedule, each
    polling one shard of the feeds), and backfill/ad-hoc. Deploying again updates them.

    Workers need newsmon installed and this config file at the same path.

    The Prefect API is PREFECT_API_URL's, else a local `prefect server start` (http://127.0.0.1:4200/api).

    Example: newsmon deploy --config /etc/newsmon/newsmon.toml --pool newsmon --shards 2
    """
    settings = load_settings(config)
    from flows.deploy import deploy_to_pool

    done = deploy_to_pool(settings, pool, shards)
    typer.echo(f"newsmon deploy: {'created' if done.pool_created else 'using'} the process work pool {done.pool!r} "
               f"on {done.api_url}")
    for name in done.deployments:
        typer.echo(f"  deployment {name}")
    for name in done.removed:
        typer.echo(f"  removed {name} (another number of shards)")
    typer.echo(f"schedule: {settings.schedule.cron} ({settings.schedule.timezone}); config: {settings.source}")
    typer.echo(f"start workers (any machine with newsmon and this config): prefect worker start --pool {done.pool}")
    typer.echo("backfill: prefect deployment run backfill/ad-hoc --param since=YYYY-MM-DD")


# -- the analyst's reads: views, search, export ------------------------------------------
@app.command()
def views(view: Annotated[Optional[str], typer.Argument(help="a view to describe column by column",
                                                         show_default=False)] = None,
          config: ConfigOption = None,
          format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
          ) -> None:
    """List the warehouse's public interface: its views and macros, with what they hold.

    Base tables are the pipeline's own and are not listed. Name a view to see its
    columns with their types and meanings.

    Example: newsmon views current_pledges
    """
    from newsmon.reading import open_for_reading
    from warehouse.readonly import public_columns, public_macros, public_views, readonly_connection
    from warehouse.search import MACRO_DOCS

    settings = load_settings(config)
    wh = open_for_reading(settings)
    with readonly_connection(wh, fts=False) as con:
        if view:
            columns, rows = ["column", "type", "meaning"], public_columns(con, view)
        else:
            columns = ["name", "kind", "columns", "meaning"]
            rows = [(name, "view", str(n), comment) for name, comment, n in public_views(con)]
            macros = {m[0]: m for m in MACRO_DOCS}  # listed before the first search builds them
            macros.update({m[0]: m for m in public_macros(con)})
            rows += [(f"{name}({', '.join(params)})", "table macro" if kind == "table_macro" else "macro", "",
                      comment) for name, kind, params, comment in sorted(macros.values())]
    if format is Format.json:
        typer.echo(json.dumps([dict(zip(columns, r)) for r in rows], ensure_ascii=False, indent=1))
    elif format is Format.csv:
        write_csv(columns, rows)
    else:
        typer.echo(render_table(columns, rows, max_width=0))


@app.command()
def search(query: Annotated[str, typer.Argument(help="words to find (all of them, any word form)")],
           config: ConfigOption = None,
           since: Annotated[Optional[str], typer.Option(help="only articles published on or after this day, "
                                                             "YYYY-MM-DD", show_default=False)] = None,
           entity: Annotated[Optional[str], typer.Option(help="only articles mentioning this entity (canonical "
                                                              "name, see `newsmon views entities`)",
                                                         show_default=False)] = None,
           limit: Annotated[int, typer.Option(min=1, help="at most this many articles")] = 20,
           any_word: Annotated[bool, typer.Option("--any", help="rank articles with any of the words, "
                                                               "not only those with all")] = False,
           format: Annotated[Format, typer.Option("--format", "-f", help="output format")] = Format.table,
           ) -> None:
    """Full-text search of the articles, best match first (BM25), with a snippet of each.

    Word forms match ("frozen assets" finds "frozen Russian assets", "asset freeze" finds
    "assets frozen"). The same search is a table macro in `newsmon sql`:
    SELECT * FROM search_articles('frozen assets', since := DATE '2025-12-01', mentioning := 'Norway')

    Example: newsmon search "frozen assets" --since 2025-12-01 --entity "European Union"
    """
    from newsmon.reading import open_for_reading
    from warehouse.readonly import readonly_connection
    from warehouse.search import search as search_articles

    day = parse_day("--since", since)
    settings = load_settings(config)
    wh = open_for_reading(settings, search_index=True)
    with readonly_connection(wh) as con:
        columns, rows = search_articles(con, query, since=day, entity=entity, limit=limit, any_term=any_word)
    if format is Format.json:
        typer.echo(json.dumps([dict(zip(columns, r)) for r in rows], default=str, ensure_ascii=False, indent=1))
    elif format is Format.csv:
        write_csv(columns, rows)
    elif not rows:
        typer.echo(f"no article matches {query!r}" + ("" if any_word else " (all words; try --any)"))
    else:
        for i, r in enumerate(rows, 1):
            hit = dict(zip(columns, r))
            day_text = hit["published_at"].date().isoformat() if hit["published_at"] else "????-??-??"
            typer.echo(f"{i:>2}. {day_text}  {hit['title'] or '(no title)'}  [{hit['score']:.2f}]")
            typer.echo(f"    {hit['url']}")
            typer.echo(f"    {hit['snippet']}")


class ExportFormat(str, Enum):
    parquet = "parquet"
    csv = "csv"
    json = "json"


@app.command()
def export(view: Annotated[str, typer.Argument(help="a public view (see `newsmon views`)")],
           out: Annotated[Path, typer.Option("--out", "-o", help="the file to write (replaced if it exists)",
                                             show_default=False)],
           format: Annotated[ExportFormat, typer.Option("--format", "-f", help="file format")] = ExportFormat.parquet,
           where: Annotated[Optional[str], typer.Option(help="only rows where this SQL expression holds",
                                                        show_default=False)] = None,
           config: ConfigOption = None,
           ) -> None:
    """Write a public view to a Parquet, CSV or JSON file with DuckDB's own writers.

    Lists stay lists in Parquet and JSON; in CSV they are JSON arrays. --where is checked
    like `newsmon sql`: it may only read.

    Example: newsmon export current_pledges --format csv --out pledges.csv --where "recipient = 'Ukraine'"
    """
    from newsmon.reading import needs_search, open_for_reading
    from warehouse.export import export_view

    settings = load_settings(config)
    wh = open_for_reading(settings, search_index=needs_search(where or ""))
    n = export_view(wh, view, format.value, out, where)
    typer.echo(f"exported {n} row{'s' if n != 1 else ''} of {view} to {out}", err=True)


@app.command()
def report(since: Annotated[str, typer.Option(help="first day of the window, YYYY-MM-DD (UTC)", show_default=False)],
           until: Annotated[Optional[str], typer.Option(
               help="last day of the window, inclusive, YYYY-MM-DD (default: no end)", show_default=False)] = None,
           out: Annotated[Path, typer.Option("--out", "-o", help="the HTML file to write")] = Path("report.html"),
           config: ConfigOption = None,
           ) -> None:
    """Write one self-contained HTML page on a window: its changes with evidence, the standing
    pledges, and a stance timeline per topic and actor.

    Example: newsmon report --since 2025-12-01 --out report.html
    """
    from newsmon.reading import open_for_reading
    from tasks.report_page import render_report
    import duckdb

    from warehouse.queries import report_rows
    from warehouse.readonly import readonly_connection, sql_error

    start, end = parse_day("--since", since), parse_day("--until", until)
    if end is not None and end < start:
        fail(f"--until {end} is before --since {start}")
    utc = dt.timezone.utc
    start_at = dt.datetime.combine(start, dt.time(), utc)
    end_at = dt.datetime.combine(end + dt.timedelta(days=1), dt.time(), utc) if end else None
    if not out.expanduser().resolve().parent.is_dir():
        fail(f"--out: no such directory: {out.expanduser().resolve().parent}")
    settings = load_settings(config)
    wh = open_for_reading(settings)
    with readonly_connection(wh) as con:
        try:
            rows = report_rows(con, start_at, end_at)
        except duckdb.Error as exc:
            raise sql_error(exc) from None
    page = render_report(rows, start_at, end_at, dt.datetime.now(utc))
    tmp = out.with_name(f".{out.name}.tmp")
    tmp.write_text(page, encoding="utf-8")
    tmp.replace(out)
    typer.echo(f"wrote {out}: {len(rows['changes'])} changes, {len(rows['pledges'])} current pledges, "
               f"{len({(p['topic'], p['actor_group']) for p in rows['positions']})} timelines", err=True)


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
