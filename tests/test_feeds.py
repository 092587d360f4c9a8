"""tasks.feeds: polling and parsing feeds, over the real local server.

The corpus tests serve every document of ../shared/corpus/feedparser-tests (2,243
files, one feature or defect each) and ../shared/corpus/real-feeds (31 real
snapshots) with the HTTP headers their manifests name, and check that nothing
escapes `poll_feed` and that every entry feedparser recovers is kept or rejected
with a reason, never dropped.
"""
from __future__ import annotations

import html
import json
import re
import time
import urllib.parse

import feedparser
import pytest

from conftest import CORPUS, Answer, control_feed, layered_gzip_bomb, needs_corpus
from newsmon.settings import FeedSettings
from tasks.feeds import FeedState, cap_entries, parse_feed, poll_feed, strip_doctype
from tasks.fetch import Fetcher

MAX_FEED = 5 * 1024 * 1024
RSS = {"Content-Type": "application/rss+xml; charset=utf-8"}


def rss(*items: tuple[str, str], title: str = "Feed") -> bytes:
    body = "".join(f"<item><title>{t}</title><link>{link}</link></item>" for t, link in items)
    return (f'<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>{title}</title>'
            f"<link>http://example.org/</link>{body}</channel></rss>").encode()


def feed(url: str, name: str = "f") -> FeedSettings:
    return FeedSettings(name=name, url=url)


# -- corpus ---------------------------------------------------------------------------------
def _manifest(directory: str) -> list[dict]:
    with open(CORPUS / directory / "manifest.jsonl", encoding="utf-8") as fh:
        return [json.loads(line) for line in fh if line.strip()]


def _served_headers(directory: str, row: dict) -> dict[str, str]:
    """The headers the manifest names. A file it names none for is served as a static
    server serves .xml (application/xml, so the XML declaration decides the encoding);
    real feeds get the type of their suffix."""
    if directory == "real-feeds":
        return {"Content-Type": "application/atom+xml" if row["file"].endswith(".atom")
                else "application/rss+xml"}
    return dict(row.get("http_headers") or {"Content-Type": "application/xml"})


def _norm(text: str | None) -> str:
    text = html.unescape(re.sub(r"<[^>]+>", "", html.unescape(text or "")))
    return " ".join(text.split())


def _title_found(expected: str, titles: set[str]) -> bool:
    """The manifest's golden output mis-decodes some latin-1 feeds to U+FFFD: any one character there."""
    pattern = re.compile(".".join(re.escape(part) for part in _norm(expected).split("\ufffd")))
    return any(pattern.fullmatch(t) for t in titles)


@needs_corpus
@pytest.mark.parametrize("directory", ["feedparser-tests", "real-feeds"])
def test_feeds_corpus_every_entry_kept_or_rejected(site, fetch_settings, directory):
    rows = _manifest(directory)
    assert rows, f"empty manifest in {directory}"
    problems: list[str] = []
    with Fetcher(fetch_settings()) as fetcher:
        for i, row in enumerate(rows):
            path = CORPUS / directory / (row.get("path") or row["file"])
            headers = _served_headers(directory, row)
            url = site.add(f"/{i}", Answer(path, headers=headers))
            try:
                poll = poll_feed(fetcher, feed(url), FeedState(), MAX_FEED)
            except Exception as exc:  # noqa: BLE001 - the point: nothing may escape
                problems.append(f"{path.name}: {exc!r} escaped poll_feed")
                continue
            ref = feedparser.parse(path.read_bytes(), response_headers={k.lower(): v for k, v in headers.items()})
            if poll.outcome == "ok":
                kept = len(poll.entries) + len(poll.rejected)
                if kept != len(ref.entries):
                    problems.append(f"{path.name}: feedparser recovers {len(ref.entries)} entries, "
                                    f"poll kept {len(poll.entries)} and rejected {len(poll.rejected)}")
            elif ref.entries or not poll.error:
                problems.append(f"{path.name}: poll {poll.outcome} ({poll.error}) "
                                f"but feedparser recovers {len(ref.entries)} entries")
            if row.get("expected_bozo") and poll.outcome == "ok" and not poll.bozo:
                problems.append(f"{path.name}: feedparser's test says bozo, the poll records no complaint")
            expected = row.get("expected_summary") or {}
            if expected.get("items"):
                titles = {_norm(e.title) for e in poll.entries}
                links = {e.url for e in poll.entries}
                for item in expected["items"]:
                    if item.get("title") and not _title_found(item["title"], titles):
                        problems.append(f"{path.name}: title {item['title']!r} not found")
                    link = item.get("link")
                    if link and urllib.parse.urljoin(url, link.strip()) not in links:
                        problems.append(f"{path.name}: link {link!r} not found")
    assert len(site.hits()) >= len(rows)  # every document really went over HTTP
    assert not problems, f"{len(problems)} problems:\n" + "\n".join(problems[:40])
    # No wall-clock bound here: it failed at a load of 11 (48 s for the whole corpus); a stuck feed is
    # cut by the fetch deadlines, which the hostile-feed tests below check.


# -- conditional GET -----------------------------------------------------------------------
def test_feeds_conditional_get_sends_validators_and_handles_304(site, fetch_settings):
    etag, modified = '"v1"', "Mon, 03 Apr 2023 01:02:03 GMT"
    body = rss(("One", "http://example.org/1"))

    def answer(req):
        if req.headers.get("if-none-match") == etag or req.headers.get("if-modified-since") == modified:
            return Answer(None, status=304, headers={"ETag": etag})
        return Answer(body, headers={**RSS, "ETag": etag, "Last-Modified": modified})

    url = site.add("/feed", answer)
    with Fetcher(fetch_settings()) as f:
        first = poll_feed(f, feed(url), FeedState(), MAX_FEED)
        assert (first.outcome, len(first.entries), first.etag, first.last_modified) == ("ok", 1, etag, modified)
        state = FeedState(etag=first.etag, last_modified=first.last_modified, body_sha256=first.body_sha256)
        second = poll_feed(f, feed(url), state, MAX_FEED)
    sent = site.hits("/feed")[1].headers
    assert (sent["if-none-match"], sent["if-modified-since"]) == (etag, modified)
    assert "if-none-match" not in site.hits("/feed")[0].headers
    assert (second.outcome, second.status, second.entries) == ("not_modified", 304, ())
    assert (second.etag, second.last_modified, second.body_sha256) == (etag, modified, first.body_sha256)


def test_feeds_unchanged_body_when_server_ignores_validators(site, fetch_settings):
    url = site.add("/feed", Answer(rss(("One", "http://example.org/1")), headers={**RSS, "ETag": '"x"'}))
    with Fetcher(fetch_settings()) as f:
        first = poll_feed(f, feed(url), FeedState(), MAX_FEED)
        state = FeedState(etag=first.etag, last_modified=first.last_modified, body_sha256=first.body_sha256)
        second = poll_feed(f, feed(url), state, MAX_FEED)
    assert site.hits("/feed")[1].headers["if-none-match"] == '"x"'
    assert (second.outcome, second.status, second.entries) == ("unchanged_body", 200, ())
    assert second.body_sha256 == first.body_sha256


def test_feeds_changed_body_parsed_again(site, fetch_settings):
    url = site.add("/feed", [Answer(rss(("One", "http://example.org/1")), headers=RSS),
                             Answer(rss(("One", "http://example.org/1"), ("Two", "http://example.org/2")),
                                    headers=RSS)])
    with Fetcher(fetch_settings()) as f:
        first = poll_feed(f, feed(url), FeedState(), MAX_FEED)
        second = poll_feed(f, feed(url), FeedState(body_sha256=first.body_sha256), MAX_FEED)
    assert second.outcome == "ok"
    assert [e.title for e in second.entries] == ["One", "Two"]


@pytest.mark.parametrize("answer, reason", [
    (Answer(b"oops", status=500), "http_500"),
    (Answer(b"gone", status=404), "http_404"),
    (Answer(b"<html><body>not a feed</body></html>", headers={"Content-Type": "text/html"}), "not_a_feed"),
    (Answer(b"\x89PNG\r\n", headers={"Content-Type": "image/png"}), "content_type"),
])
def test_feeds_failed_poll_recorded_with_reason_and_keeps_validators(site, fetch_settings, answer, reason):
    url = site.add("/feed", answer)
    state = FeedState(etag='"old"', last_modified="Mon, 03 Apr 2023 01:02:03 GMT", body_sha256="abc")
    with Fetcher(fetch_settings()) as f:
        poll = poll_feed(f, feed(url), state, MAX_FEED)
    assert (poll.outcome, poll.ok, poll.reason) == ("failed", False, reason)
    assert poll.error
    assert (poll.etag, poll.last_modified, poll.body_sha256) == (state.etag, state.last_modified, "abc")


def test_feeds_oversized_feed_refused(site, fetch_settings):
    url = site.add("/feed", Answer(rss(*[(f"t{i}", f"http://example.org/{i}") for i in range(200)]), headers=RSS))
    with Fetcher(fetch_settings()) as f:
        poll = poll_feed(f, feed(url), FeedState(), 1000)
    assert (poll.outcome, poll.reason) == ("failed", "too_large")


# -- parse_feed ------------------------------------------------------------------------------
def test_feeds_relative_links_resolved_against_feed_url():
    entries, rejected, _ = parse_feed(rss(("A", "/news/a"), ("B", "b.html#top")), "http://example.org/feeds/x.xml",
                                      "application/rss+xml")
    assert [e.url for e in entries] == ["http://example.org/news/a", "http://example.org/feeds/b.html"]
    assert rejected == []


def test_feeds_entry_without_usable_link_rejected():
    entries, rejected, _ = parse_feed(rss(("A", "http://example.org/a"), ("B", "javascript:alert(1)")),
                                      "http://example.org/feed", "application/rss+xml")
    assert [e.url for e in entries] == ["http://example.org/a"]
    assert rejected == [("B", "entry has no usable link")]


def test_feeds_duplicate_link_rejected_not_dropped():
    entries, rejected, _ = parse_feed(rss(("A", "http://example.org/a"), ("A again", "http://example.org/a")),
                                      "http://example.org/feed", "application/rss+xml")
    assert [e.title for e in entries] == ["A"]
    assert len(rejected) == 1 and rejected[0][0] == "A again" and "duplicate" in rejected[0][1]


def test_feeds_long_fields_truncated():
    entries, _, _ = parse_feed(rss(("T" * 5000, "http://example.org/a")), "http://example.org/feed",
                               "application/rss+xml")
    assert len(entries[0].title) == 1000


def test_feeds_html_document_is_not_a_feed():
    from newsmon.errors import RefusedFetchError
    with pytest.raises(RefusedFetchError) as err:
        parse_feed(b"<html><body><p>Moved <a href='/x'>here</a></p>", "http://example.org/", "text/html")
    assert err.value.reason == "not_a_feed"


# -- DOCTYPE and entity expansion -----------------------------------------------------------------
def billion_laughs(encoding: str) -> bytes:
    levels = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, 10)]
    doc = (f'<?xml version="1.0" encoding="{encoding}"?>\n'
           f"<!DOCTYPE rss [\n  {chr(10).join(levels)}\n]>\n"
           '<rss version="2.0"><channel><title>&lol9;</title>'
           "<item><title>&lol9;</title><link>http://example.org/bomb</link></item></channel></rss>")
    return ("\ufeff" + doc).encode(encoding) if encoding.startswith("utf-16") else doc.encode(encoding)


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be"])
def test_feeds_strip_doctype_removes_internal_subset(encoding):
    data = billion_laughs(encoding)
    stripped = strip_doctype(data)
    text = stripped.decode(encoding)
    assert "<!DOCTYPE" not in text and "<!ENTITY" not in text
    assert text.lstrip("\ufeff").startswith('<?xml version="1.0"')
    assert text.endswith("</channel></rss>")


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le", "utf-16-be"])
def test_feeds_entity_bomb_parsed_without_expansion(site, fetch_settings, encoding):
    url = site.add("/bomb", Answer(billion_laughs(encoding), headers={"Content-Type": "application/rss+xml"}))
    started = time.monotonic()
    with Fetcher(fetch_settings()) as f:
        poll = poll_feed(f, feed(url), FeedState(), MAX_FEED)
    assert time.monotonic() - started < 5
    assert poll.outcome == "ok"
    assert [e.url for e in poll.entries] == ["http://example.org/bomb"]
    assert len(poll.entries[0].title or "") < 100


@pytest.mark.parametrize("doc", [
    b"<rss><item><description><![CDATA[ <!DOCTYPE ]]></description></item></rss>",
    b"<rss><channel><title>a &lt;!DOCTYPE x [ ]&gt; b</title></channel></rss>",
    b"<?xml version='1.0'?><rss><!-- <!DOCTYPE x> --><channel/></rss>",
])
def test_feeds_strip_doctype_leaves_documents_without_prolog_doctype_alone(doc):
    assert strip_doctype(doc) == doc


@pytest.mark.parametrize("doc, expected", [
    (b'<?xml version="1.0"?>\n<!-- c -->\n<!DOCTYPE rss SYSTEM "x.dtd">\n<rss/>',
     b'<?xml version="1.0"?>\n<!-- c -->\n\n<rss/>'),
    (b'<!DOCTYPE rss [<!ENTITY a "]>"> <!-- it\'s ]> --> ]><rss/>', b"<rss/>"),
    (b'\xef\xbb\xbf<!doctype rss><rss/>', b"\xef\xbb\xbf<rss/>"),
])
def test_feeds_strip_doctype_handles_prolog_forms(doc, expected):
    assert strip_doctype(doc) == expected


def test_feeds_doctype_text_inside_cdata_kept_as_entry():
    doc = (b'<rss version="2.0"><channel><item><link>http://example.org/a</link>'
           b"<description><![CDATA[ <!DOCTYPE ]]></description></item></channel></rss>")
    entries, rejected, bozo = parse_feed(doc, "http://example.org/feed", "application/rss+xml")
    assert bozo is None
    assert [(e.url, e.summary) for e in entries] == [("http://example.org/a", "<!DOCTYPE")]


def test_feeds_strip_doctype_linear_on_hostile_input():
    started = time.monotonic()
    for doc in (b"<?xml " + b"a" * 2_000_000, b"<!DOCTYPE x [" + b"'" * 2_000_000, b" " * 2_000_000 + b"<!DOCTYPE"):
        assert strip_doctype(doc) == doc
    assert time.monotonic() - started < 2


# -- hostile feeds beside a healthy one ----------------------------------------------------------
# Each reproduces an attacker's finding on a clone (issue 9); the control feed's pages must
# still be stored, within a bound that separates "worked" from "hung" (minutes, hours).
MiB = 1024 * 1024


def assert_control_arrived(run, control_pages: list[str]) -> None:
    assert run.last_poll("control")["outcome"] == "ok"
    assert set(control_pages) <= run.stored_pages()


def test_feeds_doctype_comment_flood_recorded_and_control_polled(site, run_fetch_stages):
    # "<!DOCTYPE rss [" + 5 MB of "<!--": the DOCTYPE regex went quadratic (hours at 5 MB)
    hostile = site.add("/hostile.xml", Answer(b"<!DOCTYPE rss [" + b"<!--" * (5 * MiB // 4), headers=RSS))
    control, pages = control_feed(site)
    run = run_fetch_stages({"hostile": hostile, "control": control}, max_feed_bytes=6 * MiB)
    poll = run.last_poll("hostile")
    assert poll["outcome"] == "failed" and "not a feed" in poll["error"]
    assert_control_arrived(run, pages)
    assert run.seconds < 60


@pytest.mark.parametrize("flood", [
    b"<!DOCTYPE rss [" + b"<!--" * (5 * MiB // 4),
    b"<?xml " + b"<?" * (5 * MiB // 2),
    b"<!--" * (5 * MiB // 4),
    b"<!DOCTYPE x [" + b"<" * (5 * MiB),
    b"<!DOCTYPE x [<!--" + b"-" * (5 * MiB),
    b"<!DOCTYPE x " + b'"' * (5 * MiB),
], ids=["subset-comments", "prolog-pis", "prolog-comments", "subset-lt", "comment-dashes", "quotes"])
def test_feeds_strip_doctype_unterminated_floods_left_alone(flood):
    assert strip_doctype(flood) == flood  # no well-formed DOCTYPE: nothing to strip (linear: bench/)


def entry_flood(n: int) -> bytes:
    items = "".join(f"<item><link>http://example.org/{i}</link></item>" for i in range(n))
    return (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Flood</title>{items}'
            "</channel></rss>").encode()


def test_feeds_entry_flood_cut_at_cap_and_recorded(site, run_fetch_stages):
    # 200,000 entries took over 20 minutes to reject, with the control feed queued behind
    hostile = site.add("/flood.xml", Answer(entry_flood(200_000), headers=RSS))
    control, pages = control_feed(site)
    run = run_fetch_stages({"hostile": hostile, "control": control}, max_feed_bytes=16 * MiB,
                           max_feed_entries=50)
    poll = run.last_poll("hostile")
    assert (poll["outcome"], poll["entries"]) == ("ok", 50)
    cut = [r for r in run.rejections() if r["key"] == "hostile: entries after #50"]
    assert len(cut) == 1 and "200000 entries" in cut[0]["reason"] and "fetch.max_feed_entries" in cut[0]["reason"]
    assert {f"http://example.org/{i}" for i in range(50)} <= {
        r["url"] for r in run.wh.read("SELECT url FROM feed_entries WHERE feed = 'hostile'")}
    assert_control_arrived(run, pages)
    assert run.seconds < 120


@pytest.mark.parametrize("encoding", ["utf-8", "utf-16-le"])
@pytest.mark.parametrize("kind", ["rss", "atom", "prefixed"])
def test_feeds_cap_entries_keeps_the_first_and_a_well_formed_document(encoding, kind):
    if kind == "atom":
        doc = ('<feed xmlns="http://www.w3.org/2005/Atom"><title>t</title>'
               + "".join(f'<entry><id>{i}</id><link href="http://example.org/{i}"/></entry>' for i in range(10))
               + "</feed>")
    elif kind == "prefixed":
        doc = ('<a:feed xmlns:a="http://www.w3.org/2005/Atom"><a:title>t</a:title>'
               + "".join(f'<a:entry><a:id>{i}</a:id><a:link href="http://example.org/{i}"/></a:entry>'
                         for i in range(10)) + "</a:feed>")
    else:
        doc = entry_flood(10).decode().removeprefix('<?xml version="1.0"?>')
    doc = f'<?xml version="1.0" encoding="{encoding[:6]}"?>' + doc
    data = ("\ufeff" + doc).encode(encoding) if encoding != "utf-8" else doc.encode()
    capped, cut = cap_entries(data, 3)
    assert cut == 7
    entries, rejected, bozo = parse_feed(capped, "http://example.org/feed", "application/xml")
    assert [e.url for e in entries] == [f"http://example.org/{i}" for i in range(3)]
    assert bozo is None and rejected == []
    assert cap_entries(data, 10) == (data, 0)


@pytest.mark.parametrize("layers", [2, 3])
def test_feeds_layered_gzip_bomb_refused_and_control_polled(site, run_fetch_stages, layers):
    # "gzip, gzip, gzip" (10 GiB) ended in MemoryError and rc 1 on every run
    import tracemalloc

    import flows.stages  # noqa: F401 - imported before the count starts

    codings = ", ".join(["gzip"] * layers)
    hostile = site.add("/bomb.xml", Answer(layered_gzip_bomb(1024 * MiB, layers),
                                          headers={**RSS, "Content-Encoding": codings}))
    control, pages = control_feed(site)
    tracemalloc.start()
    try:
        run = run_fetch_stages({"hostile": hostile, "control": control}, max_feed_bytes=MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    poll = run.last_poll("hostile")
    assert poll["outcome"] == "failed" and "exceeds" in poll["error"]
    assert_control_arrived(run, pages)
    assert peak < 64 * MiB  # the cap is 1 MiB; main held the GiB (and more) of one decoded layer


def test_feeds_trickling_feed_cut_at_deadline_and_control_polled(site, run_fetch_stages):
    # one byte every few seconds: no overall deadline per request, the run hung until killed
    hostile = site.add("/slow.xml", Answer(entry_flood(3), headers=RSS, trickle=0.2))
    control, pages = control_feed(site)
    run = run_fetch_stages({"hostile": hostile, "control": control}, request_deadline_seconds=1.5,
                           read_timeout=30)
    poll = run.last_poll("hostile")
    assert poll["outcome"] == "failed" and "fetch.request_deadline_seconds" in poll["error"]
    assert_control_arrived(run, pages)
    assert run.seconds < 15  # the trickle alone would take over a minute


@pytest.mark.slow
def test_feeds_sigterm_stops_a_run_stuck_on_a_trickling_feed(site, tmp_path):
    # SIGTERM took 210 s more while a feed sent one byte every 5 s
    import os
    import signal
    import subprocess
    import sys
    from pathlib import Path

    url = site.add("/slow.xml", Answer(entry_flood(3), headers=RSS, trickle=5))
    config = tmp_path / "newsmon.toml"
    config.write_text(f'[warehouse]\npath = "w.duckdb"\n[fetch]\nallow_private_networks = true\n'
                      f'[[feeds]]\nname = "slow"\nurl = "{url}"\n')
    env = {**os.environ, "PREFECT_HOME": str(tmp_path / "prefect"),
           "PREFECT_SERVER_EPHEMERAL_STARTUP_TIMEOUT_SECONDS": "180"}  # a loaded machine: not what is tested
    proc = subprocess.Popen([str(Path(sys.executable).with_name("newsmon")), "ingest", "--config", str(config)],
                            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=env)
    try:
        site.wait_for("/slow.xml", timeout=240)
        time.sleep(1)
        proc.send_signal(signal.SIGTERM)
        started = time.monotonic()
        err = proc.communicate(timeout=60)[1].decode(errors="replace")
        assert time.monotonic() - started < 10
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    # stopped as a run, not abandoned: one line, exit 143, the run recorded as interrupted (on the main
    # of issue 9 it stopped in time here but left a traceback and its run "running")
    assert proc.returncode == 143 and "Traceback" not in err, err[-3000:]
    from warehouse import Warehouse

    [run] = Warehouse(tmp_path / "w.duckdb").read("SELECT status, finished_at FROM runs")
    assert run["status"] == "interrupted" and run["finished_at"] is not None


CHILD_RUN = """
import json, resource, sys, uuid
from flows import stages
from newsmon.settings import FeedSettings, FetchSettings, Settings, WarehouseSettings
from warehouse import Warehouse
feeds, db = json.loads(sys.argv[1]), sys.argv[2]
settings = Settings(warehouse=WarehouseSettings(path=db), feeds=[FeedSettings(name=n, url=u) for n, u in feeds.items()],
                    fetch=FetchSettings(allow_private_networks=True, per_host_delay=0, retries=0,
                                        request_deadline_seconds=3, max_feed_bytes=16 * 2**20))
wh = Warehouse(db)
wh.migrate()
run_id = str(uuid.uuid4())
counts = {"feeds": stages.poll_feeds.fn(settings, wh, run_id), "pages": stages.fetch_pages.fn(settings, wh, run_id)}
print(json.dumps({"counts": counts, "max_rss_kib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss}))
"""


@pytest.mark.slow
def test_feeds_every_hostile_feed_in_one_run_bounded_in_time_and_memory(site, tmp_path):
    # the bound: the healthy feed's articles arrive, and a run's peak RSS stays <= 1 GB
    import subprocess
    import sys

    from conftest import ROOT

    bomb_page = site.add("/bomb.html", Answer(layered_gzip_bomb(1024 * MiB, 2),
                                             headers={"Content-Type": "text/html", "Content-Encoding": "gzip, gzip"}))
    hostile = {
        "doctype": site.add("/doctype.xml", Answer(b"<!DOCTYPE rss [" + b"<!--" * (5 * MiB // 4), headers=RSS)),
        "entries": site.add("/entries.xml", Answer(entry_flood(200_000), headers=RSS)),
        "bomb": site.add("/bomb.xml", Answer(layered_gzip_bomb(1024 * MiB, 3),
                                             headers={**RSS, "Content-Encoding": "gzip, gzip, gzip"})),
        "trickle": site.add("/trickle.xml", Answer(entry_flood(3), headers=RSS, trickle=0.5)),
        "bomb-page": site.add("/with-bomb.xml", Answer(rss(("Bomb", bomb_page)), headers=RSS)),
    }
    control, pages = control_feed(site)
    started = time.monotonic()
    proc = subprocess.run([sys.executable, "-c", CHILD_RUN, json.dumps({**hostile, "control": control}),
                           str(tmp_path / "w.duckdb")], capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert proc.returncode == 0, proc.stderr[-3000:]
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    print(f"hostile run: {time.monotonic() - started:.1f} s, peak RSS {report['max_rss_kib'] / 1024:.0f} MiB")
    assert time.monotonic() - started < 300
    assert report["max_rss_kib"] < 1024 * 1024  # 1 GiB
    from warehouse import Warehouse

    stored = {r["url"] for r in Warehouse(tmp_path / "w.duckdb").read("SELECT url FROM pages")}
    assert set(pages) <= stored and bomb_page not in stored
