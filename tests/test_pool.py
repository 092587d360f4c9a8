"""`newsmon deploy` and a Prefect process work pool with two workers (flows/deploy.py), and the
backfill's fan-out of its window into task runs (flows/backfill.py `split_window`).

The slow test starts a real Prefect server, deploys the bundled sample with two feed shards,
starts two `prefect worker start --pool ...` processes, triggers both shards' scheduled ingest
and a backfill, and checks that the two workers shared the runs, every run completed, and the
warehouse holds the sample's articles once, each feed polled by one shard run only.
"""
from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.parse
from pathlib import Path

import pytest

from conftest import BIN, NEWSMON, ROOT, drain_api_workers, sample_config, stop_process_group
from flows.backfill import split_window
from flows.deploy import ingest_deployment_names
from newsmon.errors import ConfigError

UTC = dt.timezone.utc
CRON = "0 0 1 1 *"  # never due while the test runs: only the runs the test triggers happen


def at(day: str) -> dt.datetime:
    return dt.datetime.combine(dt.date.fromisoformat(day), dt.time.min, tzinfo=UTC)


# -- the backfill's parts -------------------------------------------------------------------
def test_split_window_takes_only_the_parts_with_work_aligned_on_since():
    busy = [dt.date(2025, 11, 20), dt.date(2025, 11, 21), dt.date(2025, 12, 2), dt.date(2025, 12, 20)]
    parts = split_window(at("2025-11-01"), at("2026-01-01"), 7, busy)
    assert parts == [(at("2025-11-15"), at("2025-11-22")), (at("2025-11-29"), at("2025-12-06")),
                     (at("2025-12-20"), at("2025-12-27"))]


def test_split_window_cuts_the_last_part_at_until_and_leaves_an_open_window_open():
    busy = [dt.date(2025, 12, 3), dt.date(2025, 12, 9)]
    assert split_window(at("2025-12-01"), at("2025-12-10"), 7, busy) == [
        (at("2025-12-01"), at("2025-12-08")), (at("2025-12-08"), at("2025-12-10"))]
    # open-ended: the last part stays open, for what arrives after the warehouse was asked
    assert split_window(at("2025-12-01"), None, 7, busy) == [(at("2025-12-01"), at("2025-12-08")),
                                                              (at("2025-12-08"), None)]


def test_split_window_zero_days_is_the_whole_window_and_no_work_is_no_part():
    assert split_window(at("2025-12-01"), None, 0, []) == [(at("2025-12-01"), None)]
    assert split_window(at("2025-12-01"), at("2025-12-31"), 7, []) == []
    # days before since (never asked for, but harmless) make no part
    assert split_window(at("2025-12-01"), at("2025-12-31"), 7, [dt.date(2025, 11, 30)]) == []


def test_split_window_parts_cover_every_busy_day_once():
    start, end = at("2025-01-01"), at("2025-12-31")
    busy = [dt.date(2025, 1, 1) + dt.timedelta(days=d) for d in range(0, 364, 5)]
    for days in (1, 3, 7, 30, 400):
        parts = split_window(start, end, days, busy)
        for day in busy:
            moment = dt.datetime.combine(day, dt.time(12), tzinfo=UTC)
            assert sum(1 for a, b in parts if a <= moment < b) == 1, (days, day)
        assert all(a < b for a, b in parts) and all(b1 <= a2 for (_, b1), (a2, _) in zip(parts, parts[1:]))


def test_days_with_work_reads_entries_pages_and_articles_of_the_window(warehouse):
    from warehouse import queries as q

    with warehouse.transaction() as con:
        con.execute("INSERT INTO feeds (name, url) VALUES ('f', 'http://x/feed')")
        con.execute("INSERT INTO feed_entries (feed, url, published_at, first_seen_at) VALUES "
                    "('f', 'http://x/1', TIMESTAMPTZ '2025-12-02 23:30:00+00', TIMESTAMPTZ '2026-01-05 10:00:00+00'),"
                    "('f', 'http://x/2', NULL, TIMESTAMPTZ '2025-12-04 01:00:00+00'),"
                    "('f', 'http://x/3', TIMESTAMPTZ '2025-11-20 10:00:00+00', TIMESTAMPTZ '2025-12-01 10:00:00+00')")
        con.execute("INSERT INTO pages (url, sha256, fetched_at) VALUES "
                    "('http://x/1', 'abc', TIMESTAMPTZ '2026-01-07 09:00:00+00')")
    with warehouse.connect(read_only=True) as con:
        # 23:30 UTC on the 2nd is the 2nd (not the local date); an undated entry counts on its first sighting,
        # a dated one on its date only (x/1 first seen on 5 Jan does not make 5 Jan busy)
        assert q.days_with_work(con, at("2025-12-01"), at("2025-12-31")) == [dt.date(2025, 12, 2),
                                                                              dt.date(2025, 12, 4)]
        assert q.days_with_work(con, at("2025-12-03"), None) == [dt.date(2025, 12, 4), dt.date(2026, 1, 7)]


# -- deployments ------------------------------------------------------------------------------
def test_ingest_deployment_names_one_per_shard():
    assert ingest_deployment_names(1) == [("scheduled", None)]
    assert ingest_deployment_names(3) == [("scheduled-1-of-3", "1/3"), ("scheduled-2-of-3", "2/3"),
                                          ("scheduled-3-of-3", "3/3")]
    with pytest.raises(ConfigError, match="--shards 0"):
        ingest_deployment_names(0)


# -- a work pool with two workers --------------------------------------------------------------
def _split_config_dir(tmp_path: Path) -> tuple[Path, dict[int, list[str]]]:
    """A folder for the sample config where the two sample feeds fall into different shards of two.

    Local feed URLs are file:// URIs of the config's folder, so which shard a feed lands in depends on
    the folder; the first of a few names where each shard gets one feed is taken (both shard runs poll).
    """

    from newsmon.settings import load_settings
    from tasks.shard import in_shard

    for n in range(50):
        folder = tmp_path / f"site{n}"
        folder.mkdir()
        config = sample_config(folder, "pool", 'path = "pool.duckdb"\nlock_timeout_seconds = 300')
        with open(config, "a") as f:
            f.write(f'\n[schedule]\ncron = "{CRON}"\n')
        feeds = load_settings(config).feeds
        shards = {i: [f.name for f in feeds if in_shard(f.url, i, 2)] for i in (1, 2)}
        if all(len(names) == 1 for names in shards.values()):
            return config, shards
        shutil.rmtree(folder)
    raise AssertionError("no folder name splits the two sample feeds across two shards")


def _start_worker(server, pool: str, name: str, tmp_path: Path, limit: int = 1) -> tuple[subprocess.Popen, Path]:
    log = tmp_path / f"{name}.log"
    home = tmp_path / f"home-{name}"
    env = server.env(PREFECT_HOME=str(home), PREFECT_WORKER_QUERY_SECONDS="1", PREFECT_WORKER_PREFETCH_SECONDS="5")
    env["PREFECT_LOGGING_LEVEL"] = "INFO"  # the worker names each flow run it submits
    with open(log, "wb") as out:
        # --limit 1: a worker runs one flow run at a time, so two runs due together go to both workers
        proc = subprocess.Popen([str(BIN / "prefect"), "worker", "start", "--pool", pool, "--name", name,
                                 "--limit", str(limit)], stdout=out, stderr=subprocess.STDOUT, env=env,
                                cwd=tmp_path, start_new_session=True)
    return proc, log


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        stop_process_group(proc)


def _deploy(server, config: Path, pool: str, shards: int, tmp_path: Path) -> subprocess.CompletedProcess:
    done = subprocess.run([str(NEWSMON), "deploy", "--config", str(config), "--pool", pool, "--shards", str(shards)],
                          capture_output=True, text=True, cwd=tmp_path, timeout=120,
                          env=server.env(PREFECT_HOME=str(tmp_path / "home-deploy")))
    assert done.returncode == 0, done.stdout + done.stderr
    return done


@pytest.mark.slow
def test_pool_two_workers_run_the_sharded_schedule_and_a_backfill(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowRunFilter, FlowRunFilterId
    from prefect.deployments import run_deployment
    from prefect.exceptions import ObjectNotFound

    from flows.deploy import deploy_to_pool
    from newsmon.settings import load_settings
    from warehouse import Warehouse

    pool = "newsmon-test"
    config, shards = _split_config_dir(tmp_path)

    # One shard first (in this process), then two (the CLI): the second deploy replaces ingest/scheduled
    # by the two shard deployments, on the pool the first one created.
    first = deploy_to_pool(load_settings(config), pool, 1)
    assert first.pool_created and first.deployments == ["ingest/scheduled", "backfill/ad-hoc", "backfill-part/ad-hoc"]
    second = _deploy(prefect_api, config, pool, 2, tmp_path)
    assert f"using the process work pool '{pool}'" in second.stdout
    assert "removed ingest/scheduled" in second.stdout

    with get_client(sync_client=True) as client:
        assert client.read_work_pool(pool).type == "process"
        with pytest.raises(ObjectNotFound):
            client.read_deployment_by_name("ingest/scheduled")
        deployed = {i: client.read_deployment_by_name(f"ingest/scheduled-{i}-of-2") for i in (1, 2)}
        backfill_dep = client.read_deployment_by_name("backfill/ad-hoc")
        for i, d in deployed.items():
            assert d.work_pool_name == pool
            assert d.parameters == {"config": str(config), "shard": f"{i}/2"}
            assert [s.schedule.cron for s in d.schedules] == [CRON]
            assert d.global_concurrency_limit.limit == 1
        assert backfill_dep.work_pool_name == pool and backfill_dep.schedules == []
        assert backfill_dep.parameters == {"config": str(config), "fan_out": True}

    workers = [_start_worker(prefect_api, pool, name, tmp_path) for name in ("w1", "w2")]
    try:
        with get_client(sync_client=True) as client:
            def wait_for(what: str, check, timeout: float):
                deadline = time.monotonic() + timeout
                while time.monotonic() < deadline:
                    value = check()
                    if value:
                        return value
                    for proc, log in workers:
                        if proc.poll() is not None:
                            raise AssertionError(f"worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")
                    time.sleep(0.5)
                logs = "\n".join(f"--- {log.name}\n{log.read_text()[-2500:]}" for _, log in workers)
                raise AssertionError(f"no {what} within {timeout}s\n{logs}")

            wait_for("two online workers", lambda: len([w for w in client.read_workers_for_work_pool(pool)
                                                        if w.status.value == "ONLINE"]) == 2, 60)

            def finished(runs):
                def check():
                    states = [client.read_flow_run(r.id).state for r in runs]
                    return states if all(s.is_final() for s in states) else None
                return check

            # the scheduled ingest of both shards, due at once (as the schedule makes them)
            ingests = [run_deployment(f"ingest/scheduled-{i}-of-2", timeout=0) for i in (1, 2)]
            states = wait_for("final ingest states", finished(ingests), 150)
            assert [s.type.value for s in states] == ["COMPLETED", "COMPLETED"], [s.message for s in states]

            # fan_out off: the parts as task runs of the one flow run (test_pool_backfill_fans_out_... for on)
            back = run_deployment("backfill/ad-hoc", timeout=0,
                                  parameters={"since": "2025-11-01", "until": "2025-12-31", "window_days": 7,
                                              "fan_out": False})
            (state,) = wait_for("final backfill state", finished([back]), 150)
            assert state.is_completed(), state.message
            parts = client.read_task_runs(flow_run_filter=FlowRunFilter(id=FlowRunFilterId(any_=[back.id])))
        drain_api_workers()
    finally:
        for proc, _ in workers:
            _stop(proc)

    # Which worker ran which flow run, from its log: both may try to submit a run; the server lets one
    # have it and tells the other to abort.
    took = {}
    for (_, log), name in zip(workers, ("w1", "w2")):
        text = log.read_text()
        took[name] = (set(re.findall(r"submitting flow run '([0-9a-f-]{36})'", text))
                      - set(re.findall(r"Aborted submission of flow run '([0-9a-f-]{36})'", text)))
    ingest_ids = {str(r.id) for r in ingests}
    assert all(took[name] & ingest_ids for name in took), took  # both workers ran a shard
    assert not took["w1"] & took["w2"]                           # no run was taken twice
    assert str(back.id) in took["w1"] | took["w2"]

    settings = load_settings(config)
    wh = Warehouse.from_settings(settings.warehouse)
    # no feed polled twice: each shard run polled exactly its own shard's feed
    for i, run in zip((1, 2), ingests):
        polled = [r["feed"] for r in wh.read("SELECT feed FROM feed_polls WHERE run_id = ?", [str(run.id)])]
        assert polled == shards[i], (i, polled)
    fetched = wh.read("SELECT url, count(*) AS n FROM fetches WHERE outcome = 'ok' GROUP BY url")
    assert fetched and all(r["n"] == 1 for r in fetched), fetched  # the backfill downloaded nothing again
    # the sample's articles, each once
    pages = sorted(p.name for p in (ROOT / "config" / "sample" / "pages").glob("*.html"))
    urls = [r["url"] for r in wh.read("SELECT url FROM articles")]
    assert sorted(Path(urllib.parse.urlsplit(u).path).name for u in urls) == pages
    runs = {r["run_id"]: r for r in wh.read("SELECT run_id, flow, status FROM runs")}
    assert {runs[str(r.id)]["status"] for r in [*ingests, back]} == {"completed"}
    assert runs[str(back.id)]["flow"] == "backfill"

    # the backfill fanned out: one mine task run per 7-day part (aligned on since) with articles,
    # and every article's day falls into one of them
    mined = sorted(t.name for t in parts if t.name.startswith("mine_articles "))
    assert len(mined) >= 2, sorted(t.name for t in parts)
    spans = [tuple(dt.date.fromisoformat(d) for d in name.split(" ", 1)[1].split("..")) for name in mined]
    for first_day, last_day in spans:
        assert (first_day - dt.date(2025, 11, 1)).days % 7 == 0 and (last_day - first_day).days <= 6
    for row in wh.read("SELECT published_at FROM articles"):
        day = row["published_at"].astimezone(UTC).date()
        assert any(a <= day <= b for a, b in spans), (day, spans)
    assert {r["url"] for r in wh.read("SELECT url FROM mined_articles")} == set(urls)


def _pids_of_flow_run(flow_run_id: str) -> list[int]:
    """The processes running one flow run (a process worker's subprocess has its id in the environment)."""
    mark = f"PREFECT__FLOW_RUN_ID={flow_run_id}".encode()
    pids = []
    for environ in Path("/proc").glob("[0-9]*/environ"):
        try:
            if mark in environ.read_bytes().split(b"\0"):
                pids.append(int(environ.parent.name))
        except OSError:
            continue
    return pids


@pytest.mark.slow
def test_pool_backfill_fans_out_its_windows_as_flow_runs_that_workers_share_and_a_killed_part_runs_again(
        prefect_api, tmp_path):
    """The backfill/ad-hoc deployment (fan_out) turns each 7-day part with work into a flow run of
    backfill-part/ad-hoc; two workers take them; the first part's process is SIGKILLed while it runs,
    and the part runs again; in the end each window was done exactly once and every article once."""
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import FlowFilter, FlowFilterName, FlowRunFilter, FlowRunFilterParentFlowRunId
    from prefect.deployments import run_deployment

    from newsmon.settings import load_settings
    from warehouse import Warehouse

    pool = "newsmon-fanout"
    config, _ = _split_config_dir(tmp_path)
    _deploy(prefect_api, config, pool, 1, tmp_path)
    # --limit 2: the backfill's own flow run waits for its parts on one worker and leaves a slot there
    workers = [_start_worker(prefect_api, pool, name, tmp_path, limit=2) for name in ("f1", "f2")]
    killed: list[str] = []
    try:
        with get_client(sync_client=True) as client:
            def alive():
                for proc, log in workers:
                    if proc.poll() is not None:
                        raise AssertionError(f"worker exited ({proc.returncode}):\n{log.read_text()[-3000:]}")

            deadline = time.monotonic() + 60
            while len([w for w in client.read_workers_for_work_pool(pool) if w.status.value == "ONLINE"]) < 2:
                alive()
                assert time.monotonic() < deadline, "two workers did not come online"
                time.sleep(0.5)

            back = run_deployment("backfill/ad-hoc", timeout=0,
                                  parameters={"since": "2025-11-01", "until": "2025-12-31", "window_days": 7})

            def parts():
                return client.read_flow_runs(flow_filter=FlowFilter(name=FlowFilterName(any_=["backfill-part"])))

            deadline = time.monotonic() + 300
            while True:
                alive()
                state = client.read_flow_run(back.id).state
                if state.is_final():
                    break
                if not killed:   # kill the first part seen running, process and all
                    for run in parts():
                        if run.state.is_running():
                            pids = _pids_of_flow_run(str(run.id))
                            for pid in pids:
                                with contextlib.suppress(ProcessLookupError):
                                    os.kill(pid, signal.SIGKILL)
                            if pids:
                                killed.append(str(run.id))
                                break
                assert time.monotonic() < deadline, "the backfill did not finish within 300 s"
                time.sleep(0.3)
            assert state.is_completed(), state.message
            part_runs = parts()
        drain_api_workers()
    finally:
        for proc, _ in workers:
            _stop(proc)

    assert killed, "no part was seen running to kill"
    by_days: dict[str, list] = {}
    for run in part_runs:
        by_days.setdefault(f"{run.parameters['since']}..{run.parameters['until']}", []).append(run)
    # every part's flow run was created by the backfill (a subflow of it), on the pool
    assert all(r.parent_task_run_id is not None and r.work_pool_name == pool for r in part_runs)
    # each window completed exactly once; the killed part crashed and ran again
    for days, runs in by_days.items():
        assert [r.state.type.value for r in runs].count("COMPLETED") == 1, (days, [r.state for r in runs])
    crashed = [r for r in part_runs if str(r.id) in killed]
    assert crashed and crashed[0].state.type.value in ("CRASHED", "FAILED"), crashed
    again = by_days[f"{crashed[0].parameters['since']}..{crashed[0].parameters['until']}"]
    assert len(again) == 2 and any(r.state.is_completed() for r in again)
    assert len(part_runs) == len(by_days) + 1
    # the parts are 7-day windows aligned on since, at least two of them with work
    assert len(by_days) >= 2
    for days in by_days:
        first_day, last_day = (dt.date.fromisoformat(d) for d in days.split(".."))
        assert (first_day - dt.date(2025, 11, 1)).days % 7 == 0 and (last_day - first_day).days == 6

    wh = Warehouse.from_settings(load_settings(config).warehouse)
    pages = sorted(p.name for p in (ROOT / "config" / "sample" / "pages").glob("*.html"))
    urls = [r["url"] for r in wh.read("SELECT url FROM articles")]
    assert sorted(Path(urllib.parse.urlsplit(u).path).name for u in urls) == pages   # each article once
    assert {r["url"] for r in wh.read("SELECT url FROM mined_articles")} == set(urls)
    fetched = wh.read("SELECT url, count(*) AS n FROM fetches WHERE outcome = 'ok' GROUP BY url")
    assert fetched and all(r["n"] == 1 for r in fetched), fetched
    for row in wh.read("SELECT published_at FROM articles"):   # every article's day lies in a completed part
        day = row["published_at"].astimezone(UTC).date()
        assert any(dt.date.fromisoformat(d.split("..")[0]) <= day <= dt.date.fromisoformat(d.split("..")[1])
                   for d in by_days), day
    runs = wh.read("SELECT run_id, flow, status FROM runs WHERE flow IN ('backfill', 'backfill-part')")
    status = {r["run_id"]: (r["flow"], r["status"]) for r in runs}
    assert status[str(back.id)] == ("backfill", "completed")
    completed_parts = [r for r in part_runs if r.state.is_completed()]
    assert all(status[str(r.id)] == ("backfill-part", "completed") for r in completed_parts)
    # the parent's summary adds up the parts' counts
    counts = wh.read("SELECT counts FROM runs WHERE run_id = ?", [str(back.id)])[0]["counts"]
    parts_counts = json.loads(counts)["parts"]
    assert parts_counts["parts"] == len(by_days) and parts_counts["part_reruns"] == 1
    assert parts_counts["claims"]["articles"] >= len(urls)
