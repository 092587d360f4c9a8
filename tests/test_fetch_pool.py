"""tasks.fetch_pool and the poll/fetch stages on it: hosts at once, each host in turn.

Several hosts are real local servers on other loopback addresses (127.0.0.2, 127.0.0.3 ...:
the fetcher keeps its per-host delay by host name); a dead host is a closed port on one of
them (connection refused) or a name that never resolves. Overlap is proven on the server
side (a barrier two requests must reach together, request arrival times), never by how
long a test took.
"""
from __future__ import annotations

import socket
import threading
import time
import uuid

import pytest

from conftest import CONTROL_PAGE, Answer, control_feed, newsmon_cli
from flows import stages
from flows.runtime import run_failure, run_problems
from newsmon.errors import TransientFetchError
from newsmon.settings import FeedSettings, Settings, WarehouseSettings
from tasks.fetch_pool import Done, FetchPool, Left
from warehouse import Warehouse
from warehouse import queries as q

MiB = 1024 * 1024
HTML = {"Content-Type": "text/html; charset=utf-8"}
PAGE = CONTROL_PAGE.format(n="p", text="A page of a pooled fetch. " * 10).encode()


def closed_port(host: str) -> int:
    """A port on `host` that nothing listens on (bound, then closed): connecting is refused."""
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


def fetch_all(pool: FetchPool, urls: list[str]) -> list[Done | Left]:
    return list(pool.run(urls, url_of=lambda u: u, work=lambda fetcher, u: fetcher.get(u, max_bytes=MiB)))


def rss(urls: list[str]) -> bytes:
    items = "".join(f"<item><title>{i}</title><link>{u}</link></item>" for i, u in enumerate(urls))
    return f'<?xml version="1.0"?><rss version="2.0"><channel><title>t</title>{items}</channel></rss>'.encode()


# -- the pool --------------------------------------------------------------------------------
def test_pool_fetches_hosts_at_once_and_each_host_in_turn(make_server, fetch_settings):
    servers = [make_server(host="127.0.0.2"), make_server(host="127.0.0.3")]
    together = threading.Barrier(2, timeout=15)   # passed only by two requests in flight at once
    met: list[bool] = []
    lock = threading.Lock()
    in_flight = {s.host: 0 for s in servers}
    most = {s.host: 0 for s in servers}

    def route(server, first: bool):
        def answer(req):
            with lock:
                in_flight[server.host] += 1
                most[server.host] = max(most[server.host], in_flight[server.host])
            try:
                if first:
                    try:
                        together.wait()
                        met.append(True)
                    except threading.BrokenBarrierError:
                        met.append(False)
                else:
                    time.sleep(0.05)   # long enough for a second request to the host to show up, were there one
            finally:
                with lock:
                    in_flight[server.host] -= 1
            return Answer(PAGE, headers=HTML)
        return answer

    urls = [s.add(f"/p{i}", route(s, i == 0)) for s in servers for i in range(4)]
    events = fetch_all(FetchPool(fetch_settings(max_concurrency=4)), urls)
    assert sorted(e.item for e in events if isinstance(e, Done) and e.error is None) == sorted(urls)
    assert met == [True, True]         # each host's first page was in flight while the other's was
    assert most == {"127.0.0.2": 1, "127.0.0.3": 1}   # never two requests to one host at once
    for s in servers:                  # robots.txt first, then the pages in the order given
        assert [r.path for r in s.requests] == ["/robots.txt"] + [f"/p{i}" for i in range(4)]


def test_pool_keeps_the_per_host_delay_while_hosts_overlap(make_server, fetch_settings):
    servers = [make_server(host="127.0.0.2"), make_server(host="127.0.0.3")]
    urls = [s.add(f"/d{i}", Answer(PAGE, headers=HTML)) for i in range(3) for s in servers]
    events = fetch_all(FetchPool(fetch_settings(per_host_delay=0.3, respect_robots=False, max_concurrency=2)), urls)
    assert all(isinstance(e, Done) and e.error is None for e in events) and len(events) == 6
    arrivals = {s.host: [r.at for r in s.requests] for s in servers}
    for times in arrivals.values():
        assert len(times) == 3
        assert all(b - a >= 0.25 for a, b in zip(times, times[1:]))   # each host: the delay apart
    a, b = arrivals.values()
    assert b[0] < a[-1] and a[0] < b[-1]   # interleaved: one after the other would not be


def test_pool_one_fetcher_per_run_shares_each_hosts_turn(make_server, fetch_settings):
    # a page of host A redirects to host B: B's turn is shared by both threads' fetchers
    a, b = make_server(host="127.0.0.2"), make_server(host="127.0.0.3")
    b_urls = [b.add(f"/b{i}", Answer(PAGE, headers=HTML)) for i in range(3)]
    a_urls = [a.add(f"/a{i}", Answer(b"", status=302, headers={"Location": b.url(f"/from-a{i}")}))
              for i in range(3)]
    for i in range(3):
        b.add(f"/from-a{i}", Answer(PAGE, headers=HTML))
    events = fetch_all(FetchPool(fetch_settings(per_host_delay=0.2, respect_robots=False, max_concurrency=2)),
                       a_urls + b_urls)
    assert all(isinstance(e, Done) and e.error is None for e in events) and len(events) == 6
    times = sorted(r.at for r in b.requests)
    assert len(times) == 6
    assert all(y - x >= 0.15 for x, y in zip(times, times[1:]))   # B's six requests, from two threads, spaced


@pytest.mark.parametrize("dead", ["refused", "dns"])
def test_pool_gives_up_a_dead_host_while_a_healthy_one_arrives(make_server, fetch_settings, dead):
    healthy = make_server(host="127.0.0.2")
    good = [healthy.add(f"/g{i}", Answer(PAGE, headers=HTML)) for i in range(6)]
    origin = (f"http://127.0.0.4:{closed_port('127.0.0.4')}" if dead == "refused"
              else "http://newsmon-test.invalid")   # RFC 6761: never resolves
    bad = [f"{origin}/x{i}" for i in range(8)]
    pool = FetchPool(fetch_settings(host_give_up_after=3, max_concurrency=2))
    events = fetch_all(pool, [u for pair in zip(bad, good) for u in pair] + bad[len(good):])
    done = {e.item: e for e in events if isinstance(e, Done)}
    assert all(done[u].error is None and done[u].result.content == PAGE for u in good)
    tried = [u for u in bad if u in done]
    assert tried == bad[:3]                       # three tries, in order ...
    assert all(isinstance(done[u].error, TransientFetchError) and done[u].error.unreachable for u in tried)
    [left] = [e for e in events if isinstance(e, Left)]
    assert (left.why, left.items) == ("host_down", bad[3:])   # ... then the rest is left, untried
    assert list(pool.hosts_given_up) == [left.host] == [origin.split("//")[1].split(":")[0]]


def test_pool_answering_host_is_never_given_up(make_server, fetch_settings):
    # errors after the host answered (404, 503) are the pages' own: the host stays
    server = make_server(host="127.0.0.2")
    urls = [server.add(f"/e{i}", Answer(b"no", status=404 if i % 2 else 503)) for i in range(6)]
    events = fetch_all(FetchPool(fetch_settings(host_give_up_after=1)), urls)
    assert not [e for e in events if isinstance(e, Left)]
    assert len([r for r in server.requests if r.path.startswith("/e")]) == 6


def test_pool_leaves_everything_once_the_budget_is_spent(make_server, fetch_settings):
    server = make_server(host="127.0.0.2")
    urls = [server.add(f"/b{i}", Answer(PAGE, headers=HTML)) for i in range(4)]
    pool = FetchPool(fetch_settings(), until=time.time() - 1)
    events = fetch_all(pool, urls)
    assert [(type(e), e.why, e.items) for e in events] == [(Left, "budget", urls)]
    assert pool.budget_spent and server.requests == []


# -- the stages --------------------------------------------------------------------------------
def _settings(tmp_path, fetch_settings, feeds: dict[str, str], **fetch) -> tuple[Settings, Warehouse]:
    settings = Settings(warehouse=WarehouseSettings(path=tmp_path / "pool.duckdb"), fetch=fetch_settings(**fetch),
                        feeds=[FeedSettings(name=n, url=u) for n, u in feeds.items()],
                        source=tmp_path / "newsmon.toml")
    wh = Warehouse(settings.warehouse.path)
    wh.migrate()
    return settings, wh


def _pending(wh: Warehouse) -> set[str]:
    with wh.connect(read_only=True) as con:
        return {p["url"] for p in q.pending_fetches(con, stages.MAX_TRANSIENT_ATTEMPTS)}


def test_fetch_stage_leaves_a_dead_hosts_pages_pending(site, run_fetch_stages):
    dead = f"http://127.0.0.4:{closed_port('127.0.0.4')}"
    dead_pages = [f"{dead}/story/{i}.html" for i in range(7)]
    control, pages = control_feed(site, n_pages=3)
    feed = site.add("/dead-links.xml", Answer(rss(dead_pages), headers={"Content-Type": "application/rss+xml"}))
    run = run_fetch_stages({"dead-links": feed, "control": control}, host_give_up_after=3)
    counts = run.counts["pages"]
    assert run.stored_pages() == set(pages)      # the healthy host's pages all arrived
    assert (counts["transient"], counts["hosts_given_up"], counts["left_host_down"]) == (3, 1, 4)
    assert _pending(run.wh) == set(dead_pages)   # none failed for good: all pending for the next run
    tried = {r["url"] for r in run.wh.read("SELECT url FROM fetches WHERE outcome = 'transient'")}
    assert len(tried) == 3 and tried < set(dead_pages)
    assert run.rejections() == []
    [problem] = [p for p in run_problems(run.counts) if "given up" in p]
    assert "1 unreachable host(s)" in problem and "4 other page(s)" in problem
    assert run_failure(run.counts) is None


def test_poll_stage_gives_up_a_dead_feed_host(site, run_fetch_stages):
    dead = f"http://127.0.0.4:{closed_port('127.0.0.4')}"
    control, pages = control_feed(site)
    feeds = {f"dead-{i}": f"{dead}/feed{i}.xml" for i in range(5)} | {"control": control}
    run = run_fetch_stages(feeds, host_give_up_after=2)
    counts = run.counts["feeds"]
    assert (counts["polled"], counts["failed"], counts["left_host_down"], counts["hosts_given_up"]) == (3, 2, 3, 1)
    polled = {r["feed"] for r in run.wh.read("SELECT DISTINCT feed FROM feed_polls")}
    assert polled == {"control", "dead-0", "dead-1"}   # the three left were not tried, nor marked failed
    assert run.stored_pages() == set(pages)


def test_fetch_stage_budget_leaves_pages_pending_and_the_next_run_fetches_them_once(site, tmp_path,
                                                                                     fetch_settings):
    budget: list[float] = []

    def first_page(req):   # answers once the run's budget has passed: the rest must wait for the next run
        time.sleep(max(0.0, budget[0] - time.time()) + 0.05)
        return Answer(PAGE, headers=HTML)

    urls = [site.add("/slow/0.html", first_page)] + [site.add(f"/slow/{i}.html", Answer(PAGE, headers=HTML))
                                                      for i in range(1, 5)]
    feed = site.add("/slow.xml", Answer(rss(urls), headers={"Content-Type": "application/rss+xml"}))
    settings, wh = _settings(tmp_path, fetch_settings, {"slow": feed})
    run_id = str(uuid.uuid4())
    stages.poll_feeds.fn(settings, wh, run_id)
    budget.append(time.time() + 1.0)
    first = stages.fetch_pages.fn(settings, wh, run_id, budget_until=budget[0])
    assert (first.get("fetched"), first.get("left_budget")) == (1, 4)
    assert _pending(wh) == set(urls[1:])
    assert any("budget" in p and "4 page(s) left" in p for p in run_problems({"pages": first}))
    assert run_failure({"pages": first}) is None

    second = stages.fetch_pages.fn(settings, wh, str(uuid.uuid4()))
    assert (second.get("fetched"), second.get("left_budget")) == (4, None)
    assert _pending(wh) == set()
    assert wh.read("SELECT count(*) AS n, count(DISTINCT url) AS urls FROM pages") == [{"n": 5, "urls": 5}]
    assert wh.read("SELECT count(*) AS n FROM fetches WHERE outcome = 'ok'") == [{"n": 5}]
    assert all(len(site.hits(f"/slow/{i}.html")) == 1 for i in range(5))   # no page downloaded twice


def test_poll_stage_budget_spent_leaves_feeds_unpolled_not_failed(site, tmp_path, fetch_settings):
    control, _ = control_feed(site)
    settings, wh = _settings(tmp_path, fetch_settings, {"a": control, "b": site.url("/other.xml")})
    counts = stages.poll_feeds.fn(settings, wh, str(uuid.uuid4()), budget_until=time.time() - 1)
    assert (counts.get("polled"), counts["left_budget"]) == (None, 2)
    assert wh.read("SELECT count(*) AS n FROM feed_polls") == [{"n": 0}]
    assert site.hits() == []
    assert run_failure({"feeds": counts}) is None


# -- the CLI ------------------------------------------------------------------------------------
@pytest.mark.slow
def test_ingest_past_its_budget_mines_what_it_got_and_exits_0(site, tmp_path):
    budget = 3.0
    polled: list[float] = []
    text = "Ukraine's foreign minister said on Tuesday that peace talks must include Kyiv. " * 8
    page = CONTROL_PAGE.format(n="first", text=text).encode()

    def first_page(req):   # answered once the budget (counted from the feed's poll) has passed
        time.sleep(max(0.0, polled[0] + budget - time.monotonic()) + 0.3)
        return Answer(page, headers=HTML)

    urls = [site.add("/b/0.html", first_page)] + [site.add(f"/b/{i}.html", Answer(PAGE, headers=HTML))
                                                   for i in range(1, 4)]
    body = rss(urls)

    def feed_answer(req):
        polled.append(req.at)
        return Answer(body, headers={"Content-Type": "application/rss+xml"})

    feed = site.add("/b.xml", feed_answer)
    (tmp_path / "newsmon.toml").write_text(
        '[warehouse]\npath = "w.duckdb"\n\n[fetch]\nallow_private_networks = true\nper_host_delay = 0\n'
        f'run_budget_seconds = {budget}\n\n[alerts]\nrecipients = []\n\n[[feeds]]\nname = "b"\nurl = "{feed}"\n')
    done = newsmon_cli("ingest", "--config", "newsmon.toml", cwd=tmp_path)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "budget (fetch.run_budget_seconds) is spent: 3 page(s) left for the next run" in done.stdout
    assert "articles: extracted=1" in done.stdout
    again = newsmon_cli("ingest", "--config", "newsmon.toml", cwd=tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "fetched=3" in again.stdout and "budget" not in again.stdout
    assert all(len(site.hits(f"/b/{i}.html")) == 1 for i in range(4))


def test_pool_a_bug_in_the_work_reaches_the_caller(make_server, fetch_settings):
    server = make_server(host="127.0.0.2")
    urls = [server.add(f"/x{i}", Answer(PAGE, headers=HTML)) for i in range(3)]

    def broken(fetcher, url):
        raise ValueError(f"bug on {url}")

    with pytest.raises(ValueError, match="bug on"):
        list(FetchPool(fetch_settings()).run(urls, url_of=lambda u: u, work=broken))
