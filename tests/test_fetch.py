"""tasks.fetch: the guarded HTTP client, against the real local server.

SSRF guard (default settings refuse loopback and private addresses, every redirect
hop is checked again), byte caps (declared, streamed, decompressed), content types,
redirects, retries honouring Retry-After, robots.txt.
"""
from __future__ import annotations

import gzip
import time

import pytest

from conftest import CONTROL_PAGE, Answer, control_feed, gzip_bomb, has_ipv6_loopback, layered_gzip_bomb
from newsmon.errors import RefusedFetchError, TransientFetchError
from newsmon.settings import FetchSettings
from tasks.fetch import FEED_TYPES, HTML_TYPES, Fetcher, check_address

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


# -- hostile servers (issue 9): each reproduces an attacker's finding ----------------------------
@pytest.mark.parametrize("host", [
    "2002:7f00:1::",                            # 6to4 of 127.0.0.1
    "2002:a00:1::1",                            # 6to4 of 10.0.0.1
    "2002:a9fe:a9fe::",                         # 6to4 of the metadata address 169.254.169.254
    "2001:0:4136:e378:8000:63bf:80ff:fffe",     # Teredo, client 127.0.0.1 (obfuscated)
    "64:ff9b::7f00:1",                          # NAT64 of 127.0.0.1
    "64:ff9b::a9fe:a9fe",                       # NAT64 of 169.254.169.254
    "::127.0.0.1",                              # IPv4-compatible (deprecated)
])
def test_fetch_embedded_ipv4_forms_refused(site, host):
    site.add("/secret", Answer(PAGE, headers=HTML))
    with pytest.raises(RefusedFetchError) as err:
        get(FetchSettings(), f"http://[{host}]:{site.server.port}{site.prefix}/secret")
    assert err.value.reason == "ssrf"
    assert site.hits() == []


@pytest.mark.parametrize("host", ["2002:808:808::1", "64:ff9b::808:808"])  # 8.8.8.8 behind 6to4, NAT64
def test_fetch_embedded_public_ipv4_passes_the_guard(host):
    assert check_address(host, 80, allow_private=False) == host


@pytest.mark.parametrize("warm", [False, True], ids=["new-connection", "pooled-connection"])
def test_fetch_trickling_server_cut_at_deadline(site, fetch_settings, warm):
    # one byte every 0.2 s, status line and headers included: every read is quick, the answer never ends
    site.add("/ok", Answer(PAGE, headers=HTML))
    url = site.add("/slow", Answer(PAGE, headers=HTML, trickle=0.2))
    with Fetcher(fetch_settings(request_deadline_seconds=1.0, read_timeout=30)) as f:
        if warm:  # the trickle then comes on a kept-alive connection opened by an earlier request
            f.get(site.url("/ok"), max_bytes=MiB)
        started = time.monotonic()
        with pytest.raises(TransientFetchError) as err:
            f.get(url, max_bytes=MiB)
        elapsed = time.monotonic() - started
        assert f.get(site.url("/ok"), max_bytes=MiB).content == PAGE  # the fetcher still works after
    assert err.value.reason == "deadline"
    assert "fetch.request_deadline_seconds" in str(err.value)
    assert elapsed < 5  # the whole answer would take about 40 s


def test_fetch_deadline_covers_retries(site, fetch_settings):
    url = site.add("/busy", Answer(b"", status=503, headers={"Retry-After": "2"}))
    started = time.monotonic()
    with pytest.raises(TransientFetchError):
        get(fetch_settings(retries=5, request_deadline_seconds=1.0), url)
    assert len(site.hits("/busy")) == 1  # a 2 s wait does not fit in what is left of 1 s
    assert time.monotonic() - started < 1.5


def test_fetch_retry_after_30_on_429_leaves_the_page_for_a_later_run(site, fetch_settings):
    # Retry-After: 30 on a 429 cost 60 s of every run (two in-call retries)
    url = site.add("/later", Answer(b"", status=429, headers={"Retry-After": "30"}))
    slept: list[float] = []
    with Fetcher(fetch_settings(retries=2), sleep=slept.append) as f:  # default max_retry_after
        with pytest.raises(TransientFetchError) as err:
            f.get(url, max_bytes=MiB)
    assert (err.value.reason, slept) == ("http_429", [])
    assert len(site.hits("/later")) == 1


def test_fetch_retry_waits_capped_per_run(site, fetch_settings):
    urls = [site.add(f"/b{i}", Answer(b"", status=503, headers={"Retry-After": "3"})) for i in range(4)]
    slept: list[float] = []
    with Fetcher(fetch_settings(retries=2, max_retry_after=5, retry_wait_budget_seconds=7),
                 sleep=slept.append) as f:
        for url in urls:
            with pytest.raises(TransientFetchError):
                f.get(url, max_bytes=MiB)
    assert slept == [3.0, 3.0]  # then the budget is spent: the other pages wait for the next run


# -- content codings ---------------------------------------------------------------------------
@pytest.mark.parametrize("layers", [2, 3])
def test_fetch_layered_gzip_bomb_refused_with_bounded_memory(site, fetch_settings, layers):
    # a 1.8 KB page with "gzip, gzip" reached 2.4-4.4 GB peak RSS: httpx undid a whole layer
    # before the byte cap looked; here the cap applies to every layer as it streams
    import tracemalloc

    url = site.add("/bomb", Answer(layered_gzip_bomb(1024 * MiB, layers),
                                  headers={**HTML, "Content-Encoding": ", ".join(["gzip"] * layers)}))
    tracemalloc.start()
    try:
        with pytest.raises(RefusedFetchError) as err:
            get(fetch_settings(), url, max_bytes=MiB)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert err.value.reason == "too_large"
    assert peak < 16 * MiB  # a few steps of 64 KiB over the 1 MiB cap; main held the GiB


@pytest.mark.parametrize("codings", [["gzip", "gzip"], ["deflate", "gzip"], ["gzip", "deflate", "gzip"]])
def test_fetch_layered_codings_under_cap_decoded(site, fetch_settings, codings):
    import zlib

    body = PAGE * 50
    for coding in codings:  # applied in the order listed
        body = gzip.compress(body) if coding == "gzip" else zlib.compress(body)
    url = site.add("/layers", Answer(body, headers={**HTML, "Content-Encoding": ", ".join(codings)}, chunked=True))
    assert get(fetch_settings(), url).content == PAGE * 50


def test_fetch_raw_deflate_decoded(site, fetch_settings):
    import zlib

    raw = zlib.compressobj(6, zlib.DEFLATED, -zlib.MAX_WBITS)
    url = site.add("/raw", Answer(raw.compress(PAGE) + raw.flush(), headers={**HTML, "Content-Encoding": "deflate"}))
    assert get(fetch_settings(), url).content == PAGE


@pytest.mark.parametrize("coding", ["br", "zstd", "compress", "gzip, br"])
def test_fetch_unsupported_coding_refused_not_stored_raw(site, fetch_settings, coding):
    # br bodies were stored undecoded
    url = site.add("/enc", Answer(b"\x1b\x03\x00\xf8\xa5\x02", headers={**HTML, "Content-Encoding": coding}))
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), url)
    assert err.value.reason == "encoding"
    assert "not supported" in str(err.value)


def test_fetch_corrupt_gzip_refused(site, fetch_settings):
    url = site.add("/bad", Answer(b"\x1f\x8b\x08\x00garbage-not-deflate",
                                  headers={**HTML, "Content-Encoding": "gzip"}))
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), url)
    assert err.value.reason == "decoding"


# -- file URLs ----------------------------------------------------------------------------------
def test_fetch_redirect_to_file_never_followed(site, fetch_settings, tmp_path):
    # an entry of a local file feed that answered 302 to file:///... was followed: the file landed in articles
    secret = tmp_path / "secret.html"
    secret.write_bytes(b"<html><body>root:x:0:0</body></html>")
    for target in (secret.as_uri(), "file:///dev/zero"):
        url = site.add("/to-file", Answer(b"", status=302, headers={"Location": target}))
        for allow in (True, tmp_path):
            with pytest.raises(RefusedFetchError) as err:
                get(fetch_settings(), url, allow_file=allow)
            assert err.value.reason == "scheme" and "redirect" in str(err.value)


@pytest.mark.parametrize("path", ["/dev/zero", "/dev/urandom", "/tmp"])
def test_fetch_file_url_reads_regular_files_only(fetch_settings, path):
    with pytest.raises(RefusedFetchError) as err:
        get(fetch_settings(), "file://" + path, allow_file=True, accept=())
    assert err.value.reason in ("not_a_file", "io")


def test_fetch_file_url_outside_the_folder_refused(fetch_settings, tmp_path):
    root, outside = tmp_path / "feeds", tmp_path / "outside"
    root.mkdir(), outside.mkdir()
    (outside / "secret.html").write_bytes(PAGE)
    (root / "page.html").write_bytes(PAGE)
    (root / "evil.html").symlink_to(outside / "secret.html")
    (root / "inner.html").symlink_to(root / "page.html")
    assert get(fetch_settings(), (root / "page.html").as_uri(), allow_file=root).content == PAGE
    assert get(fetch_settings(), (root / "inner.html").as_uri(), allow_file=root).content == PAGE
    for url in ((root / "evil.html").as_uri(), (outside / "secret.html").as_uri(),
                (root / ".." / "outside" / "secret.html").as_uri()):
        with pytest.raises(RefusedFetchError) as err:
            get(fetch_settings(), url, allow_file=root)
        assert err.value.reason == "outside_root"


def test_fetch_file_feed_pages_stay_in_their_folder(site, run_fetch_stages, tmp_path):
    # a local feed's entries: a page beside it (kept), a .html symlink to a file outside, a link to
    # file:///dev/zero, and an http page that redirects to a file; the control feed beside it
    conf, outside = tmp_path / "conf", tmp_path / "outside"
    (conf / "feeds").mkdir(parents=True), (conf / "pages").mkdir(), outside.mkdir()
    (outside / "secret.html").write_bytes(b"<html><body><p>" + b"secret text " * 20 + b"</p></body></html>")
    (conf / "pages" / "ok.html").write_bytes(CONTROL_PAGE.format(n="local", text="local page " * 20).encode())
    (conf / "pages" / "evil.html").symlink_to(outside / "secret.html")
    hop = site.add("/hop.html", Answer(b"", status=302, headers={"Location": (outside / "secret.html").as_uri()}))
    links = ["../pages/ok.html", "../pages/evil.html", "file:///dev/zero", hop]
    items = "".join(f"<item><title>{i}</title><link>{link}</link></item>" for i, link in enumerate(links))
    feed_file = conf / "feeds" / "local.xml"
    feed_file.write_text(f'<rss version="2.0"><channel><title>local</title>{items}</channel></rss>')
    control, pages = control_feed(site)
    run = run_fetch_stages({"local": feed_file.as_uri(), "control": control}, config_dir=conf)
    assert run.stored_pages() == {(conf / "pages" / "ok.html").as_uri(), *pages}
    refused = {r["url"]: r["reason"]
               for r in run.wh.read("SELECT url, reason FROM fetches WHERE outcome = 'refused'")}
    assert refused.pop((conf / "pages" / "evil.html").as_uri()) == "outside_root"
    assert refused.pop(hop) == "scheme"
    [(zero, reason)] = refused.items()  # feedparser spells it file://dev/zero; never read either way
    assert zero.endswith("dev/zero") and reason == "outside_root"
    assert run.wh.read("SELECT count(*) AS n FROM raw_blobs") == [{"n": 3}]  # nothing else was stored


def test_fetch_bundled_sample_pages_read_from_the_config_folder(run_fetch_stages):
    # the sample keeps its pages beside feeds/ (config/sample/pages): inside the config's folder
    from newsmon.settings import DEFAULT_CONFIG, load_settings

    settings = load_settings(DEFAULT_CONFIG)
    run = run_fetch_stages({f.name: f.url for f in settings.feeds}, config_dir=DEFAULT_CONFIG.parent)
    stored = run.stored_pages()
    assert stored and all(url.startswith((DEFAULT_CONFIG.parent / "sample").as_uri()) for url in stored)
    assert run.counts["pages"].get("refused", 0) == 0


def test_fetch_unresolvable_host_looked_up_once_per_run(fetch_settings):
    # 1,000 entries linking one dead name cost 1,000 slow DNS lookups in every run
    host = "newsmon-test.invalid"  # RFC 6761: never resolves
    with Fetcher(fetch_settings()) as f:
        started = time.monotonic()
        with pytest.raises(TransientFetchError) as first:
            f.get(f"http://{host}/0", max_bytes=MiB)
        once = time.monotonic() - started
        started = time.monotonic()
        for i in range(1, 50):
            with pytest.raises(TransientFetchError) as err:
                f.get(f"http://{host}/{i}", max_bytes=MiB)
            assert err.value.reason == "dns"
        assert time.monotonic() - started <= once + 0.5  # 49 more URLs cost about one lookup, not 49
    assert first.value.reason == "dns"
    with Fetcher(fetch_settings()) as f, pytest.raises(TransientFetchError):  # a new run asks again
        f.get(f"http://{host}/0", max_bytes=MiB)
