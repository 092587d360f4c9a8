"""The `ingest` run: one scheduled run of the whole pipeline.

poll feeds -> fetch new pages -> extract articles -> mine claims -> detect
changes -> send due alerts -> refresh the topic and entity catalogs (the `topics`
and `entities` views; a digest check when the config files are unchanged). Each stage works off what the warehouse says is
pending, so a run killed at any point is completed by the next.

`run_ingest` is the pipeline as plain Python (what `newsmon ingest` runs without a
Prefect API); the `ingest` flow is the same function as a Prefect flow (under
`newsmon serve`, or with PREFECT_API_URL set), each stage a task run. See flows/runtime.py.
"""
from __future__ import annotations

import time
from typing import Annotated, Any

from prefect import flow
from prefect.states import Failed
from pydantic import Field

from flows import notify, stages
from flows.runtime import current_run_id, ingest_run_name, run_name, run_pipeline, stage
from newsmon.errors import NewsmonError
from newsmon.settings import load_settings
from tasks.shard import in_shard, parse_shard
from warehouse import Warehouse

__all__ = ["ingest", "run_ingest", "current_run_id"]


def run_ingest(config: str | None = None, shard: str | None = None) -> dict[str, dict[str, Any]]:
    """Poll every configured feed and carry what is new through to alerts; each stage's counts.

    `shard` ("i/n"): poll, fetch, extract and mine only the feeds of shard i of n (see `ingest`).
    Raises RunFailed (after recording the run) when a stage failed or no feed could be polled.
    """
    settings = load_settings(config)
    feeds = None
    if shard:
        index, count = parse_shard(shard)
        feeds = [f.name for f in settings.feeds if in_shard(f.url, index, count)]
    wh = Warehouse.from_settings(settings.warehouse)
    budget: dict[str, float] = {}

    def budget_until() -> float:
        """The end of the run's polling and fetching (fetch.run_budget_seconds from the first poll)."""
        return budget.setdefault("until", time.time() + settings.fetch.run_budget_seconds)

    plan = [
        ("feeds", lambda run_id: stage(stages.poll_feeds)(settings, wh, run_id, feeds=feeds,
                                                          budget_until=budget_until())),
        ("pages", lambda run_id: stage(stages.fetch_pages)(settings, wh, run_id, feeds=feeds,
                                                           budget_until=budget_until())),
        ("articles", lambda run_id: stage(stages.extract_articles)(settings, wh, run_id, feeds=feeds)),
        ("claims", lambda run_id: stage(stages.mine_articles)(settings, wh, run_id, feeds=feeds)),
        ("changes", lambda run_id: stage(notify.detect_changes)(settings, wh, run_id)),
        ("alerts", lambda run_id: stage(notify.send_alerts)(settings, wh, run_id)),
        ("catalogs", lambda run_id: stage(stages.refresh_catalogs)(settings, wh, run_id)),
    ]
    return run_pipeline(wh, "ingest", plan, title="newsmon ingest")


#: "i/n", checked by the Prefect API when a run is created (the JSON schema of the parameter)
Shard = Annotated[str, Field(pattern=r"^\s*[0-9]+\s*/\s*[0-9]+\s*$", max_length=20)]


@flow(name="ingest", log_prints=True, flow_run_name=run_name(ingest_run_name))
def ingest(config: str | None = None, shard: Shard | None = None) -> dict:
    """Poll every configured feed and carry what is new through to alerts.

    Args:
        config: the newsmon TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)
        shard: "i/n": poll, fetch, extract and mine only the feeds of shard i of n (a stable hash
            of the feed URL), so that n workers sharing one warehouse never poll a feed or parse a page
            twice; changes and alerts are computed over everything
    """
    try:
        return run_ingest(config, shard)
    except NewsmonError as exc:  # RunFailed (recorded), a config or warehouse error: Failed, without a traceback
        return Failed(message=str(exc), data=exc)
