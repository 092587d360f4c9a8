"""Named statements of the change log and the alert outbox.

The change stage (`flows.notify.detect_changes`) reads every claim with
`claims_for_changes`, recomputes all changes and records the difference with
`record_changes` in one transaction: new changes (one batch), retractions (never
deletes), restorations, and the due outbox rows for the recipients who want them.

The alert stage (`flows.notify.send_alerts`) moves outbox rows through

    due ──claim_due──▶ sending ──mark_sent──▶ sent
     ▲                   │  └──mark_unknown (delivery unknown: stays sending)
     └────mark_failed────┘      (after max_attempts: failed)
    due/failed ──(change retracted)──▶ retracted ──(restored)──▶ due

Corrections (`alert_corrections`, migration 0010): when `record_changes` retracts a
change whose alert was sent (or handed over) to a recipient, it queues one correction
for that (change, recipient, announcing message) in the same transaction. Corrections
move through the same states (due -> sending -> sent, `failed` for good, `cancelled`
when the change is restored first or the announcement never went out) and share the
Message-ID protocol below: the correction's rows and the alert rows it carries (the
changes that now stand in the retracted one's place) are claimed with one Message-ID.

`claim_due` composes nothing: the caller composes the digest inside the same
transaction and passes its Message-ID, which is committed *before* the send. Rows
left in "sending" (a crash between the send and `mark_sent`, or a connection lost
after the message was handed over) are taken again by `claim_stale` and re-sent
with the same Message-ID, composed from the same change_log rows, so a crash
never produces two different messages.

Each write function takes an open connection inside the caller's transaction.
"""
from __future__ import annotations

import datetime as dt
from collections.abc import Iterator, Sequence
from typing import Any

import duckdb

from warehouse.db import fetch_dicts, insert_rows

__all__ = [
    "claims_for_changes", "first_copy_claims", "count_claims", "stored_changes", "record_changes", "due_alerts", "claim_due", "stale_alerts",
    "claim_stale", "mark_sent", "mark_failed", "mark_unknown", "outbox_counts", "list_alerts",
    "requeue", "find_change_ids", "STATUSES",
    "due_corrections", "claim_corrections", "stale_corrections", "mark_message_failed",
    "mark_corrections_failed", "corrections_of_message", "outbox_rows_of_message", "correction_counts",
    "change_row", "alert_recipients", "briefing_facts", "list_corrections",
]

Con = duckdb.DuckDBPyConnection
STATUSES = ("due", "sending", "sent", "failed", "retracted")

#: The change_log columns a digest is composed from.
_CHANGE_COLUMNS = """c.change_id, c.kind, c.actor_group, c.subject, c.old_value, c.new_value, c.old_amount,
    c.new_amount, c.currency, c.old_currency, c.relative_change, c.old_claim_id, c.new_claim_id, c.old_url,
    c.new_url, c.old_published_at, c.new_published_at, c.old_evidence, c.new_evidence, c.old_title,
    c.new_title, c.detected_at"""


# -- change detection --------------------------------------------------------------
def claims_for_changes(con: Con) -> tuple[list[dict[str, Any]], list[dict[str, Any]], list[dict[str, Any]]]:
    """(positions, pledges, articles): every claim with its article's date, story and title."""
    positions = fetch_dicts(con, """
        SELECT p.url, p.published_at, p.story_id, p.claim_id, p.actor, p.actor_group, p.topic, p.stance,
               p.evidence, p.sentence_index, a.title
        FROM positions p LEFT JOIN article_texts a USING (url)
        ORDER BY p.published_at, p.url, p.sentence_index, p.claim_id""")
    pledges = fetch_dicts(con, """
        SELECT p.url, p.published_at, p.story_id, p.claim_id, p.donor, p.recipient, p.amount, p.currency,
               p.amount_eur, p.previous_amount, p.evidence, p.sentence_index, a.title
        FROM aid_pledges p LEFT JOIN article_texts a USING (url)
        ORDER BY p.published_at, p.url, p.sentence_index, p.claim_id""")
    articles = fetch_dicts(con, "SELECT url, story_id, published_at FROM article_texts")
    return positions, pledges, articles


#: The first copy of each story (syndicated copies share a story_id): the earliest published, then the
#: smallest URL, as `tasks.changes.first_copies` chooses it.
_FIRST_COPIES = """
    SELECT url FROM (
        SELECT url, row_number() OVER (PARTITION BY coalesce(story_id, url)
                                       ORDER BY published_at ASC NULLS LAST, url) AS copy
        FROM article_texts)
    WHERE copy = 1"""
#: `tasks.changes._order`: publication (nulls last), url, sentence index, claim id.
_CLAIM_ORDER = "p.published_at ASC NULLS LAST, p.url, coalesce(p.sentence_index, 0), coalesce(p.claim_id, '')"
#: Rows fetched from DuckDB at a time when streaming claims.
STREAM_ROWS = 2000


def _stream(con: Con, sql: str) -> Iterator[dict[str, Any]]:
    cur = con.execute(sql)
    names = [d[0] for d in cur.description]
    while True:
        rows = cur.fetchmany(STREAM_ROWS)
        if not rows:
            return
        for row in rows:
            yield dict(zip(names, row))


def first_copy_claims(con: Con) -> tuple[Iterator[dict[str, Any]], Iterator[dict[str, Any]]]:
    """(positions, pledges) of the first copies only, each streamed in publication order: the input of
    `tasks.changes.compute_changes_ordered`. Read the positions to their end before the pledges
    (both use `con`)."""
    positions = _stream(con, f"""
        SELECT p.url, p.published_at, p.story_id, p.claim_id, p.actor, p.actor_group, p.topic, p.stance,
               p.evidence, p.sentence_index, a.title
        FROM positions p JOIN ({_FIRST_COPIES}) f USING (url) LEFT JOIN article_texts a USING (url)
        ORDER BY {_CLAIM_ORDER}""")
    pledges = _stream(con, f"""
        SELECT p.url, p.published_at, p.story_id, p.claim_id, p.donor, p.recipient, p.amount, p.currency,
               p.amount_eur, p.previous_amount, p.evidence, p.sentence_index, a.title
        FROM aid_pledges p JOIN ({_FIRST_COPIES}) f USING (url) LEFT JOIN article_texts a USING (url)
        ORDER BY {_CLAIM_ORDER}""")
    return positions, pledges


def count_claims(con: Con) -> int:
    """Position and pledge claims in the warehouse (every copy)."""
    return con.execute("SELECT (SELECT count(*) FROM positions) + (SELECT count(*) FROM aid_pledges)").fetchone()[0]


def stored_changes(con: Con) -> list[dict[str, Any]]:
    """Every change ever recorded, with what it says and whether it is retracted."""
    return fetch_dicts(con, "SELECT change_id, kind, actor_group, subject, old_value, new_value, retracted_at "
                            "FROM change_log")


def record_changes(con: Con, diff, pairs: Sequence[tuple[str, str]], now: dt.datetime) -> dict[str, int]:
    """Apply a `tasks.changes.ChangeDiff` and queue the (change_id, recipient) `pairs`.

    New changes go in as one batch. A retracted change's unsent alerts become
    'retracted'; a restored change's become 'due' again. A new change that supersedes
    one already announced to a recipient is recorded as sent to them, `announced_as`
    the old change, rather than announced twice.
    """
    insert_rows(con, "change_log", [dict(c.as_row(), detected_at=now) for c in diff.new])
    corrections = 0
    if diff.retracted:
        con.execute("UPDATE change_log SET retracted_at = ? WHERE list_contains(?::VARCHAR[], change_id)",
                    [now, diff.retracted])
        con.execute("UPDATE alert_outbox SET status = 'retracted' "
                    "WHERE status IN ('due', 'failed') AND list_contains(?::VARCHAR[], change_id)",
                    [diff.retracted])
        # Owed a correction: every recipient the change was announced to, unless a new change
        # with the same key took its place (the same news, dated by a late article).
        superseded = set(diff.supersedes.values())
        owed = [cid for cid in diff.retracted if cid not in superseded]
        if owed:
            # No ON CONFLICT (a DuckLake has no keys): a cancelled correction is due again, a new one
            # is added, one already queued or sent stays as it is.
            announced_rows = fetch_dicts(con, """
                SELECT change_id, recipient, message_id, sent_at FROM alert_outbox
                WHERE status IN ('sent', 'sending') AND message_id IS NOT NULL
                  AND list_contains(?::VARCHAR[], change_id)""", [owed])
            for r in announced_rows:
                con.execute("UPDATE alert_corrections SET status = 'due' WHERE status = 'cancelled' "
                            "AND change_id = ? AND recipient = ? AND announced_message_id = ?",
                            [r["change_id"], r["recipient"], r["message_id"]])
            insert_rows(con, "alert_corrections",
                        [dict(change_id=r["change_id"], recipient=r["recipient"], announced_message_id=r["message_id"],
                              announced_at=r["sent_at"], status="due", attempts=0, created_at=now)
                         for r in announced_rows], on_conflict="ignore")
            corrections = len(announced_rows)
    restored = [c.change_id for c in diff.restored]
    if restored:
        con.execute("UPDATE change_log SET retracted_at = NULL WHERE list_contains(?::VARCHAR[], change_id)",
                    [restored])
        con.execute("UPDATE alert_outbox SET status = 'due', attempts = 0, last_error = NULL "
                    "WHERE status = 'retracted' AND list_contains(?::VARCHAR[], change_id)", [restored])
        # A correction not sent yet has nothing left to correct. One already sent told the
        # recipient the change was withdrawn: announce it again (a message of its own).
        con.execute("UPDATE alert_corrections SET status = 'cancelled' "
                    "WHERE status IN ('due', 'failed') AND list_contains(?::VARCHAR[], change_id)", [restored])
        reannounce = fetch_dicts(con, """
            SELECT DISTINCT k.change_id, k.recipient FROM alert_corrections k
            WHERE k.status IN ('sent', 'sending') AND list_contains(?::VARCHAR[], k.change_id)""", [restored])
        for r in reannounce:
            con.execute("""
                UPDATE alert_outbox SET status = 'due', attempts = 0, last_error = NULL, message_id = NULL,
                       sent_at = NULL, announced_as = NULL, resends = coalesce(resends, 0) + 1
                WHERE change_id = ? AND recipient = ? AND status = 'sent'""", [r["change_id"], r["recipient"]])
    announced: dict[tuple[str, str], dict[str, Any]] = {}
    if diff.supersedes:
        for r in fetch_dicts(con, "SELECT change_id, recipient, message_id, sent_at FROM alert_outbox "
                                  "WHERE status IN ('sent', 'sending') AND list_contains(?::VARCHAR[], change_id)",
                             [list(diff.supersedes.values())]):
            announced[(r["change_id"], r["recipient"])] = r
    rows = []
    for change_id, recipient in pairs:
        old = announced.get((diff.supersedes.get(change_id), recipient))
        if old is None:
            rows.append(dict(change_id=change_id, recipient=recipient, status="due", attempts=0,
                             message_id=None, sent_at=None, announced_as=None, created_at=now))
        else:
            rows.append(dict(change_id=change_id, recipient=recipient, status="sent", attempts=0,
                             message_id=old["message_id"], sent_at=old["sent_at"] or now,
                             announced_as=old["change_id"], created_at=now))
    insert_rows(con, "alert_outbox", rows, on_conflict="ignore")
    return dict(new=len(diff.new), retracted=len(diff.retracted), restored=len(restored),
                unchanged=diff.unchanged, queued=sum(r["status"] == "due" for r in rows),
                already_announced=sum(r["status"] == "sent" for r in rows), corrections_queued=corrections)


# -- sending ---------------------------------------------------------------------
def due_alerts(con: Con, recipient: str | None = None) -> list[dict[str, Any]]:
    """Due outbox rows of changes still standing, with the change_log columns, oldest change first."""
    return fetch_dicts(con, f"""
        SELECT o.recipient, o.attempts, coalesce(o.resends, 0) AS resends, {_CHANGE_COLUMNS}
        FROM alert_outbox o JOIN change_log c USING (change_id)
        WHERE o.status = 'due' AND c.retracted_at IS NULL AND (?::VARCHAR IS NULL OR o.recipient = ?)
        ORDER BY o.recipient, c.new_published_at, c.new_url, c.change_id""", [recipient, recipient])


def claim_due(con: Con, recipient: str, change_ids: Sequence[str], message_id: str, now: dt.datetime) -> int:
    """Due rows -> 'sending' with the digest's Message-ID (commit this before sending). Returns rows claimed."""
    return con.execute("""
        UPDATE alert_outbox SET status = 'sending', message_id = ?, last_attempt_at = ?, last_error = NULL
        WHERE status = 'due' AND recipient = ? AND list_contains(?::VARCHAR[], change_id)""",
                       [message_id, now, recipient, list(change_ids)]).fetchone()[0]


def stale_alerts(con: Con, older_than: dt.datetime) -> list[dict[str, Any]]:
    """Rows left in 'sending': their attempt ended without a record, or is older than `older_than`.

    A row another run is sending right now has no last_error and a recent last_attempt_at.
    """
    return fetch_dicts(con, f"""
        SELECT o.recipient, o.message_id, o.attempts, {_CHANGE_COLUMNS}
        FROM alert_outbox o JOIN change_log c USING (change_id)
        WHERE o.status = 'sending' AND (o.last_error IS NOT NULL OR o.last_attempt_at <= ?)
        ORDER BY o.recipient, o.message_id, c.new_published_at, c.new_url, c.change_id""", [older_than])


def claim_stale(con: Con, recipient: str, message_id: str, older_than: dt.datetime, now: dt.datetime) -> int:
    """Take a stale 'sending' message (its alert and correction rows) for a re-send, so that no
    concurrent run takes it too."""
    n = 0
    for table in ("alert_outbox", "alert_corrections"):
        n += con.execute(f"""
            UPDATE {table} SET last_attempt_at = ?, last_error = NULL
            WHERE status = 'sending' AND recipient = ? AND message_id = ?
              AND (last_error IS NOT NULL OR last_attempt_at <= ?)""",
                         [now, recipient, message_id, older_than]).fetchone()[0]
    return n


def mark_sent(con: Con, recipient: str, message_id: str, now: dt.datetime) -> int:
    """Every row (alerts and corrections) the message `message_id` carried -> 'sent'."""
    n = 0
    for table in ("alert_outbox", "alert_corrections"):
        n += con.execute(f"""
            UPDATE {table} SET status = 'sent', sent_at = ?, last_error = NULL
            WHERE status = 'sending' AND recipient = ? AND message_id = ?""",
                         [now, recipient, message_id]).fetchone()[0]
    # a correction queued while this announcement was in flight learns when it went out
    con.execute("UPDATE alert_corrections SET announced_at = ? "
                "WHERE recipient = ? AND announced_message_id = ? AND announced_at IS NULL",
                [now, recipient, message_id])
    return n


def mark_failed(con: Con, recipient: str, change_ids: Sequence[str], error: str, now: dt.datetime,
                max_attempts: int) -> int:
    """The message was not delivered: back to 'due' (or 'failed' after max_attempts), attempts + 1."""
    return con.execute("""
        UPDATE alert_outbox SET status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'due' END,
               attempts = attempts + 1, last_error = ?, last_attempt_at = ?, message_id = NULL
        WHERE status IN ('due', 'sending') AND recipient = ? AND list_contains(?::VARCHAR[], change_id)""",
                       [max_attempts, error[:2000], now, recipient, list(change_ids)]).fetchone()[0]


def mark_unknown(con: Con, recipient: str, message_id: str, error: str, now: dt.datetime,
                 max_attempts: int) -> int:
    """Whether the message arrived is unknown: keep it 'sending' (same Message-ID next time), attempts + 1."""
    n = 0
    for table in ("alert_outbox", "alert_corrections"):
        n += con.execute(f"""
            UPDATE {table} SET status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'sending' END,
                   attempts = attempts + 1, last_error = ?, last_attempt_at = ?
            WHERE status = 'sending' AND recipient = ? AND message_id = ?""",
                         [max_attempts, error[:2000], now, recipient, message_id]).fetchone()[0]
    return n


def mark_message_failed(con: Con, recipient: str, message_id: str, error: str, now: dt.datetime,
                        max_attempts: int, *, permanent: bool = False) -> int:
    """The message `message_id` was not delivered: its rows go back to 'due' without the
    Message-ID (or to 'failed' after max_attempts, or at once when `permanent`: the
    server refused the recipient or the message for good), attempts + 1."""
    n = 0
    for table in ("alert_outbox", "alert_corrections"):
        n += con.execute(f"""
            UPDATE {table} SET status = CASE WHEN ? OR attempts + 1 >= ? THEN 'failed' ELSE 'due' END,
                   attempts = attempts + 1, last_error = ?, last_attempt_at = ?, message_id = NULL
            WHERE status = 'sending' AND recipient = ? AND message_id = ?""",
                         [permanent, max_attempts, error[:2000], now, recipient, message_id]).fetchone()[0]
    return n


# -- corrections ---------------------------------------------------------------------
def _cancel_orphan_corrections(con: Con) -> None:
    """A correction whose announcement never went out after all (refused, failed) is cancelled."""
    con.execute("""
        UPDATE alert_corrections SET status = 'cancelled'
        WHERE status = 'due' AND NOT EXISTS (
            SELECT 1 FROM alert_outbox o
            WHERE o.change_id = alert_corrections.change_id AND o.recipient = alert_corrections.recipient
              AND o.status IN ('sent', 'sending'))""")


def due_corrections(con: Con, recipient: str | None = None) -> list[dict[str, Any]]:
    """Due corrections whose announcement is known to be sent, with the retracted change's columns.

    Ordered by recipient, then announcing message: one correction message per group.
    """
    _cancel_orphan_corrections(con)
    return fetch_dicts(con, f"""
        SELECT k.recipient, k.announced_message_id, k.announced_at, k.attempts, {_CHANGE_COLUMNS}
        FROM alert_corrections k JOIN change_log c USING (change_id)
        WHERE k.status = 'due' AND c.retracted_at IS NOT NULL AND (?::VARCHAR IS NULL OR k.recipient = ?)
          AND EXISTS (SELECT 1 FROM alert_outbox o WHERE o.change_id = k.change_id AND o.recipient = k.recipient
                      AND o.status = 'sent')
        ORDER BY k.recipient, k.announced_at, k.announced_message_id, c.new_published_at, c.new_url,
                 c.change_id""", [recipient, recipient])


def claim_corrections(con: Con, recipient: str, announced_message_id: str, change_ids: Sequence[str],
                      message_id: str, now: dt.datetime) -> int:
    """Due corrections -> 'sending' with the correction's Message-ID (commit this before sending)."""
    return con.execute("""
        UPDATE alert_corrections SET status = 'sending', message_id = ?, last_attempt_at = ?, last_error = NULL
        WHERE status = 'due' AND recipient = ? AND announced_message_id = ?
          AND list_contains(?::VARCHAR[], change_id)""",
                       [message_id, now, recipient, announced_message_id, list(change_ids)]).fetchone()[0]


def mark_corrections_failed(con: Con, recipient: str, announced_message_id: str, error: str,
                            now: dt.datetime, max_attempts: int) -> int:
    """Due corrections that could not be tried (the server is down): attempts + 1, stay due."""
    return con.execute("""
        UPDATE alert_corrections SET status = CASE WHEN attempts + 1 >= ? THEN 'failed' ELSE 'due' END,
               attempts = attempts + 1, last_error = ?, last_attempt_at = ?
        WHERE status = 'due' AND recipient = ? AND announced_message_id = ?""",
                       [max_attempts, error[:2000], now, recipient, announced_message_id]).fetchone()[0]


def stale_corrections(con: Con, older_than: dt.datetime) -> list[dict[str, Any]]:
    """Corrections left in 'sending' (see `stale_alerts`)."""
    return fetch_dicts(con, f"""
        SELECT k.recipient, k.message_id, k.announced_message_id, k.announced_at, k.attempts, {_CHANGE_COLUMNS}
        FROM alert_corrections k JOIN change_log c USING (change_id)
        WHERE k.status = 'sending' AND (k.last_error IS NOT NULL OR k.last_attempt_at <= ?)
        ORDER BY k.recipient, k.message_id, c.new_published_at, c.new_url, c.change_id""", [older_than])


def corrections_of_message(con: Con, recipient: str, message_id: str) -> list[dict[str, Any]]:
    """The corrections one message carries (to compose it again, identically)."""
    return fetch_dicts(con, f"""
        SELECT k.recipient, k.message_id, k.announced_message_id, k.announced_at, {_CHANGE_COLUMNS}
        FROM alert_corrections k JOIN change_log c USING (change_id)
        WHERE k.recipient = ? AND k.message_id = ?
        ORDER BY c.new_published_at, c.new_url, c.change_id""", [recipient, message_id])


def outbox_rows_of_message(con: Con, recipient: str, message_id: str) -> list[dict[str, Any]]:
    """The alerts one message carries (to compose it again, identically)."""
    return fetch_dicts(con, f"""
        SELECT o.recipient, o.message_id, coalesce(o.resends, 0) AS resends, {_CHANGE_COLUMNS}
        FROM alert_outbox o JOIN change_log c USING (change_id)
        WHERE o.recipient = ? AND o.message_id = ?
        ORDER BY c.new_published_at, c.new_url, c.change_id""", [recipient, message_id])


def list_corrections(con: Con, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """Corrections as `alerts list --corrections` shows them, newest first."""
    return fetch_dicts(con, """
        SELECT k.change_id, k.recipient, k.status, k.attempts, c.kind, c.actor_group, c.subject, c.old_value,
               c.new_value, k.announced_message_id, k.announced_at, k.message_id, k.sent_at, k.last_error
        FROM alert_corrections k JOIN change_log c USING (change_id)
        WHERE (?::VARCHAR IS NULL OR k.status = ?)
        ORDER BY k.created_at DESC, k.change_id, k.recipient
        LIMIT ?""", [status, status, limit])


def correction_counts(con: Con) -> dict[str, int]:
    """Corrections per status."""
    return dict(con.execute("SELECT status, count(*) FROM alert_corrections GROUP BY status "
                            "ORDER BY status").fetchall())


# -- inspection and manual requeue ---------------------------------------------------
def outbox_counts(con: Con) -> dict[str, int]:
    """Outbox rows per status."""
    return dict(con.execute("SELECT status, count(*) FROM alert_outbox GROUP BY status ORDER BY status").fetchall())


def list_alerts(con: Con, status: str | None = None, limit: int | None = None) -> list[dict[str, Any]]:
    """The outbox as the `alerts list` command shows it, newest change first."""
    return fetch_dicts(con, """
        SELECT o.change_id, o.recipient, o.status, o.attempts, c.kind, c.actor_group, c.subject,
               c.old_value, c.new_value, CAST(c.new_published_at AS DATE) AS published, o.sent_at,
               o.last_error, o.announced_as
        FROM alert_outbox o JOIN change_log c USING (change_id)
        WHERE (?::VARCHAR IS NULL OR o.status = ?)
        ORDER BY c.new_published_at DESC, o.change_id, o.recipient
        LIMIT ?""", [status, status, limit])


def find_change_ids(con: Con, prefix: str) -> list[dict[str, Any]]:
    """Changes whose id starts with `prefix` (ids are long; a unique prefix will do)."""
    return fetch_dicts(con, "SELECT change_id, retracted_at FROM change_log WHERE starts_with(change_id, ?) "
                            "ORDER BY change_id LIMIT 10", [prefix])


def change_row(con: Con, change_id: str) -> dict[str, Any] | None:
    """One change_log row with the columns a digest is composed from (and retracted_at)."""
    rows = fetch_dicts(con, f"SELECT {_CHANGE_COLUMNS}, c.retracted_at FROM change_log c WHERE c.change_id = ?",
                       [change_id])
    return rows[0] if rows else None


def alert_recipients(con: Con, change_id: str) -> list[str]:
    """Everyone with an outbox row for the change."""
    return [r for (r,) in con.execute("SELECT recipient FROM alert_outbox WHERE change_id = ? ORDER BY recipient",
                                      [change_id]).fetchall()]


def requeue(con: Con, change_id: str, recipient: str | None, now: dt.datetime) -> int:
    """Make one change's alert due again (all its recipients, or one, queued anew if it has no row).

    A message being sent right now is left alone. `resends` goes up, so the new
    digest gets a Message-ID of its own.
    """
    n = con.execute("""
        UPDATE alert_outbox SET status = 'due', attempts = 0, last_error = NULL, message_id = NULL,
               sent_at = NULL, announced_as = NULL, resends = coalesce(resends, 0) + 1
        WHERE change_id = ? AND (?::VARCHAR IS NULL OR recipient = ?) AND status <> 'sending'""",
                    [change_id, recipient, recipient]).fetchone()[0]
    exists = con.execute("SELECT count(*) FROM alert_outbox WHERE change_id = ? AND recipient = ?",
                         [change_id, recipient]).fetchone()[0]
    if n == 0 and recipient is not None and not exists:
        n = insert_rows(con, "alert_outbox", [dict(change_id=change_id, recipient=recipient, status="due",
                                                    attempts=0, resends=1, created_at=now)],
                        on_conflict="ignore")
    return n


# -- what the briefing adds to a change ----------------------------------------------------
#: At most this many earlier claims per chart.
HISTORY_POINTS = 40


def briefing_facts(con: Con, changes: Sequence[Any]) -> dict[str, dict[str, Any]]:
    """Per change id: the claims' actor / cue / kind / EUR amount / money text, each article's
    outlet (the feed that listed it), and the history of the series up to the change (every
    stance of the actor group on the topic, or every amount of the donor to the recipient).

    `changes` are `tasks.changes.Change`s. Read-only; what is missing (a claim re-mined away)
    is simply absent.
    """
    if not changes:
        return {}
    claim_ids = sorted({cid for c in changes for cid in (c.old_claim_id, c.new_claim_id) if cid})
    urls = sorted({u for c in changes for u in (c.old_url, c.new_url) if u})
    positions = {r["claim_id"]: r for r in fetch_dicts(con, """
        SELECT claim_id, actor, cue FROM position_claims WHERE list_contains(?::VARCHAR[], claim_id)""",
                                                       [claim_ids])}
    pledges = {r["claim_id"]: r for r in fetch_dicts(con, """
        SELECT claim_id, kind, amount, currency, amount_eur, money_text FROM pledge_claims
        WHERE list_contains(?::VARCHAR[], claim_id)""", [claim_ids])}
    outlets = dict(con.execute("""
        SELECT url, min(feed) FROM feed_entries WHERE list_contains(?::VARCHAR[], url) GROUP BY url""",
                               [urls]).fetchall())
    out: dict[str, dict[str, Any]] = {}
    for c in changes:
        claims = positions if c.kind == "position" else pledges
        if c.kind == "position":
            history = fetch_dicts(con, """
                SELECT published_at, stance AS value FROM positions
                WHERE actor_group = ? AND topic = ? AND published_at <= ?
                ORDER BY published_at DESC, url, sentence_index LIMIT ?""",
                                  [c.actor_group, c.subject, c.new_published_at, HISTORY_POINTS])
        else:
            history = fetch_dicts(con, """
                SELECT published_at, amount AS value, currency, amount_eur FROM aid_pledges
                WHERE donor = ? AND recipient = ? AND published_at <= ? AND amount IS NOT NULL
                ORDER BY published_at DESC, url, sentence_index LIMIT ?""",
                                  [c.actor_group, c.subject, c.new_published_at, HISTORY_POINTS])
        out[c.change_id] = dict(old_claim=claims.get(c.old_claim_id), new_claim=claims.get(c.new_claim_id),
                                old_outlet=outlets.get(c.old_url), new_outlet=outlets.get(c.new_url),
                                history=history[::-1])
    return out
