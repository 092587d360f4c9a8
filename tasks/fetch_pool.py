"""Fetching many URLs at once, politely: different hosts in parallel, one host at a time.

`FetchPool(settings, until=...).run(items, url_of, work)` calls `work(fetcher, item)` for
every item on at most `fetch.max_concurrency` threads and yields what happened to each item,
in the calling thread, as it happens (the caller stores results: the warehouse writer is not
thread-safe). The items are grouped by host (`host_of(url)`): one host's items run one after
another on one thread, in the order given, with a `Fetcher` of their own, so the per-host
delay, robots.txt and Retry-After hold per host exactly as with one sequential fetcher;
the fetchers of a run share one `FetchRun` (each host's turn, the robots.txt answers, the
names that did not resolve, the in-call retry-wait budget), so a redirect to another host
waits its turn there too. Every other guard (SSRF, caps, redirects, the deadline of each
request) is the `Fetcher`'s, unchanged.

Events, one per item:

- `Done(item, result, error)`: `work` returned `result`, or raised the `FetchError` `error`;
- `Left(items, why, host, error)`: items not tried in this run, left for the next one (never
  recorded as failures): `why = "host_down"` when their host could not be reached
  `fetch.host_give_up_after` times in a row in this run (its name did not resolve, the
  connection was refused or timed out: `TransientFetchError.unreachable`, or a result whose
  `unreachable` attribute is true), `why = "budget"` once the run's budget (`until`, a
  `time.time()` instant) has passed: no item starts after it; one already running finishes
  (within `fetch.request_deadline_seconds`).

The threads are daemons: a run interrupted (Ctrl-C, SIGTERM) is not held up by a request in
flight, and the next run fetches what this one did not store.
"""
from __future__ import annotations

import dataclasses
import queue
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from newsmon.errors import FetchError, TransientFetchError
from newsmon.settings import FetchSettings
from tasks.fetch import Fetcher, FetchRun, host_of

__all__ = ["FetchPool", "Done", "Left"]


@dataclasses.dataclass(frozen=True)
class Done:
    item: Any
    result: Any = None
    error: FetchError | None = None


@dataclasses.dataclass(frozen=True)
class Left:
    items: list[Any]
    why: str                       # "host_down" | "budget"
    host: str
    error: FetchError | None = None   # host_down: the last failure


@dataclasses.dataclass(frozen=True)
class _HostFinished:
    host: str


@dataclasses.dataclass(frozen=True)
class _Crashed:
    exc: BaseException


def _unreachable(result: Any, error: FetchError | None) -> bool:
    if error is not None:
        return isinstance(error, TransientFetchError) and error.unreachable
    return bool(getattr(result, "unreachable", False))


class FetchPool:
    """A bounded pool of per-host fetchers for one run (see the module docstring)."""

    def __init__(self, settings: FetchSettings, *, until: float | None = None,
                 sleep: Callable[[float], None] = time.sleep):
        self.settings = settings
        self.until = until
        self._sleep = sleep
        self.fetch_run = FetchRun()
        self.hosts_given_up: dict[str, str] = {}   # host -> the last failure's message
        self.budget_spent = False

    def _past_budget(self) -> bool:
        return self.until is not None and time.time() >= self.until

    def run(self, items: Iterable[Any], url_of: Callable[[Any], str],
            work: Callable[[Fetcher, Any], Any], *, tick: Callable[[], None] | None = None,
            tick_every: float = 60.0) -> Iterator[Done | Left]:
        """Every item's `Done` or `Left`, in the calling thread, as they come (see the module docstring).

        `tick`, if given, is called in the calling thread about every `tick_every` seconds while
        items are being worked on, whether or not any comes back meanwhile (the fetch stage renews
        its page leases there: the warehouse writer is not thread-safe).
        """
        by_host: dict[str, list[Any]] = {}
        for item in items:
            by_host.setdefault(host_of(url_of(item)), []).append(item)
        if not by_host:
            return
        hosts: queue.SimpleQueue[str] = queue.SimpleQueue()
        for host in by_host:
            hosts.put(host)
        # bounded: a worker waits while the caller stores, so a few results are held at most
        events: queue.Queue[Done | Left | _HostFinished | _Crashed] = queue.Queue(
            maxsize=2 * self.settings.max_concurrency)
        stop = threading.Event()

        def emit(event) -> bool:
            while not stop.is_set():
                try:
                    events.put(event, timeout=0.2)
                    return True
                except queue.Full:
                    continue
            return False

        def serve_host(host: str) -> None:
            todo = by_host[host]
            failures, last_error = 0, None
            with Fetcher(self.settings, sleep=self._sleep, run=self.fetch_run) as fetcher:
                for i, item in enumerate(todo):
                    if stop.is_set():
                        return
                    if self._past_budget():
                        self.budget_spent = True
                        emit(Left(todo[i:], "budget", host))
                        return
                    if failures >= self.settings.host_give_up_after:
                        self.hosts_given_up[host] = str(last_error or "")
                        emit(Left(todo[i:], "host_down", host, last_error))
                        return
                    result, error = None, None
                    try:
                        result = work(fetcher, item)
                    except FetchError as exc:
                        error = exc
                    if _unreachable(result, error):
                        failures += 1
                        last_error = error or FetchError(str(getattr(result, "error", "") or "unreachable"))
                    else:
                        failures = 0
                    if not emit(Done(item, result, error)):
                        return

        def worker() -> None:
            while not stop.is_set():
                try:
                    host = hosts.get_nowait()
                except queue.Empty:
                    return
                try:
                    serve_host(host)
                except BaseException as exc:  # a bug: the caller re-raises it
                    emit(_Crashed(exc))
                    return
                finally:
                    emit(_HostFinished(host))

        threads = [threading.Thread(target=worker, name=f"fetch-{n}", daemon=True)
                   for n in range(min(self.settings.max_concurrency, len(by_host)))]
        for t in threads:
            t.start()
        finished = 0
        next_tick = time.monotonic() + tick_every
        try:
            while finished < len(by_host):
                if tick is not None:
                    if time.monotonic() >= next_tick:
                        tick()
                        next_tick = time.monotonic() + tick_every
                    try:
                        event = events.get(timeout=max(0.0, next_tick - time.monotonic()))
                    except queue.Empty:
                        continue
                else:
                    event = events.get()
                if isinstance(event, _HostFinished):
                    finished += 1
                elif isinstance(event, _Crashed):
                    raise event.exc
                else:
                    yield event
        finally:
            stop.set()
            # each thread notices `stop` within 0.2 s, or after the request it is in (daemons:
            # one still in a request when the caller has gone, e.g. on Ctrl-C, does not hold it up)
            end = time.monotonic() + 1.0
            for t in threads:
                t.join(timeout=max(0.0, end - time.monotonic()))
