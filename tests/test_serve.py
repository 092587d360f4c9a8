"""flows.serve / `newsmon serve` against a real Prefect server: both deployments are
registered with the config as their parameter, a triggered backfill and ingest that
overlap both complete one after the other (the writer limit) under names made of their
parameters, a bad `since` is refused when the run is created, and SIGTERM stops the process.
"""
from __future__ import annotations

import datetime as dt
import re
import subprocess
import time

import pytest

from conftest import NEWSMON, drain_api_workers, prefect_server, stop_process_group
from test_backfill import ARTICLES, serve_gazette, warehouse, write_config

pytestmark = pytest.mark.slow

CRON = "0 0 1 1 *"  # never due while the test runs: only the runs the test triggers happen


def wait_for(what: str, check, timeout: float, proc: subprocess.Popen, log) -> object:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = check()
        if value:
            return value
        if proc.poll() is not None:
            raise AssertionError(f"newsmon serve exited ({proc.returncode}) before {what}:\n{log.read_text()[-3000:]}")
        time.sleep(0.5)
    raise AssertionError(f"no {what} within {timeout}s:\n{log.read_text()[-3000:]}")


def test_serve_registers_deployments_runs_them_and_stops_on_sigterm(site, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound, PrefectHTTPStatusError
    from prefect.settings import PREFECT_API_URL, temporary_settings

    from flows.writer import WRITER_LIMIT

    config = write_config(tmp_path, serve_gazette(site),
                          extra=f'\n[schedule]\ncron = "{CRON}"\ntimezone = "Europe/Berlin"\n')
    log = tmp_path / "serve.log"
    with prefect_server(tmp_path / "prefect-server") as server, \
            temporary_settings(updates={PREFECT_API_URL: server.api_url}):
        with open(log, "wb") as out:
            proc = subprocess.Popen([str(NEWSMON), "serve", "--config", str(config)], stdout=out,
                                    stderr=subprocess.STDOUT, cwd=tmp_path, start_new_session=True,
                                    env=server.env(PREFECT_HOME=str(tmp_path / "prefect-client")))
        try:
            with get_client(sync_client=True) as client:
                def deployments():
                    try:
                        return (client.read_deployment_by_name("ingest/scheduled"),
                                client.read_deployment_by_name("backfill/ad-hoc"))
                    except ObjectNotFound:
                        return None

                ingest, backfill = wait_for("deployments", deployments, 60, proc, log)
                assert [s.schedule.cron for s in ingest.schedules] == [CRON]
                assert ingest.schedules[0].schedule.timezone == "Europe/Berlin"
                assert backfill.schedules == []
                assert ingest.parameters == backfill.parameters == {"config": str(config)}
                assert client.read_global_concurrency_limit_by_name(WRITER_LIMIT).limit == 1
                # one scheduled ingest at a time; one that falls due meanwhile is cancelled, not queued
                assert ingest.global_concurrency_limit.limit == 1
                assert ingest.concurrency_options.collision_strategy.value == "CANCEL_NEW"

                # Both at once: the writer limit makes them take turns.
                runs = [run_deployment("backfill/ad-hoc", parameters={"since": "2025-12-01"}, timeout=0),
                        run_deployment("ingest/scheduled", timeout=0)]

                def finished():
                    states = [client.read_flow_run(r.id).state for r in runs]
                    return states if all(s.is_final() for s in states) else None

                states = wait_for("final states", finished, 90, proc, log)
                assert [s.type.value for s in states] == ["COMPLETED", "COMPLETED"], [s.message for s in states]
                assert client.read_global_concurrency_limit_by_name(WRITER_LIMIT).active_slots == 0
                names = [client.read_flow_run(r.id).name for r in runs]
                assert names[0] == "backfill 2025-12-01.."
                assert re.fullmatch(r"ingest \d{4}-\d\d-\d\dT\d\d:\d\d", names[1]), names

            wh = warehouse(config)
            stored = {r["url"] for r in wh.read("SELECT url FROM articles")}
            assert stored == {site.url(f"/{slug}.html") for slug in ARTICLES}  # the ingest fetched Norway's too
            windows = wh.read("SELECT flow, started_at, finished_at FROM runs ORDER BY started_at")
            assert sorted(w["flow"] for w in windows) == ["backfill", "ingest"]
            assert windows[0]["finished_at"] <= windows[1]["started_at"], windows  # one after the other

            # refused when the run is created, not when it starts
            with pytest.raises(PrefectHTTPStatusError, match="Validation failed for field 'since'"):
                run_deployment("backfill/ad-hoc", parameters={"since": "notadate"}, timeout=0)
            drain_api_workers()
        finally:
            if proc.poll() is None:
                started = time.monotonic()
                if stop_process_group(proc, timeout=15):
                    pytest.fail(f"newsmon serve still running 15 s after SIGTERM:\n{log.read_text()[-3000:]}")
                stopped_after = dt.timedelta(seconds=time.monotonic() - started)
    assert proc.returncode == 0, log.read_text()[-3000:]
    assert stopped_after < dt.timedelta(seconds=15)
    assert "newsmon serve: stopped" in log.read_text()
