"""Schema safety at startup, and the bounds of `newsmon sql` (warehouse/db.py, warehouse/readonly.py).

A warehouse of a newer newsmon, or one missing a table, is refused before anything is
written; a runaway query is stopped by the timeout or Ctrl-C (DuckDB itself is
interrupted); DuckDB's memory is capped; its hints reach the user.
"""
from __future__ import annotations

import faulthandler
import os
import signal
import subprocess
import threading
import time

import duckdb

import pytest

from conftest import NEWSMON, cli_env, newsmon_cli, warehouse_config
from newsmon.errors import ConfigError, WarehouseError
from newsmon.settings import load_settings
from warehouse import Warehouse
from warehouse.db import expected_tables, latest_known_version
from warehouse.readonly import _execute, run_bounded

# Hours of work on any machine: a hash per row cannot be folded away (a bare count(*) of a range
# finished in 2.5 s on a quiet machine, before the Ctrl-C test sent its signal).
RUNAWAY = "SELECT sum(hash(range)) FROM range(1000000000000)"


def snapshot(wh: Warehouse) -> dict:
    return {t: wh.read(f"SELECT * FROM {t} ORDER BY ALL") for t in ("schema_migrations", "schema_views", "runs")}


# -- schema --------------------------------------------------------------------------------------
def test_schema_newer_version_is_refused_naming_both_versions_and_nothing_is_written(warehouse):
    with warehouse.transaction() as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, '0099_from_the_future.sql')")
    before = snapshot(warehouse)
    known = latest_known_version()
    with pytest.raises(WarehouseError, match=rf"schema version 99 \(0099_from_the_future.sql\), newer than this "
                                             rf"newsmon knows \(up to version {known}\)"):
        warehouse.migrate()
    assert snapshot(warehouse) == before


def test_schema_newer_version_stops_a_run_before_it_is_recorded(warehouse, tmp_path):
    from flows.ingest import run_ingest

    with warehouse.transaction() as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, '0099_x.sql')")
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "{warehouse.path}"\n\n[[feeds]]\nname = "f"\nurl = "http://x.invalid/"\n')
    with pytest.raises(WarehouseError, match="schema version 99"):
        run_ingest(str(config))
    assert warehouse.read("SELECT count(*) AS n FROM runs") == [{"n": 0}]


@pytest.mark.parametrize("damage, missing", [
    ("ALTER TABLE pages RENAME TO pages_old", "pages"),
    ("DROP TABLE mentions", "mentions"),
])
def test_schema_missing_table_is_a_clear_error(warehouse, damage, missing):
    with warehouse.transaction() as con:
        con.execute(damage)
    with pytest.raises(WarehouseError, match=rf"lacks the table\(s\) {missing} that its schema needs"):
        warehouse.migrate()


def test_schema_expected_tables_follow_the_migrations():
    tables = expected_tables()
    assert {"runs", "feeds", "pages", "position_claims", "alert_outbox"} <= tables
    assert expected_tables({1}) < tables  # the first migration alone makes fewer


# -- newsmon sql bounds ---------------------------------------------------------------------------
def test_sql_runaway_query_is_stopped_by_the_timeout(warehouse):
    started = time.monotonic()
    with pytest.raises(WarehouseError, match=r"query stopped after 1s \(the limit: sql.timeout_seconds"):
        run_bounded(warehouse, RUNAWAY, timeout=1)
    assert time.monotonic() - started < 8  # interrupted, not run to its end (minutes)


def test_sql_interrupt_that_lands_before_the_query_begins_still_stops_it():
    # DuckDB forgets an interrupt sent before a statement begins. Here the worker waits for the
    # connection, busy with another runaway query, when the timeout fires: the first interrupt
    # stops that one, and the worker's own query must be stopped too, not run for hours.
    con = duckdb.connect()
    other = threading.Thread(target=lambda: pytest.raises(duckdb.InterruptException, con.execute, RUNAWAY))
    other.start()
    time.sleep(0.5)   # the other query holds the connection
    statements = con.extract_statements(RUNAWAY)
    with pytest.raises(WarehouseError, match="query stopped after 0.2s"):
        _execute(con, statements, timeout=0.2, max_rows=None)
    other.join(5)
    answered = []
    probe = threading.Thread(target=lambda: answered.append(con.execute("SELECT 42").fetchone()), daemon=True)
    probe.start()
    probe.join(5)
    try:
        assert answered == [(42,)]   # the connection is free: no query is still running
    finally:
        while probe.is_alive():
            con.interrupt()
            probe.join(0.1)


def test_sql_ctrl_c_stops_the_query_and_returns(warehouse):
    # SIGINT while the query runs: KeyboardInterrupt within seconds, the connection closed. On
    # CPython < 3.13 a Ctrl-C inside Thread.join() could make the worker look finished while its
    # query ran on, and closing the connection then waited for hours.
    faulthandler.dump_traceback_later(120, exit=True)   # a hang ends the session, loudly
    signal.setitimer(signal.ITIMER_REAL, 0)
    previous = signal.signal(signal.SIGALRM, lambda *_: os.kill(os.getpid(), signal.SIGINT))
    # Python's own Ctrl-C handler, whatever the session inherited: a test session started in the
    # background by a shell without job control ignores SIGINT (SIG_IGN), and the query then ran on
    previous_int = signal.signal(signal.SIGINT, signal.default_int_handler)
    try:
        signal.setitimer(signal.ITIMER_REAL, 1.5)
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_bounded(warehouse, RUNAWAY, timeout=600)
        assert time.monotonic() - started < 10
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)
        signal.signal(signal.SIGINT, previous_int)
        faulthandler.cancel_dump_traceback_later()


@pytest.mark.parametrize("launched", [True, False], ids=["after the thread's launch", "before it"])
def test_sql_ctrl_c_while_the_worker_starts_stops_its_query(warehouse, monkeypatch, launched):
    # The Ctrl-C lands inside Thread.start(), after the thread was launched: the query it goes on to
    # run must be stopped too, or closing the connection waits for it. Before the launch: nothing
    # runs, and the Ctrl-C is still a KeyboardInterrupt.
    real_start = threading.Thread.start

    def start_then_interrupted(self):
        if self.name == "newsmon-sql":
            if launched:
                real_start(self)
            raise KeyboardInterrupt
        real_start(self)

    monkeypatch.setattr(threading.Thread, "start", start_then_interrupted)
    faulthandler.dump_traceback_later(120, exit=True)   # a hang ends the session, loudly
    try:
        started = time.monotonic()
        with pytest.raises(KeyboardInterrupt):
            run_bounded(warehouse, RUNAWAY, timeout=600)
        assert time.monotonic() - started < 10
    finally:
        faulthandler.cancel_dump_traceback_later()


def test_sql_runaway_cross_join_is_stopped_by_the_timeout(warehouse):
    with pytest.raises(WarehouseError, match="query stopped after 0.5s"):
        run_bounded(warehouse, "SELECT count(*) FROM range(200000) a, range(200000) b WHERE a.range + b.range = 7",
                    timeout=0.5)


def test_sql_quick_query_within_the_timeout_answers(warehouse):
    assert run_bounded(warehouse, "SELECT 41 + 1 AS x", timeout=30).rows == [(42,)]


@pytest.mark.parametrize("query, hint", [
    ("SELECT actr FROM positions", 'Candidate bindings: "actor"'),
    ("SELECT * FROM positons", 'Did you mean "positions"?'),
])
def test_sql_errors_keep_duckdbs_hints(warehouse, query, hint):
    with pytest.raises(WarehouseError) as err:
        run_bounded(warehouse, query)
    message = str(err.value)
    assert message.startswith("SQL error: ") and hint in message
    assert "LINE 1: " + query in message


@pytest.mark.parametrize("statement", ["INSTALL fts", "LOAD httpfs", "FORCE INSTALL spatial"])
def test_sql_install_and_load_refusals_say_what_and_why(warehouse, statement):
    with pytest.raises(WarehouseError) as err:
        run_bounded(warehouse, statement)
    message = str(err.value)
    assert message.startswith(f"refused: {' '.join(statement.split()[:2])}: ")
    assert "extensions" in message and "only read the warehouse" in message


def test_sql_memory_limit_applies_to_the_session(warehouse):
    result = run_bounded(warehouse, "SELECT current_setting('memory_limit') AS m", memory_limit="100MB")
    assert result.rows == [("95.3 MiB",)]
    with pytest.raises(WarehouseError, match="not a size"):
        run_bounded(warehouse, "SELECT 1", memory_limit="1GB'; SET threads = 1; --")


def test_sql_max_rows_cuts_and_says_so(warehouse):
    result = run_bounded(warehouse, "SELECT * FROM range(10)", max_rows=4)
    assert result.rows == [(0,), (1,), (2,), (3,)] and result.truncated
    assert not run_bounded(warehouse, "SELECT * FROM range(4)", max_rows=4).truncated


@pytest.mark.parametrize("text, key", [
    ("[sql]\ntimeout_seconds = 0\n", "sql.timeout_seconds"),
    ("[sql]\ntimeout_seconds = inf\n", "sql.timeout_seconds"),
    ('[sql]\nmemory_limit = "lots"\n', "sql.memory_limit"),
    ('[sql]\nmemory_limit = "80%"\n', "sql.memory_limit"),
    ("[sql]\nmax_rows = 0\n", "sql.max_rows"),
    ("[sql]\ntimeout = 3\n", "sql.timeout"),
])
def test_sql_settings_are_validated(tmp_path, text, key):
    path = tmp_path / "newsmon.toml"
    path.write_text(text)
    with pytest.raises(ConfigError, match=key.replace(".", r"\.")):
        load_settings(path)


def test_sql_settings_defaults_are_documented():
    settings = load_settings()  # config/newsmon.toml
    assert (settings.sql.timeout_seconds, settings.sql.memory_limit, settings.sql.max_rows) == (60, "2GB", 100_000)


# -- through the CLI (subprocess) ------------------------------------------------------------------
@pytest.fixture
def sql_config(tmp_path, warehouse):
    return warehouse_config(tmp_path, warehouse.path, "[sql]\ntimeout_seconds = 2\n")


@pytest.mark.slow
def test_sql_cli_timeout_is_one_line_and_exit_2(sql_config):
    proc = newsmon_cli("sql", RUNAWAY, "--config", str(sql_config), cwd=sql_config.parent, timeout=60)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith("newsmon: query stopped after 2s") and len(proc.stderr.splitlines()) == 1


def _cpu_seconds_reach(proc: subprocess.Popen, seconds: float, within: float) -> bool:
    """Wait until the process has used `seconds` of CPU (from /proc); False if it ended or time ran out."""
    deadline = time.monotonic() + within
    while proc.poll() is None and time.monotonic() < deadline:
        fields = open(f"/proc/{proc.pid}/stat").read().rsplit(")", 1)[1].split()
        if (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK") >= seconds:
            return True
        time.sleep(0.2)
    return False


@pytest.mark.slow
def test_sql_cli_ctrl_c_interrupts_the_query(sql_config):
    # with Ctrl-C's default disposition, whatever this session inherited (see the test above)
    proc = subprocess.Popen([str(NEWSMON), "sql", RUNAWAY, "--config", str(sql_config), "--timeout", "600"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=sql_config.parent,
                            env=cli_env(sql_config.parent),
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        assert _cpu_seconds_reach(proc, 5.0, within=90)  # past start-up (~1 s of CPU): into the query
        sent = time.monotonic()
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=30)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert time.monotonic() - sent < 10
    assert proc.returncode == 130 and err == "newsmon: interrupted: the query was stopped (Ctrl-C)\n", err


@pytest.mark.slow
def test_sql_cli_hint_reaches_the_user(sql_config):
    proc = newsmon_cli("sql", "SELECT actr FROM positions", "--config", str(sql_config), cwd=sql_config.parent)
    assert proc.returncode == 2
    assert proc.stderr.startswith("newsmon: SQL error: Binder Error: ") and 'Candidate bindings: "actor"' in proc.stderr


@pytest.mark.slow
def test_schema_cli_ingest_on_a_newer_warehouse_is_one_line_and_exit_2(warehouse, tmp_path):
    with warehouse.transaction() as con:
        con.execute("INSERT INTO schema_migrations (version, name) VALUES (99, '0099_x.sql')")
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "{warehouse.path}"\n\n[[feeds]]\nname = "f"\nurl = "http://x.invalid/"\n')
    proc = newsmon_cli("ingest", "--config", str(config), cwd=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    assert proc.stderr.startswith(f"newsmon: warehouse {warehouse.path} has schema version 99")
    assert len(proc.stderr.splitlines()) == 1 and "Traceback" not in proc.stderr
