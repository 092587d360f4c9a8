"""The `ingest` run: one scheduled run of the whole pipeline.

poll feeds -> fetch new pages -> extract articles -> mine claims -> detect
changes -> send due alerts. Each stage works off what the warehouse says is
pending, so a run killed at any point is completed by the next.

`run_ingest` is the pipeline as plain Python (what `newsmon ingest` runs without a
Prefect API); the `ingest` flow is the same function as a Prefect flow (under
`newsmon serve`, or with PREFECT_API_URL set), each stage a task run. See flows/runtime.py.
"""
from __future__ import annotations

from typing import Any

from prefect import flow
from prefect.states import Failed

from flows import notify, stages
from flows.runtime import current_run_id, run_pipeline, stage
from newsmon.errors import NewsmonError
from newsmon.settings import load_settings
from warehouse import Warehouse

__all__ = ["ingest", "run_ingest", "current_run_id"]


def run_ingest(config: str | None = None) -> dict[str, dict[str, Any]]:
    """Poll every configured feed and carry what is new through to alerts; each stage's counts.

    Raises RunFailed (after recording the run) when a stage failed or no feed could be polled.
    """
    settings = load_settings(config)
    wh = Warehouse(settings.warehouse.path, settings.warehouse.lock_timeout_seconds,
                   settings.warehouse.memory_limit)
    plan = [
        ("feeds", lambda run_id: stage(stages.poll_feeds)(settings, wh, run_id)),
        ("pages", lambda run_id: stage(stages.fetch_pages)(settings, wh, run_id)),
        ("articles", lambda run_id: stage(stages.extract_articles)(settings, wh, run_id)),
        ("claims", lambda run_id: stage(stages.mine_articles)(settings, wh, run_id)),
        ("changes", lambda run_id: stage(notify.detect_changes)(settings, wh, run_id)),
        ("alerts", lambda run_id: stage(notify.send_alerts)(settings, wh, run_id)),
    ]
    return run_pipeline(wh, "ingest", plan, title="newsmon ingest")


@flow(name="ingest", log_prints=True)
def ingest(config: str | None = None) -> dict:
    """Poll every configured feed and carry what is new through to alerts.

    Args:
        config: the newsmon TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)
    """
    try:
        return run_ingest(config)
    except NewsmonError as exc:  # RunFailed (recorded), a config or warehouse error: Failed, without a traceback
        return Failed(message=str(exc), data=exc)
