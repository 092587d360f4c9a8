"""`newsmon serve`: the two deployments, served by one long-running process.

    ingest/scheduled   the ingest flow on `[schedule] cron` / `timezone` of the config
                       (default every 15 minutes, UTC); one run at a time, a run due
                       while the last one still runs is cancelled, not queued
    backfill/ad-hoc    the backfill flow, no schedule: start it from the UI or with
                       `prefect deployment run backfill/ad-hoc --param since=2025-12-01`

Both carry the config file as their `config` parameter default, and both hold the
global concurrency limit `newsmon-warehouse-writer` (1 slot, created or reset here)
around their work, so a scheduled run and a backfill that overlap take turns.

The deployments live on the Prefect API named by PREFECT_API_URL; without it, the
API of a local `prefect server start` (http://127.0.0.1:4200/api). `serve` runs until
SIGINT or SIGTERM, cancels the flow runs it started (every stage is idempotent, the
next run finishes their work) and pauses the schedule until it is served again.
"""
from __future__ import annotations

import contextlib
import os
import sys
import zoneinfo
from collections.abc import Callable
from typing import Any


from flows.backfill import backfill
from flows.ingest import ingest
from flows.writer import WRITER_LIMIT
from newsmon.errors import ConfigError
from newsmon.settings import Settings

__all__ = ["deployments", "serve_deployments", "schedule_of", "one_at_a_time", "check_api",
           "ensure_writer_limit", "DEFAULT_API_URL"]

DEFAULT_API_URL = "http://127.0.0.1:4200/api"  # where `prefect server start` listens
INGEST_DEPLOYMENT = "scheduled"
BACKFILL_DEPLOYMENT = "ad-hoc"
SHUTDOWN_GRACE_SECONDS = 10.0  # after a stop signal, leave even if the API does not answer


def schedule_of(settings: Settings) -> Any:
    """The config's `[schedule]` as a Prefect Cron schedule; ConfigError naming the key when it is bad."""
    from prefect.schedules import Cron

    source = str(settings.source) if settings.source else None
    sched = settings.schedule
    try:
        zoneinfo.ZoneInfo(sched.timezone)
    except (zoneinfo.ZoneInfoNotFoundError, ValueError):
        raise ConfigError(f"config {source}: schedule.timezone: unknown time zone {sched.timezone!r} "
                          "(write an IANA name such as \"UTC\" or \"Europe/Berlin\")") from None
    try:
        schedule = Cron(sched.cron, timezone=sched.timezone)
    except ValueError as exc:
        raise ConfigError(f"config {source}: schedule.cron: invalid cron expression {sched.cron!r}: "
                          f"{str(exc).splitlines()[0]}") from None
    return schedule


def one_at_a_time() -> Any:
    """The deployment concurrency of a scheduled ingest: one run at a time, a run due meanwhile is cancelled."""
    from prefect.client.schemas.objects import ConcurrencyLimitConfig, ConcurrencyLimitStrategy

    return ConcurrencyLimitConfig(limit=1, collision_strategy=ConcurrencyLimitStrategy.CANCEL_NEW)


def deployments(settings: Settings) -> list[Any]:
    """The RunnerDeployments of ingest/scheduled and backfill/ad-hoc for this config."""
    from prefect.types.entrypoint import EntrypointType

    source = str(settings.source) if settings.source else None
    schedule = schedule_of(settings)
    # Module entrypoints ("flows.ingest.ingest"): the runner's flow-run processes
    # import the installed package, whatever their working directory.
    common = dict(parameters={"config": source}, tags=["newsmon"], entrypoint_type=EntrypointType.MODULE_PATH)
    return [
        ingest.to_deployment(
            INGEST_DEPLOYMENT, schedule=schedule,
            concurrency_limit=one_at_a_time(),
            description="newsmon ingest on the configured schedule", **common),
        backfill.to_deployment(
            BACKFILL_DEPLOYMENT,
            description="newsmon backfill: catch a window up, or re-mine it offline (remine=true)", **common),
    ]


def ensure_writer_limit() -> None:
    """Create the global concurrency limit both flows hold (or set it back to one slot)."""
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        client.upsert_global_concurrency_limit_by_name(WRITER_LIMIT, 1)


def check_api(url: str) -> None:
    from prefect.client.orchestration import get_client

    with get_client(sync_client=True) as client:
        problem = client.api_healthcheck()
    if problem is not None:
        raise ConfigError(f"no Prefect API answers at {url} ({type(problem).__name__}): start one with "
                          "`prefect server start`, or point PREFECT_API_URL at yours")


def serve_deployments(settings: Settings, announce: Callable[[str], None] | None = None) -> None:
    """Register both deployments and run their flow runs until SIGINT/SIGTERM.

    `announce(api_url)` is called once the config and the API have been checked, before serving.
    """
    from prefect.settings import PREFECT_API_URL, temporary_settings

    built = deployments(settings)  # config errors before anything touches the API
    url = PREFECT_API_URL.value()
    # No API configured: the local server, not a temporary one that would vanish with this process
    # (the settings reach the flow-run processes the runner starts).
    scope = contextlib.nullcontext() if url else temporary_settings(updates={PREFECT_API_URL: DEFAULT_API_URL})
    with scope:
        url = url or DEFAULT_API_URL
        check_api(url)
        ensure_writer_limit()
        if announce:
            announce(url)
        _serve(built)


def _serve(built: list[Any]) -> None:
    """What `prefect.serve(*built)` does, with a bounded shutdown.

    On SIGTERM (and here SIGINT too) the runner cancels its flow runs and pauses the
    schedule through the API; with the API gone that waits on client retries for
    minutes. So a stop signal also starts a timer: after SHUTDOWN_GRACE_SECONDS the
    process leaves anyway (the schedule then stays active; runs that fall due meanwhile
    are picked up, one at a time, when serve runs again).
    """
    import asyncio
    import signal
    import threading

    from prefect.runner import Runner

    runner = Runner(pause_on_shutdown=True, limit=None)
    for deployment in built:
        runner.add_deployment(deployment)
    graceful = runner.handle_sigterm

    def stop(*args: Any) -> None:
        timer = threading.Timer(SHUTDOWN_GRACE_SECONDS, _leave_now)
        timer.daemon = True
        timer.start()
        graceful(*args)

    runner.handle_sigterm = stop  # Runner.start installs `self.handle_sigterm` for SIGTERM
    signal.signal(signal.SIGINT, stop)  # Ctrl-C: the same graceful path
    asyncio.run(runner.start())


def _leave_now() -> None:
    sys.stderr.write(f"newsmon serve: not stopped {SHUTDOWN_GRACE_SECONDS:.0f}s after the signal (is the Prefect "
                     "API down?); leaving without pausing the schedule\n")
    sys.stderr.flush()
    os._exit(0)
