"""The `ingest` run: one scheduled run of the whole pipeline.

poll feeds -> fetch new pages -> extract articles -> mine claims -> detect
changes -> send due alerts -> refresh the topic and entity catalogs (the `topics`
and `entities` views; a digest check when the config files are unchanged). Each stage works off what the warehouse says is
pending, so a run killed at any point is completed by the next.

`run_ingest` (flows/pipelines.py, importable without Prefect) is the pipeline as plain Python
(what `newsmon ingest` runs without a Prefect API); the `ingest` flow is the same function as a Prefect flow (under
`newsmon serve`, or with PREFECT_API_URL set), each stage a task run. See flows/runtime.py.
"""
from __future__ import annotations

from typing import Annotated

from prefect import flow
from prefect.states import Failed
from pydantic import Field

from flows.pipelines import run_ingest
from flows.runtime import current_run_id, ingest_run_name, run_name
from newsmon.errors import NewsmonError

__all__ = ["ingest", "run_ingest", "current_run_id"]


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
