"""flows.backfill / `newsmon backfill`: a window caught up from a feed on the local server,
re-mined offline without a single request, explicit URLs as pseudo-feed entries, two
overlapping runs that store everything once, and bad windows rejected in one line.

The backfill runs in this process as plain Python (what the CLI runs without a Prefect
API), and, in the slow tests, as the Prefect flow against a real Prefect server
(`prefect server start` on 127.0.0.1, the conftest's module fixture `prefect_api`); the
CLI runs as a subprocess (slow). The articles are invented for these tests.
"""
from __future__ import annotations

import datetime as dt
import subprocess
import threading
from pathlib import Path

import pytest

from conftest import NEWSMON, NLP_TOML, Answer, LocalServer, Request, Site, cli_env, copy_domain, newsmon_cli
from newsmon.errors import ConfigError
from warehouse import Warehouse

HTML = {"Content-Type": "text/html; charset=utf-8"}
SINCE = dt.date(2025, 12, 1)

# -- fixture site ---------------------------------------------------------------------------
# slug -> (title, published (RFC 822, for the feed), ISO time for the page, paragraphs)
ARTICLES = {
    "germany-pledges-air-defence": (
        "Germany pledges €500 million in military aid to Ukraine",
        "Tue, 02 Dec 2025 14:10:00 +0000", "2025-12-02T14:10:00Z", [
            "Germany pledged €500 million in military aid to Ukraine, Defence Minister Boris Pistorius said on "
            "Tuesday.",
            "The package includes air defence systems and artillery ammunition, and the first deliveries are "
            "expected before the end of the winter, Pistorius told reporters in Berlin.",
            "Pistorius said Berlin supported the use of frozen Russian assets to fund Ukraine's defence.",
            "Chancellor Friedrich Merz told lawmakers that Germany would not send troops to Ukraine while the "
            "fighting continued.",
        ]),
    "orban-backs-talks": (
        "Orbán calls for immediate peace talks",
        "Wed, 03 Dec 2025 09:30:00 +0000", "2025-12-03T09:30:00Z", [
            "Hungarian Prime Minister Viktor Orbán said on Wednesday that he supported immediate peace talks "
            "between Russia and Ukraine.",
            "Orbán said Hungary opposed new sanctions on Russia and would not back the European Union's next "
            "package of measures.",
            "Diplomats in Brussels said the other member states were expected to approve the package without "
            "Budapest's support.",
        ]),
    "germany-doubles-aid": (
        "Germany doubles military aid to Ukraine",
        "Thu, 04 Dec 2025 17:45:00 +0000", "2025-12-04T17:45:00Z", [
            "Germany will provide €1 billion in military aid to Ukraine, up from €500 million, Defence Minister "
            "Boris Pistorius said on Thursday.",
            "Pistorius said the additional funds would pay for air defence interceptors produced in Germany.",
            "Ukrainian President Volodymyr Zelensky thanked Berlin and said Kyiv remained ready for negotiations "
            "on a just peace.",
        ]),
    "norway-winter-aid": (  # before the window: listed by the feed, never fetched by a backfill from SINCE
        "Norway pledges winter energy aid",
        "Thu, 20 Nov 2025 08:00:00 +0000", "2025-11-20T08:00:00Z", [
            "Norway said on Thursday it would provide 2 billion Norwegian kroner in humanitarian aid to Ukraine to "
            "repair power plants damaged by Russian strikes.",
            "Foreign Minister Espen Barth Eide said Oslo would keep funding Ukraine for as long as the war lasted.",
        ]),
}
IN_WINDOW = [slug for slug, a in ARTICLES.items() if a[2] >= SINCE.isoformat()]


def page_html(slug: str) -> bytes:
    title, _, iso, paragraphs = ARTICLES[slug]
    body = "".join(f"<p>{p}</p>" for p in paragraphs)
    return (f'<!DOCTYPE html>\n<html lang="en"><head><meta charset="utf-8"><title>{title}</title>'
            f'<meta property="article:published_time" content="{iso}"></head><body>'
            f'<header><nav><a href="/">Home</a> | <a href="/world">World</a></nav></header>'
            f'<main><article><h1>{title}</h1><div class="article-body">{body}</div></article></main>'
            f"<footer>The Test Gazette. All rights reserved.</footer></body></html>").encode()


def feed_xml(site: Site, slugs) -> bytes:
    items = "".join(
        f"<item><title>{ARTICLES[s][0]}</title><link>{site.url('/' + s + '.html')}</link>"
        f'<guid isPermaLink="false">gazette-{s}</guid><pubDate>{ARTICLES[s][1]}</pubDate></item>' for s in slugs)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>The Test Gazette</title>'
            f"<link>{site.url('/')}</link><description>newsmon backfill tests</description>{items}"
            "</channel></rss>").encode()


def serve_gazette(site: Site, *, page_gate: threading.Event | None = None) -> str:
    """The feed (with an ETag, answering If-None-Match) and its pages; returns the feed URL."""
    body, etag = feed_xml(site, ARTICLES), '"gazette-1"'

    def feed(req: Request) -> Answer:
        if req.headers.get("if-none-match") == etag:
            return Answer(None, status=304, headers={"ETag": etag})
        return Answer(body, headers={"Content-Type": "application/rss+xml", "ETag": etag})

    for slug in ARTICLES:
        site.add(f"/{slug}.html", Answer(page_html(slug), headers=HTML, gate=page_gate))
    return site.add("/feed.xml", feed)


def write_config(tmp_path: Path, feed_url: str, *, allow_private: bool = True, extra: str = "") -> Path:
    """A config in tmp_path, with frozen copies of the domain files (the miner's version digests them)."""
    copy_domain(tmp_path)
    path = tmp_path / "newsmon.toml"
    path.write_text(
        '[warehouse]\npath = "news.duckdb"\nlock_timeout_seconds = 120\n\n'
        f"[fetch]\nallow_private_networks = {str(allow_private).lower()}\nper_host_delay = 0\nretries = 0\n\n"
        f'[[feeds]]\nname = "gazette"\nurl = "{feed_url}"\n\n'
        '[alerts]\nrecipients = ["analyst@example.org"]\n\n' + NLP_TOML + extra)
    return path


def warehouse(config: Path) -> Warehouse:
    return Warehouse(config.parent / "news.duckdb", lock_timeout=60)


CLAIM_COLUMNS = {
    "position_claims": "claim_id, url, sentence_index, start_char, end_char, evidence, actor, actor_group, topic, "
                       "stance, cue, extractor_version",
    "pledge_claims": "claim_id, url, sentence_index, start_char, end_char, evidence, donor, recipient, amount, "
                     "currency, amount_eur, kind, previous_amount, extractor_version",
}


def claims(wh: Warehouse) -> dict[str, set[tuple]]:
    out = {}
    for table, cols in CLAIM_COLUMNS.items():
        out[table] = {tuple(r.values()) for r in wh.read(f"SELECT {cols} FROM {table}")}
    return out


def assert_stored_once(wh: Warehouse) -> None:
    for table in ("pages", "article_texts"):
        dupes = wh.read(f"SELECT url, count(*) AS n FROM {table} GROUP BY url HAVING count(*) > 1")
        assert dupes == [], table
    assert wh.read("SELECT feed, url FROM feed_entries GROUP BY feed, url HAVING count(*) > 1") == []
    for table in ("position_claims", "pledge_claims", "meeting_claims", "change_log"):
        key = "change_id" if table == "change_log" else "claim_id"
        assert wh.read(f"SELECT {key} FROM {table} GROUP BY {key} HAVING count(*) > 1") == [], table
    assert wh.read("SELECT url, sentence_index, start_char, entity FROM mentions "
                   "GROUP BY ALL HAVING count(*) > 1") == []
    assert wh.read("SELECT change_id, recipient FROM alert_outbox GROUP BY ALL HAVING count(*) > 1") == []


def cli(*args: str, tmp_path: Path, timeout: float = 300) -> subprocess.CompletedProcess:
    """`newsmon ...` as a subprocess, without a Prefect API."""
    return newsmon_cli(*args, cwd=tmp_path, timeout=timeout)


@pytest.fixture(params=["plain", pytest.param("flow", marks=pytest.mark.slow)])
def run_backfill(request):
    """The backfill as plain Python (what the CLI runs without a Prefect API), and as the Prefect flow
    against a real server (slow): the same results either way."""
    from flows import backfill

    if request.param == "flow":
        request.getfixturevalue("prefect_api")
        return backfill.backfill
    return backfill.run_backfill


# -- (a) remine: no request, same claims, old versions replaced --------------------------------
def test_backfill_remine_downloads_nothing_and_yields_the_same_claims(run_backfill, site, http_server: LocalServer,
                                                                        tmp_path):
    backfill = run_backfill
    config = write_config(tmp_path, serve_gazette(site))
    wh = warehouse(config)
    first = backfill(since=SINCE, config=str(config))
    assert first["feeds"]["new_entries"] == len(ARTICLES)
    assert first["pages"]["fetched"] == len(IN_WINDOW) == 3
    assert site.hits("/norway-winter-aid.html") == []  # listed before the window: not fetched
    assert first["claims"]["articles"] == 3
    original = claims(wh)
    assert original["position_claims"] and original["pledge_claims"]
    changes = wh.read("SELECT change_id FROM change_log ORDER BY 1")
    assert changes, "the two German pledges make an aid change"

    requests_before = len(http_server.requests)
    again = backfill(since=SINCE, remine=True, config=str(config))
    assert len(http_server.requests) == requests_before, http_server.requests[requests_before:]
    assert "feeds" not in again and "pages" not in again
    assert again["articles"]["extracted"] == 3 and again["claims"]["articles"] == 3
    assert claims(wh) == original
    assert wh.read("SELECT change_id FROM change_log ORDER BY 1") == changes

    # Claims of an older extractor version are replaced, not added to.
    with wh.transaction() as con:
        con.execute("UPDATE mined_articles SET extractor_version = 'old'")
        for table in CLAIM_COLUMNS:
            con.execute(f"UPDATE {table} SET extractor_version = 'old'")
    third = backfill(since=SINCE, until=dt.date(2025, 12, 31), remine=True, config=str(config))
    assert len(http_server.requests) == requests_before
    assert third["claims"]["articles"] == 3
    assert claims(wh) == original
    assert wh.read("SELECT count(*) AS n FROM mined_articles WHERE extractor_version = 'old'") == [{"n": 0}]
    assert_stored_once(wh)
    assert len(wh.read("SELECT run_id FROM runs WHERE flow = 'backfill' AND finished_at IS NOT NULL")) == 3


def test_backfill_remine_window_limits_what_is_remined(site, tmp_path):
    from flows.backfill import run_backfill as backfill

    config = write_config(tmp_path, serve_gazette(site))
    backfill(since=dt.date(2025, 11, 1), config=str(config))
    only_dec_3 = backfill(since=dt.date(2025, 12, 3), until=dt.date(2025, 12, 3), remine=True, config=str(config))
    assert only_dec_3["articles"]["extracted"] == 1 and only_dec_3["claims"]["articles"] == 1


def test_backfill_second_run_changes_nothing(site, tmp_path):
    from flows.backfill import run_backfill as backfill

    config = write_config(tmp_path, serve_gazette(site))
    wh = warehouse(config)
    backfill(since=SINCE, config=str(config))
    pages_before = len(site.hits()) - len(site.hits("/feed.xml"))
    before = claims(wh)
    second = backfill(since=SINCE, config=str(config))
    assert len(site.hits()) - len(site.hits("/feed.xml")) == pages_before
    assert second["feeds"].get("not_modified") == 1
    assert not second["pages"].get("fetched")
    # the window is re-mined (the contract's backfill), into exactly the same claims
    assert second["claims"]["articles"] == 3 and claims(wh) == before
    assert not second["changes"].get("new")
    assert_stored_once(wh)


# -- explicit URLs ----------------------------------------------------------------------------
def test_backfill_urls_are_fetched_once_as_adhoc_entries(site, tmp_path):
    from flows.backfill import run_backfill as backfill

    extra = site.add("/extra/germany-doubles-aid.html", Answer(page_html("germany-doubles-aid"), headers=HTML))
    config = write_config(tmp_path, serve_gazette(site))
    urls_file = tmp_path / "urls.txt"
    urls_file.write_text(f"# one a line\n\n{extra}\n")
    first = backfill(since=SINCE, remine=True, urls_file=str(urls_file), config=str(config))
    assert first["urls"] == {"given": 1, "new_entries": 1, "already_stored": 0}
    assert first["pages"]["fetched"] == 1 and first["articles"]["extracted"] == 1
    assert len(site.hits("/feed.xml")) == 0  # remine polls nothing
    wh = warehouse(config)
    assert wh.read("SELECT feed, title FROM articles") == [{"feed": "adhoc",
                                                            "title": "Germany doubles military aid to Ukraine"}]
    second = backfill(since=SINCE, remine=True, urls=[extra], config=str(config))
    assert second["urls"] == {"given": 1, "new_entries": 0, "already_stored": 1}
    assert len(site.hits("/extra/germany-doubles-aid.html")) == 1
    assert_stored_once(wh)


def test_backfill_urls_respect_the_ssrf_guard(site, tmp_path):
    from flows.backfill import run_backfill as backfill

    private = site.add("/private-net.html", Answer(page_html("orban-backs-talks"), headers=HTML))
    config = write_config(tmp_path, "http://feeds.invalid/feed.xml", allow_private=False)
    result = backfill(since=SINCE, remine=True, urls=[private], config=str(config))
    assert result["pages"]["refused"] == 1 and result["pages"]["failures"] == {"ssrf": 1}
    assert site.hits("/private-net.html") == []
    assert warehouse(config).read("SELECT key, reason FROM rejections WHERE stage = 'fetch'") == [
        {"key": private, "reason": "ssrf"}]


# -- (b) two overlapping runs ----------------------------------------------------------------------
@pytest.mark.slow
def test_backfill_and_ingest_overlapping_both_complete_and_store_once(site, tmp_path):
    gate = threading.Event()  # no page is answered before both runs have polled the feed
    feed_url = serve_gazette(site, page_gate=gate)
    polls = []

    def counting_feed(req: Request, answer=site.server.routes[site.prefix + "/feed.xml"]) -> Answer:
        polls.append(req)
        if len(polls) >= 2:
            gate.set()
        return answer(req)

    site.add("/feed.xml", counting_feed)
    config = write_config(tmp_path, feed_url)
    env = cli_env(tmp_path)
    commands = [[str(NEWSMON), "ingest", "--config", str(config)],
                [str(NEWSMON), "backfill", "--config", str(config), "--since", "2025-11-01"]]
    procs = [subprocess.Popen(c, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env, cwd=tmp_path)
             for c in commands]
    try:
        outputs = [p.communicate(timeout=300) for p in procs]
    finally:
        gate.set()
        for p in procs:
            if p.poll() is None:
                p.kill()
    for p, (out, err) in zip(procs, outputs):
        assert p.returncode == 0, out[-3000:] + err[-3000:]
    assert "ingest done" in outputs[0][0] and "backfill done" in outputs[1][0]
    assert len(polls) == 2
    # each pending page was downloaded once, by one run or the other (fetch leases), none twice
    assert {slug: len(site.hits(f"/{slug}.html")) for slug in ARTICLES} == {slug: 1 for slug in ARTICLES}
    wh = warehouse(config)
    assert wh.read("SELECT url FROM fetches GROUP BY url HAVING count(*) > 1") == []
    assert wh.read("SELECT count(*) AS n FROM fetch_leases") == [{"n": 0}]
    assert sorted(r["url"] for r in wh.read("SELECT url FROM articles")) == sorted(
        site.url(f"/{s}.html") for s in ARTICLES)
    assert wh.read("SELECT count(*) AS n FROM feed_entries") == [{"n": len(ARTICLES)}]
    assert wh.read("SELECT count(*) AS n FROM pledge_claims") != [{"n": 0}]
    assert_stored_once(wh)
    assert len(wh.read("SELECT run_id FROM runs WHERE finished_at IS NOT NULL")) == 2


# -- (c) bad windows ------------------------------------------------------------------------------
@pytest.mark.parametrize("args, words", [
    (["--since", "2025-12-10", "--until", "2025-12-01"], ["since", "2025-12-10", "after", "until"]),
    (["--since", "notadate"], ["--since", "notadate", "YYYY-MM-DD"]),
    (["--since", "2025-12-01", "--until", "2025-13-01"], ["--until", "2025-13-01"]),
], ids=["since-after-until", "since-not-a-date", "until-not-a-date"])
@pytest.mark.slow
def test_backfill_cli_bad_window_is_one_line_and_exit_2(tmp_path, args, words):
    config = write_config(tmp_path, "http://feeds.invalid/feed.xml")
    proc = cli("backfill", "--config", str(config), *args, tmp_path=tmp_path, timeout=120)
    assert proc.returncode == 2, proc.stdout + proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert all(w in lines[0] for w in words), lines[0]
    assert not (tmp_path / "news.duckdb").exists()


@pytest.mark.slow
def test_backfill_flow_rejects_bad_parameters(prefect_api, tmp_path):
    from prefect.exceptions import ParameterTypeError

    from flows.backfill import backfill

    config = str(write_config(tmp_path, "http://feeds.invalid/feed.xml"))
    with pytest.raises(ParameterTypeError, match=r"since"):
        backfill(since="notadate", config=config)
    with pytest.raises(ParameterTypeError, match=r"urls\.0"):
        backfill(since=SINCE, urls=["ftp://example.org/a"], config=config)
    with pytest.raises(ConfigError, match=r"since \(2025-12-10\) is after until \(2025-12-01\)"):
        backfill(since=dt.date(2025, 12, 10), until=dt.date(2025, 12, 1), config=config)
    with pytest.raises(ConfigError, match=r"no feed named 'nowhere'"):
        backfill(since=SINCE, feeds=["nowhere"], config=config)
    assert not (tmp_path / "news.duckdb").exists()


def test_backfill_window_is_utc_days_until_inclusive():
    from flows.backfill import backfill_window

    utc = dt.timezone.utc
    assert backfill_window(SINCE, None) == (dt.datetime(2025, 12, 1, tzinfo=utc), None)
    assert backfill_window(SINCE, SINCE) == (dt.datetime(2025, 12, 1, tzinfo=utc), dt.datetime(2025, 12, 2, tzinfo=utc))


# -- the run's summary (the Prefect artifact's markdown) ---------------------------------------
def test_backfill_summary_lists_the_changes_found_and_one_line_per_failure(site, tmp_path):
    from flows.backfill import run_backfill as backfill
    from flows.runtime import run_summary

    gone = site.url("/gone.xml")
    config = write_config(tmp_path, serve_gazette(site), extra=f'\n[[feeds]]\nname = "gone"\nurl = "{gone}"\n')
    wh = warehouse(config)
    missing = site.url("/missing.html")
    result = backfill(since=SINCE, urls=[missing], config=str(config))
    [run_id] = [r["run_id"] for r in wh.read("SELECT run_id FROM runs")]
    page = run_summary(wh, run_id, "newsmon backfill", result, None)

    changes = wh.read("SELECT kind, actor_group, subject, old_url, new_url FROM changes")
    assert any(c["kind"] == "aid" and c["actor_group"] == "Germany" for c in changes)
    assert f"## Changes found ({len(changes)})" in page
    items = [line for line in page.split("## Changes found", 1)[1].split("## ", 1)[0].splitlines()
             if line.startswith("- ")]
    assert len(items) == len(changes)
    for c, line in zip(changes, items):  # both in publication order
        assert line.startswith(f"- **{c['actor_group']}** ")
        assert f"[before]({c['old_url']})" in line and f"[after]({c['new_url']})" in line
        assert " → " in line
    german = next(line for c, line in zip(changes, items) if c["kind"] == "aid")
    assert "aid to Ukraine, military:" in german and "(+100.0 %)" in german

    failures = page.split("## Failures (", 1)[1].split("## Counts", 1)[0].strip().splitlines()
    assert failures[0] == "3)"
    lines = [f for f in failures[1:] if f]
    assert len(lines) == 3, lines
    assert lines[0].startswith("- feed `gone` (HTTP 404): ")
    assert lines[1].startswith(f"- page <{missing}>: ") and "404" in lines[1]
    assert lines[2] == "- alerts: 1 alert(s) due but no [smtp] section is configured"  # no SMTP in this config
    assert all("\n" not in line and "Traceback" not in line for line in lines)

    counts = page.split("## Counts", 1)[1]
    assert "=0" not in counts and "| 0 |" not in counts
    assert "| feeds | " in counts and "failed=1" in counts

    again = backfill(since=SINCE, remine=True, config=str(config))
    run_id = wh.read("SELECT run_id FROM runs ORDER BY started_at DESC LIMIT 1")[0]["run_id"]
    quiet = run_summary(wh, run_id, "newsmon backfill", again, None)
    assert "## No new changes" in quiet and "**Completed**" in quiet
    assert "## Failures (1)\n\n- alerts: 1 alert(s) due but no [smtp]" in quiet  # the remine polls no feed


# -- Prefect: run names, parameters checked at creation, the artifact ------------------------------
@pytest.mark.slow
def test_backfill_flow_run_is_named_by_its_window_and_its_artifact_lists_the_changes(prefect_api, site, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterFlowRunId

    from flows.backfill import backfill

    config = write_config(tmp_path, serve_gazette(site))
    state = backfill(since=SINCE, until=dt.date(2025, 12, 31), config=str(config), return_state=True)
    assert state.is_completed(), state.message
    with get_client(sync_client=True) as client:
        run = client.read_flow_run(state.state_details.flow_run_id)
        assert run.name == "backfill 2025-12-01..2025-12-31"
        artifacts = client.read_artifacts(artifact_filter=ArtifactFilter(
            flow_run_id=ArtifactFilterFlowRunId(any_=[run.id])))
    [artifact] = [a for a in artifacts if a.key == "backfill-summary"]
    change = warehouse(config).read("SELECT old_url, new_url FROM changes WHERE kind = 'aid'")[0]
    assert "## Changes found (" in artifact.data
    german = next(line for line in artifact.data.splitlines() if line.startswith("- **Germany** aid to Ukraine"))
    assert f"[before]({change['old_url']})" in german and f"[after]({change['new_url']})" in german
    assert "=0" not in artifact.data


@pytest.mark.slow
def test_deployments_refuse_bad_parameters_when_the_run_is_created(prefect_api, tmp_path):
    from prefect.client.orchestration import get_client
    from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
    from prefect.deployments import run_deployment
    from prefect.exceptions import PrefectHTTPStatusError

    from flows.serve import deployments
    from newsmon.settings import load_settings

    config = write_config(tmp_path, "http://feeds.invalid/feed.xml")
    ids = {d.name: d.apply() for d in deployments(load_settings(config))}

    def runs_of(name: str) -> int:
        with get_client(sync_client=True) as client:
            return len(client.read_flow_runs(deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[ids[name]]))))

    ingest_runs = runs_of("scheduled")  # the scheduler may have queued runs of its cron
    for deployment, params, field in [
        ("backfill/ad-hoc", {"since": "notadate"}, "since"),
        ("backfill/ad-hoc", {"since": "2025-12-01", "until": "2025-13-01"}, "until"),
        ("backfill/ad-hoc", {"since": "2025-12-01", "feeds": ["two words"]}, "feeds"),
        ("backfill/ad-hoc", {"since": "2025-12-01", "urls": ["ftp://example.org/a"]}, "urls"),
        ("ingest/scheduled", {"shard": "first"}, "shard"),
    ]:
        with pytest.raises(PrefectHTTPStatusError, match=rf"Validation failed for field '{field}"):
            run_deployment(deployment, parameters=params, timeout=0)
    assert runs_of("ad-hoc") == 0 and runs_of("scheduled") == ingest_runs  # nothing was created
    good = run_deployment("backfill/ad-hoc", parameters={"since": "2025-12-01", "until": "2025-12-07"}, timeout=0)
    assert good.state.is_scheduled() and runs_of("ad-hoc") == 1


# -- progress: items, not stages ---------------------------------------------------------------------
def test_backfill_progress_counts_the_articles_of_the_window(site, tmp_path):
    from flows.backfill import ItemsEvent, StageEvent, progress_listener, run_backfill as backfill

    config = write_config(tmp_path, serve_gazette(site))
    events: list = []
    with progress_listener(events.append):
        backfill(since=SINCE, config=str(config), window_days=0)   # the window in one part (parts: below)
    items = {}
    for e in events:
        if isinstance(e, ItemsEvent):
            items.setdefault(e.stage, []).append((e.done, e.total, e.unit))
    assert items["feeds"][0] == (0, 1, "feeds") and items["feeds"][-1] == (1, 1, "feeds")
    assert items["pages"][0] == (0, 3, "pages") and items["pages"][-1] == (3, 3, "pages")
    assert [d for d, _, _ in items["pages"]] == [0, 1, 2, 3]  # one a page
    assert items["articles"][0] == (0, 3, "articles") and items["articles"][-1] == (3, 3, "articles")
    assert items["claims"][0] == (0, len(IN_WINDOW), "articles") and items["claims"][-1][:2] == (3, 3)
    assert all(e.done <= e.total for e in events if isinstance(e, ItemsEvent))
    # the stage events still frame them: the items of a stage come between its start and its end
    order = [(type(e).__name__, e.stage) for e in events]
    start, end = order.index(("StageEvent", "claims")), len(order) - 1 - order[::-1].index(("StageEvent", "claims"))
    assert start < order.index(("ItemsEvent", "claims")) < end
    assert any(isinstance(e, StageEvent) and e.stage == "catalogs" for e in events)

    # a remine counts the stored articles again, and polls and fetches nothing; taken one day at a
    # time, the parts add up to one count that never goes back
    events.clear()
    with progress_listener(events.append):
        backfill(since=SINCE, remine=True, config=str(config), window_days=1)
    stages = {e.stage for e in events if isinstance(e, ItemsEvent)}
    assert stages == {"articles", "claims"}
    claims = [e for e in events if isinstance(e, ItemsEvent) and e.stage == "claims"]
    assert claims[-1].done == 3 == claims[-1].total
    assert [e.done for e in claims] == sorted(e.done for e in claims)


@pytest.mark.slow
def test_backfill_cli_progress_shows_articles_with_an_eta(site, tmp_path):
    config = write_config(tmp_path, serve_gazette(site))
    proc = cli("backfill", "--config", str(config), "--since", SINCE.isoformat(), tmp_path=tmp_path)
    assert proc.returncode == 0, proc.stderr
    bars = {line.split()[0]: line for line in proc.stderr.splitlines()
            if line.split() and line.split()[0] in ("polling", "fetching", "extracting", "mining")}
    assert set(bars) == {"polling", "fetching", "extracting", "mining"}, proc.stderr
    assert "3/3 articles" in bars["mining"] and "ETA" in bars["mining"]
    assert "3/3 articles" in bars["extracting"] and "3/3 pages" in bars["fetching"]
    assert "stages" not in proc.stderr
