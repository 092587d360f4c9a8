"""flows.stages / `newsmon ingest` end to end: a feed and three article pages on the
local server -> feed entries -> stored pages -> the `articles` view.

The stage functions run as plain functions (`.fn`) against a DuckDB file in tmp_path;
the kill test runs the real CLI (plain Python: no Prefect API, no server), kills it
mid-fetch with SIGKILL and re-runs it: every article must end up stored once, and the
killed run is marked killed.
"""
from __future__ import annotations

import datetime as dt
import os
import signal
import subprocess
import threading
import uuid
from pathlib import Path

import pytest

from conftest import NEWSMON, Answer, Site, cli_env
from flows import stages
from newsmon.errors import ExtractError
from newsmon.settings import Settings, load_settings
from tasks.extract import extract_article
from warehouse import Warehouse

FIXTURES = Path(__file__).resolve().parent / "fixtures" / "site"
PAGES = ["eu-ministers-agree-energy-package.html", "kommunen-winterhilfe.html", "port-reopens-after-repairs.html"]
UTC = dt.timezone.utc
HTML = {"Content-Type": "text/html; charset=utf-8"}

EXPECTED = {  # page -> (title, language, published_at from the feed)
    PAGES[0]: ("EU ministers agree winter energy package", "en", dt.datetime(2025, 12, 2, 15, 30, tzinfo=UTC)),
    PAGES[1]: ("Kommunen bereiten Winterhilfe vor", "de", dt.datetime(2025, 12, 3, 8, 0, tzinfo=UTC)),
    PAGES[2]: ("Port reopens after months of repairs", "en", dt.datetime(2025, 12, 4, 18, 45, tzinfo=UTC)),
}
TEXT_SNIPPETS = {PAGES[0]: "voluntary target to cut gas demand", PAGES[1]: "zusätzliche Wärmestuben",
                 PAGES[2]: "seven months of repairs"}


def serve_site(site: Site, *, etag: str = '"feed-v1"', page_routes: dict | None = None) -> str:
    """The fixture site on the local server; the feed honours If-None-Match. Returns the feed URL."""
    feed = (FIXTURES / "feed.xml").read_text(encoding="utf-8").replace("{BASE}", site.url("")).encode()

    def feed_answer(req):
        if req.headers.get("if-none-match") == etag:
            return Answer(None, status=304, headers={"ETag": etag})
        return Answer(feed, headers={"Content-Type": "application/rss+xml", "ETag": etag})

    for page in PAGES:
        site.add(f"/{page}", (page_routes or {}).get(page) or Answer(FIXTURES / page, headers=HTML))
    return site.add("/feed.xml", feed_answer)


def write_config(tmp_path: Path, feeds: dict[str, str], **fetch) -> Path:
    fetch_lines = "".join(f"{k} = {v}\n" for k, v in fetch.items())
    feed_tables = "".join(f'[[feeds]]\nname = "{name}"\nurl = "{url}"\n\n' for name, url in feeds.items())
    path = tmp_path / "newsmon.toml"
    path.write_text("[warehouse]\npath = \"newsmon.duckdb\"\nlock_timeout_seconds = 60\n\n"
                    "[fetch]\nallow_private_networks = true\nper_host_delay = 0\n" + fetch_lines + "\n" + feed_tables)
    return path


def run_stages(settings: Settings, wh: Warehouse) -> dict:
    run_id = str(uuid.uuid4())
    return {"feeds": stages.poll_feeds.fn(settings, wh, run_id),
            "pages": stages.fetch_pages.fn(settings, wh, run_id),
            "articles": stages.extract_articles.fn(settings, wh, run_id)}


def assert_articles_stored_once(wh: Warehouse, site: Site) -> None:
    rows = wh.read("SELECT url, title, published_at, language, text FROM articles ORDER BY url")
    assert sorted(r["url"] for r in rows) == sorted(site.url(f"/{p}") for p in PAGES)
    for row in rows:
        page = row["url"].rsplit("/", 1)[-1]
        title, language, published = EXPECTED[page]
        assert (row["title"], row["language"], row["published_at"]) == (title, language, published)
        assert TEXT_SNIPPETS[page] in row["text"]
        assert "cookie" not in row["text"].lower() and "All rights reserved" not in row["text"]
    for table in ("article_texts", "pages", "feed_entries"):
        counts = wh.read(f"SELECT count(*) AS n, count(DISTINCT url) AS urls FROM {table}")[0]
        assert counts == {"n": 3, "urls": 3}, table


@pytest.fixture
def settings_for(tmp_path):
    def make(feeds: dict[str, str], **fetch) -> tuple[Settings, Warehouse]:
        settings = load_settings(write_config(tmp_path, feeds, **fetch))
        wh = Warehouse(settings.warehouse.path, settings.warehouse.lock_timeout_seconds)
        wh.migrate()
        return settings, wh
    return make


# -- stages as plain functions ------------------------------------------------------------
def test_ingest_stages_store_three_articles(site, settings_for):
    settings, wh = settings_for({"courier": serve_site(site)}, retries=0)
    result = run_stages(settings, wh)
    assert result["feeds"]["ok"] == 1 and result["feeds"]["new_entries"] == 3
    assert result["pages"]["fetched"] == 3
    assert result["articles"]["extracted"] == 3
    assert_articles_stored_once(wh, site)


def test_ingest_second_run_polls_conditionally_and_downloads_nothing(site, settings_for):
    settings, wh = settings_for({"courier": serve_site(site)}, retries=0)
    run_stages(settings, wh)
    pages_before = [len(site.hits(f"/{p}")) for p in PAGES]
    second = run_stages(settings, wh)
    assert [len(site.hits(f"/{p}")) for p in PAGES] == pages_before == [1, 1, 1]
    feed_requests = site.hits("/feed.xml")
    assert len(feed_requests) == 2
    assert feed_requests[1].headers.get("if-none-match") == '"feed-v1"'
    assert second["feeds"].get("not_modified") == 1 and not second["pages"].get("fetched")
    assert not second["articles"].get("extracted")
    outcomes = [r["outcome"] for r in wh.read("SELECT outcome FROM feed_polls ORDER BY polled_at")]
    assert outcomes == ["ok", "not_modified"]
    assert_articles_stored_once(wh, site)


def test_ingest_failing_feed_recorded_and_run_goes_on(site, settings_for):
    broken = site.add("/broken.xml", Answer(b"internal error", status=500))
    settings, wh = settings_for({"broken": broken, "courier": serve_site(site)}, retries=0)
    result = run_stages(settings, wh)
    assert (result["feeds"]["failed"], result["feeds"]["ok"]) == (1, 1)
    assert result["feeds"]["failures"] == {"http_500": 1}
    poll = wh.read("SELECT status, outcome, error FROM feed_polls WHERE feed = 'broken'")
    assert len(poll) == 1 and (poll[0]["status"], poll[0]["outcome"]) == (500, "failed") and "500" in poll[0]["error"]
    health = wh.read("SELECT consecutive_failures, last_status, last_error FROM feeds WHERE name = 'broken'")[0]
    assert (health["consecutive_failures"], health["last_status"]) == (1, 500) and health["last_error"]
    assert_articles_stored_once(wh, site)
    run_stages(settings, wh)
    assert wh.read("SELECT consecutive_failures FROM feeds WHERE name = 'broken'") == [{"consecutive_failures": 2}]


def test_ingest_refused_page_recorded_not_retried(site, settings_for):
    routes = {PAGES[2]: Answer(b"gone", status=404, headers=HTML)}
    settings, wh = settings_for({"courier": serve_site(site, page_routes=routes)}, retries=0)
    first = run_stages(settings, wh)
    assert first["pages"]["refused"] == 1 and first["articles"]["extracted"] == 2
    run_stages(settings, wh)
    assert len(site.hits(f"/{PAGES[2]}")) == 1
    assert wh.read("SELECT reason FROM rejections WHERE stage = 'fetch'") == [{"reason": "http_404"}]


def test_ingest_malformed_entry_link_rejected_and_run_goes_on(site, settings_for):
    bad = ["http://example.org:99999/a", "http://" + "x" * 70 + ".example/b"]  # bad port, over-long label
    items = "".join(f"<item><title>t{i}</title><link>{u}</link></item>"
                    for i, u in enumerate(bad + [site.url(f"/{PAGES[0]}")]))
    feed = f'<rss version="2.0"><channel><title>x</title>{items}</channel></rss>'.encode()
    site.add(f"/{PAGES[0]}", Answer(FIXTURES / PAGES[0], headers=HTML))
    url = site.add("/mixed.xml", Answer(feed, headers={"Content-Type": "application/rss+xml"}))
    settings, wh = settings_for({"mixed": url}, retries=0)
    result = run_stages(settings, wh)
    assert result["pages"]["fetched"] == 1 and result["articles"]["extracted"] == 1
    rejected = wh.read("SELECT key, reason FROM rejections WHERE stage = 'fetch' ORDER BY key")
    assert rejected == [{"key": u, "reason": "bad_url"} for u in sorted(bad)]


def test_ingest_page_without_article_rejected(site, settings_for):
    empty = Answer(b"<html><body><nav><a href='/'>Home</a></nav></body></html>", headers=HTML)
    settings, wh = settings_for({"courier": serve_site(site, page_routes={PAGES[2]: empty})}, retries=0)
    result = run_stages(settings, wh)
    assert (result["articles"]["extracted"], result["articles"]["rejected"]) == (2, 1)
    assert wh.read("SELECT key, reason FROM rejections WHERE stage = 'extract'") == [
        {"key": site.url(f"/{PAGES[2]}"), "reason": "no_text"}]
    assert not run_stages(settings, wh)["articles"]  # not tried again


# -- extract_article -------------------------------------------------------------------------
SHORT_FILIPINO = "Ang mga tao ay naglalakad sa kalye ngayong umaga."  # under 200 characters


@pytest.mark.parametrize("lang_attr, expected", [("en", "en"), ("de-AT", "de"), ("fil", None), ("FR", "fr")])
def test_ingest_extract_short_text_language_from_html_lang(lang_attr, expected):
    html = (f'<html lang="{lang_attr}"><body><article><h1>Kalye</h1><p>{SHORT_FILIPINO}</p>'
            f"<p>{SHORT_FILIPINO}</p></article></body></html>").encode()
    art = extract_article(html, "http://example.org/a")
    if expected is None:
        assert art.language != "fi"  # "fil" must not be read as Finnish
    else:
        assert art.language == expected


def test_ingest_extract_feed_date_preferred_then_page_date():
    html = (FIXTURES / PAGES[0]).read_bytes()
    feed_date = dt.datetime(2025, 12, 1, tzinfo=UTC)
    assert extract_article(html, "http://x/a", feed_published=feed_date).published_at == feed_date
    art = extract_article(html, "http://x/a")
    assert (art.published_at.date(), art.date_source) == (dt.date(2025, 12, 2), "page")


def test_ingest_extract_oversized_page_refused():
    with pytest.raises(ExtractError, match="exceeds the extraction cap"):
        extract_article(b"<html>" + b"x" * 2000 + b"</html>", "http://x/a", max_bytes=1000)


# -- the real CLI, killed mid-fetch ------------------------------------------------------------
@pytest.mark.slow
def test_ingest_cli_killed_mid_fetch_then_rerun_stores_each_article_once(site, tmp_path):
    gate = threading.Event()  # the first request for page 2 hangs until the test lets it go
    routes = {PAGES[1]: [Answer(FIXTURES / PAGES[1], headers=HTML, gate=gate),
                         Answer(FIXTURES / PAGES[1], headers=HTML)]}
    config = write_config(tmp_path, {"courier": serve_site(site, page_routes=routes)})
    env = cli_env(tmp_path)
    cmd = [str(NEWSMON), "ingest", "--config", str(config)]
    log = tmp_path / "killed-run.log"  # a file, not a pipe nobody reads while waiting
    # A session of its own, so that SIGKILL reaches anything it starts too.
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=tmp_path,
                                start_new_session=True)
    try:
        site.wait_for(f"/{PAGES[1]}", timeout=120)
    except TimeoutError:
        os.killpg(proc.pid, signal.SIGKILL)
        raise AssertionError("the ingest never reached page 2:\n" + log.read_text(errors="replace")) from None
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=30)
        gate.set()
    assert proc.returncode == -signal.SIGKILL
    wh = Warehouse(tmp_path / "newsmon.duckdb", lock_timeout=30)
    assert wh.read("SELECT count(*) AS n FROM feed_entries") == [{"n": 3}]  # the poll had committed
    assert wh.read("SELECT count(*) AS n FROM article_texts") == [{"n": 0}]

    rerun = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env,
                             cwd=tmp_path, start_new_session=True)
    try:
        output, _ = rerun.communicate(timeout=300)
    finally:
        if rerun.poll() is None:
            os.killpg(rerun.pid, signal.SIGKILL)
            rerun.wait(timeout=30)
    assert rerun.returncode == 0, output[-5000:]
    assert "ingest done" in output
    assert_articles_stored_once(wh, site)
    assert site.hits("/feed.xml")[-1].headers.get("if-none-match") == '"feed-v1"'
    runs = wh.read("SELECT finished_at, status, error FROM runs ORDER BY started_at")
    assert len(runs) == 2 and runs[0]["finished_at"] is None and runs[1]["finished_at"] is not None
    assert [r["status"] for r in runs] == ["killed", "completed"]
    assert f"process {proc.pid} " in runs[0]["error"] and "is gone" in runs[0]["error"]
    # no Prefect server, temporary or not, was started (it would leave its database in PREFECT_HOME)
    assert not any(p.is_file() for p in (tmp_path / "prefect-home").rglob("*"))
