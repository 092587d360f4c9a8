"""Shared fixtures. Servers are real and listen on 127.0.0.1 only; nothing here mocks.

Other test modules may add fixtures below under their own comment header.
"""
from __future__ import annotations

import dataclasses
import functools
import gzip
import http.server
import itertools
import socket
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
if str(ROOT) not in sys.path:  # `pytest` run without `python -m`
    sys.path.insert(0, str(ROOT))

from newsmon.settings import FetchSettings  # noqa: E402


# -- HTTP fixtures -------------------------------------------------------------------
#
# One ThreadingHTTPServer on 127.0.0.1 for the whole session. Tests add routes under a
# path prefix of their own (the `site` fixture), so they never see each other's
# answers; every request is logged so tests can count what the client asked for.
# /robots.txt is shared by every route: it disallows /private/ only. `make_server`
# gives a test a server (an origin) of its own.

#: The shared real-world corpus, read in place at ../shared/corpus (never copied into the repo).
CORPUS = ROOT.parent / "shared" / "corpus"

ROBOTS_TXT = b"User-agent: *\nDisallow: /private/\n"


@dataclasses.dataclass
class Answer:
    """One canned answer. `body` may be bytes, a Path read at request time, or None (empty)."""
    body: bytes | Path | None = b""
    status: int = 200
    headers: dict[str, str] = dataclasses.field(default_factory=dict)
    chunked: bool = False          # no Content-Length: Transfer-Encoding: chunked
    delay: float = 0.0             # seconds to wait before answering
    gate: threading.Event | None = None  # answer only once this is set (or after `delay` if both)
    trickle: float = 0.0           # send the whole answer (status line, headers, body) one byte per this many seconds

    def payload(self) -> bytes:
        if self.body is None:
            return b""
        return self.body.read_bytes() if isinstance(self.body, Path) else self.body


@dataclasses.dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]   # lower-cased names
    at: float


#: A route answers with one Answer, a list of them (one per request, the last repeats),
#: or a callable taking the Request.
Route = Answer | list[Answer] | Callable[[Request], Answer]


class _QuietServer(http.server.ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request, client_address) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # a client hanging up is no error here
            super().handle_error(request, client_address)


class LocalServer:
    """`host`: the loopback address to listen on; 127.0.0.2, 127.0.0.3 ... stand for other hosts
    (the fetcher keeps its per-host delay and concurrency by host name, not by port)."""

    def __init__(self, robots: Route | None = None, host: str = "127.0.0.1") -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()
        self.routes["/robots.txt"] = robots or Answer(ROBOTS_TXT, headers={"Content-Type": "text/plain"})
        server = self

        class Handler(http.server.BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # else every small answer waits ~40 ms for a delayed ACK

            def log_message(self, *args) -> None:  # keep pytest output clean
                pass

            def do_GET(self) -> None:
                server._handle(self)

        self.httpd = _QuietServer((host, 0), Handler)
        self.host = host
        self.port = self.httpd.server_address[1]
        self.origin = f"http://{host}:{self.port}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="test-http", daemon=True)

    # -- test API --------------------------------------------------------------
    def url(self, path: str) -> str:
        return self.origin + path

    def add(self, path: str, route: Route) -> str:
        with self._lock:
            self.routes[path] = route
            self._counts.pop(path, None)
        return self.url(path)

    def hits(self, path_or_prefix: str, *, prefix: bool = False) -> list[Request]:
        with self._lock:
            return [r for r in self.requests
                    if (r.path.startswith(path_or_prefix) if prefix else r.path == path_or_prefix)]

    def wait_for(self, path: str, timeout: float = 60.0) -> Request:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = self.hits(path)
            if found:
                return found[0]
            time.sleep(0.02)
        raise TimeoutError(f"no request for {path} within {timeout}s")

    # -- serving ---------------------------------------------------------------
    def _handle(self, h: http.server.BaseHTTPRequestHandler) -> None:
        path = h.path.split("?", 1)[0]
        req = Request(path=h.path, headers={k.lower(): v for k, v in h.headers.items()}, at=time.monotonic())
        with self._lock:
            self.requests.append(req)
            route = self.routes.get(path)
            n = self._counts.get(path, 0)
            self._counts[path] = n + 1
        if route is None:
            answer = Answer(b"not found", status=404, headers={"Content-Type": "text/plain"})
        elif isinstance(route, list):
            answer = route[min(n, len(route) - 1)]
        elif callable(route):
            answer = route(req)
        else:
            answer = route
        if answer.gate is not None:
            answer.gate.wait(timeout=120)
        if answer.delay:
            time.sleep(answer.delay)
        body = answer.payload()
        if answer.trickle:
            self._trickle(h, answer, body)
            return
        try:
            h.send_response(answer.status)
            names = {k.lower() for k in answer.headers}
            for k, v in answer.headers.items():
                h.send_header(k, v)
            if answer.status == 304:
                h.end_headers()
                return
            if answer.chunked:
                h.send_header("Transfer-Encoding", "chunked")
                h.end_headers()
                for i in range(0, len(body), 16384):
                    piece = body[i:i + 16384]
                    h.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece))
                h.wfile.write(b"0\r\n\r\n")
            else:
                if "content-length" not in names:
                    h.send_header("Content-Length", str(len(body)))
                h.end_headers()
                h.wfile.write(body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (a size cap, a killed process): that is the point of some tests

    @staticmethod
    def _trickle(h: http.server.BaseHTTPRequestHandler, answer: Answer, body: bytes) -> None:
        """A slow-loris server: every byte of the answer on its own, `answer.trickle` seconds apart."""
        head = [f"HTTP/1.1 {answer.status} Trickle"] + [f"{k}: {v}" for k, v in answer.headers.items()]
        if not any(k.lower() == "content-length" for k in answer.headers):
            head.append(f"Content-Length: {len(body)}")
        raw = ("\r\n".join(head) + "\r\n\r\n").encode() + body
        h.close_connection = True
        try:
            for i in range(len(raw)):
                h.wfile.write(raw[i:i + 1])
                h.wfile.flush()
                time.sleep(answer.trickle)
        except OSError:
            pass  # the client hung up: what a deadline is for

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="session")
def http_server() -> Iterator[LocalServer]:
    """The session's local HTTP server (127.0.0.1, a free port)."""
    server = LocalServer()
    server.start()
    yield server
    server.stop()


@pytest.fixture
def make_server() -> Iterator[Callable[..., LocalServer]]:
    """Factory for a server of a test's own (another origin, its own robots.txt answer; with
    `host="127.0.0.2"`, another host)."""
    servers: list[LocalServer] = []

    def make(robots: Route | None = None, host: str = "127.0.0.1") -> LocalServer:
        server = LocalServer(robots, host)
        server.start()
        servers.append(server)
        return server
    yield make
    for server in servers:
        server.stop()


_site_ids = itertools.count()


@dataclasses.dataclass
class Site:
    """A path prefix of its own on the shared server, for one test."""
    server: LocalServer
    prefix: str

    def add(self, path: str, route: Route) -> str:
        return self.server.add(self.prefix + path, route)

    def url(self, path: str) -> str:
        return self.server.url(self.prefix + path)

    def hits(self, path: str | None = None) -> list[Request]:
        if path is None:
            return self.server.hits(self.prefix, prefix=True)
        return self.server.hits(self.prefix + path)

    def wait_for(self, path: str, timeout: float = 60.0) -> Request:
        return self.server.wait_for(self.prefix + path, timeout)


@pytest.fixture
def site(http_server: LocalServer) -> Iterator[Site]:
    s = Site(http_server, f"/t{next(_site_ids)}")
    yield s
    with http_server._lock:
        for path in [p for p in http_server.routes if p.startswith(s.prefix + "/")]:
            del http_server.routes[path]


@pytest.fixture
def fetch_settings() -> Callable[..., FetchSettings]:
    """Factory: FetchSettings for tests, `fetch_settings(max_page_bytes=...)` overriding.

    The local server opts in (private networks allowed), no politeness delay, robots.txt
    respected, no in-call retries unless a test asks for them.
    """
    def make(**overrides) -> FetchSettings:
        values = dict(allow_private_networks=True, per_host_delay=0, respect_robots=True, retries=0)
        values.update(overrides)
        return FetchSettings(**values)
    return make


def gzip_bomb(decompressed: int) -> bytes:
    """`decompressed` zero bytes, gzip-compressed (about 1000:1)."""
    return gzip.compress(b"\0" * decompressed, compresslevel=9)


@functools.lru_cache(maxsize=4)   # the same bombs serve several tests; building one reads 1 GiB of CRC
def layered_gzip_bomb(decompressed: int, layers: int) -> bytes:
    """`decompressed` zero bytes (a multiple of 1 MiB) under `layers` layers of gzip, built
    without ever holding them: every MiB of zeros compresses to the same deflate block (a full
    flush resets the window), so the innermost layer is that block repeated. 1 GiB under three
    layers is a few hundred bytes, to be sent with `Content-Encoding: gzip, gzip, gzip`."""
    import struct
    import zlib

    chunk = 1 << 20
    zeros = bytes(chunk)
    deflate = zlib.compressobj(9, zlib.DEFLATED, -zlib.MAX_WBITS)
    block = deflate.compress(zeros) + deflate.flush(zlib.Z_FULL_FLUSH)
    crc = 0
    for _ in range(decompressed // chunk):
        crc = zlib.crc32(zeros, crc)
    header = b"\x1f\x8b\x08\x00\x00\x00\x00\x00\x02\xff"
    data = (header + block * (decompressed // chunk) + deflate.flush()
            + struct.pack("<II", crc, decompressed & 0xFFFFFFFF))
    for _ in range(layers - 1):
        data = gzip.compress(data, compresslevel=9)
    return data


def has_ipv6_loopback() -> bool:
    try:
        with socket.socket(socket.AF_INET6, socket.SOCK_STREAM) as s:
            s.bind(("::1", 0))
        return True
    except OSError:
        return False


# -- warehouse fixtures --
#
# Running every migration takes ~0.2 s of CPU (more on a loaded machine), and hundreds of tests
# want a fresh warehouse: the session migrates one template file once and each test gets a
# copy of it, on which `migrate()` still runs (and finds nothing to do). A test that is about
# migrations themselves creates its own file instead.

@pytest.fixture(scope="session")
def warehouse_template(tmp_path_factory) -> Path:
    """A DuckDB file with every migration applied, to be copied (never opened by tests)."""
    from warehouse import Warehouse

    path = tmp_path_factory.mktemp("warehouse-template") / "template.duckdb"
    Warehouse(path).migrate()
    return path


def migrated_copy(template: Path, path: Path):
    """A Warehouse on a copy of the migrated template at `path` (migrate() runs again: a no-op)."""
    import shutil

    from warehouse import Warehouse

    path.parent.mkdir(parents=True, exist_ok=True)
    shutil.copyfile(template, path)
    wh = Warehouse(path)
    wh.migrate()
    return wh


@pytest.fixture
def warehouse(tmp_path: Path, warehouse_template: Path):
    """A migrated warehouse in a fresh DuckDB file (a copy of the session's template)."""
    return migrated_copy(warehouse_template, tmp_path / "w.duckdb")


# -- analyst fixtures: stored articles with claims, and the CLI run in-process --
#
# `store_articles` writes articles and their claims as the extract and mine stages would
# (real DuckDB file, the pipeline's own tables); `run_newsmon` runs `newsmon.cli.main` with
# arguments, as the console script does, and returns its exit code and output.

@dataclasses.dataclass
class CliResult:
    code: int
    stdout: str
    stderr: str


def store_articles(wh, articles: list[dict], *, pledges: list[dict] = (), positions: list[dict] = (),
                   mentions: list[dict] = ()) -> None:
    """Store article rows (url, text, published_at, optional title/story_id/language) and claim rows.

    Claim rows need url, evidence (a substring of the article's text: offsets are computed)
    and the claim's own fields; ids and versions are filled in.
    """
    import datetime as dt
    import hashlib

    from warehouse.db import insert_rows

    now = dt.datetime.now(dt.timezone.utc)
    texts = {a["url"]: a["text"] for a in articles}
    rows = [dict(url=a["url"], title=a.get("title", a["url"].rsplit("/", 1)[-1]), published_at=a["published_at"],
                 story_id=a.get("story_id"), language=a.get("language", "en"), text=a["text"],
                 text_sha256=hashlib.sha256(a["text"].encode()).hexdigest(), extractor_version="test",
                 extracted_at=now) for a in articles]

    def located(table: str, i: int, claim: dict) -> dict:
        start = texts[claim["url"]].index(claim["evidence"])
        return dict(claim, claim_id=claim.get("claim_id", f"{table}-{claim['url']}-{i}"),
                    sentence_index=claim.get("sentence_index", i), start_char=start,
                    end_char=start + len(claim["evidence"]), extractor_version="test")

    def same_keys(batch: list[dict]) -> list[dict]:  # insert_rows takes its columns from the first row
        keys = {k: None for r in batch for k in r}
        return [{k: r.get(k) for k in keys} for r in batch]

    with wh.transaction() as con:
        insert_rows(con, "article_texts", same_keys(rows), on_conflict="replace")
        insert_rows(con, "pledge_claims", same_keys([located("pledge", i, dict(dict(kind="unspecified"), **p))
                                                     for i, p in enumerate(pledges)]))
        insert_rows(con, "position_claims", same_keys([located("position", i, p) for i, p in enumerate(positions)]))
        insert_rows(con, "mentions", same_keys([dict(m, sentence_index=0, start_char=0, end_char=1,
                                                     extractor_version="test", surface=m.get("surface", m["entity"]))
                                                for m in mentions]))


@pytest.fixture
def run_newsmon(capsys) -> Callable[..., CliResult]:
    """Run `newsmon ARGS...` in this process (the console script's entry point) and capture it."""
    from newsmon import cli

    def run(*args: str) -> CliResult:
        capsys.readouterr()
        saved = sys.argv
        sys.argv = ["newsmon", *map(str, args)]
        code = 0
        try:
            cli.main()
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
        finally:
            sys.argv = saved
        out = capsys.readouterr()
        return CliResult(code, out.out, out.err)
    return run


# -- the corpus, the CLI, domain files ---------------------------------------------------
#
# Tests that read ../shared skip in a bare clone (`needs_corpus`). `newsmon_cli` runs the
# installed `newsmon` as a subprocess (mark such tests slow) without a Prefect API unless a
# test passes one, with a PREFECT_HOME of its own.

#: Skip a test when the shared corpus (../shared/corpus beside the repository) is absent.
needs_corpus = pytest.mark.skipif(not CORPUS.is_dir(),
                                  reason=f"needs the shared corpus at {CORPUS} (absent in a bare clone)")

BIN = Path(sys.executable).parent
NEWSMON = BIN / "newsmon"
DOMAIN_FILES = ("entities", "topics", "money", "fx", "aid")
#: The [nlp] table of a config whose domain files are `copy_domain(config_dir)`'s copies.
NLP_TOML = ('[nlp]\nentities = "nlp/entities.yaml"\ntopics = "nlp/topics.yaml"\nmoney = "nlp/money.yaml"\n'
            'fx = "nlp/fx.yaml"\naid = "nlp/aid.yaml"\nlang = "nlp/lang"\n')


def copy_domain(directory: Path) -> Path:
    """Copies of every domain file the miner reads in directory/nlp (a test may edit them, and the
    miner's version, a digest of them, does not move when the repository's files do)."""
    import shutil

    nlp = directory / "nlp"
    nlp.mkdir(exist_ok=True)
    for name in DOMAIN_FILES:
        shutil.copy(ROOT / "config" / f"{name}.yaml", nlp / f"{name}.yaml")
    shutil.copytree(ROOT / "config" / "lang" / "en", nlp / "lang", dirs_exist_ok=True)
    return nlp


def cli_env(home: Path, **extra: str) -> dict[str, str]:
    """The environment of a `newsmon` subprocess: no Prefect API (unless `extra` names one), its own PREFECT_HOME."""
    import os

    env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_") and k != "NEWSMON_CONFIG"}
    env.update(PREFECT_HOME=str(home / "prefect-home"), PREFECT_SERVER_ANALYTICS_ENABLED="false",
               NO_COLOR="1", **extra)
    return env


def newsmon_cli(*args: str, cwd: Path, timeout: float = 300, env: dict[str, str] | None = None,
                input: str | None = None):
    """Run `newsmon ARGS...` in `cwd` and wait; a subprocess.CompletedProcess with text output."""
    import subprocess

    return subprocess.run([str(NEWSMON), *args], capture_output=True, text=True, cwd=cwd, timeout=timeout,
                          env=env if env is not None else cli_env(cwd), input=input)


# -- config writers ---------------------------------------------------------------------------

def warehouse_config(directory: Path, warehouse_path: Path, extra: str = "") -> Path:
    """directory/newsmon.toml naming the warehouse (waiting up to 30 s for its lock), then `extra` TOML."""
    path = directory / "newsmon.toml"
    path.write_text(f'[warehouse]\npath = "{warehouse_path}"\nlock_timeout_seconds = 30\n\n{extra}')
    return path


def sample_config(directory: Path, name: str, warehouse: str) -> Path:
    """A config `directory/name.toml` of the bundled sample's feeds (config/newsmon.toml's), its
    `[warehouse]` section holding the lines `warehouse`, and one alert recipient."""
    text = (ROOT / "config" / "newsmon.toml").read_text()
    feeds = text[text.index("[[feeds]]"):text.index("# [smtp]")]
    sample_beside(directory)
    path = directory / f"{name}.toml"
    path.write_text(f"[warehouse]\n{warehouse}\n\n{feeds}\n[alerts]\nrecipients = [\"analyst@example.org\"]\n")
    return path


def stop_process_group(proc: subprocess.Popen, timeout: float = 20) -> bool:
    """SIGTERM the process group of a process started with start_new_session, SIGKILL it if it
    outlives `timeout`; True when it had to be killed."""
    import os
    import signal
    import subprocess

    os.killpg(proc.pid, signal.SIGTERM)
    try:
        proc.wait(timeout=timeout)
        return False
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)
        return True


def sample_beside(directory: Path) -> Path:
    """Copy the bundled sample (config/sample) into directory/sample, once; its feeds folder.

    A local feed's pages must lie in its config's folder, so a test config that reads the sample
    has it beside itself."""
    import shutil

    if not (directory / "sample").exists():
        shutil.copytree(ROOT / "config" / "sample", directory / "sample")
    return directory / "sample" / "feeds"


# -- a real SMTP server -------------------------------------------------------------------
#
# One aiosmtpd server on 127.0.0.1 for the session; a test may take it down and bring it
# back on the same port (`smtp.down()` / `smtp.up()`). `mailbox` empties it for each test.

class _Collect:
    """Keeps every message. RCPT TO nobody@… is refused for good (550), busy@… for now (450)."""

    def __init__(self, box: "SmtpServer") -> None:
        self.box = box

    async def handle_RCPT(self, server, session, envelope, address, rcpt_options):  # noqa: N802
        if address.startswith("nobody@"):
            return "550 5.1.1 no such mailbox"
        if address.startswith("busy@"):
            return "450 4.2.1 mailbox busy, try later"
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server, session, envelope):  # noqa: N802 (aiosmtpd's hook name)
        hold = self.box.hold.get(tuple(envelope.rcpt_tos))
        if hold is not None and not hold.keep_first:
            await hold.wait()
            if server.transport is None or server.transport.is_closing():
                return "421 4.3.0 the client went away"  # never accepted, so not kept
        with self.box.lock:
            self.box.messages.append(envelope.content)
            self.box.envelopes.append((envelope.mail_from, list(envelope.rcpt_tos)))
        if hold is not None and hold.keep_first:
            await hold.wait()
        return "250 2.0.0 queued"


class Hold:
    """Stops the server inside DATA for one recipient's message until `release()`: before it keeps
    the message (`keep_first=False`: the sender dies before the message arrived) or after it, before
    its "250" (`keep_first=True`: the message arrived but the sender never heard so)."""

    def __init__(self, keep_first: bool) -> None:
        self.keep_first = keep_first
        self.reached = threading.Event()
        self.released = threading.Event()

    async def wait(self) -> None:
        import asyncio

        self.reached.set()
        await asyncio.get_running_loop().run_in_executor(None, self.released.wait, 60)

    def release(self) -> None:
        self.released.set()


class SmtpServer:
    def __init__(self, **smtp_options) -> None:
        self.smtp_options = smtp_options  # aiosmtpd's SMTP options, e.g. enable_SMTPUTF8=True
        self.port = free_port()
        self.lock = threading.Lock()
        self.messages: list[bytes] = []
        self.envelopes: list[tuple[str, list[str]]] = []
        self.controller = None  # an aiosmtpd Controller while up
        self.hold: dict[tuple[str, ...], Hold] = {}  # rcpt_tos -> where to stop in DATA

    def up(self) -> None:
        if self.controller is None:
            from aiosmtpd.controller import Controller

            self.controller = Controller(_Collect(self), hostname="127.0.0.1", port=self.port, **self.smtp_options)
            self.controller.start()

    def down(self) -> None:
        if self.controller is not None:
            self.controller.stop()
            self.controller = None

    def clear(self) -> None:
        with self.lock:
            self.messages.clear()
            self.envelopes.clear()
        for hold in self.hold.values():
            hold.release()
        self.hold.clear()

    def parsed(self) -> list:
        """The messages received, as email.message.EmailMessage objects."""
        import email
        import email.policy

        with self.lock:
            return [email.message_from_bytes(m, policy=email.policy.default) for m in self.messages]


@pytest.fixture(scope="session")
def smtp_server() -> Iterator[SmtpServer]:
    server = SmtpServer()
    server.up()
    yield server
    server.down()


@pytest.fixture
def smtp(smtp_server: SmtpServer) -> Iterator[SmtpServer]:
    smtp_server.up()
    smtp_server.clear()
    yield smtp_server
    smtp_server.up()


# -- a real Prefect server -----------------------------------------------------------------
#
# `prefect server start` on 127.0.0.1 with a PREFECT_HOME of its own. Tests using it are slow.

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class PrefectServer:
    """`prefect server start` on 127.0.0.1 with a PREFECT_HOME of its own."""

    def __init__(self, home: Path) -> None:
        self.home = home
        self.port = free_port()
        self.api_url = f"http://127.0.0.1:{self.port}/api"
        self.log = home / "server.log"
        self.proc = None

    def env(self, **extra: str) -> dict[str, str]:
        """The environment of a client process of this server (a PREFECT_HOME of its own)."""
        import os

        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_API_URL=self.api_url, PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_LOGGING_LEVEL="WARNING", NO_COLOR="1", **extra)
        return env

    def start(self, timeout: float = 90.0) -> None:
        import contextlib
        import os
        import subprocess
        import urllib.request

        self.home.mkdir(parents=True, exist_ok=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("PREFECT_")}
        env.update(PREFECT_HOME=str(self.home), PREFECT_SERVER_ANALYTICS_ENABLED="false",
                   PREFECT_LOGGING_LEVEL="WARNING", PREFECT_SERVER_LOGGING_LEVEL="WARNING",
                   PREFECT_UI_ENABLED="false", NO_COLOR="1")
        with open(self.log, "wb") as log:
            self.proc = subprocess.Popen([str(BIN / "prefect"), "server", "start", "--host", "127.0.0.1",
                                          "--port", str(self.port)], stdout=log, stderr=subprocess.STDOUT,
                                         env=env, start_new_session=True)
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                raise RuntimeError(f"prefect server exited: {self.log.read_text()[-2000:]}")
            with contextlib.suppress(OSError):
                with urllib.request.urlopen(self.api_url + "/health", timeout=2) as r:
                    if r.status == 200:
                        return
            time.sleep(0.3)
        self.stop()
        raise TimeoutError(f"prefect server not healthy within {timeout}s: {self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        import os
        import signal
        import subprocess

        if self.proc and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


def _prefect_server(home: Path) -> Iterator[PrefectServer]:
    server = PrefectServer(home)
    server.start()
    try:
        yield server
    finally:
        server.stop()


def prefect_server(home: Path):
    """Context manager: a PrefectServer running for the block."""
    import contextlib

    return contextlib.contextmanager(_prefect_server)(home)


def drain_api_workers() -> None:
    """Send the last logs and events of this process while the server still listens."""
    import contextlib
    import inspect

    from prefect.events.worker import EventsWorker
    from prefect.logging.handlers import APILogWorker
    from prefect.utilities.asyncutils import run_coro_as_sync

    async def drain() -> None:
        for result in (APILogWorker.instance().drain(), EventsWorker.drain_all()):
            if inspect.isawaitable(result):
                await result

    with contextlib.suppress(RuntimeError):  # a worker that never started
        run_coro_as_sync(drain())


@pytest.fixture(scope="module")
def prefect_api(tmp_path_factory) -> Iterator[PrefectServer]:
    """Flows called in this process run against a real Prefect server (a module's own). Mark users slow."""
    from prefect.settings import PREFECT_API_URL, temporary_settings

    with prefect_server(tmp_path_factory.mktemp("prefect-server")) as server:
        with temporary_settings(updates={PREFECT_API_URL: server.api_url}):
            yield server
            drain_api_workers()


# -- hostile input fixtures (test_fetch, test_feeds) -------------------------------------
#
# Every hostile feed or page is served beside a healthy control feed; the poll and fetch
# stages run as plain functions (`.fn`) into a fresh warehouse, as `newsmon ingest` runs
# them, and the control feed's pages must arrive whatever the hostile one does.

CONTROL_PAGE = ("<!doctype html><html lang='en'><head><title>Control {n}</title></head><body><article>"
                "<h1>Control {n}</h1><p>{text}</p></article></body></html>")


def control_feed(site: Site, n_pages: int = 2) -> tuple[str, list[str]]:
    """A healthy RSS feed with `n_pages` pages on `site`: (feed URL, page URLs)."""
    text = "The control feed's article arrives whatever the feed beside it does. " * 5
    pages = [site.add(f"/control/{i}.html", Answer(CONTROL_PAGE.format(n=i, text=text).encode(),
                                                   headers={"Content-Type": "text/html; charset=utf-8"}))
             for i in range(n_pages)]
    items = "".join(f"<item><title>Control {i}</title><link>{url}</link></item>" for i, url in enumerate(pages))
    feed = (f'<?xml version="1.0"?><rss version="2.0"><channel><title>Control</title>'
            f"<link>{site.url('/')}</link>{items}</channel></rss>").encode()
    return site.add("/control/feed.xml", Answer(feed, headers={"Content-Type": "application/rss+xml"})), pages


@dataclasses.dataclass
class StageRun:
    """What one run of the poll and fetch stages left in the warehouse."""
    wh: object
    counts: dict
    seconds: float

    def stored_pages(self) -> set[str]:
        return {r["url"] for r in self.wh.read("SELECT url FROM pages")}

    def last_poll(self, feed: str) -> dict:
        rows = self.wh.read("SELECT * FROM feed_polls WHERE feed = ? ORDER BY polled_at DESC LIMIT 1", [feed])
        return rows[0] if rows else {}

    def last_fetch(self, url: str) -> dict:
        rows = self.wh.read("SELECT * FROM fetches WHERE url = ? ORDER BY attempted_at DESC LIMIT 1", [url])
        return rows[0] if rows else {}

    def rejections(self) -> list[dict]:
        return self.wh.read("SELECT * FROM rejections ORDER BY key")


@pytest.fixture
def run_fetch_stages(tmp_path: Path, fetch_settings, warehouse_template: Path) -> Callable[..., StageRun]:
    """Factory: `run_fetch_stages({"name": url, ...}, config_dir=..., **fetch)` polls the feeds
    and fetches their pages with the real stages; `config_dir` stands for the TOML's folder
    (local feeds' pages must lie in it). Runs again on the same warehouse when called again."""
    def run(feeds: dict[str, str], config_dir: Path | None = None, **fetch) -> StageRun:
        import uuid

        from flows import stages
        from newsmon.settings import FeedSettings, Settings, WarehouseSettings
        from warehouse import Warehouse

        settings = Settings(warehouse=WarehouseSettings(path=tmp_path / "stages.duckdb"),
                            fetch=fetch_settings(**fetch),
                            feeds=[FeedSettings(name=n, url=u) for n, u in feeds.items()],
                            source=(config_dir or tmp_path) / "newsmon.toml")
        if settings.warehouse.path.exists():
            wh = Warehouse(settings.warehouse.path)
            wh.migrate()
        else:
            wh = migrated_copy(warehouse_template, settings.warehouse.path)
        run_id = str(uuid.uuid4())
        started = time.monotonic()
        counts = {"feeds": stages.poll_feeds.fn(settings, wh, run_id),
                  "pages": stages.fetch_pages.fn(settings, wh, run_id)}
        return StageRun(wh, counts, time.monotonic() - started)
    return run


# -- mining fixtures --
#
# Building a Miner loads spaCy's model and the domain files (1-3 s of CPU), and the pipeline
# builds one per run: the test session keeps the Miners it built (the two most recent), keyed by
# the miner's version (a digest of the rules' code, the model and the contents of every domain
# file), and hands every later build with the same version a shallow copy of that real Miner
# with the settings' own batch size and length cap. A test that edits a domain file or the
# rules gets another version, hence a Miner of its own. Worker processes (nlp.processes > 1)
# build theirs as always.

_MINERS: dict = {}


@pytest.fixture(scope="session", autouse=True)
def one_miner_per_version():
    from tasks import mine

    build = mine.Miner.from_settings.__func__

    def from_settings(cls, s):
        key = mine.current_version(s)
        if key not in _MINERS:
            while len(_MINERS) >= 2:   # each holds a model (~200 MB): keep the two built last
                del _MINERS[next(iter(_MINERS))]
            _MINERS[key] = build(cls, s)
        return dataclasses.replace(_MINERS[key], batch_size=s.batch_size, max_chars=s.max_chars)

    mine.Miner.from_settings = classmethod(from_settings)
    yield
    mine.Miner.from_settings = classmethod(build)
    _MINERS.clear()


@pytest.fixture(scope="session")
def nlp_miner():
    """The real miner (en_core_web_sm + newsmon's components, the real config files), loaded once."""
    from newsmon.settings import NlpSettings
    from tasks.mine import Miner

    return Miner.from_settings(NlpSettings())


# -- PostgreSQL fixtures (the DuckLake catalog) --
#
# A throwaway PostgreSQL cluster (Debian's `postgresql` package: initdb, pg_ctl) in a temporary
# directory, on a free port on 127.0.0.1 with its unix socket in that directory; stopped and
# removed at teardown. The binaries refuse to run as root, so as root they run as the
# `postgres` user. Tests using it skip, saying why, when the binaries are not installed.

import contextlib  # noqa: E402  (this section's own import)

PG_BIN = Path("/usr/lib/postgresql/15/bin")


@dataclasses.dataclass(frozen=True)
class Postgres:
    socket_dir: Path
    port: int
    user: str = "newsmon"

    def dsn(self, dbname: str) -> str:
        return f"dbname={dbname} host={self.socket_dir} port={self.port} user={self.user}"

    def createdb(self, dbname: str) -> str:
        """Create a database; returns its DuckLake catalog string ("postgres:dbname=…")."""
        _pg_run("createdb", "-h", str(self.socket_dir), "-p", str(self.port), "-U", self.user, dbname)
        return "postgres:" + self.dsn(dbname)


def _pg_bin() -> Path | None:
    """Debian keeps the server binaries off PATH, one folder per major version: take 15, else the newest."""
    import shutil

    if (PG_BIN / "initdb").exists():
        return PG_BIN
    versions = sorted(PG_BIN.parent.glob("*/bin/initdb"), key=lambda p: int(p.parts[-3]) if p.parts[-3].isdigit() else 0)
    if versions:
        return versions[-1].parent
    found = shutil.which("initdb")
    return Path(found).parent if found else None


def _pg_run(tool: str, *args: str) -> None:
    import os
    import subprocess

    cmd = [str(_pg_bin() / tool), *args]
    if os.geteuid() == 0:
        cmd = ["runuser", "-u", "postgres", "--", *cmd]
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    if done.returncode:
        raise RuntimeError(f"{tool} failed ({done.returncode}): {done.stderr.strip() or done.stdout.strip()}")


def pg_unavailable() -> str | None:
    """Why a PostgreSQL server cannot be started here (None when it can)."""
    import os

    if _pg_bin() is None:
        return ("PostgreSQL server binaries not found (/usr/lib/postgresql/*/bin): "
                "apt-get install -y postgresql (as .ci/run does when it runs as root)")
    if os.geteuid() == 0:
        import pwd

        try:
            pwd.getpwnam("postgres")
        except KeyError:
            return "running as root and there is no `postgres` user to run PostgreSQL as"
    return None


@contextlib.contextmanager
def temporary_postgres() -> Iterator[Postgres]:
    """Start a PostgreSQL cluster in a temporary directory; stop and remove it on exit (also for bench/)."""
    import os
    import pwd
    import shutil
    import tempfile

    root = Path(tempfile.mkdtemp(prefix="newsmon-pg-"))
    if os.geteuid() == 0:
        pw = pwd.getpwnam("postgres")
        os.chown(root, pw.pw_uid, pw.pw_gid)
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    pg = Postgres(socket_dir=root, port=port)
    try:
        _pg_run("initdb", "-D", str(root / "data"), "-A", "trust", "-U", pg.user, "--no-sync", "-E", "UTF8")
        _pg_run("pg_ctl", "-D", str(root / "data"), "-l", str(root / "log"), "-w", "-t", "60", "start",
                "-o", f"-p {port} -k {root} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=100")
        try:
            yield pg
        finally:
            _pg_run("pg_ctl", "-D", str(root / "data"), "-w", "-t", "60", "-m", "fast", "stop")
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.hookimpl(tryfirst=True)
def pytest_collection_modifyitems(config, items) -> None:
    """A test that needs the PostgreSQL server (directly or through `lake_warehouse`) is slow:
    it starts a server, and migrating a lake on it takes seconds."""
    for item in items:
        if "postgres" in getattr(item, "fixturenames", ()):
            item.add_marker(pytest.mark.slow)


@pytest.fixture(scope="session")
def postgres() -> Iterator[Postgres]:
    """A PostgreSQL server of the test session (see above); `postgres.createdb(name)` gives a database."""
    reason = pg_unavailable()
    if reason:
        pytest.skip(reason)
    with temporary_postgres() as pg:
        yield pg


_lake_ids = itertools.count()


@pytest.fixture
def lake_warehouse(postgres: Postgres, tmp_path: Path):
    """A migrated warehouse on the DuckLake backend: a fresh catalog database, data under tmp_path."""
    from warehouse import Warehouse
    from warehouse.lake import LakeConfig

    catalog = postgres.createdb(f"lake_{next(_lake_ids)}")
    wh = Warehouse(tmp_path / "local.duckdb", lake=LakeConfig(catalog, str(tmp_path / "lake") + "/"))
    wh.migrate()
    yield wh
    wh.close()


# -- an S3-compatible object store (the lake's data files in a bucket) --
#
# moto's server (`moto_server`, from the moto[server] test dependency) as a subprocess on a free port
# of 127.0.0.1: a real HTTP S3 API that DuckDB's httpfs talks to as it would to AWS or MinIO (path-style
# URLs, plain http). It keeps its buckets in memory; each test creates buckets of its own. moto does not
# check signatures, so a wrong secret is not caught here; a missing one is caught by newsmon itself.

@dataclasses.dataclass
class ObjectStore:
    endpoint: str                # "127.0.0.1:PORT", as [warehouse] s3_endpoint takes it
    proc: object
    key_id: str = "newsmon-test-key"
    secret: str = "newsmon-test-secret"

    @property
    def client(self):
        import boto3

        return boto3.client("s3", endpoint_url=f"http://{self.endpoint}", region_name="us-east-1",
                            aws_access_key_id=self.key_id, aws_secret_access_key=self.secret)

    def create_bucket(self, name: str) -> str:
        self.client.create_bucket(Bucket=name)
        return name

    def keys(self, bucket: str, prefix: str = "") -> list[str]:
        pages = self.client.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix)
        return sorted(o["Key"] for page in pages for o in page.get("Contents", []))

    def env(self) -> dict[str, str]:
        """The credentials as a newsmon process takes them: the standard AWS variables."""
        return {"AWS_ACCESS_KEY_ID": self.key_id, "AWS_SECRET_ACCESS_KEY": self.secret}

    def toml(self, data_path: str) -> str:
        """The [warehouse] keys of a lake whose data files are at `data_path` in this store."""
        return (f'data_path = "{data_path}"\ns3_endpoint = "{self.endpoint}"\ns3_region = "us-east-1"\n'
                's3_url_style = "path"\ns3_use_ssl = false\n')


@pytest.fixture(scope="session")
def object_store(tmp_path_factory) -> Iterator[ObjectStore]:
    """moto's S3 server on 127.0.0.1 for the session (see above)."""
    import os
    import signal
    import subprocess
    import urllib.request

    port = free_port()
    log = tmp_path_factory.mktemp("moto") / "moto.log"
    env = {k: v for k, v in os.environ.items() if not k.startswith("AWS_")}
    with open(log, "wb") as out:
        proc = subprocess.Popen([str(BIN / "moto_server"), "-H", "127.0.0.1", "-p", str(port)], stdout=out,
                                stderr=subprocess.STDOUT, env=env, start_new_session=True)
    deadline = time.monotonic() + 60
    try:
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"moto_server exited: {log.read_text()[-2000:]}")
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/moto-api/", timeout=2):
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"moto_server not up within 60s: {log.read_text()[-2000:]}") from None
                time.sleep(0.2)
        yield ObjectStore(endpoint=f"127.0.0.1:{port}", proc=proc)
    finally:
        stop_process_group(proc)
