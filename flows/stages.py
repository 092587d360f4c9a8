"""The pipeline's stages as Prefect tasks.

Each task is a thin wrapper: read the stage's pending work from the warehouse,
hand it to the plain function in `tasks/`, write the result back in one batch
transaction. Every stage is keyed and idempotent, so a run killed anywhere is
finished by the next one, and nothing is stored twice.
"""
from __future__ import annotations

import collections
import contextlib
import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

from flows import progress
from newsmon.errors import ExtractError, RefusedFetchError
from flows.lazytask import lazy_task
from newsmon.settings import Settings
from tasks.extract import EXTRACTOR_VERSION, ExtractPool
from tasks.feeds import FeedState, local_root, poll_feed
from tasks.fetch import HTML_TYPES, Fetcher
from tasks.fetch_pool import FetchPool, Left
from tasks.mine import MineService, current_version, mine_chunks
from tasks.stories import SKETCH_CANDIDATES, assign_stories, shingles, sketch
from warehouse import Warehouse
from warehouse import queries as q

MAX_TRANSIENT_ATTEMPTS = 5
POLL_BATCH = 20  # feed polls stored in one transaction ...
POLL_BATCH_ENTRIES = 2000  # ... or fewer, once they hold this many entries
# Fetched pages are stored in one transaction (each ~50 ms to open and checkpoint the file) per
# FETCH_BATCH pages, or earlier, FETCH_FLUSH_SECONDS after the batch's first page: a run killed
# mid-fetch downloads at most that again. From the network pages come slower than that, and the time
# decides; from a local mirror 20 pages took 0.2 s and their transaction as long (181 pages: 1.8 s -> 1.2 s).
FETCH_BATCH = 100
FETCH_FLUSH_SECONDS = 2.0
# A run leases the pages it is about to fetch (warehouse/migrations/0050_fetch_leases.sql) and renews
# the leases while it fetches: a run killed mid-fetch frees its pages at the latest this long after its
# last renewal (at once for the next run on its host, which marks it killed). Far above the longest
# pause between renewals (one request's deadline, a write waiting for the warehouse lock).
FETCH_LEASE_SECONDS = 900.0
FETCH_LEASE_RENEW_SECONDS = 60.0
EXTRACT_BATCH = 50
MINE_BATCH = 32   # articles a mining worker takes at a time; their claims commit together


class RunHelpers:
    """What a plain run (no Prefect flow run) starts as soon as it knows pages are coming, before it
    downloads them, so that no core waits at a stage's start: `nlp.processes` extraction helpers
    (forks that import trafilatura and load the language model while the pages download, then
    extract while the run reads and stores the batches) and the mining process
    (`tasks.mine.MineService`: a fork that loads the spaCy model meanwhile, then mines with
    `nlp.processes` processes). The run itself loads neither trafilatura nor the model. Nothing is
    started when nothing is downloaded (a run with nothing new never imports them).

    Pass `start` as `fetch_pages(on_pending=...)`, `extract_pool` to `extract_articles` and
    `mine_service` to `mine_articles`; `close()` (or the `with` block) stops what is left. All are
    forked while the run has no thread of its own (before the download's threads start).
    """

    def __init__(self, settings: Settings) -> None:
        self.extract_pool = ExtractPool(settings.nlp.processes, fork=True, helpers_only=True)
        self.mine_service = MineService(settings.nlp, settings.nlp.processes)

    def start(self) -> None:
        self.extract_pool.start()
        self.mine_service.start()

    def close(self, wait: bool = True) -> None:
        """Stop the helpers; `wait=False` (the run failed or was interrupted): without waiting for the
        mining process to finish its model load or its chunks."""
        self.extract_pool.__exit__(None, None, None)
        self.mine_service.close(wait=wait)

    def __enter__(self) -> RunHelpers:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        self.close(wait=exc_type is None)


def _logger():
    from flows.runtime import in_flow_run

    if in_flow_run():
        from prefect import get_run_logger

        return get_run_logger()
    import logging
    return logging.getLogger("newsmon")


def _left(counts: collections.Counter, event: Left, what: str, settings: Settings, log) -> None:
    """Count items the pool left for the next run; a host given up is said once."""
    counts[f"left_{event.why}"] += len(event.items)
    if event.why == "host_down":
        counts["hosts_given_up"] += 1
        log.warning("%s unreachable %d times in a row (%s): given up for this run, its %d other %s(s) left "
                    "for the next run", event.host or "(local files)", settings.fetch.host_give_up_after,
                    event.error, len(event.items), what)


def _left_summary(counts: collections.Counter, log, what: str, budget: float) -> None:
    if counts.get("left_budget"):
        log.warning("the run's budget (fetch.run_budget_seconds = %g) is spent: %d %s(s) left for the next run",
                    budget, counts["left_budget"], what)


@lazy_task(name="poll_feeds", retries=2, retry_delay_seconds=[2, 10])
def poll_feeds(settings: Settings, wh: Warehouse, run_id: str, feeds: list[str] | None = None,
               ignore_backoff: bool = False, budget_until: float | None = None) -> dict[str, Any]:
    """Conditional GET of every configured feed; each poll commits with its entries and validators.

    Feeds of different hosts are polled at once (`fetch.max_concurrency`), one host's one after
    another; a host that cannot be reached `fetch.host_give_up_after` times in a row, and every
    feed once `budget_until` (a time.time() instant: the run's budget) has passed, are left for the
    next run (counted, not recorded as failed polls).
    """
    log = _logger()
    counts: dict[str, Any] = collections.Counter()
    failures: dict[str, int] = collections.Counter()
    chosen = [f for f in settings.feeds if f.enabled and (feeds is None or f.name in feeds)]
    with wh.transaction() as con:
        q.sync_feeds(con, [(f.name, f.url) for f in settings.feeds])
        states = q.feed_states(con)
    now = dt.datetime.now(dt.timezone.utc)
    todo = []
    backing_off = []
    for feed in chosen:
        st = states.get(feed.name, {})
        if not ignore_backoff and st.get("next_poll_at") and st["next_poll_at"] > now:
            backing_off.append((feed.name, st["next_poll_at"]))
            continue
        todo.append((feed, FeedState(etag=st.get("etag"), last_modified=st.get("last_modified"),
                                     body_sha256=st.get("body_sha256"))))
    if backing_off:
        with wh.transaction() as con:
            for name, next_poll_at in backing_off:
                q.record_skipped_poll(con, name, run_id, next_poll_at)
        counts["skipped_backoff"] += len(backing_off)

    progress.items("feeds", 0, len(chosen), "feeds")
    polled_so_far = [len(backing_off)]

    def poll_one(fetcher: Fetcher, job: tuple) -> Any:
        return poll_feed(fetcher, job[0], job[1], settings.fetch.max_feed_bytes)

    batch: list[Any] = []
    oldest = 0.0  # monotonic time of the batch's first poll

    def flush() -> None:
        # one transaction for a few polls (a transaction opens the DuckDB file: ~0.1-0.2 s each,
        # 2,274 feeds took 9 minutes one by one); each poll still commits with its entries
        if not batch:
            return
        with wh.transaction() as con:
            news = [q.record_poll(con, poll, run_id,
                                  backoff_after=settings.fetch.feed_backoff_after_failures,
                                  backoff_base=settings.fetch.feed_backoff_base_seconds,
                                  backoff_max=settings.fetch.feed_backoff_max_seconds) for poll in batch]
        polled_so_far[0] += len(batch)
        progress.items("feeds", polled_so_far[0], len(chosen), "feeds")
        for poll, new in zip(batch, news):
            counts["polled"] += 1
            counts[poll.outcome] += 1
            counts["new_entries"] += new
            counts["entries_rejected"] += len(poll.rejected)
            if not poll.ok:
                failures[poll.reason or "error"] += 1
                log.warning("feed %s failed: %s", poll.feed, poll.error)
            elif poll.bozo:
                log.info("feed %s is malformed but readable: %s", poll.feed, poll.bozo)
        batch.clear()

    pool = FetchPool(settings.fetch, until=budget_until)
    for event in pool.run(todo, url_of=lambda job: job[0].url, work=poll_one):
        if isinstance(event, Left):
            _left(counts, event, "feed", settings, log)
            continue
        batch.append(event.result)
        if len(batch) == 1:
            oldest = time.monotonic()
        if (len(batch) >= POLL_BATCH or sum(len(p.entries) for p in batch) >= POLL_BATCH_ENTRIES
                or time.monotonic() - oldest >= FETCH_FLUSH_SECONDS):
            flush()
    flush()
    _left_summary(counts, log, "feed", settings.fetch.run_budget_seconds)
    progress.items("feeds", len(chosen), len(chosen), "feeds")
    counts = dict(counts)
    counts["failures"] = dict(failures)
    return counts


@lazy_task(name="fetch_pages", retries=2, retry_delay_seconds=[2, 10])
def fetch_pages(settings: Settings, wh: Warehouse, run_id: str, *, since: dt.datetime | None = None,
                until: dt.datetime | None = None, feeds: list[str] | None = None,
                budget_until: float | None = None,
                on_pending: Callable[[], None] | None = None) -> dict[str, Any]:
    """Download every entry page not stored yet; raw bytes are stored before anything parses them.

    Pages of different hosts are fetched at once (`fetch.max_concurrency` threads), one host's
    one after another; each result is stored from this thread, in batches of at most
    FETCH_BATCH pages or FETCH_FLUSH_SECONDS. The pages of a host that cannot be reached
    `fetch.host_give_up_after` times in a row, and every page once `budget_until` (a
    time.time() instant: the run's budget) has passed, stay pending for the next run.
    `on_pending` is called once, before the first download, when there is anything to download
    (the plain run starts its helpers and the model's load then: `RunHelpers`).
    """
    log = _logger()
    counts: dict[str, Any] = collections.Counter()
    with wh.connect(read_only=True) as con:   # nothing pending (the usual run): nothing written
        pending = q.pending_fetches(con, MAX_TRANSIENT_ATTEMPTS, since=since, until=until, feeds=feeds,
                                    run_id=run_id)
    if pending:
        # read again and lease in one write transaction: an overlapping run leases what is left
        with wh.transaction() as con:
            pending = q.pending_fetches(con, MAX_TRANSIENT_ATTEMPTS, since=since, until=until, feeds=feeds,
                                        run_id=run_id)
            leased = [p for p in pending if p["leased_by"]]
            pending = [p for p in pending if not p["leased_by"]]
            q.lease_fetches(con, [p["url"] for p in pending], run_id, FETCH_LEASE_SECONDS)
        if leased:
            counts["leased_elsewhere"] = len(leased)
            log.info("%d page(s) are being fetched by another run (%s): left to it",
                     len(leased), ", ".join(sorted({p["leased_by"] for p in leased})))
    if pending and on_pending is not None:
        on_pending()
    try:
        _fetch_leased(settings, wh, run_id, pending, counts, log, budget_until)
    except Exception:
        # best effort: the leases lapse anyway when the run is recorded as over (or they expire),
        # and a retry of this task (same run) takes them over
        with contextlib.suppress(Exception), wh.transaction() as con:
            q.release_fetches(con, run_id)
        raise
    with wh.transaction() as con:
        if pending:   # what was left (budget, host down) is pending for anyone again
            q.release_fetches(con, run_id)
        counts["gave_up"] = q.give_up_transient(con, MAX_TRANSIENT_ATTEMPTS, run_id)
    return dict(counts)


def _fetch_leased(settings: Settings, wh: Warehouse, run_id: str, pending: list[dict[str, Any]],
                  counts: dict[str, Any], log, budget_until: float | None) -> None:
    """Fetch the pages this run leased, storing each batch with its release; renews the leases while it works."""
    failures: dict[str, int] = collections.Counter()
    batch: list[dict[str, Any]] = []
    oldest = 0.0  # monotonic time of the batch's first result

    def flush():
        if batch:
            with wh.transaction() as con:
                q.record_fetches(con, batch, run_id)
            batch.clear()

    config_dir = settings.source and settings.source.parent

    def fetch(fetcher: Fetcher, item: dict[str, Any]) -> Any:
        # pages of a local feed may be files, inside its folder only
        root = local_root(str(item["feed_url"]), config_dir)
        resp = fetcher.get(item["url"], max_bytes=settings.fetch.max_page_bytes, accept=HTML_TYPES,
                           allow_file=root)
        # hashed and compressed here, on the fetching thread (zlib and hashlib let go of the GIL):
        # the thread that stores the batches did it all, ~3 ms a page, and the fetches waited
        return resp, q.blob_row(resp.content)

    def renew() -> None:
        with wh.transaction() as con:
            q.renew_fetch_leases(con, run_id, FETCH_LEASE_SECONDS)

    progress.items("pages", 0, len(pending), "pages")
    done = 0
    pool = FetchPool(settings.fetch, until=budget_until)
    for event in pool.run(pending, url_of=lambda item: item["url"], work=fetch, tick=renew,
                          tick_every=FETCH_LEASE_RENEW_SECONDS):
        if isinstance(event, Left):
            _left(counts, event, "page", settings, log)
            continue
        item, exc = event.item, event.error
        if exc is None:
            resp, blob = event.result
            batch.append(dict(url=item["url"], outcome="ok", final_url=resp.final_url, status=resp.status,
                              content_type=resp.content_type, headers=resp.headers, blob=blob,
                              fetched_at=resp.fetched_at))
            counts["fetched"] += 1
        else:
            outcome = "refused" if isinstance(exc, RefusedFetchError) else "transient"
            batch.append(dict(url=item["url"], outcome=outcome, reason=exc.reason, status=exc.status,
                              error=str(exc)[:2000], fetched_at=dt.datetime.now(dt.timezone.utc)))
            counts[outcome] += 1
            failures[exc.reason] += 1
            log.warning("page %s %s: %s", item["url"], outcome, exc)
        if len(batch) == 1:
            oldest = time.monotonic()
        if len(batch) >= FETCH_BATCH or time.monotonic() - oldest >= FETCH_FLUSH_SECONDS:
            flush()
        done += 1
        progress.items("pages", done, len(pending), "pages")
    flush()
    _left_summary(counts, log, "page", settings.fetch.run_budget_seconds)
    counts["failures"] = dict(failures)


@lazy_task(name="extract_articles")
def extract_articles(settings: Settings, wh: Warehouse, run_id: str, *, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, redo: bool = False,
                     feeds: list[str] | None = None, pool: ExtractPool | None = None) -> dict[str, Any]:
    """Extract stored pages (of `feeds` only, if given) into articles (batched), and link syndicated copies.

    `pool`: the helpers to extract on, started by the caller (the stage closes it when it is done);
    else the stage starts its own (`nlp.processes`)."""
    counts: dict[str, Any] = collections.Counter()
    after: tuple[dt.datetime, str] | None = None   # keyset: the last page of the previous batch
    sketched_before: int | None = None              # stored articles sketched before the first batch
    total = done = 0
    if progress.wanted():
        with wh.connect(read_only=True) as con:
            total = q.count_pending_extractions(con, EXTRACTOR_VERSION, since=since, until=until, redo=redo,
                                                feeds=feeds)
        progress.items("articles", 0, total, "articles")
    from flows.runtime import in_flow_run

    if pool is None:
        pool = ExtractPool(settings.nlp.processes, fork=not in_flow_run())   # helpers: see mine_articles

    def next_batch() -> tuple[list[dict[str, Any]], Callable[[], list]]:
        """The next batch of pages (keyset after the last one read), its extraction started."""
        nonlocal after
        with wh.connect(read_only=True) as con:
            pending = q.pending_extractions(con, EXTRACTOR_VERSION, since=since, until=until, redo=redo,
                                            limit=EXTRACT_BATCH, after=after, feeds=feeds)
            jobs = [dict(html=q.raw_content(con, p["sha256"]), url=p["url"], feed_title=p["title"],
                         feed_author=p["author"], feed_published=p["published_at"]) for p in pending]
        if pending:
            after = (pending[-1]["fetched_at"], pending[-1]["url"])
        return pending, pool.submit(jobs)

    with pool:
        pending, results = next_batch()
        while pending:
            # the helpers start on the next batch while this batch is stored (at most two batches held)
            upcoming = next_batch()
            sketched_before = _store_extracted(settings, wh, run_id, pending, results(), counts, sketched_before)
            done += len(pending)
            progress.items("articles", done, max(total, done), "articles")
            pending, results = upcoming
    return dict(counts)


def _store_extracted(settings: Settings, wh: Warehouse, run_id: str, pending: list[dict[str, Any]],
                     results: list, counts: collections.Counter, sketched_before: int | None) -> int:
    """Store one batch of extracted pages: its articles (in their stories) and its rejections."""
    rows, rejected = [], []
    now = dt.datetime.now(dt.timezone.utc)
    for p, art in zip(pending, results):
        if isinstance(art, ExtractError):
            rejected.append(("extract", p["url"], "no_text", str(art)))
            counts["rejected"] += 1
            continue
        published, source = art.published_at, art.date_source
        if published is None:
            published, source = p["fetched_at"], "fetch"
        rows.append(dict(url=art.url, feed=p["feed"], canonical_url=art.canonical_url, title=art.title,
                         author=art.author, published_at=published, date_source=source,
                         language=art.language, text=art.text, text_sha256=art.text_sha256,
                         page_sha256=p["sha256"], extractor_version=EXTRACTOR_VERSION, extracted_at=now))
    if sketched_before is None:
        sketched_before = sketch_stored_articles(wh)
    shingled = [shingles(r["text"]) for r in rows]
    with wh.transaction() as con:
        others = q.story_candidates(con, [(i, h) for i, sh in enumerate(shingled) for h in sh],
                                    [r["url"] for r in rows], SKETCH_CANDIDATES)
        assign_stories(rows, others, settings.nlp.min_similarity_syndicated, new_shingles=shingled)
        q.save_articles(con, rows)
        q.save_story_sketches(con, [dict(url=r["url"], hashes=sketch(sh)) for r, sh in zip(rows, shingled)])
        if rejected:
            q.reject(con, rejected, run_id)
    counts["extracted"] += len(rows)
    return sketched_before


def sketch_stored_articles(wh: Warehouse) -> int:
    """Sketch the stored articles that have no story sketch yet (stored before sketches existed), batch by batch."""
    done = 0
    while True:
        with wh.connect(read_only=True) as con:
            batch = q.unsketched_articles(con, EXTRACT_BATCH * 4)
        if not batch:
            return done
        with wh.transaction() as con:
            q.save_story_sketches(con, [dict(url=a["url"], hashes=sketch(shingles(a["text"] or ""))) for a in batch])
        done += len(batch)



@lazy_task(name="mine_articles")
def mine_articles(settings: Settings, wh: Warehouse, run_id: str, *, since: dt.datetime | None = None,
                  until: dt.datetime | None = None, redo: bool = False,
                  feeds: list[str] | None = None, service: MineService | None = None) -> dict[str, Any]:
    """Mine entities, pledges, positions and meetings from articles (of `feeds` only, if given) not
    mined at the current version (in `service`'s process, if given, else in this one).

    The pending articles are read MINE_BATCH texts at a time and mined on `nlp.processes`
    processes; each batch's claims commit as they come. spaCy is not even imported when
    nothing is pending.
    """
    version = current_version(settings.nlp)

    def batches() -> Iterator[list[dict[str, Any]]]:
        after = None
        while True:
            with wh.connect(read_only=True) as con:
                batch = q.pending_mining(con, version, since=since, until=until, redo=redo, after=after,
                                         limit=MINE_BATCH, feeds=feeds)
            if not batch:
                return
            after = batch[-1]["url"]
            yield batch

    counts: dict[str, Any] = collections.Counter()
    total = 0
    if progress.wanted():
        with wh.connect(read_only=True) as con:
            total = q.count_pending_mining(con, version, since=since, until=until, redo=redo, feeds=feeds)
        progress.items("claims", 0, total, "articles")
    from flows.runtime import in_flow_run

    # helpers are forks of this process (the model loaded once), except in a Prefect flow run: its
    # threads make forking unsafe, so they are spawned there
    if service is not None:
        mined_chunks = service.mine_chunks(batches())
    else:
        mined_chunks = mine_chunks(settings.nlp, batches(), settings.nlp.processes, fork=not in_flow_run())
    for batch, rows, mined in mined_chunks:
        with wh.transaction() as con:
            q.replace_claims(con, [a["url"] for a in batch], rows, mined)
        counts["articles"] += len(batch)
        progress.items("claims", counts["articles"], max(total, counts["articles"]), "articles")
        counts["skipped_language"] += sum(1 for m in mined if m["sentences"] == 0)
        for table, items in rows.items():
            counts[table] += len(items)
    return dict(counts)


@lazy_task(name="refresh_catalogs")
def refresh_catalogs(settings: Settings, wh: Warehouse, run_id: str) -> dict[str, Any]:
    """The `topics` and `entities` views' tables, rebuilt from the config files when those changed
    since the last rebuild (a digest comparison otherwise: no YAML is parsed, nothing is written)."""
    from newsmon.reading import refresh_derived

    done = refresh_derived(settings, wh)
    return {"rebuilt": int(done["catalog"])}
