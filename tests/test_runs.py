"""How runs are orchestrated and recorded (flows/runtime.py, warehouse/runs.py).

Without a Prefect API the pipeline runs as plain Python (no Prefect server); with one,
as Prefect flows whose final state tells the truth. A run that could poll no feed, or
whose stage failed, fails (RunFailed, exit 1, flow run Failed) after it is recorded;
partial failures are listed; a run whose process vanished is marked killed by the next.
The feeds and pages are served by the real local HTTP server of conftest.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import time

import pytest

from conftest import Answer, cli_env, free_port, newsmon_cli
from flows.runtime import check_prefect_api, run_failure, run_pipeline, run_problems
from newsmon.errors import OrchestratorError, RunFailed, WarehouseError
from tests.test_ingest import serve_site, write_config
from warehouse import Warehouse
from warehouse import runs as wr

UTC = dt.timezone.utc


def failing_feed(site, path: str = "/feed.xml") -> str:
    return site.add(path, Answer(b"upstream error", status=500, headers={"Content-Type": "text/plain"}))


def no_prefect_server_ran(home) -> bool:
    """Importing Prefect creates its (empty) home; a server, temporary or not, leaves its database there."""
    return not any(p.is_file() for p in home.rglob("*"))


def runs(wh: Warehouse) -> list[dict]:
    return wh.read("SELECT run_id, flow, status, error, pid, host, finished_at FROM runs ORDER BY started_at")


# -- the plain path ------------------------------------------------------------------------------
def test_runs_plain_ingest_records_a_completed_run(site, tmp_path):
    from flows.ingest import run_ingest

    config = write_config(tmp_path, {"courier": serve_site(site)}, retries=0)
    result = run_ingest(str(config))
    assert result["pages"]["fetched"] == 3 and result["articles"]["extracted"] == 3
    [run] = runs(Warehouse(tmp_path / "newsmon.duckdb"))
    assert (run["flow"], run["status"], run["error"]) == ("ingest", "completed", None)
    assert run["pid"] == os.getpid() and run["host"] == socket.gethostname() and run["finished_at"]


def test_runs_every_feed_failing_fails_the_run_after_recording_it(site, tmp_path):
    from flows.ingest import run_ingest

    config = write_config(tmp_path, {"one": failing_feed(site, "/a.xml"), "two": failing_feed(site, "/b.xml")},
                          retries=0)
    with pytest.raises(RunFailed, match=r"no feed could be polled \(failed: http_500=2\)") as err:
        run_ingest(str(config))
    assert err.value.result["feeds"]["failed"] == 2
    assert "changes" in err.value.result and "alerts" in err.value.result  # the later stages still ran
    [run] = runs(Warehouse(tmp_path / "newsmon.duckdb"))
    assert run["status"] == "failed" and "no feed could be polled" in run["error"]


def test_runs_one_feed_failing_completes_and_lists_the_failure(site, tmp_path):
    from flows.ingest import run_ingest

    config = write_config(tmp_path, {"courier": serve_site(site), "broken": failing_feed(site, "/broken.xml")},
                          retries=0)
    result = run_ingest(str(config))
    assert run_failure(result) is None
    assert "feeds: 1 feed(s) failed: http_500=1" in run_problems(result)
    assert result["articles"]["extracted"] == 3
    assert [r["status"] for r in runs(Warehouse(tmp_path / "newsmon.duckdb"))] == ["completed"]


def test_runs_feeds_all_backing_off_is_a_failure_too():
    result = {"feeds": {"skipped_backoff": 2, "failures": {}}, "pages": {}}
    assert run_failure(result) == "no feed could be polled (2 backing off after failures)"
    assert run_failure({"feeds": {"polled": 2, "not_modified": 2}}) is None
    assert run_failure({"feeds": {}}) is None  # no feed configured: nothing to poll is no failure


def test_runs_a_failing_stage_is_recorded_and_the_next_stages_still_run(warehouse):
    seen = []

    def boom(run_id):
        raise ValueError("a bug in a stage")

    def ok(name):
        def step(run_id):
            seen.append((name, run_id))
            return {"done": 1}
        return step

    plan = [("first", ok("first")), ("broken", boom), ("last", ok("last"))]
    with pytest.raises(RunFailed, match=r"stage broken failed \(ValueError: a bug in a stage\)") as err:
        run_pipeline(warehouse, "ingest", plan, title="t")
    assert err.value.result == {"first": {"done": 1}, "broken": {"error": "ValueError: a bug in a stage"},
                                "last": {"done": 1}}
    [run] = runs(warehouse)
    assert [n for n, _ in seen] == ["first", "last"] and {r for _, r in seen} == {run["run_id"]}
    assert run["status"] == "failed" and "stage broken failed" in run["error"]


def test_runs_a_warehouse_error_stops_the_later_stages(warehouse):
    def locked(run_id):
        raise WarehouseError("warehouse x stayed locked")

    later = []
    plan = [("pages", locked), ("articles", lambda run_id: later.append(1) or {})]
    with pytest.raises(RunFailed) as err:
        run_pipeline(warehouse, "ingest", plan, title="t")
    assert later == [] and err.value.result["articles"] == {"error": "not run: the pages stage met a warehouse error"}


def test_runs_interrupted_run_is_recorded_as_interrupted(warehouse):
    def ctrl_c(run_id):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_pipeline(warehouse, "backfill", [("feeds", lambda run_id: {"polled": 1}), ("pages", ctrl_c)], title="t")
    [run] = runs(warehouse)
    assert run["status"] == "interrupted" and run["finished_at"] is not None


# -- killed runs ---------------------------------------------------------------------------------
def _add_run(wh: Warehouse, run_id: str, *, pid: int | None, host: str | None, token: str | None,
             started: dt.datetime | None = None) -> None:
    with wh.transaction() as con:
        con.execute("INSERT INTO runs (run_id, flow, started_at, status, pid, host, pid_started) "
                    "VALUES (?, 'ingest', ?, 'running', ?, ?, ?)",
                    [run_id, started or dt.datetime.now(UTC), pid, host, token])


def test_runs_vanished_processes_are_marked_killed_live_ones_are_not(warehouse):
    here = socket.gethostname()
    gone = subprocess.Popen(["true"])      # processes of their own, not interpreters (a default-run test)
    gone.wait()
    alive = subprocess.Popen(["sleep", "60"])
    try:
        assert wr.process_token(alive.pid)
        _add_run(warehouse, "dead-pid", pid=gone.pid, host=here, token="x:1")
        _add_run(warehouse, "live", pid=alive.pid, host=here, token=wr.process_token(alive.pid))
        _add_run(warehouse, "recycled-pid", pid=alive.pid, host=here, token="another-boot:42")
        _add_run(warehouse, "elsewhere-recent", pid=1, host="other-host", token=None)
        _add_run(warehouse, "elsewhere-old", pid=1, host="other-host", token=None,
                 started=dt.datetime.now(UTC) - wr.STALE_AFTER - dt.timedelta(minutes=1))
        with warehouse.transaction() as con:
            killed = wr.mark_vanished_runs(con)
        assert sorted(killed) == ["dead-pid", "elsewhere-old", "recycled-pid"]
        status = {r["run_id"]: (r["status"], r["error"]) for r in runs(warehouse)}
        assert status["live"] == ("running", None) and status["elsewhere-recent"] == ("running", None)
        assert status["dead-pid"][0] == "killed" and f"process {gone.pid} on {here} is gone" in status["dead-pid"][1]
        assert "after 48 h" in status["elsewhere-old"][1]
    finally:
        alive.kill()
        alive.wait()


def test_runs_next_ingest_marks_a_killed_run(site, tmp_path):
    from flows.ingest import run_ingest

    config = write_config(tmp_path, {"courier": serve_site(site)}, retries=0)
    wh = Warehouse(tmp_path / "newsmon.duckdb")
    wh.migrate()
    gone = subprocess.Popen(["true"])
    gone.wait()
    _add_run(wh, "killed-one", pid=gone.pid, host=socket.gethostname(), token="x:1")
    run_ingest(str(config))
    assert [(r["run_id"] == "killed-one", r["status"]) for r in runs(wh)] == [(True, "killed"), (False, "completed")]


# -- the Prefect API check ------------------------------------------------------------------------
def test_runs_prefect_api_that_never_answers_is_one_clean_error(site):
    hung = site.add("/api/health", Answer(b"true", delay=30))
    started = time.monotonic()
    with pytest.raises(OrchestratorError, match=r"did not answer \(TimeoutError: no answer within 1s\)"):
        check_prefect_api(hung.removesuffix("/health"), timeout=1)
    assert time.monotonic() - started < 10


def test_runs_prefect_api_refusing_connections_is_one_clean_error():
    port = free_port()  # closed again: nothing listens there
    with pytest.raises(OrchestratorError, match=r"Prefect API at http://127\.0\.0\.1:\d+/api did not answer"):
        check_prefect_api(f"http://127.0.0.1:{port}/api", timeout=5)


# -- the CLI (subprocess) --------------------------------------------------------------------------
@pytest.mark.slow
def test_runs_cli_ingest_with_every_feed_failing_exits_non_zero(site, tmp_path):
    config = write_config(tmp_path, {"one": failing_feed(site, "/a.xml"), "two": failing_feed(site, "/b.xml")},
                          retries=0)
    proc = newsmon_cli("ingest", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 1, proc.stdout + proc.stderr
    assert "newsmon: ingest failed: no feed could be polled (failed: http_500=2)" in proc.stderr.splitlines()
    assert proc.stdout.startswith("ingest failed: feeds: polled=2 failed=2")
    assert "  problem: feeds: 2 feed(s) failed: http_500=2" in proc.stdout.splitlines()
    assert "Traceback" not in proc.stdout + proc.stderr
    assert no_prefect_server_ran(tmp_path / "prefect-home")


@pytest.mark.slow
def test_runs_cli_ingest_without_prefect_api_starts_no_server(site, tmp_path):
    config = write_config(tmp_path, {"courier": serve_site(site)}, retries=0)
    proc = newsmon_cli("ingest", "--config", str(config), cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert proc.stdout.startswith("ingest done: feeds: polled=1 ok=1 new_entries=3; pages: fetched=3")
    assert no_prefect_server_ran(tmp_path / "prefect-home")
    [run] = runs(Warehouse(tmp_path / "newsmon.duckdb"))
    assert run["status"] == "completed"


@pytest.mark.slow
@pytest.mark.parametrize("command", [["ingest"], ["backfill", "--since", "2025-12-01"]])
def test_runs_cli_with_a_dead_prefect_api_is_one_line_and_runs_nothing(site, tmp_path, command):
    port = free_port()
    config = write_config(tmp_path, {"courier": serve_site(site)}, retries=0)
    env = cli_env(tmp_path, PREFECT_API_URL=f"http://127.0.0.1:{port}/api")
    proc = newsmon_cli(*command, "--config", str(config), cwd=tmp_path, env=env, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert lines[-1].startswith(f"newsmon: the Prefect API at http://127.0.0.1:{port}/api did not answer")
    assert "Traceback" not in proc.stderr + proc.stdout
    assert site.hits() == []  # nothing polled


# -- as Prefect flows, against a real server ---------------------------------------------------------
@pytest.mark.slow
def test_runs_flow_with_every_feed_failing_ends_failed(prefect_api, site, tmp_path):
    from prefect.client.orchestration import get_client

    from flows.ingest import ingest

    config = write_config(tmp_path, {"one": failing_feed(site, "/a.xml")}, retries=0)
    state = ingest(config=str(config), return_state=True)
    assert state.is_failed() and "no feed could be polled" in state.message
    failed = state.result(raise_on_failure=False)
    assert isinstance(failed, RunFailed) and failed.result["feeds"]["failed"] == 1
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    with get_client(sync_client=True) as client:
        flow_run = client.read_flow_run(state.state_details.flow_run_id)
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[flow_run.id])))
    assert flow_run.state.is_failed()
    [summary] = [a for a in artifacts if a.key == "ingest-summary"]
    failures = summary.data.split("## Failures (2)\n\n", 1)[1].split("\n\n", 1)[0].splitlines()
    assert failures[0] == "- run failed: no feed could be polled (failed: http_500=1)"
    assert failures[1].startswith("- feed `one` (HTTP 500): ") and len(failures) == 2
    [run] = runs(Warehouse(tmp_path / "newsmon.duckdb"))
    assert run["run_id"] == str(flow_run.id) and run["status"] == "failed"


@pytest.mark.slow
def test_runs_cli_through_a_prefect_server_tells_the_truth(prefect_api, site, tmp_path):
    from prefect.client.orchestration import get_client

    env = prefect_api.env(PREFECT_HOME=str(tmp_path / "prefect-client"))
    states = []
    for name, feeds, code in [("good", {"courier": serve_site(site)}, 0),
                              ("bad", {"one": failing_feed(site, "/a.xml")}, 1)]:
        (tmp_path / name).mkdir()
        config = write_config(tmp_path / name, feeds, retries=0)
        proc = newsmon_cli("ingest", "--config", str(config), cwd=tmp_path / name, env=env)
        assert proc.returncode == code, proc.stdout + proc.stderr
        assert "Traceback" not in proc.stderr
        [run] = runs(Warehouse(tmp_path / name / "newsmon.duckdb"))
        with get_client(sync_client=True) as client:
            flow_run = client.read_flow_run(run["run_id"])  # the run is recorded under its flow run's id
        states.append((run["status"], flow_run.state.type.value, flow_run.state.message or ""))
    assert states[0][:2] == ("completed", "COMPLETED")
    assert states[1][:2] == ("failed", "FAILED") and "no feed could be polled" in states[1][2]
    assert proc.stderr.strip().splitlines()[-1].startswith("newsmon: ingest failed: no feed could be polled")


@pytest.mark.slow
def test_runs_cli_sigterm_records_an_interrupted_run(site, tmp_path):
    import threading

    from conftest import NEWSMON

    gate = threading.Event()  # page 2 hangs until the test lets it go
    routes = {"kommunen-winterhilfe.html": Answer(b"<html></html>", gate=gate)}
    config = write_config(tmp_path, {"courier": serve_site(site, page_routes=routes)}, retries=0)
    proc = subprocess.Popen([str(NEWSMON), "ingest", "--config", str(config)], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True, env=cli_env(tmp_path), cwd=tmp_path,
                            start_new_session=True)
    try:
        site.wait_for("/kommunen-winterhilfe.html", timeout=120)
        # pages were due: the run has forked its extraction helper and its mining process
        helpers = [int(p) for p in subprocess.run(["pgrep", "-P", str(proc.pid)], capture_output=True,
                                                  text=True).stdout.split()]
        proc.send_signal(signal.SIGTERM)   # to the run alone, not its process group
        out, err = proc.communicate(timeout=30)
    finally:
        gate.set()
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
    assert proc.returncode == 143, out + err
    assert "newsmon: terminated (SIGTERM)" in err and "Traceback" not in err
    [run] = runs(Warehouse(tmp_path / "newsmon.duckdb"))
    assert run["status"] == "interrupted" and run["finished_at"] is not None
    assert len(helpers) == 2
    left = subprocess.run(["pgrep", "-s", str(proc.pid)], capture_output=True, text=True).stdout.split()
    assert left == [], f"processes of the run left behind: {left}"
