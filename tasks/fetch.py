"""Fetch stage: one guarded HTTP client for feeds, pages and robots.txt.

`Fetcher.get(url)` returns the body of a URL or raises:

- `RefusedFetchError`: policy or a permanent answer; recorded, never retried
  (private address, robots.txt, byte cap, wrong content type, 4xx, too many redirects,
  a malformed URL);
- `TransientFetchError`: timeouts, connection errors, 429 and 5xx after the
  in-call retries (which honour Retry-After), or an unreachable robots.txt;
  a later run tries again.

The SSRF guard resolves the host first and refuses loopback, private, link-local,
multicast, reserved and unspecified addresses unless `allow_private_networks` is
set (or the exact host:port is listed in `allow_hosts`); the request then goes to
the address that was checked (the URL is pinned to the IP, with Host header and TLS
SNI set to the name), so a DNS answer that changes between check and connect cannot
slip through. Redirects are followed by hand, each hop checked again.

`file://` URLs are read only when the caller allows it: the operator's own file
feeds (the bundled sample) and the links inside them, never a link found in a
feed that came over the network.
"""
from __future__ import annotations

import dataclasses
import datetime as dt
import email.utils
import ipaddress
import mimetypes
import socket
import time
import urllib.parse
import urllib.request
import urllib.robotparser
from collections.abc import Callable, Iterable
from pathlib import Path

import httpx

from newsmon.errors import RefusedFetchError, TransientFetchError
from newsmon.settings import FetchSettings

__all__ = ["Fetcher", "Response", "HTML_TYPES", "FEED_TYPES", "check_address"]

HTML_TYPES = ("text/html", "application/xhtml+xml")
FEED_TYPES = ("application/rss+xml", "application/atom+xml", "application/rdf+xml", "application/xml",
              "text/xml", "application/x-rss+xml", "text/rss+xml", "text/atom+xml", "text/rdf+xml",
              "text/plain", "text/html", "application/octet-stream", "application/feed+json", "application/json")
RETRY_STATUSES = {429, 500, 502, 503, 504}
REDIRECT_STATUSES = {301, 302, 303, 307, 308}


@dataclasses.dataclass(frozen=True)
class Response:
    url: str                 # what was asked for
    final_url: str           # after redirects
    status: int
    headers: dict[str, str]
    content: bytes
    fetched_at: dt.datetime

    @property
    def content_type(self) -> str:
        return self.headers.get("content-type", "")

    @property
    def not_modified(self) -> bool:
        return self.status == 304


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def check_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` and return the address to connect to; refuse non-public ones unless allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransientFetchError(f"cannot resolve {host}: {exc.strerror}", reason="dns") from None
    except UnicodeError as exc:  # the IDNA codec: an empty or over-long label
        raise RefusedFetchError(f"refused {host}: not a valid host name ({exc})", reason="bad_url") from None
    addresses = [ipaddress.ip_address(info[4][0].split("%")[0]) for info in infos]
    if not allow_private:
        bad = [a for a in addresses if _blocked(a)]
        if bad:
            raise RefusedFetchError(
                f"refused {host}: resolves to non-public address {bad[0]} "
                "(set fetch.allow_private_networks = true to allow)", reason="ssrf")
    return str(addresses[0])


def _split(url: str) -> urllib.parse.SplitResult:
    """urlsplit, with a bad port or IPv6 literal as a refusal: URLs come from feeds and redirects,
    and one malformed link must not stop a run (a ValueError here used to escape the fetch stage)."""
    try:
        parts = urllib.parse.urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port out of range or not a number
    except ValueError as exc:
        raise RefusedFetchError(f"refused {url[:500]}: malformed URL ({exc})", reason="bad_url") from None
    return parts


def _join(base: str, location: str) -> str:
    try:
        return urllib.parse.urljoin(base, location)
    except ValueError as exc:
        raise RefusedFetchError(f"refused redirect to {location[:500]}: malformed URL ({exc})",
                                reason="bad_url") from None


def _origin_key(host: str, port: int) -> str:
    """"host:port" as `FetchSettings.allow_hosts` spells it (IPv6 in brackets)."""
    host = host.lower()
    return f"[{host}]:{port}" if ":" in host else f"{host}:{port}"


def _retry_after(value: str | None, now: float) -> float | None:
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return max(0.0, when.timestamp() - now)


class Fetcher:
    """A polite, guarded HTTP client. One per run; not thread-safe."""

    def __init__(self, settings: FetchSettings, *, sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self._sleep = sleep
        self._last_request: dict[str, float] = {}
        self._robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._allow_hosts = frozenset(settings.allow_hosts)
        # One pooled client per host name: requests go to the checked IP, and httpx pools
        # connections by IP and port, so a shared pool would reuse a TLS connection opened
        # (and certificate-checked) for one name for another name on the same address.
        self._clients: dict[str, httpx.Client] = {}

    def _client_for(self, host: str) -> httpx.Client:
        client = self._clients.get(host)
        if client is None:
            client = self._clients[host] = httpx.Client(
                timeout=httpx.Timeout(self.settings.read_timeout, connect=self.settings.connect_timeout),
                follow_redirects=False,
                headers={"User-Agent": self.settings.user_agent, "Accept-Encoding": "gzip, deflate"},
                trust_env=False,
            )
        return client

    def close(self) -> None:
        for client in self._clients.values():
            client.close()
        self._clients.clear()

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # -- public ----------------------------------------------------------------
    def get(self, url: str, *, max_bytes: int, accept: Iterable[str] = HTML_TYPES,
            headers: dict[str, str] | None = None, allow_file: bool = False,
            check_robots: bool = True) -> Response:
        """GET with retries on transient failures; see the module docstring for what it raises."""
        attempts = self.settings.retries + 1
        for attempt in range(attempts):
            try:
                return self._get_once(url, max_bytes=max_bytes, accept=tuple(accept), headers=headers or {},
                                      allow_file=allow_file, check_robots=check_robots)
            except TransientFetchError as exc:
                if attempt + 1 >= attempts:
                    raise
                wait = getattr(exc, "retry_after", None)
                if wait is None:
                    wait = min(2.0 ** attempt, self.settings.max_retry_after)
                if wait > self.settings.max_retry_after:
                    raise  # the server asks for longer than we wait inside one run: a later run retries
                self._sleep(wait)
        raise AssertionError("unreachable")

    # -- one attempt, following redirects by hand --------------------------------
    def _get_once(self, url: str, *, max_bytes: int, accept: tuple[str, ...], headers: dict[str, str],
                  allow_file: bool, check_robots: bool) -> Response:
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            parts = _split(current)
            scheme = parts.scheme.lower()
            if scheme == "file":
                if not allow_file:
                    raise RefusedFetchError(f"refused {current}: file URLs are only read from local feeds",
                                            reason="scheme")
                return self._read_file(url, current, max_bytes, accept)
            if scheme not in ("http", "https") or not parts.hostname:
                raise RefusedFetchError(f"refused {current}: only http(s) URLs are fetched", reason="scheme")
            host = parts.hostname
            port = parts.port or (443 if scheme == "https" else 80)
            address = check_address(host, port, self.settings.allow_private_networks
                                     or _origin_key(host, port) in self._allow_hosts)
            if check_robots and self.settings.respect_robots and not self._robots_allow(current, allow_file):
                raise RefusedFetchError(f"refused {current}: disallowed by robots.txt", reason="robots")
            self._wait_turn(host)
            resp = self._request(current, parts, address, headers, max_bytes)
            if resp.status in REDIRECT_STATUSES and resp.headers.get("location"):
                current = _join(current, resp.headers["location"])
                continue
            if resp.status == 304:
                return dataclasses.replace(resp, url=url)
            if resp.status in RETRY_STATUSES:
                exc = TransientFetchError(f"{current} answered {resp.status}", reason=f"http_{resp.status}",
                                          status=resp.status)
                exc.retry_after = _retry_after(resp.headers.get("retry-after"), time.time())
                raise exc
            if resp.status >= 400 or resp.status < 200:
                raise RefusedFetchError(f"{current} answered {resp.status}", reason=f"http_{resp.status}",
                                        status=resp.status)
            ctype = resp.content_type.split(";")[0].strip().lower()
            if accept and ctype and not ctype.startswith(accept):
                raise RefusedFetchError(f"refused {current}: content type {ctype!r} is not one of {', '.join(accept)}",
                                        reason="content_type", status=resp.status)
            return dataclasses.replace(resp, url=url)
        raise RefusedFetchError(f"refused {url}: more than {self.settings.max_redirects} redirects",
                                reason="redirects")

    def _request(self, url: str, parts: urllib.parse.SplitResult, address: str, headers: dict[str, str],
                 max_bytes: int) -> Response:
        ip_host = f"[{address}]" if ":" in address else address
        port = f":{parts.port}" if parts.port else ""
        pinned = parts._replace(netloc=f"{ip_host}{port}").geturl()
        host_header = parts.hostname + port if ":" not in parts.hostname else f"[{parts.hostname}]{port}"
        req_headers = {"Host": host_header, **headers}
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        try:
            client = self._client_for(parts.hostname.lower())
            request = client.build_request("GET", pinned, headers=req_headers, extensions=extensions)
            r = client.send(request, stream=True)
            try:
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise RefusedFetchError(f"refused {url}: Content-Length {declared} exceeds {max_bytes} bytes",
                                            reason="too_large", status=r.status_code)
                chunks, size = [], 0
                for chunk in r.iter_bytes():
                    size += len(chunk)
                    # both caps: what came over the wire and what it decompresses to
                    if size > max_bytes or r.num_bytes_downloaded > max_bytes:
                        raise RefusedFetchError(f"refused {url}: body exceeds {max_bytes} bytes",
                                                reason="too_large", status=r.status_code)
                    chunks.append(chunk)
                return Response(url=url, final_url=url, status=r.status_code,
                                headers={k.lower(): v for k, v in r.headers.items()},
                                content=b"".join(chunks), fetched_at=dt.datetime.now(dt.timezone.utc))
            finally:
                r.close()
        except httpx.InvalidURL as exc:
            raise RefusedFetchError(f"refused {url}: malformed URL ({exc})", reason="bad_url") from None
        except httpx.TimeoutException as exc:
            raise TransientFetchError(f"timeout fetching {url}: {type(exc).__name__}", reason="timeout") from None
        except httpx.DecodingError as exc:
            raise RefusedFetchError(f"cannot decode body of {url}: {exc}", reason="decoding") from None
        except httpx.TransportError as exc:
            raise TransientFetchError(f"network error fetching {url}: {exc}", reason="network") from None

    def _read_file(self, url: str, current: str, max_bytes: int, accept: tuple[str, ...]) -> Response:
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(current).path))
        try:
            size = path.stat().st_size
            if size > max_bytes:
                raise RefusedFetchError(f"refused {current}: {size} bytes exceeds {max_bytes}", reason="too_large")
            data = path.read_bytes()
        except FileNotFoundError:
            raise RefusedFetchError(f"{current}: no such file", reason="http_404", status=404) from None
        except OSError as exc:
            raise RefusedFetchError(f"{current}: {exc.strerror}", reason="io") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".xml", ".rss", ".atom"):
            ctype = "application/xml"
        if accept and not ctype.startswith(accept):
            raise RefusedFetchError(f"refused {current}: content type {ctype!r}", reason="content_type")
        return Response(url=url, final_url=current, status=200, headers={"content-type": ctype},
                        content=data, fetched_at=dt.datetime.now(dt.timezone.utc))

    # -- politeness ------------------------------------------------------------
    def _wait_turn(self, host: str) -> None:
        last = self._last_request.get(host)
        now = time.monotonic()
        if last is not None and now - last < self.settings.per_host_delay:
            self._sleep(self.settings.per_host_delay - (now - last))
        self._last_request[host] = time.monotonic()

    def _robots_allow(self, url: str, allow_file: bool) -> bool:
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        if origin not in self._robots:
            parser: urllib.robotparser.RobotFileParser | None = None
            try:
                resp = self._get_once(origin + "/robots.txt", max_bytes=512 * 1024, accept=(), headers={},
                                      allow_file=False, check_robots=False)
                parser = urllib.robotparser.RobotFileParser()
                parser.parse(resp.content.decode("utf-8", "replace").splitlines())
            except RefusedFetchError as exc:
                if exc.reason == "ssrf":
                    raise
                parser = None  # no robots.txt (404 and the like): everything allowed
            except TransientFetchError as exc:
                # RFC 9309 2.3.1.4: robots.txt unreachable (5xx, timeout, network) means complete
                # disallow, not "everything allowed"; not cached, the page is retried on a later run.
                raise TransientFetchError(f"not fetching {url} now: robots.txt of {origin} is unreachable ({exc})",
                                          reason="robots_unreachable", status=exc.status) from None
            self._robots[origin] = parser
        parser = self._robots[origin]
        return parser is None or parser.can_fetch(self.settings.user_agent, url)
