"""The pipeline's stages as Prefect tasks.

Each task is a thin wrapper: read the stage's pending work from the warehouse,
hand it to the plain function in `tasks/`, write the result back in one batch
transaction. Every stage is keyed and idempotent, so a run killed anywhere is
finished by the next one, and nothing is stored twice.
"""
from __future__ import annotations

import collections
import datetime as dt
from collections.abc import Iterator
from typing import Any

from newsmon.errors import ExtractError, FetchError, RefusedFetchError
from newsmon.settings import Settings
from flows.lazytask import lazy_task
from tasks.extract import EXTRACTOR_VERSION, extract_article
from tasks.feeds import FeedState, local_root, poll_feed
from tasks.fetch import HTML_TYPES, Fetcher
from tasks.mine import current_version, mine_chunks
from tasks.stories import SKETCH_CANDIDATES, assign_stories, shingles, sketch
from warehouse import Warehouse
from warehouse import queries as q

MAX_TRANSIENT_ATTEMPTS = 5
FETCH_BATCH = 20
EXTRACT_BATCH = 50
MINE_BATCH = 32   # articles a mining worker takes at a time; their claims commit together


def _logger():
    from flows.runtime import in_flow_run

    if in_flow_run():
        from prefect import get_run_logger

        return get_run_logger()
    import logging
    return logging.getLogger("newsmon")


@lazy_task(name="poll_feeds", retries=2, retry_delay_seconds=[2, 10])
def poll_feeds(settings: Settings, wh: Warehouse, run_id: str, feeds: list[str] | None = None,
               ignore_backoff: bool = False) -> dict[str, Any]:
    """Conditional GET of every configured feed; each poll commits with its entries and validators."""
    log = _logger()
    counts: dict[str, Any] = collections.Counter()
    failures: dict[str, int] = collections.Counter()
    chosen = [f for f in settings.feeds if f.enabled and (feeds is None or f.name in feeds)]
    with wh.transaction() as con:
        q.sync_feeds(con, [(f.name, f.url) for f in settings.feeds])
        states = q.feed_states(con)
    now = dt.datetime.now(dt.timezone.utc)
    with Fetcher(settings.fetch) as fetcher:
        for feed in chosen:
            st = states.get(feed.name, {})
            if not ignore_backoff and st.get("next_poll_at") and st["next_poll_at"] > now:
                with wh.transaction() as con:
                    q.record_skipped_poll(con, feed.name, run_id, st["next_poll_at"])
                counts["skipped_backoff"] += 1
                continue
            state = FeedState(etag=st.get("etag"), last_modified=st.get("last_modified"),
                              body_sha256=st.get("body_sha256"))
            poll = poll_feed(fetcher, feed, state, settings.fetch.max_feed_bytes)
            with wh.transaction() as con:
                new = q.record_poll(con, poll, run_id,
                                    backoff_after=settings.fetch.feed_backoff_after_failures,
                                    backoff_base=settings.fetch.feed_backoff_base_seconds,
                                    backoff_max=settings.fetch.feed_backoff_max_seconds)
            counts["polled"] += 1
            counts[poll.outcome] += 1
            counts["new_entries"] += new
            counts["entries_rejected"] += len(poll.rejected)
            if not poll.ok:
                failures[poll.reason or "error"] += 1
                log.warning("feed %s failed: %s", feed.name, poll.error)
            elif poll.bozo:
                log.info("feed %s is malformed but readable: %s", feed.name, poll.bozo)
    counts = dict(counts)
    counts["failures"] = dict(failures)
    return counts


@lazy_task(name="fetch_pages", retries=2, retry_delay_seconds=[2, 10])
def fetch_pages(settings: Settings, wh: Warehouse, run_id: str, *, since: dt.datetime | None = None,
                until: dt.datetime | None = None, feeds: list[str] | None = None) -> dict[str, Any]:
    """Download every entry page not stored yet; raw bytes are stored before anything parses them."""
    log = _logger()
    with wh.connect(read_only=True) as con:
        pending = q.pending_fetches(con, MAX_TRANSIENT_ATTEMPTS, since=since, until=until, feeds=feeds)
    counts: dict[str, Any] = collections.Counter()
    failures: dict[str, int] = collections.Counter()
    batch: list[dict[str, Any]] = []

    def flush():
        if batch:
            with wh.transaction() as con:
                q.record_fetches(con, batch, run_id)
            batch.clear()

    with Fetcher(settings.fetch) as fetcher:
        for item in pending:
            try:
                # pages of a local feed may be files, inside its folder only
                root = local_root(str(item["feed_url"]), settings.source and settings.source.parent)
                resp = fetcher.get(item["url"], max_bytes=settings.fetch.max_page_bytes, accept=HTML_TYPES,
                                   allow_file=root)
                batch.append(dict(url=item["url"], outcome="ok", final_url=resp.final_url, status=resp.status,
                                  content_type=resp.content_type, headers=resp.headers, content=resp.content,
                                  fetched_at=resp.fetched_at))
                counts["fetched"] += 1
            except FetchError as exc:
                outcome = "refused" if isinstance(exc, RefusedFetchError) else "transient"
                batch.append(dict(url=item["url"], outcome=outcome, reason=exc.reason, status=exc.status,
                                  error=str(exc)[:2000], fetched_at=dt.datetime.now(dt.timezone.utc)))
                counts[outcome] += 1
                failures[exc.reason] += 1
                log.warning("page %s %s: %s", item["url"], outcome, exc)
            if len(batch) >= FETCH_BATCH:
                flush()
        flush()
    with wh.transaction() as con:
        counts["gave_up"] = q.give_up_transient(con, MAX_TRANSIENT_ATTEMPTS, run_id)
    counts = dict(counts)
    counts["failures"] = dict(failures)
    return counts


@lazy_task(name="extract_articles")
def extract_articles(settings: Settings, wh: Warehouse, run_id: str, *, since: dt.datetime | None = None,
                     until: dt.datetime | None = None, redo: bool = False,
                     feeds: list[str] | None = None) -> dict[str, Any]:
    """Extract stored pages (of `feeds` only, if given) into articles (batched), and link syndicated copies."""
    counts: dict[str, Any] = collections.Counter()
    after: tuple[dt.datetime, str] | None = None   # keyset: the last page of the previous batch
    sketched_before: int | None = None              # stored articles sketched before the first batch
    while True:
        with wh.connect(read_only=True) as con:
            pending = q.pending_extractions(con, EXTRACTOR_VERSION, since=since, until=until, redo=redo,
                                            limit=EXTRACT_BATCH, after=after, feeds=feeds)
            blobs = {p["sha256"]: q.raw_content(con, p["sha256"]) for p in pending}
        if not pending:
            break
        after = (pending[-1]["fetched_at"], pending[-1]["url"])
        rows, rejected = [], []
        now = dt.datetime.now(dt.timezone.utc)
        for p in pending:
            try:
                art = extract_article(blobs[p["sha256"]], p["url"], feed_title=p["title"], feed_author=p["author"],
                                      feed_published=p["published_at"])
            except ExtractError as exc:
                rejected.append(("extract", p["url"], "no_text", str(exc)))
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
            assign_stories(rows, others, settings.nlp.min_similarity_syndicated)
            q.save_articles(con, rows)
            q.save_story_sketches(con, [dict(url=r["url"], hashes=sketch(sh)) for r, sh in zip(rows, shingled)])
            if rejected:
                q.reject(con, rejected, run_id)
        counts["extracted"] += len(rows)
    return dict(counts)


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
                  feeds: list[str] | None = None) -> dict[str, Any]:
    """Mine entities, pledges, positions and meetings from articles (of `feeds` only, if given) not
    mined at the current version.

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
    for batch, rows, mined in mine_chunks(settings.nlp, batches(), settings.nlp.processes):
        with wh.transaction() as con:
            q.replace_claims(con, [a["url"] for a in batch], rows, mined)
        counts["articles"] += len(batch)
        counts["skipped_language"] += sum(1 for m in mined if m["sentences"] == 0)
        for table, items in rows.items():
            counts[table] += len(items)
    return dict(counts)
