"""The `backfill` flow: catch a window of days up, or re-process it offline.

    backfill(since, until=None, feeds=None, urls=None, urls_file=None, remine=False, config=None,
             window_days=7)

It polls the chosen feeds (backoff ignored: the operator asked) and fetches their
entries of the window whose page is not stored yet, then re-extracts and re-mines
every stored page of the window (`redo`), the new claims replacing the old ones in
one transaction per batch, then detects changes and sends the alerts that are due.
With `remine` it works offline: nothing is polled or downloaded, the stored raw
pages of the window are extracted and mined again, then changes and alerts. Explicit
`urls` (and the lines of `urls_file`) become entries of the pseudo-feed "adhoc" and
are fetched like feed items (the SSRF guard applies; a URL already stored is not
downloaded again), whatever their date. Every stage is keyed, so a backfill run
twice changes nothing the second time.

The window is days in UTC: `since` 00:00 up to the end of `until` (open without it),
on the article's publication time (feed date, else first seen).

A large window fans out: the fetch, extract and mine stages each take it `window_days`
days at a time (aligned on `since`; 0: the whole window at once), each part a task run of
its own under a flow run (named after its days), one after another: a part that fails is
retried or reported on its own, and what the earlier parts stored stays stored. Parts
without anything to do (no entry, page or article on any of their days, asked of the
warehouse before each stage) are skipped, so an open-ended window over a quiet year costs
no empty task runs.

`run_backfill` is the same as plain Python (what `newsmon backfill` runs without a
Prefect API; see flows/runtime.py). Flow runs hold the Prefect global concurrency limit
`newsmon-warehouse-writer` (created by `newsmon serve`) around their work, so a backfill
and a scheduled ingest that overlap take turns instead of racing; see `warehouse_writer`.
"""
from __future__ import annotations

import datetime as dt
import re
from collections.abc import Callable
from pathlib import Path
from typing import Annotated, Any

from prefect import flow
from prefect.states import Failed
from pydantic import Field

from flows import notify, progress, stages
from flows.lazytask import lazy_task
from flows.progress import ItemsEvent, StageEvent
from flows.runtime import _logger, backfill_run_name, in_flow_run, run_name, run_pipeline, stage
from newsmon.errors import ConfigError, NewsmonError
from newsmon.settings import Settings, load_settings
from warehouse import Warehouse
from warehouse import queries as q

__all__ = ["backfill", "run_backfill", "backfill_part", "run_backfill_part", "backfill_window", "split_window", "check_feeds", "read_urls_file",
           "progress_listener", "StageEvent", "ItemsEvent", "ADHOC_FEED", "WINDOW_DAYS"]

#: Days of the window one task run of a stage takes (0: the whole window in one).
WINDOW_DAYS = 7
#: The pseudo-feed that explicit URLs are listed under.
ADHOC_FEED = "adhoc"
ADHOC_FEED_URL = "newsmon:adhoc"  # not file:, so the fetch stage never reads local files for these

_URL_PATTERN = r"^https?://[^\s/?#]+[^\s]*$"
# A day as YYYY-MM-DD. The pattern goes into the parameter's JSON schema, which the Prefect API checks
# when a run is created (it does not check "format": "date"), so `since=notadate` is refused then.
Day = Annotated[dt.date, Field(json_schema_extra={"pattern": r"^[0-9]{4}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9]|3[01])$"})]
FeedName = Annotated[str, Field(min_length=1, pattern=r"^[A-Za-z0-9_.-]+$")]
Url = Annotated[str, Field(max_length=2000, pattern=_URL_PATTERN)]


# -- window, URLs --------------------------------------------------------------------
def backfill_window(since: dt.date, until: dt.date | None) -> tuple[dt.datetime, dt.datetime | None]:
    """[since 00:00 UTC, the day after `until` 00:00 UTC); ConfigError when `since` is after `until`."""
    if until is not None and since > until:
        raise ConfigError(f"backfill: since ({since.isoformat()}) is after until ({until.isoformat()}); "
                          "give a since on or before until")
    start = dt.datetime.combine(since, dt.time.min, tzinfo=dt.timezone.utc)
    end = None if until is None else dt.datetime.combine(until + dt.timedelta(days=1), dt.time.min,
                                                         tzinfo=dt.timezone.utc)
    return start, end


Window = tuple[dt.datetime, dt.datetime | None]


def split_window(start: dt.datetime, end: dt.datetime | None, days: int, busy: list[dt.date]) -> list[Window]:
    """The parts of [start, end) that a stage takes one task run each: `days` days each, aligned on `start`,
    only those holding one of the `busy` days; the last part stays open when `end` is None.

    `days` <= 0: the whole window as one part (busy or not).
    """
    if days <= 0:
        return [(start, end)]
    step = dt.timedelta(days=days)
    first = start.date()
    parts = sorted({(day - first).days // days for day in busy if day >= first})
    out: list[Window] = []
    for k in parts:
        a = start + k * step
        b: dt.datetime | None = a + step
        if end is not None and b >= end:
            b = end
        out.append((a, b))
    if out and end is None:
        out[-1] = (out[-1][0], None)  # what arrives after the warehouse was asked still falls in a part
    return [(a, b) for a, b in out if end is None or a < end]


def read_urls_file(path: str | Path) -> list[str]:
    """One http(s) URL per line; blank lines and lines starting with # are skipped."""
    path = Path(path)
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read URLs file {path}: {getattr(exc, 'strerror', None) or exc}") from None
    urls = []
    for number, line in enumerate(lines, 1):
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if not re.match(_URL_PATTERN, line) or len(line) > 2000:
            raise ConfigError(f"{path}:{number}: not an http(s) URL: {line[:200]!r}")
        urls.append(line)
    return urls


def check_feeds(settings: Settings, feeds: list[str] | None) -> None:
    """ConfigError unless every name is a configured feed (or the pseudo-feed) and no feed takes the reserved name."""
    if any(f.name == ADHOC_FEED for f in settings.feeds):
        raise ConfigError(f"config {settings.source}: feeds: the name {ADHOC_FEED!r} is reserved for "
                          "URLs given to `newsmon backfill --url`; rename that feed")
    for name in feeds or []:
        if name != ADHOC_FEED:
            settings.feed(name)  # ConfigError naming the known feeds


# -- progress --------------------------------------------------------------------------
def progress_listener(callback: Callable[[StageEvent | ItemsEvent], None]):
    """Call `callback` for every stage of the runs in this process, and for the items inside the stages
    (the CLI's progress bar); a context manager (see flows/progress.py)."""
    return progress.listening(callback)


def _merge(a: dict[str, Any], b: dict[str, Any]) -> dict[str, Any]:
    """Counts of two calls of one stage, added up."""
    out = dict(a)
    for key, value in b.items():
        if isinstance(value, dict):
            out[key] = _merge(out.get(key) or {}, value)
        elif isinstance(value, (int, float)) and isinstance(out.get(key), (int, float)):
            out[key] = out[key] + value
        else:
            out[key] = value
    return out


# -- the flow ----------------------------------------------------------------------------
@lazy_task(name="add_urls")
def add_urls(wh: Warehouse, urls: list[str]) -> dict[str, int]:
    """List explicit URLs as entries of the pseudo-feed; the fetch stage downloads those not stored."""
    with wh.transaction() as con:
        return q.add_url_entries(con, ADHOC_FEED, ADHOC_FEED_URL, urls)


def _named(task: Any, name: str | None) -> Any:
    """`stage(task)`, its task runs named `name` inside a flow run."""
    call = stage(task)
    return call.with_options(task_run_name=name) if name and call is task else call


def _days(a: dt.datetime, b: dt.datetime | None) -> str:
    """A part's days for its task run name: "2025-12-01..2025-12-07", or "2025-12-29.." when open."""
    last = "" if b is None else (b - dt.timedelta(microseconds=1)).date().isoformat()
    return f"{a.date().isoformat()}..{last}"


def run_backfill(
    since: dt.date,
    until: dt.date | None = None,
    feeds: list[str] | None = None,
    urls: list[str] | None = None,
    urls_file: str | None = None,
    remine: bool = False,
    config: str | None = None,
    window_days: int = WINDOW_DAYS,
    fan_out: bool = False,
) -> dict[str, dict[str, Any]]:
    """The backfill as plain Python (the body of the `backfill` flow); each stage's counts.

    `fan_out` (inside a flow run whose Prefect server has the part deployment, and `window_days`
    > 0): the parts are flow runs of their own that the pool's workers share (flows/fanout.py),
    their counts under the stage `parts`; otherwise they are task runs of this flow run.
    Raises RunFailed (after recording the run) when a stage failed or no feed could be polled.
    """
    start, end = backfill_window(since, until)
    settings = load_settings(config)
    check_feeds(settings, feeds)
    explicit = list(dict.fromkeys([*(urls or []), *(read_urls_file(urls_file) if urls_file else [])]))
    wh = Warehouse.from_settings(settings.warehouse)

    plan: list[tuple[str, Callable[[str], dict[str, Any]]]] = []
    if explicit:
        plan.append(("urls", lambda run_id: stage(add_urls)(wh, explicit)))
    if not remine:
        plan.append(("feeds", lambda run_id: stage(stages.poll_feeds)(settings, wh, run_id, feeds=feeds,
                                                                       ignore_backoff=True)))

    def by_part(task: Any, run_id: str, **kwargs: Any) -> dict[str, Any]:
        """The stage over the window, one task run per part of `window_days` days that has anything to do."""
        if window_days > 0:
            with wh.connect(read_only=True) as con:
                busy = q.days_with_work(con, start, end)
        parts = split_window(start, end, window_days, busy if window_days > 0 else [])
        counts: dict[str, Any] = {}
        with progress.in_parts() as next_part:   # one count of items over the parts
            for a, b in parts:
                call = _named(task, f"{task.name} {_days(a, b)}" if window_days > 0 else None)
                counts = _merge(counts, call(settings, wh, run_id, since=a, until=b, **kwargs))
                next_part()
        if window_days > 0:
            counts["parts"] = len(parts)
        return counts

    def fetch(run_id: str) -> dict[str, Any]:
        counts: dict[str, Any] = {}
        if not remine:
            counts = by_part(stages.fetch_pages, run_id, feeds=feeds)
        if explicit:  # whatever their date: the operator named them
            counts = _merge(counts, stage(stages.fetch_pages)(settings, wh, run_id, feeds=[ADHOC_FEED]))
        return counts

    def extract(run_id: str) -> dict[str, Any]:
        counts = by_part(stages.extract_articles, run_id, redo=True)
        if explicit:   # pages outside the window that the operator named
            counts = _merge(counts, stage(stages.extract_articles)(settings, wh, run_id))
        return counts

    def mine(run_id: str) -> dict[str, Any]:
        counts = by_part(stages.mine_articles, run_id, redo=True)
        if explicit:
            counts = _merge(counts, stage(stages.mine_articles)(settings, wh, run_id))
        return counts

    def parts(run_id: str) -> dict[str, Any]:
        """Fetch, extract and mine the window's parts as flow runs of their own, on any worker."""
        from flows.fanout import Part, run_parts

        with wh.connect(read_only=True) as con:
            busy = q.days_with_work(con, start, end)
        todo = []
        for a, b in split_window(start, end, window_days, busy):
            last = None if b is None else (b - dt.timedelta(microseconds=1)).date().isoformat()
            todo.append(Part(_days(a, b), dict(since=a.date().isoformat(), until=last, feeds=feeds, remine=remine,
                                               config=str(settings.source) if settings.source else config)))
        return run_parts(wh, todo, parent_key=run_id, log=_logger().info)

    def explicit_only(task: Any, **kwargs: Any) -> Callable[[str], dict[str, Any]]:
        return lambda run_id: stage(task)(settings, wh, run_id, **kwargs)

    if fan_out and window_days > 0 and in_flow_run() and _has_part_deployment():
        plan.append(("parts", parts))
        if explicit:   # the URLs the operator named, whatever their date: in this run
            plan += [("pages", explicit_only(stages.fetch_pages, feeds=[ADHOC_FEED])),
                     ("articles", explicit_only(stages.extract_articles)),
                     ("claims", explicit_only(stages.mine_articles))]
    else:
        if explicit or not remine:
            plan.append(("pages", fetch))
        plan += [("articles", extract), ("claims", mine)]
    plan += [("changes", lambda run_id: stage(notify.detect_changes)(settings, wh, run_id)),
             ("alerts", lambda run_id: stage(notify.send_alerts)(settings, wh, run_id)),
             ("catalogs", lambda run_id: stage(stages.refresh_catalogs)(settings, wh, run_id))]

    def on_stage(name: str, index: int, total: int, counts: dict[str, Any] | None) -> None:
        progress.emit(StageEvent(name, index, total, counts))

    title = f"newsmon backfill {since.isoformat()} to {until.isoformat() if until else 'now'}"
    if remine:
        title += " (remine)"
    return run_pipeline(wh, "backfill", plan, title=title, on_stage=on_stage)


def _has_part_deployment() -> bool:
    from flows.fanout import part_deployment_exists

    found = part_deployment_exists()
    if not found:
        _logger().warning("fan_out: no deployment backfill-part/ad-hoc on this Prefect server (`newsmon deploy` "
                          "registers it): the parts run as task runs of this flow run")
    return found


def run_backfill_part(since: dt.date, until: dt.date | None = None, feeds: list[str] | None = None,
                      remine: bool = False, config: str | None = None) -> dict[str, dict[str, Any]]:
    """One part of a fanned-out backfill (flows/fanout.py) as plain Python: fetch the window's pending
    pages (unless `remine`), re-extract and re-mine its days; recorded as a run of its own (flow
    "backfill-part"), without the writer slot, which its parent holds. Changes and alerts are the
    parent's, once every part is done."""
    start, end = backfill_window(since, until)
    settings = load_settings(config)
    check_feeds(settings, feeds)
    wh = Warehouse.from_settings(settings.warehouse)
    plan: list[tuple[str, Callable[[str], dict[str, Any]]]] = []
    if not remine:
        plan.append(("pages", lambda run_id: stage(stages.fetch_pages)(settings, wh, run_id, since=start, until=end,
                                                                       feeds=feeds)))
    plan += [("articles", lambda run_id: stage(stages.extract_articles)(settings, wh, run_id, since=start,
                                                                         until=end, redo=True)),
             ("claims", lambda run_id: stage(stages.mine_articles)(settings, wh, run_id, since=start, until=end,
                                                                    redo=True))]
    title = f"newsmon backfill part {_days(start, end)}" + (" (remine)" if remine else "")
    return run_pipeline(wh, "backfill-part", plan, title=title, hold_writer=False)


@flow(name="backfill-part", log_prints=True)
def backfill_part(
    since: Day,
    until: Day | None = None,
    feeds: Annotated[list[FeedName], Field(min_length=1)] | None = None,
    remine: bool = False,
    config: str | None = None,
) -> dict[str, dict[str, Any]]:
    """One part of a fanned-out backfill: fetch what is pending of these days (unless remine), re-extract and re-mine them.

    Args:
        since: first day of the part (UTC), YYYY-MM-DD
        until: last day of the part, inclusive (default: no end)
        feeds: only fetch the pages of these feeds (default: every feed)
        remine: offline: download nothing, only extract and mine the stored pages again
        config: the newsmon TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)
    """
    try:
        return run_backfill_part(since, until, feeds=feeds, remine=remine, config=config)
    except NewsmonError as exc:
        return Failed(message=str(exc), data=exc)


@flow(name="backfill", log_prints=True, flow_run_name=run_name(backfill_run_name))
def backfill(
    since: Day,
    until: Day | None = None,
    feeds: Annotated[list[FeedName], Field(min_length=1)] | None = None,
    urls: list[Url] | None = None,
    urls_file: str | None = None,
    remine: bool = False,
    config: str | None = None,
    window_days: Annotated[int, Field(ge=0, le=3660)] = WINDOW_DAYS,
    fan_out: bool = False,
) -> dict[str, dict[str, Any]]:
    """Catch a window of days up and re-mine it (poll, fetch what is missing, re-extract and re-mine), or only re-mine it offline.

    Args:
        since: first day of the window (UTC), YYYY-MM-DD
        until: last day of the window, inclusive (default: no end)
        feeds: only poll and fetch these feeds (default: every configured feed)
        urls: also fetch and process these article URLs, whatever their date
        urls_file: a file of article URLs, one a line (# comments), on the machine that runs the flow
        remine: offline: poll and download nothing, only extract and mine the stored pages of the window again
        config: the newsmon TOML config file (default: $NEWSMON_CONFIG, else config/newsmon.toml)
        window_days: fetch, extract and mine the window this many days at a time, each part a task run
            of its own (parts with nothing to do are skipped); 0: the whole window in one task run per stage
        fan_out: each part a flow run of the deployment backfill-part/ad-hoc instead, so that the work
            pool's workers share them (`newsmon deploy` registers it and sets this on backfill/ad-hoc)
    """
    try:
        return run_backfill(since, until, feeds=feeds, urls=urls, urls_file=urls_file, remine=remine,
                            config=config, window_days=window_days, fan_out=fan_out)
    except NewsmonError as exc:  # RunFailed (recorded), a config or warehouse error: Failed, without a traceback
        return Failed(message=str(exc), data=exc)
