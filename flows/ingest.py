"""The `ingest` flow: one scheduled run of the whole pipeline.

poll feeds -> fetch new pages -> extract articles -> mine claims -> detect
changes -> send due alerts. Each stage works off what the warehouse says is
pending, so a run killed at any point is completed by the next.
"""
from __future__ import annotations

import contextlib
import uuid

from prefect import flow
from prefect.artifacts import create_markdown_artifact
from prefect.context import get_run_context

from flows import notify, stages
from flows.report import summary_markdown
from flows.writer import warehouse_writer
from newsmon.settings import load_settings
from tasks.shard import in_shard, parse_shard
from warehouse import Warehouse
from warehouse import queries as q


def current_run_id() -> str:
    try:
        return str(get_run_context().flow_run.id)
    except Exception:
        return str(uuid.uuid4())


@flow(name="ingest", log_prints=True)
def ingest(config: str | None = None, shard: str | None = None) -> dict:
    """Poll every configured feed and carry what is new through to alerts.

    Args:
        config: the newsmon TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)
        shard: "i/n": poll, fetch, extract and mine only the feeds of shard i of n (a stable hash
            of the feed URL), so that n workers sharing one warehouse never poll a feed or parse a page
            twice; changes and alerts are computed over everything
    """
    settings = load_settings(config)
    feeds = None
    if shard:
        index, count = parse_shard(shard)
        feeds = [f.name for f in settings.feeds if in_shard(f.url, index, count)]
    wh = Warehouse.from_settings(settings.warehouse)
    run_id = current_run_id()
    # On a lake each write transaction holds the catalog's advisory lock, so workers' runs overlap;
    # the DuckDB file's runs take turns on the Prefect writer slot (when `newsmon serve` made one).
    with warehouse_writer() if wh.lake is None else contextlib.nullcontext():
        wh.migrate()
        with wh.transaction() as con:
            q.start_run(con, run_id, "ingest")
        result = {
            "feeds": stages.poll_feeds(settings, wh, run_id, feeds=feeds),
            "pages": stages.fetch_pages(settings, wh, run_id, feeds=feeds),
            "articles": stages.extract_articles(settings, wh, run_id, feeds=feeds),
            "claims": stages.mine_articles(settings, wh, run_id, feeds=feeds),
            "changes": notify.detect_changes(settings, wh, run_id),
            "alerts": notify.send_alerts(settings, wh, run_id),
        }
        with wh.transaction() as con:
            q.finish_run(con, run_id, result)
    create_markdown_artifact(markdown=summary_markdown("newsmon ingest", result), key="ingest-summary",
                             description="Counts of one ingest run")
    return result
