"""tasks.fetch: the guarded HTTP client, against the real local server.

SSRF guard (default settings refuse loopback and private addresses, every redirect
hop is checked again), byte caps (declared, streamed, decompressed), content types,
redirects, retries honouring Retry-After, robots.txt.
"""
from __future__ import annotations

import gzip
import time

import pytest

from conftest import Answer, gzip_bomb, has_ipv6_loopback
from newsmon.errors import RefusedFetchError, TransientFetchError
from newsmon.settings import FetchSettings
from tasks.fetch import FEED_TYPES, HTML_TYPES, Fetcher

PAGE = b"<!doctype html><html><head><title>t</title></head><body><p>hello</p></body></html>"
HTML = {"Content-Type": "text/html; charset=utf-8"}
MiB = 1024 * 1024


def get(settings: FetchSettings, url: str, **kw):
    kw.setdefault("max_bytes", MiB)
    with Fetcher(settings) as f:
        return f.get(url, **kw)


# -- SSRF guard ------------------------------------------------------------------------
def test_fetch_default_settings_do_not_allow_private_networks():
    assert FetchSettings().allow_private_networks is False
    assert FetchSettings().allow_hosts == []


@pytest.mark.parametrize("template", [
    "http://127.0.0.1:{port}{path}",
    "http://localhost:{port}{path}",
    pytest.param("http://[::1]:{port}{path}", marks=pytest.mark.skipif(
        not has_ipv6_loopback(), reason="no IPv6 loopback on this machine")),
    "http://10.0.0.1{path}",
    "http://169.254.169.254{path}",   # cloud metadata endpoint
    "http://[::ffff:127.0.0.1]:{port}{path}",  # IPv4-mapped IPv6
])
def test_fetch_default_settings_refuse_private_addresses(site, template):
    site.add("/secret", Answer(PAGE, headers=HTML))
    url = template.format(port=site.server.port, path=site.prefix + "/secret")
    started = time.monotonic()
    with pytest.raises(RefusedFetchError) as err:
        get(FetchSettings(), url)
    assert err.value.reason == "ssrf"
    assert time.monotonic() - started < 1.0  # refused before any connection attempt
    assert site.hits() == []


def test_fetch_allow_hosts_admits_only_the_listed_origin(site):
    url = site.add("/page", Answer(PAGE, headers=HTML))
    settings = FetchSettings(allow_hosts=[f"127.0.0.1:{site.server.port}"], per_host_delay=0)
    assert get(settings, url).content == PAGE
    with pytest.raises(RefusedFetchError) as err:  # same server, other name: not listed
        get(settings, url.replace("127.0.0.1", "localhost"))
    assert err.value.reason == "ssrf"


@pytest.mark.parametrize("respect_robots", [False, True], ids=["no-robots", "robots"])
@pytest.mark.parametrize("target", [
    "http://localhost:{port}{prefix}/page",  # same server, a name that is not allowed
    "http://127.0.0.1:1/",                   # another loopback port
    "http://10.0.0.1/",
    "http://[::1]:{port}/",
])
def test_fetch_redirect_hop_to_private_address_refused(site, target, respect_robots):
    # without robots.txt the redirect hop's own check is what refuses (robots.txt of the
    # target's origin would be refused first otherwise)
    site.add("/page", Answer(PAGE, headers=HTML))
    location = target.format(port=site.server.port, prefix=site.prefix)
    url = site.add("/hop", Answer(b"", status=302, headers={"Location": location}))
    settings = FetchSettings(allow_hosts=[f"127.0.0.1:{site.server.port}"], per_host_delay=0,
                             respect_robots=respect_robots)
    with pytest.raises(RefusedFetchError) as err:
        get(settings, url)
    assert err.value.reason == "ssrf"
    assert [r.path for r in site.hits()] == [site.prefix + "/hop"]  # the target was never asked


def test_fetch_redirect_chain_refused_at_first_private_hop(site):
    site.add("/page", Answer(PAGE, headers=HTML))
    url = site.add("/hop", Answer(b"", status=302, headers={"Location": site.url("/page")}))
    with pytest.raises(RefusedFetchError) as err:
        get(FetchSettings(per_host_delay=0), url)
    assert err.value.reason == "ssrf"
    assert site.hits() == []


def test_fetch_pins_address_and_sends_host_name(site, fetch_settings):
    url = site.add("/page", Answer(PAGE, headers=HTML)).replace("127.0.0.1", "localhost")
    resp = get(fetch_settings(), url)
    assert resp.content == PAGE
    assert site.hits("/page")[0].headers["host"] == f"localhost:{site.server.port}"


# -- redirects ---------------------------------------------------------------------------
def test_fetch_follows_redirects_and_reports_final_url(site, fetch_settings):
    final = site.add("/c", Answer(PAGE, headers=HTML))
    site.add("/b", Answer(b"", status=302, headers={"Location": "c"}))  # relative Location
    url = site.add("/a", Answer(b"", status=301, headers={"Location": site.url("/b")}))
    resp = get(fetch_settings(), url)
    assert (resp.url, resp.final_url, resp.content) == (url, final, PAGE)


def test_fetch_too_many_redirects_refused(site, fetch_settings):
    for i in range(4):
        site.add(f"/r{i}", Answer(b"", status=302, headers={"Location": site.url(f"/r{i + 1}")}))
    site.add("/r4", Answer(PAGE, headers=HTML))
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(max_redirects=3), site.url("/r0"))
    assert err.value.reason == "redirects"
    assert site.hits("/r4") == []
    assert get(fetch_settings(max_redirects=4), site.url("/r0")).content == PAGE


@pytest.mark.parametrize("url", [
    "http://[::1",                       # unclosed IPv6 literal
    "http://example.org:99999/",         # port out of range
    "http://example.org:abc/",           # port not a number
    "http://" + "a" * 70 + ".example/",  # DNS label over 63 characters
    "http://exa..mple.org/",             # empty DNS label
])
def test_fetch_malformed_url_refused_not_raised(fetch_settings, url):
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), url)
    assert err.value.reason == "bad_url"


def test_fetch_redirect_to_malformed_url_refused(site, fetch_settings):
    url = site.add("/hop", Answer(b"", status=302, headers={"Location": "http://example.org:99999/x"}))
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), url)
    assert err.value.reason == "bad_url"


# -- byte caps and content types ----------------------------------------------------------
@pytest.mark.parametrize("answer", [
    pytest.param(Answer(b"x" * (MiB + 1), headers=HTML), id="content-length"),
    pytest.param(Answer(b"x" * (MiB + 1), headers=HTML, chunked=True), id="chunked-no-length"),
    pytest.param(Answer(gzip_bomb(64 * MiB), headers={**HTML, "Content-Encoding": "gzip"}), id="gzip-bomb"),
])
def test_fetch_body_over_cap_refused(site, fetch_settings, answer):
    url = site.add("/big", answer)
    started = time.monotonic()
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), url, max_bytes=MiB)
    assert err.value.reason == "too_large"
    assert time.monotonic() - started < 5


def test_fetch_gzip_body_under_cap_decompressed(site, fetch_settings):
    url = site.add("/gz", Answer(gzip.compress(PAGE), headers={**HTML, "Content-Encoding": "gzip"}))
    assert get(fetch_settings(), url, max_bytes=len(PAGE)).content == PAGE


def test_fetch_body_exactly_at_cap_accepted(site, fetch_settings):
    url = site.add("/exact", Answer(b"x" * 1000, headers=HTML, chunked=True))
    assert len(get(fetch_settings(), url, max_bytes=1000).content) == 1000


@pytest.mark.parametrize("ctype, accept, ok", [
    ("text/html; charset=utf-8", HTML_TYPES, True),
    ("application/xhtml+xml", HTML_TYPES, True),
    ("application/pdf", HTML_TYPES, False),
    ("image/png", HTML_TYPES, False),
    ("application/rss+xml", FEED_TYPES, True),
    ("text/rss+xml", FEED_TYPES, True),
    ("text/atom+xml", FEED_TYPES, True),
    ("image/jpeg", FEED_TYPES, False),
])
def test_fetch_content_type_checked(site, fetch_settings, ctype, accept, ok):
    url = site.add("/doc", Answer(PAGE, headers={"Content-Type": ctype}))
    if ok:
        assert get(fetch_settings(), url, accept=accept).content == PAGE
    else:
        with pytest.raises(RefusedFetchError) as err:
            get(fetch_settings(), url, accept=accept)
        assert err.value.reason == "content_type"


@pytest.mark.parametrize("status", [400, 403, 404, 410])
def test_fetch_client_error_refused(site, fetch_settings, status):
    url = site.add("/gone", Answer(b"no", status=status, headers=HTML))
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(retries=2), url)
    assert (err.value.reason, err.value.status) == (f"http_{status}", status)
    assert len(site.hits("/gone")) == 1  # never retried


def test_fetch_file_url_refused_unless_allowed(tmp_path, fetch_settings):
    page = tmp_path / "page.html"
    page.write_bytes(PAGE)
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), page.as_uri())
    assert err.value.reason == "scheme"
    assert get(fetch_settings(), page.as_uri(), allow_file=True).content == PAGE


# -- retries -------------------------------------------------------------------------------
@pytest.mark.parametrize("retry_after", [1, 2])  # 2: not the 1 s default backoff of a first retry
def test_fetch_retry_after_honoured_then_success(site, fetch_settings, retry_after):
    url = site.add("/busy", [Answer(b"busy", status=503, headers={"Retry-After": str(retry_after)}),
                             Answer(PAGE, headers=HTML)])
    started = time.monotonic()
    resp = get(fetch_settings(retries=2), url)
    assert resp.content == PAGE
    hits = site.hits("/busy")
    assert len(hits) == 2
    assert retry_after - 0.05 <= hits[1].at - hits[0].at < retry_after + 1  # waited as asked
    assert time.monotonic() - started < retry_after + 3


def test_fetch_retry_after_beyond_limit_gives_up_without_waiting(site, fetch_settings):
    url = site.add("/slow-down", Answer(b"", status=429, headers={"Retry-After": "3600"}))
    slept: list[float] = []
    started = time.monotonic()
    with Fetcher(fetch_settings(retries=3, max_retry_after=5), sleep=slept.append) as f:
        with pytest.raises(TransientFetchError) as err:
            f.get(url, max_bytes=MiB)
    assert (err.value.reason, err.value.status) == ("http_429", 429)
    assert slept == []
    assert len(site.hits("/slow-down")) == 1
    assert time.monotonic() - started < 2


def test_fetch_server_errors_retried_then_transient(site, fetch_settings):
    url = site.add("/down", Answer(b"", status=500))
    slept: list[float] = []
    with Fetcher(fetch_settings(retries=2), sleep=slept.append) as f:
        with pytest.raises(TransientFetchError) as err:
            f.get(url, max_bytes=MiB)
    assert err.value.status == 500
    assert len(site.hits("/down")) == 3
    assert slept == [1.0, 2.0]  # exponential backoff without Retry-After


def test_fetch_read_timeout_is_transient(site, fetch_settings):
    url = site.add("/stall", Answer(PAGE, headers=HTML, delay=1.5))
    with pytest.raises(TransientFetchError) as err:
        get(fetch_settings(read_timeout=0.3), url)
    assert err.value.reason == "timeout"


@pytest.mark.parametrize("respect_robots, reason", [(False, "network"), (True, "robots_unreachable")])
def test_fetch_connection_refused_is_transient(fetch_settings, respect_robots, reason):
    with pytest.raises(TransientFetchError) as err:
        get(fetch_settings(respect_robots=respect_robots), "http://127.0.0.1:1/")
    assert err.value.reason == reason


# -- robots.txt ------------------------------------------------------------------------------
def test_fetch_robots_disallow_refused(http_server, fetch_settings):
    url = http_server.add("/private/page", Answer(PAGE, headers=HTML))
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), url)
    assert err.value.reason == "robots"
    assert http_server.hits("/private/page") == []


@pytest.mark.parametrize("robots, allowed", [
    (Answer(b"User-agent: newsmon\nDisallow: /\n\nUser-agent: *\nAllow: /\n"), False),  # our own group
    (Answer(b"User-agent: otherbot\nDisallow: /\n"), True),
    (Answer(b"gone", status=404), True),    # no robots.txt: everything allowed
    (Answer(b"no", status=403), True),      # RFC 9309: 4xx is "unavailable", allowed
])
def test_fetch_robots_answers_decide(make_server, fetch_settings, robots, allowed):
    server = make_server(robots)
    url = server.add("/page", Answer(PAGE, headers=HTML))
    if allowed:
        assert get(fetch_settings(), url).content == PAGE
    else:
        with pytest.raises(RefusedFetchError, match="robots.txt"):
            get(fetch_settings(), url)
        assert server.hits("/page") == []


@pytest.mark.parametrize("robots", [Answer(b"", status=503), Answer(b"", status=500)])
def test_fetch_robots_unreachable_means_not_now(make_server, fetch_settings, robots):
    server = make_server([robots, Answer(b"User-agent: *\nAllow: /\n")])  # down, then back
    url = server.add("/page", Answer(PAGE, headers=HTML))
    with Fetcher(fetch_settings()) as f:
        with pytest.raises(TransientFetchError) as err:
            f.get(url, max_bytes=MiB)
        assert err.value.reason == "robots_unreachable"
        assert server.hits("/page") == []
        assert f.get(url, max_bytes=MiB).content == PAGE  # asked again, not cached as "allowed"
    assert len(server.hits("/robots.txt")) == 2


def test_fetch_robots_ignored_when_disabled(http_server, fetch_settings):
    url = http_server.add("/private/open", Answer(PAGE, headers=HTML))
    assert get(fetch_settings(respect_robots=False), url).content == PAGE


def test_fetch_robots_read_once_per_origin(site, fetch_settings):
    urls = [site.add(f"/p{i}", Answer(PAGE, headers=HTML)) for i in range(3)]
    before = len(site.server.hits("/robots.txt"))
    with Fetcher(fetch_settings()) as f:
        for url in urls:
            f.get(url, max_bytes=MiB)
    assert len(site.server.hits("/robots.txt")) == before + 1


def test_fetch_per_host_delay_spaces_requests(site, fetch_settings):
    urls = [site.add(f"/d{i}", Answer(PAGE, headers=HTML)) for i in range(3)]
    with Fetcher(fetch_settings(per_host_delay=0.3)) as f:
        for url in urls:
            f.get(url, max_bytes=MiB)
    times = [site.hits(f"/d{i}")[0].at for i in range(3)]
    assert all(b - a >= 0.25 for a, b in zip(times, times[1:]))
