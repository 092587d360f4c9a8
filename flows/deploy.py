"""`newsmon deploy`: the deployments on a Prefect process work pool, for workers on any machine.

    ingest/scheduled            the ingest flow on `[schedule] cron` / `timezone` (one shard: every feed)
    ingest/scheduled-I-of-N     with `--shards N` (N > 1), N deployments instead, each on the same
                                schedule with the parameter shard="I/N": every scheduled time gives
                                N flow runs that split the feeds by a stable hash (tasks/shard.py)
    backfill/ad-hoc             the backfill flow, no schedule, fan_out=true: its window fans out
                                into flow runs of the next deployment, `window_days` days each,
                                which any worker takes (flows/fanout.py)
    backfill-part/ad-hoc        one part of a backfill: fetch, re-extract, re-mine its days

Unlike `newsmon serve` (one process that serves and runs the flows), the deployments live
on the Prefect server, bound to the work pool, and any `prefect worker start --pool NAME`
runs their flow runs, each in a process of its own, importing the installed newsmon
(module entrypoints such as `flows.ingest.ingest`: no code storage, no pull steps). Every
worker needs newsmon installed and the config file at the same path as on the machine that
deployed (the `config` parameter is that absolute path).

A shard is a parameter of the flow run, not a property of a worker: whichever worker is free
takes the next shard's run, so every feed is polled once per scheduled time even while a
worker is down, and never by two runs of the same time (each shard deployment allows one run
at a time; a run due while the last one of its shard still runs is cancelled, not queued).

`deploy_to_pool` creates the pool (type "process") if it is missing, the global concurrency
limit `newsmon-warehouse-writer` (flows/writer.py), registers or updates the deployments, and
deletes the ingest deployments of an earlier deploy with another number of shards (else
both splits would poll every feed). Deploying again is safe: it updates what is there.
"""
from __future__ import annotations

import contextlib
import dataclasses
import re
from collections.abc import Callable
from typing import Any

from flows.backfill import backfill, backfill_part
from flows.fanout import PART_DEPLOYMENT
from flows.ingest import ingest
from flows.serve import (BACKFILL_DEPLOYMENT, DEFAULT_API_URL, INGEST_DEPLOYMENT, check_api, ensure_writer_limit,
                         one_at_a_time, schedule_of)
from newsmon.errors import ConfigError
from newsmon.settings import Settings

__all__ = ["DEFAULT_POOL", "MAX_SHARDS", "ingest_deployment_names", "pool_deployments", "ensure_process_pool",
           "deploy_to_pool", "Deployed"]

#: The work pool `newsmon deploy` uses unless told otherwise.
DEFAULT_POOL = "newsmon"
MAX_SHARDS = 64
POOL_TYPE = "process"
_OUR_INGEST = re.compile(rf"^{re.escape(INGEST_DEPLOYMENT)}(-\d+-of-\d+)?$")


def ingest_deployment_names(shards: int) -> list[tuple[str, str | None]]:
    """(deployment name, shard parameter or None) of the ingest deployments for `shards` shards."""
    if not 1 <= shards <= MAX_SHARDS:
        raise ConfigError(f"--shards {shards}: give a number from 1 to {MAX_SHARDS}")
    if shards == 1:
        return [(INGEST_DEPLOYMENT, None)]
    return [(f"{INGEST_DEPLOYMENT}-{i}-of-{shards}", f"{i}/{shards}") for i in range(1, shards + 1)]


def pool_deployments(settings: Settings, shards: int = 1) -> list[Any]:
    """The RunnerDeployments for a work pool: the ingest deployment(s) of `shards`, and backfill/ad-hoc."""
    from prefect.types.entrypoint import EntrypointType

    source = str(settings.source) if settings.source else None
    schedule = schedule_of(settings)
    common = dict(tags=["newsmon"], entrypoint_type=EntrypointType.MODULE_PATH)
    built = []
    for name, shard in ingest_deployment_names(shards):
        parameters: dict[str, Any] = {"config": source}
        what = "newsmon ingest on the configured schedule"
        if shard:
            parameters["shard"] = shard
            what += f", the feeds of shard {shard}"
        built.append(ingest.to_deployment(name, schedule=schedule, paused=False, concurrency_limit=one_at_a_time(),
                                          parameters=parameters, description=what, **common))
    built.append(backfill.to_deployment(
        BACKFILL_DEPLOYMENT, parameters={"config": source, "fan_out": True},
        description="newsmon backfill: catch a window up, or re-mine it offline (remine=true); "
                    "the window fans out into flow runs of backfill-part/ad-hoc of window_days days each, "
                    "which the pool's workers share", **common))
    built.append(backfill_part.to_deployment(
        PART_DEPLOYMENT, parameters={"config": source},
        description="one part of a fanned-out backfill (created by backfill/ad-hoc runs, not by hand)", **common))
    return built


def ensure_process_pool(client: Any, name: str) -> bool:
    """Create the process work pool `name` unless it exists (True when created); ConfigError if it has another type."""
    from prefect.client.schemas.actions import WorkPoolCreate
    from prefect.exceptions import ObjectAlreadyExists, ObjectNotFound
    from prefect.workers.process import ProcessWorker

    try:
        pool = client.read_work_pool(name)
    except ObjectNotFound:
        try:
            client.create_work_pool(WorkPoolCreate(name=name, type=POOL_TYPE,
                                                   base_job_template=ProcessWorker.get_default_base_job_template()))
            return True
        except ObjectAlreadyExists:  # another deploy created it meanwhile
            pool = client.read_work_pool(name)
    if pool.type != POOL_TYPE:
        raise ConfigError(f"work pool {name!r} is of type {pool.type!r}; newsmon deploys to a {POOL_TYPE!r} pool "
                          "(workers that import the installed newsmon): choose another --pool")
    return False


@dataclasses.dataclass(frozen=True)
class Deployed:
    """What `deploy_to_pool` did."""
    api_url: str
    pool: str
    pool_created: bool
    deployments: list[str]          # flow/deployment names registered or updated
    removed: list[str]              # earlier ingest deployments of another shard count, deleted


def deploy_to_pool(settings: Settings, pool: str = DEFAULT_POOL, shards: int = 1,
                   announce: Callable[[str], None] | None = None) -> Deployed:
    """Create the pool if missing and register the deployments on it (see the module docstring)."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName
    from prefect.settings import PREFECT_API_URL, temporary_settings

    if not re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,99}", pool or ""):
        raise ConfigError(f"--pool {pool!r}: a work pool name of letters, digits, '-', '_' and '.'")
    built = pool_deployments(settings, shards)  # config errors before anything touches the API
    url = PREFECT_API_URL.value()
    scope = contextlib.nullcontext() if url else temporary_settings(updates={PREFECT_API_URL: DEFAULT_API_URL})
    with scope:
        url = url or DEFAULT_API_URL
        check_api(url)
        if announce:
            announce(url)
        with get_client(sync_client=True) as client:
            created = ensure_process_pool(client, pool)
        ensure_writer_limit()
        names = []
        for deployment in built:
            deployment.apply(work_pool_name=pool)
            names.append(f"{deployment.flow_name}/{deployment.name}")
        keep = {name for name, _ in ingest_deployment_names(shards)}
        removed = []
        with get_client(sync_client=True) as client:
            for old in client.read_deployments(flow_filter=FlowFilter(name=FlowFilterName(any_=[ingest.name]))):
                if _OUR_INGEST.match(old.name) and old.name not in keep:
                    client.delete_deployment(old.id)
                    removed.append(f"{ingest.name}/{old.name}")
    return Deployed(api_url=url, pool=pool, pool_created=created, deployments=names, removed=sorted(removed))
