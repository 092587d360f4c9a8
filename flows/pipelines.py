"""The ingest pipeline as a plain function, importable without Prefect.

`newsmon ingest` without a Prefect API runs `run_ingest` from here and never imports Prefect
(about 2 CPU seconds, most of a run with nothing new); `flows.ingest` wraps the same
function as the Prefect flow `ingest` (and re-exports it). See flows/runtime.py.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any

from flows import notify, stages
from flows.runtime import in_flow_run, run_pipeline, stage
from newsmon.settings import load_settings
from tasks.shard import in_shard, parse_shard
from warehouse import Warehouse

__all__ = ["run_ingest"]


def run_ingest(config: str | None = None, shard: str | None = None) -> dict[str, dict[str, Any]]:
    """Poll every configured feed and carry what is new through to alerts; each stage's counts.

    `shard` ("i/n"): poll, fetch, extract and mine only the feeds of shard i of n (see `flows.ingest.ingest`).
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

    # a plain run starts its helpers and the model's load while pages download; a Prefect flow run
    # passes nothing that is not a plain value to its tasks (and spawns its helpers in the stages)
    helpers = None if in_flow_run() else stages.RunHelpers(settings)
    early = {} if helpers is None else dict(on_pending=helpers.start)
    pool = {} if helpers is None else dict(pool=helpers.extract_pool)
    service = {} if helpers is None else dict(service=helpers.mine_service)
    plan = [
        ("feeds", lambda run_id: stage(stages.poll_feeds)(settings, wh, run_id, feeds=feeds,
                                                          budget_until=budget_until())),
        ("pages", lambda run_id: stage(stages.fetch_pages)(settings, wh, run_id, feeds=feeds,
                                                           budget_until=budget_until(), **early)),
        ("articles", lambda run_id: stage(stages.extract_articles)(settings, wh, run_id, feeds=feeds, **pool)),
        ("claims", lambda run_id: stage(stages.mine_articles)(settings, wh, run_id, feeds=feeds, **service)),
        ("changes", lambda run_id: stage(notify.detect_changes)(settings, wh, run_id)),
        ("alerts", lambda run_id: stage(notify.send_alerts)(settings, wh, run_id)),
        ("catalogs", lambda run_id: stage(stages.refresh_catalogs)(settings, wh, run_id)),
    ]
    with helpers if helpers is not None else contextlib.nullcontext():
        return run_pipeline(wh, "ingest", plan, title="newsmon ingest")
