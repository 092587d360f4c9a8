"""The last two stages of a run: detect changes, then send the alert emails that are due.

Thin Prefect tasks over `tasks.changes` / `tasks.alerts` (the rules and the
message) and `warehouse.outbox` (the SQL). `detect_changes` recomputes every
change from every claim and records the difference with the change log in one
transaction, together with the outbox rows of the new changes. `send_alerts`
sends one digest per recipient: the Message-ID is committed with status
'sending' before the send and the row is marked 'sent' right after, each in its
own short transaction, so a crash in between re-sends the same message on a
later run, and a server that is down leaves the alerts due for the next run.
"""
from __future__ import annotations

import collections
import datetime as dt
import itertools
from typing import Any

from prefect import task

from flows.stages import _logger
from newsmon.errors import AlertError
from newsmon.settings import Settings
from tasks.alerts import DeliveryUnknownError, SmtpUnavailableError, compose_digest, due_pairs, send_message
from tasks.changes import Change, compute_changes, diff_changes
from tasks.money import load_fx_table
from warehouse import Warehouse
from warehouse import outbox as ob

__all__ = ["detect_changes", "send_alerts", "stale_after_seconds"]


def _now() -> dt.datetime:
    return dt.datetime.now(dt.timezone.utc)


def stale_after_seconds(settings: Settings) -> float:
    """How old a 'sending' row must be before it counts as left behind by a crashed run.

    Longer than one send can take, so that a run never re-sends what a concurrent run
    is sending at that moment.
    """
    timeout = settings.smtp.timeout if settings.smtp else 30.0
    return max(120.0, 4 * timeout)


@task(name="detect_changes")
def detect_changes(settings: Settings, wh: Warehouse, run_id: str) -> dict[str, Any]:
    """Recompute all changes from all claims; insert new ones, retract vanished ones, queue alerts."""
    log = _logger()
    fx = load_fx_table(settings.nlp.fx)
    now = _now()
    with wh.transaction() as con:
        positions, pledges, articles = ob.claims_for_changes(con)
        computed = compute_changes(positions, pledges, threshold=settings.alerts.aid_change_threshold,
                                   fx=fx, articles=articles)
        diff = diff_changes(computed, ob.stored_changes(con))
        pairs = due_pairs([*diff.new, *diff.restored], settings.alerts.recipients)
        counts = ob.record_changes(con, diff, pairs, now)
    if counts["retracted"]:
        log.info("%d change(s) retracted: a late article reordered what was said", counts["retracted"])
    return dict(counts, claims=len(positions) + len(pledges), changes=len(computed))


def _changes(rows: list[dict[str, Any]]) -> list[Change]:
    return [Change.from_row(r) for r in rows]


@task(name="send_alerts")
def send_alerts(settings: Settings, wh: Warehouse, run_id: str, *,
                stale_after: float | None = None) -> dict[str, Any]:
    """Send one digest per recipient of every due alert; what cannot go now stays due.

    `stale_after` (seconds; default `stale_after_seconds`) is how old a 'sending' row
    must be to be re-sent as left behind by a crash.
    """
    log = _logger()
    counts: collections.Counter[str] = collections.Counter()
    if settings.smtp is None:
        with wh.transaction() as con:
            due = ob.outbox_counts(con).get("due", 0)
        if due:
            log.warning("%d alert(s) due but no [smtp] section is configured; they stay due", due)
        return {"due": due, "smtp_not_configured": 1} if due else {}
    smtp = settings.smtp
    max_attempts = settings.alerts.max_attempts
    stale_after = stale_after_seconds(settings) if stale_after is None else stale_after
    unavailable: str | None = None

    # 1. messages left in 'sending' by a crash: the same Message-ID, the same changes
    cutoff = _now() - dt.timedelta(seconds=stale_after)
    with wh.transaction() as con:
        stale = ob.stale_alerts(con, cutoff)
    for (recipient, message_id), group in itertools.groupby(stale, key=lambda r: (r["recipient"], r["message_id"])):
        rows = list(group)
        if unavailable:
            break
        now = _now()
        with wh.transaction() as con:
            if not ob.claim_stale(con, recipient, message_id, cutoff, now):
                continue  # another run took it
        msg = compose_digest(recipient, _changes(rows), smtp.sender, message_id=message_id)
        try:
            send_message(smtp, msg)
        except AlertError as exc:
            with wh.transaction() as con:
                ob.mark_unknown(con, recipient, message_id, str(exc), _now(), max_attempts)
            counts["failed"] += len(rows)
            log.warning("re-sending alert %s to %s failed: %s", message_id, recipient, exc)
            if isinstance(exc, SmtpUnavailableError):
                unavailable = str(exc)
            continue
        with wh.transaction() as con:
            ob.mark_sent(con, recipient, message_id, _now())
        counts["resent_messages"] += 1
        counts["sent_alerts"] += len(rows)

    # 2. due alerts: one digest per recipient
    with wh.transaction() as con:
        recipients = sorted({r["recipient"] for r in ob.due_alerts(con)})
    for recipient in recipients:
        now = _now()
        with wh.transaction() as con:
            rows = ob.due_alerts(con, recipient)  # again, inside the claim: a concurrent run may have sent some
            if not rows:
                continue
            ids = [r["change_id"] for r in rows]
            if unavailable:  # the server is down: record it, do not knock again for every recipient
                ob.mark_failed(con, recipient, ids, unavailable, now, max_attempts)
                counts["failed"] += len(rows)
                continue
            msg = compose_digest(recipient, _changes(rows), smtp.sender, date=now,
                                 resends=max(r["resends"] for r in rows))
            message_id = msg["Message-ID"]
            ob.claim_due(con, recipient, ids, message_id, now)
        try:
            send_message(smtp, msg)
        except DeliveryUnknownError as exc:
            with wh.transaction() as con:
                ob.mark_unknown(con, recipient, message_id, str(exc), _now(), max_attempts)
            counts["unknown"] += len(rows)
            log.warning("alert to %s may not have arrived: %s", recipient, exc)
            continue
        except AlertError as exc:
            with wh.transaction() as con:
                ob.mark_failed(con, recipient, ids, str(exc), _now(), max_attempts)
            counts["failed"] += len(rows)
            log.warning("alert to %s not sent: %s", recipient, exc)
            if isinstance(exc, SmtpUnavailableError):
                unavailable = str(exc)
            continue
        with wh.transaction() as con:
            ob.mark_sent(con, recipient, message_id, _now())
        counts["messages"] += 1
        counts["sent_alerts"] += len(rows)
    with wh.transaction() as con:
        left = ob.outbox_counts(con)
    counts["due"] = left.get("due", 0)
    if left.get("failed"):
        counts["failed_for_good"] = left["failed"]
    return {k: v for k, v in counts.items() if v}
