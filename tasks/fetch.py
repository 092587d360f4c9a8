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
feed that came over the network, never a redirect's target, only regular files,
and (when the caller names a folder) only files whose real path lies inside it.

Bounds on hostile servers: `fetch.request_deadline_seconds` caps the whole of one
`get` (connect, headers, body, redirects and in-call retries; a watchdog shuts the
socket down, so a server trickling one byte at a time cannot hold a run), and the
body is decoded here, layer by layer (`Content-Encoding: gzip, gzip`), in bounded
steps with the byte cap applied to every layer's output as it streams, so a
compression bomb is refused after at most the cap, never held whole in memory.
Codings other than gzip and deflate (br, zstd, which newsmon never asks for) are
refused, not stored undecoded. In-call retry waits are capped per wait
(`max_retry_after`) and per run (`retry_wait_budget_seconds`): past them the URL
stays pending for a later run.

Politeness is kept per host name in a `FetchRun`, which several fetchers may share (the
pool of tasks/fetch_pool.py runs one per host, on threads of their own): one request to a
host at a time, each starting `per_host_delay` after the previous one went out; robots.txt
read once per origin; a name that did not resolve is not looked up again in the run; the
in-call retry waits of all of them count against one `retry_wait_budget_seconds`.
`TransientFetchError.unreachable` marks failures to reach the host at all (DNS, connection
refused, connect timeout), by which the pool gives a dead host up for the run.
"""
from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import email.utils
import ipaddress
import mimetypes
import os
import socket
import stat
import threading
import time
import urllib.parse
import urllib.request
import urllib.robotparser
import weakref
import zlib
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path

import httpx

from newsmon.errors import RefusedFetchError, TransientFetchError
from newsmon.settings import FetchSettings

__all__ = ["Fetcher", "FetchRun", "Response", "HTML_TYPES", "FEED_TYPES", "check_address", "host_of"]

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


_NAT64 = ipaddress.ip_network("64:ff9b::/96")  # RFC 6052 well-known prefix; 64:ff9b:1::/48 is private already


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> list[ipaddress.IPv4Address]:
    """The IPv4 addresses an IPv6 address carries: IPv4-mapped ::ffff:0:0/96, 6to4 2002::/16,
    Teredo 2001::/32 (server and client), NAT64 64:ff9b::/96. A gateway for these forms
    would deliver to the IPv4 address, so that is the one the guard must judge."""
    found = [a for a in (ip.ipv4_mapped, ip.sixtofour) if a is not None]
    found += list(ip.teredo or ())
    if ip in _NAT64:
        found.append(ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF))
    return found


def _blocked(ip: ipaddress.IPv4Address | ipaddress.IPv6Address) -> bool:
    if isinstance(ip, ipaddress.IPv6Address) and any(_blocked(v4) for v4 in _embedded_ipv4(ip)):
        return True
    if isinstance(ip, ipaddress.IPv6Address) and (ip.ipv4_mapped or ip in _NAT64):
        return False  # judged by its IPv4 address above (both prefixes count as "reserved" themselves)
    return (ip.is_loopback or ip.is_private or ip.is_link_local or ip.is_multicast
            or ip.is_reserved or ip.is_unspecified or not ip.is_global)


def check_address(host: str, port: int, allow_private: bool) -> str:
    """Resolve `host` and return the address to connect to; refuse non-public ones unless allowed."""
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
    except socket.gaierror as exc:
        raise TransientFetchError(f"cannot resolve {host}: {exc.strerror}", reason="dns", unreachable=True) from None
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


def host_of(url: str) -> str:
    """The host name a URL's requests go to, lower-cased: what the per-host delay is kept by
    ("" for a file URL or one too malformed to say; the fetch refuses those)."""
    try:
        return (urllib.parse.urlsplit(url).hostname or "").lower()
    except ValueError:
        return ""


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


class _Deadline:
    """The end of one `Fetcher.get`: a timer that, when it fires, shuts down every socket the
    host's client has open, so a read blocked on a trickling server returns at once (httpx's
    timeouts are per read: one byte every few seconds never trips them)."""

    def __init__(self, seconds: float, sockets: set[socket.socket]):
        self.seconds = seconds
        self.expires = time.monotonic() + seconds
        self.fired = False
        self._sockets = sockets
        self._lock = threading.Lock()
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True
        self._timer.start()

    def remaining(self) -> float:
        return self.expires - time.monotonic()

    def watch(self, sock: socket.socket | None) -> None:
        if sock is None:
            return
        with self._lock:
            self._sockets.add(sock)
            if self.fired:
                _shutdown(sock)

    def _fire(self) -> None:
        with self._lock:
            self.fired = True
            for sock in list(self._sockets):
                _shutdown(sock)

    def cancel(self) -> None:
        self._timer.cancel()


def _shutdown(sock: socket.socket) -> None:
    try:
        sock.shutdown(socket.SHUT_RDWR)
    except OSError:
        pass  # already closed


#: Content codings undone here; anything else (br, zstd, compress) is refused, not stored undecoded.
_CODINGS = {"gzip": zlib.MAX_WBITS | 16, "x-gzip": zlib.MAX_WBITS | 16, "deflate": zlib.MAX_WBITS}
MAX_CODINGS = 4
_STEP = 64 * 1024  # the most one decompression step may produce


def _codings(url: str, header_values: list[str]) -> list[str]:
    codings = [c.strip().lower() for c in header_values if c.strip() and c.strip().lower() != "identity"]
    unknown = [c for c in codings if c not in _CODINGS]
    if unknown:
        raise RefusedFetchError(f"refused {url}: Content-Encoding {unknown[0]!r} is not supported "
                                "(newsmon asks for gzip or deflate only)", reason="encoding")
    if len(codings) > MAX_CODINGS:
        raise RefusedFetchError(f"refused {url}: {len(codings)} layers of Content-Encoding "
                                f"(at most {MAX_CODINGS})", reason="encoding")
    return codings


def _too_large(url: str, max_bytes: int, status: int | None) -> RefusedFetchError:
    return RefusedFetchError(f"refused {url}: body exceeds {max_bytes} bytes", reason="too_large", status=status)


def _undo(chunks: Iterator[bytes], coding: str, *, url: str, max_bytes: int, status: int) -> Iterator[bytes]:
    """Undo one content coding as the bytes stream in: at most _STEP bytes out per step, and
    the layer refused as soon as its output passes `max_bytes`. Data after the end of the
    compressed stream is ignored, as httpx did."""
    inflater = zlib.decompressobj(_CODINGS[coding])
    first, total = True, 0

    def step(data: bytes) -> bytes:
        nonlocal inflater, first, total
        try:
            out = inflater.decompress(data, _STEP)
        except zlib.error as exc:
            if first and coding == "deflate":  # some servers send raw deflate, without the zlib header
                inflater, first = zlib.decompressobj(-zlib.MAX_WBITS), False
                return step(data)
            raise RefusedFetchError(f"cannot decode body of {url} ({coding}): {exc}", reason="decoding",
                                    status=status) from None
        first = False
        total += len(out)
        if total > max_bytes:
            raise _too_large(url, max_bytes, status)
        return out

    for data in chunks:
        while not inflater.eof:
            out = step(data)
            data = inflater.unconsumed_tail
            if out:
                yield out
            if not data and len(out) < _STEP:  # input used up and no output held back
                break
    if not inflater.eof:  # a truncated stream: what it holds so far
        try:
            out = inflater.flush()
        except zlib.error as exc:
            raise RefusedFetchError(f"cannot decode body of {url} ({coding}): {exc}", reason="decoding",
                                    status=status) from None
        if total + len(out) > max_bytes:
            raise _too_large(url, max_bytes, status)
        if out:
            yield out


class FetchRun:
    """What the fetchers of one run share, so that several of them (one per host, on threads
    of their own: tasks/fetch_pool.py) are as polite together as one: each host's turn
    (the per-host delay), the robots.txt answers, the names that did not resolve, and the
    in-call retry waits counted against `retry_wait_budget_seconds`. Thread-safe."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._host_locks: dict[str, threading.RLock] = {}
        self._last_request: dict[str, float] = {}   # host -> monotonic time its latest request started
        self._retry_waited = 0.0                 # seconds slept for in-call retries in this run
        self.robots: dict[str, urllib.robotparser.RobotFileParser | None] = {}
        self._robots_locks: dict[str, threading.Lock] = {}
        # host names that did not resolve in this run: a feed listing 1,000 links to one dead
        # name cost 1,000 slow lookups (about 3 minutes); they are retried on the next run
        self.unresolved: dict[str, TransientFetchError] = {}

    @contextlib.contextmanager
    def turn(self, host: str, delay: float, sleep: Callable[[float], None]) -> Iterator[Callable[[], None]]:
        """`host`'s turn: one request to a host at a time, each starting at least `delay` seconds
        after the previous one started (whichever fetcher or thread sent it). Yields a call that
        marks the moment the request really goes out (after a new connection's set-up), from
        which the next turn counts."""
        with self._lock:
            lock = self._host_locks.setdefault(host, threading.RLock())
        with lock:
            last = self._last_request.get(host)
            now = time.monotonic()
            if last is not None and now - last < delay:
                sleep(delay - (now - last))
            self._last_request[host] = time.monotonic()

            def sent() -> None:
                self._last_request[host] = time.monotonic()
            yield sent

    def spend_retry_wait(self, wait: float, budget: float) -> bool:
        """Count `wait` seconds of in-call retry against the run's budget; False (nothing counted) past it."""
        with self._lock:
            if self._retry_waited + wait > budget:
                return False
            self._retry_waited += wait
            return True

    def robots_lock(self, origin: str) -> threading.Lock:
        """One lock per origin: its robots.txt is asked for once, whoever needs it first."""
        with self._lock:
            return self._robots_locks.setdefault(origin, threading.Lock())


class Fetcher:
    """A polite, guarded HTTP client. One per run, or one per host and thread sharing one
    `FetchRun` (tasks/fetch_pool.py); a Fetcher itself is used by one thread at a time."""

    def __init__(self, settings: FetchSettings, *, sleep: Callable[[float], None] = time.sleep,
                 run: FetchRun | None = None):
        self.settings = settings
        self._sleep = sleep
        self._run = run if run is not None else FetchRun()
        self._allow_hosts = frozenset(settings.allow_hosts)
        # One pooled client per host name: requests go to the checked IP, and httpx pools
        # connections by IP and port, so a shared pool would reuse a TLS connection opened
        # (and certificate-checked) for one name for another name on the same address.
        self._clients: dict[str, httpx.Client] = {}
        self._sockets: weakref.WeakSet[socket.socket] = weakref.WeakSet()  # every open connection's socket
        self._deadline: _Deadline | None = None
        self._sent: Callable[[], None] | None = None  # marks the request of this host's turn as sent

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

    def _trace(self, event: str, info: dict) -> None:
        """httpcore's trace hook: note each new connection's socket, for the deadline's watchdog,
        and the moment the request goes out, from which the host's next turn counts."""
        if event == "http11.send_request_headers.started" and self._sent is not None:
            self._sent()
        # start_tls too: wrapping a socket in TLS detaches the plain one, so that one is noted again
        if event in ("connection.connect_tcp.complete", "connection.start_tls.complete") \
                and info.get("return_value") is not None:
            sock = info["return_value"].get_extra_info("socket")
            if self._deadline is not None:
                self._deadline.watch(sock)
            elif sock is not None:
                self._sockets.add(sock)

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
            headers: dict[str, str] | None = None, allow_file: bool | Path = False,
            check_robots: bool = True) -> Response:
        """GET with retries on transient failures; see the module docstring for what it raises.

        `allow_file`: False refuses file URLs; True reads the file URL asked for (an operator's
        own feed file); a folder reads it only when its real path lies inside that folder.
        Redirects never lead to a file. The whole call ends within request_deadline_seconds.
        """
        attempts = self.settings.retries + 1
        self._deadline = deadline = _Deadline(self.settings.request_deadline_seconds, self._sockets)
        try:
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
                    if wait >= deadline.remaining():
                        raise
                    if not self._run.spend_retry_wait(wait, self.settings.retry_wait_budget_seconds):
                        raise  # this run has waited for retries long enough: a later run retries
                    self._sleep(wait)
            raise AssertionError("unreachable")
        finally:
            deadline.cancel()
            self._deadline = None

    # -- one attempt, following redirects by hand --------------------------------
    def _get_once(self, url: str, *, max_bytes: int, accept: tuple[str, ...], headers: dict[str, str],
                  allow_file: bool | Path, check_robots: bool) -> Response:
        current = url
        for _hop in range(self.settings.max_redirects + 1):
            parts = _split(current)
            scheme = parts.scheme.lower()
            if scheme == "file":
                if allow_file is False:
                    raise RefusedFetchError(f"refused {current}: file URLs are only read from local feeds",
                                            reason="scheme")
                if current != url:  # a redirect (from http, or a page of a local feed) never reads a file
                    raise RefusedFetchError(f"refused redirect of {url} to {current}: redirects never lead to "
                                            "a file", reason="scheme")
                return self._read_file(url, max_bytes, accept, None if allow_file is True else allow_file)
            if scheme not in ("http", "https") or not parts.hostname:
                raise RefusedFetchError(f"refused {current}: only http(s) URLs are fetched", reason="scheme")
            host = parts.hostname
            port = parts.port or (443 if scheme == "https" else 80)
            if host in self._run.unresolved:
                raise self._run.unresolved[host]
            try:
                address = check_address(host, port, self.settings.allow_private_networks
                                         or _origin_key(host, port) in self._allow_hosts)
            except TransientFetchError as exc:
                if exc.reason == "dns":
                    self._run.unresolved[host] = exc
                raise
            if check_robots and self.settings.respect_robots and not self._robots_allow(current):
                raise RefusedFetchError(f"refused {current}: disallowed by robots.txt", reason="robots")
            with self._run.turn(host, self.settings.per_host_delay, self._sleep) as self._sent:
                try:
                    resp = self._request(current, parts, address, headers, max_bytes)
                finally:
                    self._sent = None
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

    def _past_deadline(self, url: str) -> TransientFetchError:
        seconds = self._deadline.seconds if self._deadline else self.settings.request_deadline_seconds
        return TransientFetchError(f"no complete answer from {url} within {seconds:g} s "
                                   "(fetch.request_deadline_seconds)", reason="deadline")

    def _request(self, url: str, parts: urllib.parse.SplitResult, address: str, headers: dict[str, str],
                 max_bytes: int) -> Response:
        deadline = self._deadline
        if deadline is not None and deadline.remaining() <= 0:
            raise self._past_deadline(url)
        ip_host = f"[{address}]" if ":" in address else address
        port = f":{parts.port}" if parts.port else ""
        pinned = parts._replace(netloc=f"{ip_host}{port}").geturl()
        host_header = parts.hostname + port if ":" not in parts.hostname else f"[{parts.hostname}]{port}"
        req_headers = {"Host": host_header, **headers}
        extensions = {"sni_hostname": parts.hostname} if parts.scheme == "https" else {}
        extensions["trace"] = self._trace
        try:
            client = self._client_for(parts.hostname.lower())
            request = client.build_request("GET", pinned, headers=req_headers, extensions=extensions)
            r = client.send(request, stream=True)
            try:
                stream = r.extensions.get("network_stream")
                if stream is not None and deadline is not None:
                    deadline.watch(stream.get_extra_info("socket"))  # a pooled connection opened earlier
                declared = r.headers.get("content-length")
                if declared and declared.isdigit() and int(declared) > max_bytes:
                    raise RefusedFetchError(f"refused {url}: Content-Length {declared} exceeds {max_bytes} bytes",
                                            reason="too_large", status=r.status_code)
                # only a 2xx body is kept: a redirect's, a 304's or an error page's is read off the
                # wire (capped; the connection stays usable, no reset) but never decoded
                body = self._read_body(r, url, max_bytes, decode=200 <= r.status_code < 300)
                return Response(url=url, final_url=url, status=r.status_code,
                                headers={k.lower(): v for k, v in r.headers.items()},
                                content=body, fetched_at=dt.datetime.now(dt.timezone.utc))
            finally:
                r.close()
        except httpx.InvalidURL as exc:
            raise RefusedFetchError(f"refused {url}: malformed URL ({exc})", reason="bad_url") from None
        except httpx.TimeoutException as exc:
            if deadline is not None and deadline.fired:
                raise self._past_deadline(url) from None
            raise TransientFetchError(f"timeout fetching {url}: {type(exc).__name__}", reason="timeout",
                                      unreachable=isinstance(exc, httpx.ConnectTimeout)) from None
        except httpx.TransportError as exc:
            if deadline is not None and deadline.fired:
                raise self._past_deadline(url) from None
            raise TransientFetchError(f"network error fetching {url}: {exc}", reason="network",
                                      unreachable=isinstance(exc, httpx.ConnectError)) from None

    def _read_body(self, r: httpx.Response, url: str, max_bytes: int, decode: bool = True) -> bytes:
        """The body, decoded here (not by httpx, which undoes a whole layer at once): both what
        came over the wire and every decoded layer capped at `max_bytes` as the bytes stream.
        With decode=False the body is read and dropped: b""."""
        status = r.status_code
        codings = _codings(url, r.headers.get_list("content-encoding", split_commas=True)) if decode else []
        deadline = self._deadline
        received = 0

        def wire() -> Iterator[bytes]:
            nonlocal received
            for chunk in r.iter_raw(_STEP):
                received += len(chunk)
                if received > max_bytes:
                    raise _too_large(url, max_bytes, status)
                yield chunk
                if deadline is not None and deadline.fired:
                    raise self._past_deadline(url)

        stream: Iterator[bytes] = wire()
        if not decode:
            for _ in stream:
                pass
            return b""
        for coding in reversed(codings):  # listed in the order applied: undo the last first
            stream = _undo(stream, coding, url=url, max_bytes=max_bytes, status=status)
        chunks, size = [], 0
        for chunk in stream:
            size += len(chunk)
            if size > max_bytes:
                raise _too_large(url, max_bytes, status)
            chunks.append(chunk)
        if deadline is not None and deadline.fired:  # the socket was shut down: the body may be cut short
            raise self._past_deadline(url)
        return b"".join(chunks)

    def _read_file(self, url: str, max_bytes: int, accept: tuple[str, ...], root: Path | None) -> Response:
        """A local file: a regular file only (never a device, FIFO or directory), at most
        `max_bytes + 1` bytes read, and inside `root` (by real path: no symlink out) if given."""
        path = Path(urllib.request.url2pathname(urllib.parse.urlsplit(url).path))
        try:
            real = path.resolve()
            if root is not None and not real.is_relative_to(root.resolve()):
                raise RefusedFetchError(f"refused {url}: {real} is outside the local feed's folder {root}",
                                        reason="outside_root")
            fd = os.open(real, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0))
            with os.fdopen(fd, "rb") as fh:
                info = os.fstat(fh.fileno())
                if not stat.S_ISREG(info.st_mode):
                    raise RefusedFetchError(f"refused {url}: not a regular file", reason="not_a_file")
                if info.st_size > max_bytes:
                    raise RefusedFetchError(f"refused {url}: {info.st_size} bytes exceeds {max_bytes}",
                                            reason="too_large")
                data = fh.read(max_bytes + 1)
            if len(data) > max_bytes:
                raise RefusedFetchError(f"refused {url}: more than {max_bytes} bytes", reason="too_large")
        except FileNotFoundError:
            raise RefusedFetchError(f"{url}: no such file", reason="http_404", status=404) from None
        except (OSError, RuntimeError) as exc:  # RuntimeError: a symlink loop (Python < 3.13)
            raise RefusedFetchError(f"{url}: {getattr(exc, 'strerror', None) or exc}", reason="io") from None
        ctype = mimetypes.guess_type(path.name)[0] or "application/octet-stream"
        if path.suffix in (".xml", ".rss", ".atom"):
            ctype = "application/xml"
        if accept and not ctype.startswith(accept):
            raise RefusedFetchError(f"refused {url}: content type {ctype!r}", reason="content_type")
        return Response(url=url, final_url=url, status=200, headers={"content-type": ctype},
                        content=data, fetched_at=dt.datetime.now(dt.timezone.utc))

    # -- politeness ------------------------------------------------------------
    def _robots_allow(self, url: str) -> bool:
        parts = urllib.parse.urlsplit(url)
        origin = f"{parts.scheme}://{parts.netloc}"
        with self._run.robots_lock(origin):
            return self._robots_allow_locked(url, origin)

    def _robots_allow_locked(self, url: str, origin: str) -> bool:
        if origin not in self._run.robots:
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
                                          reason="robots_unreachable", status=exc.status,
                                          unreachable=exc.unreachable) from None
            self._run.robots[origin] = parser
        parser = self._run.robots[origin]
        return parser is None or parser.can_fetch(self.settings.user_agent, url)
