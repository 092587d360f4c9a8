"""Named statements the flows run against the warehouse, one function each.

Each write function takes an open connection inside the caller's transaction so
that a stage's batch and its bookkeeping (feed validators, fetch log, rejections)
commit together. Values always go in as parameters or Arrow batches.
"""
from __future__ import annotations

import datetime as dt
import hashlib
import json
import zlib
from collections.abc import Iterable, Sequence
from typing import Any

import duckdb
import pyarrow as pa

from warehouse.db import fetch_dicts, insert_rows

Con = duckdb.DuckDBPyConnection


def utcnow() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


# -- runs ------------------------------------------------------------------------
def start_run(con: Con, run_id: str, flow: str) -> None:
    # Statements here run on the DuckDB file and on DuckLake (no constraints there): no OR IGNORE / ON CONFLICT.
    con.execute("INSERT INTO runs (run_id, flow, started_at) SELECT ?, ?, ? "
                "WHERE NOT EXISTS (SELECT 1 FROM runs WHERE run_id = ?)", [run_id, flow, utcnow(), run_id])


def finish_run(con: Con, run_id: str, counts: dict[str, Any]) -> None:
    con.execute("UPDATE runs SET finished_at = ?, counts = ? WHERE run_id = ?",
                [utcnow(), json.dumps(counts, default=str), run_id])


# -- feeds -----------------------------------------------------------------------
def sync_feeds(con: Con, feeds: Iterable[tuple[str, str]]) -> None:
    """Make the feeds table list the configured feeds; a changed URL forgets the old validators."""
    # Only what changed is written: on DuckLake every UPDATE rewrites rows (and makes a snapshot).
    for name, url in feeds:
        con.execute("UPDATE feeds SET url = ?, etag = NULL, last_modified = NULL, body_sha256 = NULL "
                    "WHERE name = ? AND url <> ?", [url, name, url])
        con.execute("INSERT INTO feeds (name, url) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM feeds WHERE name = ?)",
                    [name, url, name])


def feed_states(con: Con) -> dict[str, dict[str, Any]]:
    rows = fetch_dicts(con, "SELECT name, url, etag, last_modified, body_sha256, consecutive_failures, "
                            "next_poll_at FROM feeds")
    return {r["name"]: r for r in rows}


def record_poll(con: Con, poll, run_id: str, *, backoff_after: int, backoff_base: float,
                backoff_max: float) -> int:
    """Store one poll: its entries, the feed's validators and health, and the poll log. Returns new entries."""
    now = poll.polled_at
    new = 0
    if poll.entries:
        known = {u for (u,) in con.execute(
            "SELECT url FROM feed_entries WHERE feed = ? AND url IN (SELECT unnest(?::VARCHAR[]))",
            [poll.feed, [e.url for e in poll.entries]]).fetchall()}
        rows = [dict(feed=poll.feed, url=e.url, entry_id=e.entry_id, title=e.title, author=e.author,
                     published_at=e.published_at, summary=e.summary, content=e.content, first_seen_at=now)
                for e in poll.entries if e.url not in known]
        new = insert_rows(con, "feed_entries", rows, on_conflict="ignore")
    if poll.rejected:
        reject(con, [("feed_entry", f"{poll.feed}: {key}", reason, None) for key, reason in poll.rejected], run_id)
    if poll.ok:
        con.execute(
            "UPDATE feeds SET etag = ?, last_modified = ?, body_sha256 = ?, last_polled_at = ?, "
            "last_success_at = ?, last_status = ?, last_error = NULL, consecutive_failures = 0, "
            "next_poll_at = NULL WHERE name = ?",
            [poll.etag, poll.last_modified, poll.body_sha256, now, now, poll.status, poll.feed])
    else:
        failures = con.execute("SELECT consecutive_failures FROM feeds WHERE name = ?", [poll.feed]).fetchone()
        failures = (failures[0] if failures else 0) + 1
        next_poll = None
        if failures >= backoff_after:  # a one-off failure is retried next run; a persistent one backs off
            wait = min(backoff_max, backoff_base * 2 ** (failures - backoff_after))
            next_poll = now + dt.timedelta(seconds=wait)
        con.execute(
            "UPDATE feeds SET last_polled_at = ?, last_status = ?, last_error = ?, consecutive_failures = ?, "
            "next_poll_at = ? WHERE name = ?",
            [now, poll.status, poll.error, failures, next_poll, poll.feed])
    con.execute(
        "INSERT INTO feed_polls (feed, polled_at, run_id, status, outcome, entries, new_entries, bozo, error) "
        "VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        [poll.feed, now, run_id, poll.status, poll.outcome, len(poll.entries), new, poll.bozo, poll.error])
    return new


def record_skipped_poll(con: Con, feed: str, run_id: str, next_poll_at: dt.datetime) -> None:
    con.execute("INSERT INTO feed_polls (feed, polled_at, run_id, outcome, error) VALUES (?, ?, ?, ?, ?)",
                [feed, utcnow(), run_id, "skipped_backoff", f"backing off until {next_poll_at.isoformat()}"])


# -- rejections --------------------------------------------------------------------
def reject(con: Con, items: Sequence[tuple[str, str, str, str | None]], run_id: str | None) -> None:
    """Record (stage, key, reason, detail) rejections; the latest reason wins."""
    rows = [dict(stage=s, key=k[:2000], reason=r, detail=(d or "")[:2000] or None, rejected_at=utcnow(),
                 run_id=run_id) for s, k, r, d in items]
    insert_rows(con, "rejections", rows, on_conflict="replace")


# -- fetch -------------------------------------------------------------------------
def pending_fetches(con: Con, max_transient_attempts: int, since: dt.datetime | None = None,
                    until: dt.datetime | None = None, feeds: Sequence[str] | None = None, *,
                    run_id: str | None = None, now: dt.datetime | None = None) -> list[dict[str, Any]]:
    """Feed entries whose page is not stored yet, not refused, and not given up on.

    Each with `leased_by`: the run (other than `run_id`) holding a live lease on the page
    (see `lease_fetches`), else None.
    """
    return fetch_dicts(con, f"""
        WITH entries AS (
            SELECT url, arg_min(feed, first_seen_at) AS feed, min(published_at) AS published_at,
                   min(first_seen_at) AS first_seen_at
            FROM feed_entries
            WHERE (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], feed))
            GROUP BY url
        ), attempts AS (
            SELECT url, count(*) FILTER (WHERE outcome = 'transient') AS transient FROM fetches GROUP BY url
        ), leases AS ({_LIVE_LEASES})
        SELECT e.url, e.feed, f.url AS feed_url, l.run_id AS leased_by
        FROM entries e
        JOIN feeds f ON f.name = e.feed
        LEFT JOIN attempts a ON a.url = e.url
        LEFT JOIN leases l ON l.url = e.url AND l.run_id IS DISTINCT FROM ?
        WHERE e.url NOT IN (SELECT url FROM pages)
          AND e.url NOT IN (SELECT key FROM rejections WHERE stage = 'fetch')
          AND coalesce(a.transient, 0) < ?
          AND (?::TIMESTAMPTZ IS NULL OR coalesce(e.published_at, e.first_seen_at) >= ?)
          AND (?::TIMESTAMPTZ IS NULL OR coalesce(e.published_at, e.first_seen_at) < ?)
        ORDER BY e.first_seen_at, e.url
    """, [feeds, feeds, now or utcnow(), run_id, max_transient_attempts, since, since, until, until])


# -- fetch leases ------------------------------------------------------------------
# A lease is live while it has not expired and its run is not recorded as over (a run id
# that `runs` does not know, e.g. a stage called on its own, holds its leases until they expire).
_LIVE_LEASES = """
            SELECT l.url, l.run_id FROM fetch_leases l
            WHERE l.expires_at > ?::TIMESTAMPTZ
              AND NOT EXISTS (SELECT 1 FROM runs r WHERE r.run_id = l.run_id AND r.status <> 'running')"""


def lease_fetches(con: Con, urls: Sequence[str], run_id: str, seconds: float,
                  now: dt.datetime | None = None) -> int:
    """Lease `urls` to `run_id` for `seconds` (call inside the transaction that read them pending,
    with `leased_by` None); lapsed leases of any run are dropped. Returns the pages leased."""
    now = now or utcnow()
    con.execute("DELETE FROM fetch_leases WHERE expires_at <= ? OR run_id IN "
                "(SELECT run_id FROM runs WHERE status <> 'running')", [now])
    if not urls:
        return 0
    urls = list(dict.fromkeys(urls))
    con.register("_newsmon_leased", pa.table({"url": pa.array(urls, pa.string())}))
    try:
        con.execute("DELETE FROM fetch_leases WHERE url IN (SELECT url FROM _newsmon_leased)")
        con.execute("INSERT INTO fetch_leases (url, run_id, leased_at, expires_at) "
                    "SELECT url, ?, ?, ? FROM _newsmon_leased",
                    [run_id, now, now + dt.timedelta(seconds=seconds)])
    finally:
        con.unregister("_newsmon_leased")
    return len(urls)


def renew_fetch_leases(con: Con, run_id: str, seconds: float, now: dt.datetime | None = None) -> None:
    """Push the expiry of every lease `run_id` holds to `seconds` from now (the holder is alive)."""
    con.execute("UPDATE fetch_leases SET expires_at = ? WHERE run_id = ?",
                [(now or utcnow()) + dt.timedelta(seconds=seconds), run_id])


def release_fetches(con: Con, run_id: str, urls: Sequence[str] | None = None) -> None:
    """Drop the leases `run_id` holds (on `urls` only, if given): the pages are stored, or left to others."""
    if urls is None:
        con.execute("DELETE FROM fetch_leases WHERE run_id = ?", [run_id])
    elif urls:
        con.execute("DELETE FROM fetch_leases WHERE run_id = ? AND list_contains(?::VARCHAR[], url)",
                    [run_id, list(urls)])


def blob_row(content: bytes) -> dict[str, Any]:
    return dict(sha256=hashlib.sha256(content).hexdigest(), size=len(content), compression="zlib",
                data=zlib.compress(content, 6))


def record_fetches(con: Con, results: Sequence[dict[str, Any]], run_id: str) -> None:
    """Store a batch of fetch outcomes: raw bytes and page rows for successes, the log for all.

    A success carries its `content`, or its `blob` row made already (`blob_row`)."""
    blobs, pages, log, refused = {}, [], [], []
    for r in results:
        sha = None
        if r["outcome"] == "ok":
            blob = r["blob"] if "blob" in r else blob_row(r["content"])
            sha = blob["sha256"]
            blobs[sha] = blob
            pages.append(dict(url=r["url"], final_url=r["final_url"], status=r["status"],
                              content_type=r["content_type"], headers=json.dumps(r["headers"]),
                              sha256=sha, fetched_at=r["fetched_at"]))
        elif r["outcome"] == "refused":
            refused.append(("fetch", r["url"], r["reason"], r["error"]))
        log.append(dict(url=r["url"], attempted_at=r["fetched_at"], run_id=run_id, outcome=r["outcome"],
                        reason=r.get("reason"), status=r.get("status"), final_url=r.get("final_url"),
                        content_type=r.get("content_type"),
                        headers=json.dumps(r["headers"]) if r.get("headers") else None,
                        sha256=sha, error=r.get("error")))
    insert_rows(con, "raw_blobs", list(blobs.values()), on_conflict="ignore")
    insert_rows(con, "pages", pages, on_conflict="replace")
    insert_rows(con, "fetches", log)
    if refused:
        reject(con, refused, run_id)
    release_fetches(con, run_id, [r["url"] for r in results])   # with the outcome they were leased for


def give_up_transient(con: Con, max_transient_attempts: int, run_id: str) -> int:
    """URLs that failed transiently too often become recorded rejections (not silently dropped)."""
    rows = con.execute("""
        SELECT url, count(*), arg_max(error, attempted_at) FROM fetches
        WHERE outcome = 'transient' AND url NOT IN (SELECT url FROM pages)
          AND url NOT IN (SELECT key FROM rejections WHERE stage = 'fetch')
        GROUP BY url HAVING count(*) >= ?""", [max_transient_attempts]).fetchall()
    reject(con, [("fetch", u, "gave_up", f"{n} transient failures; last: {e}") for u, n, e in rows], run_id)
    return len(rows)


def raw_content(con: Con, sha256: str) -> bytes:
    row = con.execute("SELECT compression, data FROM raw_blobs WHERE sha256 = ?", [sha256]).fetchone()
    if row is None:
        raise KeyError(sha256)
    return zlib.decompress(row[1]) if row[0] == "zlib" else bytes(row[1])


# -- extract -----------------------------------------------------------------------
_PENDING_EXTRACTIONS = """
        WITH entries AS (
            SELECT url, arg_min(feed, first_seen_at) AS feed, arg_min(title, first_seen_at) AS title,
                   arg_min(author, first_seen_at) AS author, min(published_at) AS published_at,
                   min(first_seen_at) AS first_seen_at
            FROM feed_entries GROUP BY url
        )
        SELECT p.url, p.sha256, p.fetched_at, e.feed, e.title, e.author, e.published_at
        FROM pages p LEFT JOIN entries e USING (url)
        LEFT JOIN article_texts a USING (url)
        WHERE (? OR a.url IS NULL OR a.extractor_version <> ?)
          AND (? OR p.url NOT IN (SELECT key FROM rejections WHERE stage = 'extract'))
          AND (?::TIMESTAMPTZ IS NULL OR coalesce(a.published_at, e.published_at, p.fetched_at) >= ?)
          AND (?::TIMESTAMPTZ IS NULL OR coalesce(a.published_at, e.published_at, p.fetched_at) < ?)
          AND (?::TIMESTAMPTZ IS NULL OR p.fetched_at > ? OR (p.fetched_at = ? AND p.url > ?))
          AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], e.feed))"""


def _pending_extractions_params(version: str, since, until, redo: bool, after, feeds) -> list[Any]:
    after_at, after_url = after if after is not None else (None, None)
    return [redo, version, redo, since, since, until, until, after_at, after_at, after_at, after_url, feeds, feeds]


def pending_extractions(con: Con, version: str, *, since: dt.datetime | None = None,
                        until: dt.datetime | None = None, redo: bool = False, limit: int | None = None,
                        after: tuple[dt.datetime, str] | None = None,
                        feeds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Stored pages without an article at `version` (all pages in the window with `redo`);
    with `feeds`, only pages whose entry (its first feed) is of those feeds.

    In (fetched_at, url) order; `after` = the (fetched_at, url) of the last page of the previous
    batch, so a caller pages through the window in constant memory (keyset pagination).
    """
    return fetch_dicts(con, _PENDING_EXTRACTIONS + "\n        ORDER BY p.fetched_at, p.url\n        LIMIT ?",
                       [*_pending_extractions_params(version, since, until, redo, after, feeds), limit])


def count_pending_extractions(con: Con, version: str, *, since: dt.datetime | None = None,
                              until: dt.datetime | None = None, redo: bool = False,
                              feeds: Sequence[str] | None = None) -> int:
    """How many pages `pending_extractions` pages through (for a progress display)."""
    return con.execute(f"SELECT count(*) FROM ({_PENDING_EXTRACTIONS})",
                       _pending_extractions_params(version, since, until, redo, None, feeds)).fetchone()[0]


def save_articles(con: Con, rows: Sequence[dict[str, Any]]) -> int:
    return insert_rows(con, "article_texts", rows, on_conflict="replace")


def story_candidates(con: Con, probes: Sequence[tuple[int, int]], exclude: Sequence[str],
                     per_article: int) -> list[dict[str, Any]]:
    """Stored articles (url, published_at, text, story_id) to compare new ones against: for each new
    article (`probes`: pairs of its index and one of its shingle hashes), the `per_article` stored
    ones (but `exclude`) whose sketch shares the most of its shingles."""
    if not probes:
        return []
    probe = pa.table({"i": pa.array([i for i, _ in probes], pa.int32()),
                      "h": pa.array([h for _, h in probes], pa.int64())})
    con.register("_newsmon_probe", probe)
    try:
        return fetch_dicts(con, """
            WITH sketched AS (
                SELECT url, unnest(hashes) AS h FROM story_sketches WHERE NOT list_contains(?::VARCHAR[], url)
            ), shared AS (
                SELECT s.url, p.i, count(*) AS n FROM sketched s JOIN _newsmon_probe p USING (h) GROUP BY s.url, p.i
            ), best AS (
                SELECT DISTINCT url FROM shared QUALIFY row_number() OVER (PARTITION BY i ORDER BY n DESC, url) <= ?
            )
            SELECT a.url, a.published_at, a.text, a.story_id, a.extracted_at
            FROM article_texts a JOIN best USING (url)
            ORDER BY a.extracted_at, a.url
        """, [list(exclude), per_article])
    finally:
        con.unregister("_newsmon_probe")


def unsketched_articles(con: Con, limit: int) -> list[dict[str, Any]]:
    """Stored articles without a story sketch (stored before sketches existed)."""
    return fetch_dicts(con, "SELECT a.url, a.text FROM article_texts a "
                            "WHERE NOT EXISTS (SELECT 1 FROM story_sketches s WHERE s.url = a.url) "
                            "ORDER BY a.url LIMIT ?", [limit])


def save_story_sketches(con: Con, rows: Sequence[dict[str, Any]]) -> int:
    """Rows of (url, hashes): the sketches of newly (re-)extracted articles."""
    return insert_rows(con, "story_sketches", rows, on_conflict="replace")


# -- mine --------------------------------------------------------------------------
_PENDING_MINING = """
        SELECT a.url, a.published_at, a.language, a.text
        FROM article_texts a LEFT JOIN mined_articles m USING (url)
        WHERE (? OR m.url IS NULL OR m.extractor_version <> ?)
          AND (?::TIMESTAMPTZ IS NULL OR a.published_at >= ?)
          AND (?::TIMESTAMPTZ IS NULL OR a.published_at < ?)
          AND (?::VARCHAR IS NULL OR a.url > ?)
          AND (?::VARCHAR[] IS NULL OR list_contains(?::VARCHAR[], a.feed))"""


def pending_mining(con: Con, version: str, *, since: dt.datetime | None = None, until: dt.datetime | None = None,
                   redo: bool = False, after: str | None = None, limit: int | None = None,
                   feeds: Sequence[str] | None = None) -> list[dict[str, Any]]:
    """Articles not mined at `version` (all articles of the window with `redo`), in URL order;
    with `feeds`, only theirs.

    `after`: the last URL of the previous batch (keyset pagination: a window of any size is
    read `limit` texts at a time).
    """
    return fetch_dicts(con, _PENDING_MINING + "\n        ORDER BY a.url\n        LIMIT ?",
                       [redo, version, since, since, until, until, after, after, feeds, feeds, limit])


def count_pending_mining(con: Con, version: str, *, since: dt.datetime | None = None,
                         until: dt.datetime | None = None, redo: bool = False,
                         feeds: Sequence[str] | None = None) -> int:
    """How many articles `pending_mining` pages through (for a progress display)."""
    return con.execute(f"SELECT count(*) FROM ({_PENDING_MINING})",
                       [redo, version, since, since, until, until, None, None, feeds, feeds]).fetchone()[0]


CLAIM_TABLES = ("mentions", "pledge_claims", "position_claims", "meeting_claims")


def replace_claims(con: Con, urls: Sequence[str], rows: dict[str, list[dict[str, Any]]],
                   mined: Sequence[dict[str, Any]]) -> None:
    """Swap the claims of these articles for new ones (caller's transaction: no gap, no duplicate)."""
    for table in CLAIM_TABLES:
        con.execute(f"DELETE FROM {table} WHERE list_contains(?::VARCHAR[], url)", [list(urls)])
        insert_rows(con, table, rows.get(table, []))
    insert_rows(con, "mined_articles", list(mined), on_conflict="replace")


# -- backfill ----------------------------------------------------------------------
def days_with_work(con: Con, since: dt.datetime, until: dt.datetime | None) -> list[dt.date]:
    """The UTC days of [since, until) on which a backfill stage could find anything: a feed entry's
    time (published, else first seen), a page's fetch time, an article's publication time. Each
    stage's window condition is on one of these, so a window of days none of them touch is empty."""
    rows = con.execute("""
        SELECT DISTINCT CAST(floor(epoch(t) / 86400) AS BIGINT) AS day FROM (
            SELECT coalesce(published_at, first_seen_at) AS t FROM feed_entries
            UNION ALL SELECT published_at FROM feed_entries WHERE published_at IS NOT NULL
            UNION ALL SELECT fetched_at FROM pages
            UNION ALL SELECT published_at FROM article_texts WHERE published_at IS NOT NULL
        ) AS times
        WHERE t >= ? AND (?::TIMESTAMPTZ IS NULL OR t < ?)
        ORDER BY day
    """, [since, until, until]).fetchall()
    epoch = dt.date(1970, 1, 1)
    return [epoch + dt.timedelta(days=day) for (day,) in rows]


def add_url_entries(con: Con, feed: str, feed_url: str, urls: Sequence[str]) -> dict[str, int]:
    """List explicit article URLs as entries of a pseudo-feed, so the fetch stage takes them like feed items.

    Returns how many URLs were new entries and how many pages are already stored (not downloaded again).
    """
    con.execute("INSERT INTO feeds (name, url) SELECT ?, ? WHERE NOT EXISTS (SELECT 1 FROM feeds WHERE name = ?)",
                [feed, feed_url, feed])
    known = {u for (u,) in con.execute(
        "SELECT url FROM feed_entries WHERE feed = ? AND list_contains(?::VARCHAR[], url)",
        [feed, list(urls)]).fetchall()}
    now = utcnow()
    new = insert_rows(con, "feed_entries", [dict(feed=feed, url=u, first_seen_at=now) for u in urls if u not in known],
                      on_conflict="ignore")
    (stored,) = con.execute("SELECT count(*) FROM pages WHERE list_contains(?::VARCHAR[], url)",
                            [list(urls)]).fetchone()
    return {"given": len(urls), "new_entries": new, "already_stored": stored}


# -- derived: catalogs and the search index (see warehouse/search.py) ----------------------
def schema_is_current(con: Con) -> bool:
    """Whether every migration is applied and every view is as its file says (a read-only check;
    `Warehouse.migrate` brings it up to date)."""
    from warehouse.db import MIGRATIONS, VIEWS

    try:
        done = {v for (v,) in con.execute("SELECT version FROM schema_migrations").fetchall()}
        known = dict(con.execute("SELECT name, sha256 FROM schema_views").fetchall())
    except duckdb.CatalogException:
        return False
    versions = {int(p.name[:4]) for p in MIGRATIONS.glob("*.sql")}
    digests = {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in VIEWS.glob("*.sql")}
    return versions <= done and digests == known


def derived_digest(con: Con, name: str) -> str | None:
    """The digest of the input `name` was last built from (None: never built)."""
    # no parameter: the first bound parameter makes duckdb's Python module import pandas (~1 s),
    # and every read command asks this
    return dict(con.execute("SELECT name, digest FROM derived_state").fetchall()).get(name)


def record_derived(con: Con, name: str, digest: str) -> None:
    insert_rows(con, "derived_state", [dict(name=name, digest=digest, refreshed_at=utcnow())], on_conflict="replace")


def sync_catalog(con: Con, topics: Sequence[dict[str, Any]], entities: Sequence[dict[str, Any]], digest: str) -> None:
    """Replace the topic and entity catalogs (caller's transaction) and record their digest."""
    con.execute("DELETE FROM topic_catalog")
    con.execute("DELETE FROM entity_catalog")
    insert_rows(con, "topic_catalog", list(topics))
    insert_rows(con, "entity_catalog", list(entities))
    record_derived(con, "catalog", digest)


# -- report (`newsmon report`) -------------------------------------------------------------------
def report_rows(con: Con, since: dt.datetime, until: dt.datetime | None) -> dict[str, list[dict[str, Any]]]:
    """What the report page of a window shows, read from the public views only.

    changes: the changes whose new statement falls in the window; positions: every position
    stated in the window (first copies of syndicated stories), with the last one stated before
    it per (actor group, topic) for context; pledges: the pledges standing at the window's end
    (current_pledges as of `until`); topics: descriptions.
    """
    window = [since, until, until]
    in_window = "published_at >= ? AND (?::TIMESTAMPTZ IS NULL OR published_at < ?)"
    changes = fetch_dicts(con, f"""
        SELECT c.*, t.description AS topic_description, o.title AS old_title, n.title AS new_title,
               o.feed AS old_feed, n.feed AS new_feed
        FROM changes c
        LEFT JOIN topics t ON c.kind = 'position' AND t.topic = c.subject
        LEFT JOIN articles o ON o.url = c.old_url
        LEFT JOIN articles n ON n.url = c.new_url
        WHERE {in_window.replace('published_at', 'c.new_published_at')}
        ORDER BY c.new_published_at, c.kind, c.actor_group""", window)
    positions = fetch_dicts(con, f"""
        WITH counted AS (SELECT * FROM positions WHERE story_id IS NULL OR story_id = url),
        before AS (
            SELECT actor_group, topic, arg_max(counted, published_at) AS p FROM counted
            WHERE published_at < ? GROUP BY ALL
        )
        SELECT p.published_at, p.actor_group, p.actor, p.topic, p.stance, p.evidence, p.url, a.title,
               false AS before_window
        FROM counted p JOIN articles a USING (url)
        WHERE {in_window.replace('published_at', 'p.published_at')}
        UNION ALL
        SELECT b.p.published_at, b.actor_group, b.p.actor, b.topic, b.p.stance, b.p.evidence, b.p.url, a.title, true
        FROM before b JOIN articles a ON a.url = b.p.url
        WHERE (b.actor_group, b.topic) IN (SELECT (actor_group, topic) FROM counted
                                           WHERE {in_window.replace('published_at', 'counted.published_at')})
        ORDER BY topic, actor_group, published_at""", [since, *window, *window])
    pledges = fetch_dicts(con, """
        SELECT * FROM pledges_as_of(?::TIMESTAMPTZ)
        ORDER BY recipient, amount_eur DESC NULLS LAST, donor""", [until])
    topics = fetch_dicts(con, "SELECT topic, description FROM topics ORDER BY topic")
    (articles,) = con.execute(f"SELECT count(*) FROM articles WHERE {in_window}", window).fetchone()
    return dict(changes=changes, positions=positions, pledges=pledges, topics=topics,
                counts=[dict(articles=articles)])
