"""Page leases (warehouse/migrations/0050_fetch_leases.sql): overlapping runs fetch each pending page once.

The fetch stage leases the pending pages nobody else holds in the transaction that reads
them; another run leaves those pages to their holder. A lease is released with the stored
fetch, lapses when it expires or when its run is recorded as over (a killed run is marked
`killed` by the next run on its host), so a killed run's pages are fetched by the next run:
nothing lost. Requests are counted at the conftest's real HTTP server; the stages run as
plain functions (`.fn`) into real DuckDB files, and the lease statements on DuckLake too
(slow: PostgreSQL).
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

import pytest

from conftest import NEWSMON, Answer, Site, cli_env, control_feed, migrated_copy
from flows import stages
from newsmon.settings import FeedSettings, Settings, WarehouseSettings
from warehouse import Warehouse
from warehouse import queries as q
from warehouse import runs as wr

UTC = dt.timezone.utc
HTML = {"Content-Type": "text/html; charset=utf-8"}
PAGE = ("<!doctype html><html lang='en'><head><title>Lease {n}</title></head><body><article>"
        "<h1>Lease {n}</h1><p>{text}</p></article></body></html>")


def leased_site(site: Site, n_pages: int, gate: threading.Event | None = None) -> tuple[str, list[str]]:
    """A feed of `n_pages` pages (answered only once `gate` is set, if given): (feed URL, page URLs)."""
    text = "Each page of this feed must be downloaded once, whoever runs. " * 5
    pages = [site.add(f"/lease/{i}.html", Answer(PAGE.format(n=i, text=text).encode(), headers=HTML, gate=gate))
             for i in range(n_pages)]
    items = "".join(f"<item><title>Lease {i}</title><link>{url}</link></item>" for i, url in enumerate(pages))
    feed = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Leases</title>'
            f"<link>{site.url('/')}</link>{items}</channel></rss>").encode()
    return site.add("/lease/feed.xml", Answer(feed, headers={"Content-Type": "application/rss+xml"})), pages


def setup(tmp_path: Path, warehouse_template: Path, fetch_settings, feeds: dict[str, str]) -> tuple[Settings, Warehouse]:
    settings = Settings(warehouse=WarehouseSettings(path=tmp_path / "lease.duckdb"), fetch=fetch_settings(),
                        feeds=[FeedSettings(name=n, url=u) for n, u in feeds.items()],
                        source=tmp_path / "newsmon.toml")
    wh = migrated_copy(warehouse_template, settings.warehouse.path)
    stages.poll_feeds.fn(settings, wh, "poller")
    return settings, wh


def page_hits(site: Site, pages: list[str]) -> dict[str, int]:
    return {url: len(site.hits(url.split(site.prefix, 1)[1])) for url in pages}


def leases(wh: Warehouse) -> list[dict]:
    return wh.read("SELECT url, run_id FROM fetch_leases ORDER BY url")


def add_run(wh: Warehouse, run_id: str, *, pid: int, host: str) -> None:
    """A run recorded as 'running' by process `pid` on `host` (as `newsmon ingest` records itself)."""
    with wh.transaction() as con:
        wr.start_run(con, run_id, "ingest")
        con.execute("UPDATE runs SET pid = ?, host = ?, pid_started = NULL WHERE run_id = ?", [pid, host, run_id])


def gone_pid() -> int:
    """The pid of a process that has exited."""
    proc = subprocess.Popen(["true"])
    proc.wait()
    return proc.pid


# -- overlapping runs -------------------------------------------------------------------------------
def test_lease_overlapping_fetch_stages_request_each_page_once(site, tmp_path, warehouse_template, fetch_settings):
    """Run A leases the pending pages and waits on the server; run B, overlapping, finds them
    leased and downloads none; A stores them all. Every page is requested once, stored once."""
    gate = threading.Event()
    feed, pages = leased_site(site, 6, gate)
    settings, wh = setup(tmp_path, warehouse_template, fetch_settings, {"lease": feed})
    result: dict = {}

    def run_a() -> None:
        result["a"] = stages.fetch_pages.fn(settings, wh, "run-a")

    a = threading.Thread(target=run_a)
    a.start()
    try:
        site.wait_for("/lease/0.html", timeout=60)   # A has leased every page and is downloading
        assert {r["url"] for r in leases(wh)} == set(pages)
        assert {r["run_id"] for r in leases(wh)} == {"run-a"}
        b = stages.fetch_pages.fn(settings, wh, "run-b")
        assert b.get("fetched", 0) == 0 and b["leased_elsewhere"] == len(pages)
    finally:
        gate.set()
        a.join(timeout=120)
    assert result["a"]["fetched"] == len(pages)
    assert page_hits(site, pages) == {url: 1 for url in pages}
    assert sorted(r["url"] for r in wh.read("SELECT url FROM pages")) == sorted(pages)
    assert wh.read("SELECT url FROM fetches GROUP BY url HAVING count(*) > 1") == []
    assert leases(wh) == []                      # released with the stored pages
    # nothing is pending any more: a third run downloads nothing
    assert stages.fetch_pages.fn(settings, wh, "run-c").get("fetched", 0) == 0
    assert page_hits(site, pages) == {url: 1 for url in pages}


def test_lease_pages_left_by_the_budget_are_released_for_the_next_run(site, tmp_path, warehouse_template,
                                                                       fetch_settings):
    feed, pages = leased_site(site, 3)
    settings, wh = setup(tmp_path, warehouse_template, fetch_settings, {"lease": feed})
    spent = stages.fetch_pages.fn(settings, wh, "spent", budget_until=time.time() - 1)
    assert spent.get("fetched", 0) == 0 and spent["left_budget"] == 3
    assert leases(wh) == []                      # not held until expiry: the next run takes them at once
    nxt = stages.fetch_pages.fn(settings, wh, "next")
    assert nxt["fetched"] == 3 and page_hits(site, pages) == {url: 1 for url in pages}


# -- leases that lapse --------------------------------------------------------------------------------
def test_lease_of_a_killed_run_lapses_and_the_next_run_fetches_its_pages(site, tmp_path, warehouse_template,
                                                                         fetch_settings):
    """Three runs hold leases: one on this host whose process is gone (killed), one on another host
    whose lease has expired, one on another host still renewing. The next run marks the first
    killed, fetches the pages of both lapsed leases, leaves the live one's page to its holder,
    and fetches that page once its lease has expired too: nothing lost, nothing fetched twice."""
    feed, pages = leased_site(site, 4)
    settings, wh = setup(tmp_path, warehouse_template, fetch_settings, {"lease": feed})
    now = dt.datetime.now(UTC)
    add_run(wh, "killed", pid=gone_pid(), host=socket.gethostname())
    add_run(wh, "elsewhere-expired", pid=1, host="other-host")
    add_run(wh, "elsewhere-live", pid=1, host="other-host")
    with wh.transaction() as con:
        q.lease_fetches(con, pages[:2], "killed", 3600)
        q.lease_fetches(con, [pages[3]], "elsewhere-live", 3600)
        q.lease_fetches(con, [pages[2]], "elsewhere-expired", 60, now=now - dt.timedelta(minutes=5))
    assert len(leases(wh)) == 4

    with wh.transaction() as con:   # what every run does first (flows.runtime.run_pipeline)
        assert wr.mark_vanished_runs(con) == ["killed"]
    first = stages.fetch_pages.fn(settings, wh, "next")
    assert first["fetched"] == 3 and first["leased_elsewhere"] == 1
    assert page_hits(site, pages) == {pages[0]: 1, pages[1]: 1, pages[2]: 1, pages[3]: 0}
    assert leases(wh) == [{"url": pages[3], "run_id": "elsewhere-live"}]

    with wh.transaction() as con:   # the live holder stops renewing (its host went down): last renewed 2 h ago
        q.renew_fetch_leases(con, "elsewhere-live", 3600, now=now - dt.timedelta(hours=2))
    later = stages.fetch_pages.fn(settings, wh, "later")
    assert later["fetched"] == 1 and not later.get("leased_elsewhere")
    assert page_hits(site, pages) == {url: 1 for url in pages}
    assert sorted(r["url"] for r in wh.read("SELECT url FROM pages")) == sorted(pages)
    assert leases(wh) == []


def test_lease_a_run_recorded_as_over_holds_nothing(site, tmp_path, warehouse_template, fetch_settings):
    """A run that ended (completed, failed, interrupted) without releasing a lease frees it at once."""
    feed, pages = leased_site(site, 2)
    settings, wh = setup(tmp_path, warehouse_template, fetch_settings, {"lease": feed})
    add_run(wh, "over", pid=os.getpid(), host=socket.gethostname())
    with wh.transaction() as con:
        q.lease_fetches(con, pages, "over", 3600)
    assert stages.fetch_pages.fn(settings, wh, "blocked")["leased_elsewhere"] == 2
    with wh.transaction() as con:
        wr.finish_run(con, "over", {}, "interrupted", "KeyboardInterrupt")
    assert stages.fetch_pages.fn(settings, wh, "next")["fetched"] == 2
    assert page_hits(site, pages) == {url: 1 for url in pages}


def test_lease_a_run_renews_its_leases_while_it_waits_on_a_slow_host(site, tmp_path, warehouse_template,
                                                                     fetch_settings, monkeypatch):
    """The renewal runs while no page comes back (a slow host): the lease outlives its first expiry."""
    monkeypatch.setattr(stages, "FETCH_LEASE_SECONDS", 1.0)
    monkeypatch.setattr(stages, "FETCH_LEASE_RENEW_SECONDS", 0.2)
    gate = threading.Event()
    feed, pages = leased_site(site, 1, gate)
    settings, wh = setup(tmp_path, warehouse_template, fetch_settings, {"lease": feed})
    result: dict = {}
    a = threading.Thread(target=lambda: result.setdefault("a", stages.fetch_pages.fn(settings, wh, "slow")))
    a.start()
    try:
        site.wait_for("/lease/0.html", timeout=60)
        # (read-write like the run's own connection: one process cannot mix read-only and read-write ones)
        def expiry() -> dt.datetime:
            with wh.connect() as con:
                return con.execute("SELECT expires_at FROM fetch_leases").fetchone()[0]

        first = expiry()
        deadline = time.monotonic() + 30
        while expiry() <= first + dt.timedelta(seconds=1):   # still held past its first expiry
            assert time.monotonic() < deadline, "the lease was not renewed"
            time.sleep(0.1)
    finally:
        gate.set()
        a.join(timeout=120)
    assert result["a"]["fetched"] == 1 and page_hits(site, pages) == {pages[0]: 1}


# -- both backends ------------------------------------------------------------------------------------
@pytest.mark.parametrize("backend", ["duckdb", pytest.param("ducklake", marks=pytest.mark.slow)])  # PostgreSQL
def test_lease_statements_on_both_backends(backend, request, warehouse):
    wh = request.getfixturevalue("lake_warehouse") if backend == "ducklake" else warehouse
    now = dt.datetime.now(UTC)
    with wh.transaction() as con:
        q.sync_feeds(con, [("f", "http://x/feed")])
        q.add_url_entries(con, "f", "http://x/feed", ["http://x/1", "http://x/2", "http://x/3"])
        wr.start_run(con, "a", "ingest")
        q.lease_fetches(con, ["http://x/1", "http://x/2", "http://x/1"], "a", 600, now=now)
        q.lease_fetches(con, ["http://x/3"], "gone", 60, now=now - dt.timedelta(hours=1))
    with wh.connect(read_only=True) as con:
        seen_by_b = {p["url"]: p["leased_by"] for p in q.pending_fetches(con, 5, run_id="b")}
        seen_by_a = {p["url"]: p["leased_by"] for p in q.pending_fetches(con, 5, run_id="a")}
    assert seen_by_b == {"http://x/1": "a", "http://x/2": "a", "http://x/3": None}
    assert seen_by_a == {"http://x/1": None, "http://x/2": None, "http://x/3": None}
    with wh.transaction() as con:
        q.lease_fetches(con, ["http://x/3"], "b", 600)            # the expired lease is dropped, not kept
        q.renew_fetch_leases(con, "a", 1200, now=now)
        q.release_fetches(con, "a", ["http://x/1"])
    rows = wh.read("SELECT url, run_id, expires_at FROM fetch_leases ORDER BY url")
    assert [(r["url"], r["run_id"]) for r in rows] == [("http://x/2", "a"), ("http://x/3", "b")]
    assert rows[0]["expires_at"] == now + dt.timedelta(seconds=1200)
    with wh.transaction() as con:
        wr.finish_run(con, "a", {})
        q.lease_fetches(con, [], "c", 600)                          # a finished run's leases are dropped
        q.release_fetches(con, "b")
    assert wh.read("SELECT count(*) AS n FROM fetch_leases") == [{"n": 0}]


# -- a real kill (slow: the CLI in a process of its own) ------------------------------------------------
@pytest.mark.slow
def test_lease_of_a_sigkilled_ingest_lapses_and_the_next_ingest_fetches_the_page(site, tmp_path):
    """`newsmon ingest` is SIGKILLed while it downloads a leased page; the next ingest (this process)
    marks it killed, fetches the page and stores its article once."""
    from tests.test_ingest import write_config

    gate = threading.Event()
    feed, pages = leased_site(site, 2, gate)
    control, control_pages = control_feed(site, 1)
    config = write_config(tmp_path, {"lease": feed, "control": control}, retries=0)
    proc = subprocess.Popen([str(NEWSMON), "ingest", "--config", str(config)], cwd=tmp_path,
                            env=cli_env(tmp_path), stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            start_new_session=True)
    try:
        site.wait_for("/lease/0.html", timeout=120)
        wh = Warehouse(tmp_path / "newsmon.duckdb", lock_timeout=60)
        held = wh.read("SELECT l.url, r.status, r.pid FROM fetch_leases l JOIN runs r USING (run_id)")
        assert {(r["status"], r["pid"]) for r in held} == {("running", proc.pid)}
        assert set(pages) <= {r["url"] for r in held}
    finally:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=60)
        gate.set()
    from flows.ingest import run_ingest

    stored = {r["url"] for r in wh.read("SELECT url FROM pages")}   # what the killed run had stored
    assert not stored & set(pages)
    result = run_ingest(str(config))
    assert result["pages"]["fetched"] == len(set(pages + control_pages) - stored)
    assert not result["pages"].get("leased_elsewhere")
    statuses = sorted(r["status"] for r in wh.read("SELECT status FROM runs"))
    assert statuses == ["completed", "killed"]
    articles = wh.read("SELECT url FROM articles ORDER BY url")
    assert [r["url"] for r in articles] == sorted(pages + control_pages)
    assert page_hits(site, pages) == {pages[0]: 2, pages[1]: 1}   # the killed run's request, then ours
    assert leases(wh) == []
