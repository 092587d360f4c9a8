"""warehouse: migrations recorded once, two processes waiting for each other, the
read-only `newsmon sql`, and the ingest statements of warehouse.queries."""
from __future__ import annotations

import csv
import datetime as dt
import io
import json
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from conftest import newsmon_cli
from newsmon.errors import WarehouseError
from tasks.feeds import FeedEntry, FeedPoll
from warehouse import Warehouse
from warehouse import queries as q
from warehouse.db import MIGRATIONS, VIEWS, insert_rows
from warehouse.readonly import run_readonly

UTC = dt.timezone.utc


@pytest.fixture
def wh(tmp_path) -> Warehouse:
    w = Warehouse(tmp_path / "wh" / "newsmon.duckdb", lock_timeout=30)
    w.migrate()
    return w


def _hold_write_lock(path: Path, seconds: float) -> subprocess.Popen:
    """Another process that opens the file read-write, writes in a transaction and holds it."""
    code = textwrap.dedent(f"""
        import duckdb, time
        con = duckdb.connect({str(path)!r})
        con.execute("BEGIN TRANSACTION")
        con.execute("INSERT INTO runs (run_id, flow, started_at) VALUES ('other', 'ingest', now())")
        print("holding", flush=True)
        time.sleep({seconds})
        con.execute("COMMIT")
        con.close()
    """)
    proc = subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "holding"
    return proc


# -- migrations ---------------------------------------------------------------------------
def test_warehouse_migrations_apply_once_and_are_recorded(tmp_path):
    w = Warehouse(tmp_path / "new.duckdb")
    files = sorted(p.name for p in MIGRATIONS.glob("*.sql"))
    assert w.migrate() == files
    assert w.migrate() == []
    rows = w.read("SELECT version, name FROM schema_migrations ORDER BY version")
    assert [r["name"] for r in rows] == files
    assert [r["version"] for r in rows] == [int(f[:4]) for f in files]


def test_warehouse_views_created_and_recorded(wh):
    views = {r["view_name"] for r in wh.read("SELECT view_name FROM duckdb_views() WHERE NOT internal")}
    assert {"articles", "positions", "aid_pledges", "alerts"} <= views
    recorded = {r["name"] for r in wh.read("SELECT name FROM schema_views")}
    assert recorded == {p.name for p in VIEWS.glob("*.sql")}


def test_warehouse_failed_transaction_rolls_back(wh):
    with pytest.raises(RuntimeError):
        with wh.transaction() as con:
            q.start_run(con, "r1", "ingest")
            raise RuntimeError("boom")
    assert wh.read("SELECT count(*) AS n FROM runs") == [{"n": 0}]


def test_warehouse_read_of_missing_file_says_what_to_do(tmp_path):
    with pytest.raises(WarehouseError, match="run `newsmon ingest` first"):
        Warehouse(tmp_path / "absent.duckdb").read("SELECT 1")


# -- two processes ---------------------------------------------------------------------------
@pytest.mark.slow  # another Python process (a fresh interpreter) holds the file
def test_warehouse_read_waits_for_other_process_write(wh):
    proc = _hold_write_lock(wh.path, 1.0)
    try:
        started = time.monotonic()
        rows = wh.read("SELECT run_id FROM runs")
        waited = time.monotonic() - started
    finally:
        proc.wait(timeout=30)
    assert proc.returncode == 0
    assert rows == [{"run_id": "other"}]  # saw the other process's commit
    assert waited >= 0.5


@pytest.mark.slow  # another Python process (a fresh interpreter) holds the file
def test_warehouse_write_waits_for_other_process_write(wh):
    proc = _hold_write_lock(wh.path, 1.0)
    try:
        with wh.transaction() as con:
            q.start_run(con, "mine", "ingest")
    finally:
        proc.wait(timeout=30)
    assert {r["run_id"] for r in wh.read("SELECT run_id FROM runs")} == {"other", "mine"}


@pytest.mark.slow  # another Python process (a fresh interpreter) holds the file
def test_warehouse_lock_timeout_is_warehouse_error(wh):
    impatient = Warehouse(wh.path, lock_timeout=0.3)
    proc = _hold_write_lock(wh.path, 2.0)
    try:
        started = time.monotonic()
        with pytest.raises(WarehouseError, match="locked by another process"):
            impatient.read("SELECT 1")
        assert time.monotonic() - started < 1.8
    finally:
        proc.wait(timeout=30)


# -- newsmon sql ---------------------------------------------------------------------------------
@pytest.fixture
def sql_config(tmp_path, wh) -> Path:
    with wh.transaction() as con:
        insert_rows(con, "feeds", [dict(name="kyiv", url="http://example.org/feed"),
                                   dict(name="wire", url="http://example.org/atom")])
    path = tmp_path / "newsmon.toml"
    path.write_text(f'[warehouse]\npath = "{wh.path.relative_to(tmp_path)}"\nlock_timeout_seconds = 10\n')
    return path


def newsmon_sql(config: Path, *args: str) -> subprocess.CompletedProcess:
    return newsmon_cli("sql", *args, "--config", str(config), cwd=config.parent, timeout=60)


QUERY = "SELECT name, url FROM feeds ORDER BY name"


@pytest.mark.slow
def test_warehouse_sql_table_format(sql_config):
    proc = newsmon_sql(sql_config, QUERY)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[0].split() == ["name", "|", "url"]
    assert lines[2].split() == ["kyiv", "|", "http://example.org/feed"]
    assert lines[-1] == "(2 rows)"


@pytest.mark.slow
def test_warehouse_sql_csv_format(sql_config):
    proc = newsmon_sql(sql_config, QUERY, "--format", "csv")
    assert proc.returncode == 0, proc.stderr
    assert list(csv.reader(io.StringIO(proc.stdout))) == [
        ["name", "url"], ["kyiv", "http://example.org/feed"], ["wire", "http://example.org/atom"]]


@pytest.mark.slow
def test_warehouse_sql_json_format(sql_config):
    proc = newsmon_sql(sql_config, QUERY, "--format", "json")
    assert proc.returncode == 0, proc.stderr
    assert json.loads(proc.stdout) == [{"name": "kyiv", "url": "http://example.org/feed"},
                                       {"name": "wire", "url": "http://example.org/atom"}]


@pytest.mark.parametrize("statement", [
    "COPY feeds TO 'out.csv'",
    "ATTACH 'other.duckdb' AS other",
    "INSERT INTO feeds (name, url) VALUES ('x', 'http://x/')",
    "CREATE TABLE out AS SELECT 1",
    "SELECT 1; COPY (SELECT 1) TO 'out.csv'",
    "EXPLAIN ANALYZE COPY (SELECT * FROM feeds) TO 'out.csv'",
])
@pytest.mark.slow
def test_warehouse_sql_refuses_writes(sql_config, statement):
    before = sorted(p.name for p in sql_config.parent.iterdir())
    proc = newsmon_sql(sql_config, statement)
    assert proc.returncode != 0
    assert proc.stderr.startswith("newsmon: ")
    assert len(proc.stderr.strip().splitlines()) == 1
    assert "Traceback" not in proc.stderr
    assert sorted(p.name for p in sql_config.parent.iterdir()) == before  # nothing written beside it


@pytest.mark.parametrize("statement, message", [
    ("COPY feeds TO 'out.csv'", "refused: COPY"),
    ("ATTACH 'other.duckdb' AS other", "refused: ATTACH"),
    ("INSERT INTO feeds VALUES ('x', 'y')", "refused: INSERT"),
    ("CREATE TABLE t AS SELECT 1", "refused: CREATE"),
    ("SET threads = 1", "refused: SET"),
    ("INSTALL httpfs", "refused"),
    ("EXPLAIN ANALYZE COPY (SELECT 1) TO 'x.csv'", "disabled"),
    ("SELECT * FROM read_text('/etc/hostname')", "disabled"),
    ("SELEC 1", "SQL error"),
    ("", "no SQL statement"),
])
def test_warehouse_readonly_refusal_messages(wh, statement, message):
    with pytest.raises(WarehouseError, match=message):
        run_readonly(wh, statement)


@pytest.mark.parametrize("statement", ["SELECT 42 AS x", "DESCRIBE feeds", "SUMMARIZE feeds", "SHOW TABLES",
                                       "EXPLAIN SELECT * FROM articles", "FROM feeds SELECT count(*) AS x"])
def test_warehouse_readonly_answers_queries(wh, statement):
    columns, rows = run_readonly(wh, statement)
    assert columns and isinstance(rows, list)


# -- ingest statements ---------------------------------------------------------------------------
def _poll(feed: str, urls: list[str], outcome: str = "ok", **kw) -> FeedPoll:
    entries = tuple(FeedEntry(url=u, entry_id=u, title=u.rsplit("/", 1)[-1], author=None,
                              published_at=dt.datetime(2025, 1, 1, tzinfo=UTC), summary=None, content=None)
                    for u in urls)
    return FeedPoll(feed=feed, outcome=outcome, entries=entries, **kw)


BACKOFF = dict(backoff_after=2, backoff_base=60.0, backoff_max=600.0)


def test_warehouse_record_poll_stores_each_entry_once(wh):
    with wh.transaction() as con:
        q.sync_feeds(con, [("f", "http://example.org/feed")])
        first = q.record_poll(con, _poll("f", ["http://a/1", "http://a/2"], status=200, etag='"1"'), "r1", **BACKOFF)
        second = q.record_poll(con, _poll("f", ["http://a/2", "http://a/3"], status=200, etag='"2"'), "r2", **BACKOFF)
    assert (first, second) == (2, 1)
    assert wh.read("SELECT url FROM feed_entries ORDER BY url") == [
        {"url": "http://a/1"}, {"url": "http://a/2"}, {"url": "http://a/3"}]
    assert wh.read("SELECT etag FROM feeds") == [{"etag": '"2"'}]
    assert [r["new_entries"] for r in wh.read("SELECT new_entries FROM feed_polls ORDER BY run_id")] == [2, 1]


def test_warehouse_failed_polls_count_and_back_off(wh):
    with wh.transaction() as con:
        q.sync_feeds(con, [("f", "http://example.org/feed")])
        for run in ("r1", "r2"):
            q.record_poll(con, _poll("f", [], outcome="failed", status=500, error="answered 500"), run, **BACKOFF)
    row = wh.read("SELECT consecutive_failures, next_poll_at, last_status FROM feeds")[0]
    assert (row["consecutive_failures"], row["last_status"]) == (2, 500)
    assert row["next_poll_at"] is not None  # the second failure reached backoff_after
    with wh.transaction() as con:
        q.record_poll(con, _poll("f", ["http://a/1"], status=200), "r3", **BACKOFF)
    row = wh.read("SELECT consecutive_failures, next_poll_at FROM feeds")[0]
    assert (row["consecutive_failures"], row["next_poll_at"]) == (0, None)


def test_warehouse_changed_feed_url_forgets_validators(wh):
    with wh.transaction() as con:
        q.sync_feeds(con, [("f", "http://example.org/old")])
        q.record_poll(con, _poll("f", [], status=200, etag='"e"', last_modified="x", body_sha256="h"), "r", **BACKOFF)
        q.sync_feeds(con, [("f", "http://example.org/old")])
        assert q.feed_states(con)["f"]["etag"] == '"e"'
        q.sync_feeds(con, [("f", "http://example.org/new")])
        state = q.feed_states(con)["f"]
    assert (state["url"], state["etag"], state["last_modified"], state["body_sha256"]) == (
        "http://example.org/new", None, None, None)


def test_warehouse_rejected_entries_recorded(wh):
    with wh.transaction() as con:
        q.sync_feeds(con, [("f", "http://example.org/feed")])
        q.record_poll(con, _poll("f", [], status=200, rejected=(("item 3", "entry has no usable link"),)), "r",
                      **BACKOFF)
    assert wh.read("SELECT stage, key, reason FROM rejections") == [
        {"stage": "feed_entry", "key": "f: item 3", "reason": "entry has no usable link"}]


def _fetch_ok(url: str, content: bytes) -> dict:
    return dict(url=url, outcome="ok", final_url=url, status=200, content_type="text/html",
                headers={"content-type": "text/html"}, content=content, fetched_at=dt.datetime.now(UTC))


def _fetch_failed(url: str, outcome: str, reason: str) -> dict:
    return dict(url=url, outcome=outcome, reason=reason, status=None, error=f"{reason} for {url}",
                fetched_at=dt.datetime.now(UTC))


def test_warehouse_pending_fetches_skip_stored_refused_and_given_up(wh):
    urls = [f"http://a/{i}" for i in range(4)]
    with wh.transaction() as con:
        q.sync_feeds(con, [("f", "http://example.org/feed")])
        q.record_poll(con, _poll("f", urls, status=200), "r", **BACKOFF)
        q.record_fetches(con, [_fetch_ok(urls[0], b"<html>0</html>"),
                               _fetch_failed(urls[1], "refused", "http_404"),
                               _fetch_failed(urls[2], "transient", "timeout")], "r")
        pending = [p["url"] for p in q.pending_fetches(con, max_transient_attempts=2)]
        assert pending == [urls[2], urls[3]]
        q.record_fetches(con, [_fetch_failed(urls[2], "transient", "timeout")], "r")
        assert q.give_up_transient(con, 2, "r") == 1
        pending = [p["url"] for p in q.pending_fetches(con, max_transient_attempts=2)]
    assert pending == [urls[3]]
    reasons = {r["key"]: r["reason"] for r in wh.read("SELECT key, reason FROM rejections WHERE stage = 'fetch'")}
    assert reasons == {urls[1]: "http_404", urls[2]: "gave_up"}


def test_warehouse_raw_pages_stored_compressed_and_deduplicated(wh):
    body = b"<html>" + b"same " * 1000 + b"</html>"
    with wh.transaction() as con:
        q.record_fetches(con, [_fetch_ok("http://a/1", body), _fetch_ok("http://a/2", body)], "r")
        sha = con.execute("SELECT sha256 FROM pages WHERE url = 'http://a/1'").fetchone()[0]
        assert q.raw_content(con, sha) == body
    blobs = wh.read("SELECT size, octet_length(data) AS stored FROM raw_blobs")
    assert len(blobs) == 1 and blobs[0]["size"] == len(body) and blobs[0]["stored"] < len(body) // 10


@pytest.mark.parametrize("mode, expected", [("ignore", "first"), ("replace", "second")])
def test_warehouse_insert_rows_conflict_modes(wh, mode, expected):
    with wh.transaction() as con:
        insert_rows(con, "feeds", [dict(name="f", url="first")])
        insert_rows(con, "feeds", [dict(name="f", url="second")], on_conflict=mode)
    assert wh.read("SELECT url FROM feeds") == [{"url": expected}]


def test_warehouse_insert_rows_conflict_error_by_default(wh):
    with pytest.raises(Exception, match="(?i)constraint"):
        with wh.transaction() as con:
            insert_rows(con, "feeds", [dict(name="f", url="a")])
            insert_rows(con, "feeds", [dict(name="f", url="b")])
    assert wh.read("SELECT count(*) AS n FROM feeds") == [{"n": 0}]
